// Flight<V> and FlightMap<V>: single-flight. A Flight is one read in progress for one key in
// this process (an L2 read, then maybe a load), and the callers waiting for its result; the
// FlightMap holds the current flight of each key.
//
// Invariants:
//  - A key has at most one *current* flight (the one in the map). A flight leaves the map when
//    it completes, or when a caller finds it must not join it: an invalidation of the key (or
//    of everything) came after the flight began, or its load has run past max_load_time. The
//    flight it was replaced by is the current one; the old one goes on for the callers that
//    were already waiting, and may store nothing (the invalidation rule, or abandonment).
//  - `done`, `result`, `stale`, `stale_epoch` and `timeout_counted` are guarded
//    by `mutex`; `cv` is notified when `done` or `stale` changes.
//
// Thread-safety: FlightMap's members may be called from any thread.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tiercache/cache_result.hpp"
#include "tiercache/clock.hpp"
#include "tiercache/detail/invalidation_epochs.hpp"

namespace tiercache::detail {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class V>
struct Flight {
  using Epoch = InvalidationEpochs::Epoch;
  using SteadyTime = std::chrono::steady_clock::time_point;

  explicit Flight(Epoch created) : created_epoch(created) {}

  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  CacheResult<V> result;
  CacheResult<V> stale;   // the best stale candidate known so far (may be empty)
  Epoch stale_epoch = 0;  // the epoch as of which `stale` was valid (not invalidated)
  bool timeout_counted = false;
  bool refresh = false;  // an early refresh: nobody waits; failures leave L1 alone

  const SteadyTime started = std::chrono::steady_clock::now();
  const Epoch created_epoch;  // noted before the flight's first read
  // When its load was handed to the loader pool (steady-clock ticks; 0: no load yet).
  std::atomic<SteadyTime::rep> load_started{0};

  void mark_load_started() {
    load_started.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                       std::memory_order_release);
  }
  // Whether its load has run past `limit` (then it is abandoned: it stores nothing).
  bool load_overdue(Duration limit) const {
    const SteadyTime::rep t = load_started.load(std::memory_order_acquire);
    return t != 0 &&
           std::chrono::steady_clock::now() - SteadyTime(SteadyTime::duration(t)) >= limit;
  }
};

template <class V>
class FlightMap {
 public:
  using FlightPtr = std::shared_ptr<Flight<V>>;

  // Joins the current flight of `key`, or starts one (then `leader` is set). A flight that an
  // invalidation of the key or of everything covered since it began, or whose load is past
  // `max_load_time`, is replaced rather than joined; so is any flight when `force_new`.
  // `arrived`: the caller's epoch, noted after its L1 miss.
  FlightPtr join(const std::string& key, const InvalidationEpochs& epochs,
                 InvalidationEpochs::Epoch arrived, Duration max_load_time, bool force_new,
                 bool& leader) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      const FlightPtr& current = it->second;
      const bool usable = !force_new && !epochs.removed_since(key, current->created_epoch) &&
                          !current->load_overdue(max_load_time);
      if (usable) {
        leader = false;
        return current;
      }
    }
    leader = true;
    auto flight = std::make_shared<Flight<V>>(arrived);
    flights_.insert_or_assign(key, flight);
    return flight;
  }

  // Takes `flight` out of the map if it is still the current flight of `key`.
  void remove(const std::string& key, const FlightPtr& flight) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second == flight) flights_.erase(it);
  }

  // Empties the map; returns what it held (shutdown).
  std::vector<std::pair<std::string, FlightPtr>> take_all() {
    std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, FlightPtr>> out(flights_.begin(), flights_.end());
    flights_.clear();
    return out;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, FlightPtr, StringHash, std::equal_to<>> flights_;
};

}  // namespace tiercache::detail
