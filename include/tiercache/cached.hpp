// Cached<V>: what a cache lookup hands back -- a value, a "known absent" (negative) entry,
// or nothing (a miss) -- as a counted reference to the cache's own copy.
//
// Contract:
//  - No copy of V is ever made: *cached is the very object the cache stores, immutable.
//  - The reference keeps the value alive after the entry is evicted, replaced, erased or the
//    whole cache destroyed; the value is freed when the last Cached<V> for it goes away.
//  - Getting one costs no write to shared memory (detail/hazards.hpp); copying one costs an
//    atomic increment; moving costs nothing.
//  - Thread-safety: like std::shared_ptr<const V>. Distinct Cached objects may be used from
//    different threads freely, even when they refer to the same value.
//
//   tiercache::Cached<User> user = users.get(id);
//   if (user) greet(user->name);            // a value
//   else if (user.is_negative()) not_found(); // cached "does not exist"
//   else load_it();                          // a miss

#pragma once

#include <utility>

#include "tiercache/clock.hpp"
#include "tiercache/detail/hazards.hpp"
#include "tiercache/detail/node.hpp"

namespace tiercache {

template <class K, class V, class Hash, class Eq>
class LocalCache;

template <class V>
class Cached {
 public:
  // A miss.
  Cached() noexcept = default;

  // A copy holds a counted reference, whatever the original holds.
  Cached(const Cached& other) noexcept
      : node_(other.node_), value_(other.value_), destroy_(other.destroy_) {
    if (node_ != nullptr) node_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Cached(Cached&& other) noexcept
      : node_(std::exchange(other.node_, nullptr)),
        value_(std::exchange(other.value_, nullptr)),
        destroy_(other.destroy_),
        hazard_(std::exchange(other.hazard_, nullptr)) {}
  Cached& operator=(Cached other) noexcept {
    swap(other);
    return *this;
  }
  ~Cached() {
    if (node_ == nullptr) return;
    // A hazard slot needs no count unless the cache converted it into one.
    if (hazard_ == nullptr || detail::release_hazard(hazard_)) {
      detail::release_node(node_, destroy_);
    }
  }

  // True when a value was found.
  bool has_value() const noexcept { return value_ != nullptr; }
  explicit operator bool() const noexcept { return has_value(); }
  // True when the cache holds a "known absent" entry for the key.
  bool is_negative() const noexcept { return node_ != nullptr && value_ == nullptr; }
  // True for a value or a negative entry: the cache had an answer.
  bool found() const noexcept { return node_ != nullptr; }

  // REQUIRES: has_value().
  const V& operator*() const noexcept { return *value_; }
  const V* operator->() const noexcept { return value_; }
  // The value, or nullptr on a miss or a negative entry.
  const V* get() const noexcept { return value_; }

  // When the entry expires (TimePoint::max() if it has no time-to-live). REQUIRES: found().
  TimePoint expires_at() const noexcept {
    if (!node_->timed()) return TimePoint::max();
    return TimePoint(Duration(detail::timer_links(node_)->expires_at_ns));
  }

  void swap(Cached& other) noexcept {
    std::swap(node_, other.node_);
    std::swap(value_, other.value_);
    std::swap(destroy_, other.destroy_);
    std::swap(hazard_, other.hazard_);
  }

 private:
  template <class, class, class, class>
  friend class LocalCache;

  // Adopts one counted reference to `node` already taken by the caller, or, with `hazard`,
  // the hazard slot in which the caller parked `node`.
  Cached(detail::NodeHeader* node, const V* value, detail::NodeDestroyer destroy,
         std::atomic<detail::NodeHeader*>* hazard = nullptr) noexcept
      : node_(node), value_(value), destroy_(destroy), hazard_(hazard) {}

  detail::NodeHeader* node_ = nullptr;
  const V* value_ = nullptr;
  detail::NodeDestroyer destroy_ = nullptr;
  std::atomic<detail::NodeHeader*>* hazard_ = nullptr;
};

}  // namespace tiercache
