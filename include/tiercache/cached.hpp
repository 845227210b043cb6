// Cached<V>: what a cache lookup hands back -- a value, a "known absent" (negative) entry,
// or nothing (a miss) -- as a counted reference to the cache's own copy.
//
// Contract:
//  - No copy of V is ever made: *cached is the very object the cache stores, immutable.
//  - The reference keeps the value alive after the entry is evicted, replaced, erased or the
//    whole cache destroyed; the value is freed when the last Cached<V> for it goes away.
//  - Copying a Cached<V> costs one atomic increment; moving costs nothing.
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
#include "tiercache/detail/node.hpp"

namespace tiercache {

template <class K, class V, class Hash, class Eq>
class LocalCache;

template <class V>
class Cached {
 public:
  // A miss.
  Cached() noexcept = default;

  Cached(const Cached& other) noexcept
      : node_(other.node_), value_(other.value_), destroy_(other.destroy_) {
    if (node_ != nullptr) node_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Cached(Cached&& other) noexcept
      : node_(std::exchange(other.node_, nullptr)),
        value_(std::exchange(other.value_, nullptr)),
        destroy_(other.destroy_) {}
  Cached& operator=(Cached other) noexcept {
    swap(other);
    return *this;
  }
  ~Cached() {
    if (node_ != nullptr) detail::release_node(node_, destroy_);
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
  }

 private:
  template <class, class, class, class>
  friend class LocalCache;

  // Adopts one reference to `node` already taken by the caller.
  Cached(detail::NodeHeader* node, const V* value, detail::NodeDestroyer destroy) noexcept
      : node_(node), value_(value), destroy_(destroy) {}

  detail::NodeHeader* node_ = nullptr;
  const V* value_ = nullptr;
  detail::NodeDestroyer destroy_ = nullptr;
};

}  // namespace tiercache
