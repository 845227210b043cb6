// MutexLru<K, V>: the baseline tiercache is measured against -- the LRU map every backend
// team writes by hand: one std::mutex around a std::list (recency order) and a
// std::unordered_map (key -> list node). Kept in the project as the comparison point for
// `tiercache sim --policy lru` and for the benchmarks (bench/ includes this header); it is
// not part of the library.
//
// Contract:
//  - Thread-safety: every member function may be called from any number of threads; all of
//    them, get() included, serialise on one mutex (a hit reorders the list, so reads write).
//  - Bound: at most `capacity` entries; a put of a new key into a full cache evicts the
//    least recently used entry (recency = the last get hit or put).
//  - Values are shared, never copied: they are stored as std::shared_ptr<const V> and get()
//    hands out that pointer -- the same value semantics as LocalCache's Cached<V>, so a
//    comparison of the two is like for like. Evicted values are released after the lock.
//
// REQUIRES: Hash and Eq usable from any thread (they only run under the lock).

#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace tiercache {

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class MutexLru {
 public:
  // REQUIRES: capacity > 0 (throws std::invalid_argument otherwise).
  explicit MutexLru(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("MutexLru: capacity must be > 0");
  }
  MutexLru(const MutexLru&) = delete;
  MutexLru& operator=(const MutexLru&) = delete;

  // The value for `key` (and marks it most recently used), or nullptr on a miss.
  std::shared_ptr<const V> get(const K& key) {
    std::lock_guard lock(mutex_);
    const auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    recency_.splice(recency_.begin(), recency_, it->second);
    return it->second->second;
  }

  // Inserts or replaces the value for `key` and marks it most recently used.
  void put(const K& key, V value) {
    auto shared = std::make_shared<const V>(std::move(value));
    std::shared_ptr<const V> released;  // destroyed after the lock is released
    std::lock_guard lock(mutex_);
    const auto it = index_.find(key);
    if (it != index_.end()) {
      released = std::exchange(it->second->second, std::move(shared));
      recency_.splice(recency_.begin(), recency_, it->second);
      return;
    }
    recency_.emplace_front(key, std::move(shared));
    try {
      index_.emplace(key, recency_.begin());
    } catch (...) {
      recency_.pop_front();
      throw;
    }
    if (index_.size() > capacity_) {
      const auto oldest = std::prev(recency_.end());
      released = std::move(oldest->second);
      index_.erase(oldest->first);
      recency_.pop_back();
    }
  }

  // Number of entries.
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return index_.size();
  }
  std::size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<K, std::shared_ptr<const V>>;

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::list<Entry> recency_;  // most recently used first
  std::unordered_map<K, typename std::list<Entry>::iterator, Hash, Eq> index_;
};

}  // namespace tiercache
