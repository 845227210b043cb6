// Small helpers shared by the LocalCache tests, so that each test reads like its scenario.
//
// Conventions: keys are ints; the value stored for key k is value_for(k) ("value-k"), so a
// value found under the wrong key is visible; time comes from a ManualClock; seeds are fixed
// so that eviction decisions are reproducible.

#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tiercache/cached.hpp"
#include "tiercache/clock.hpp"
#include "tiercache/local_cache.hpp"

namespace tiercache::test {

using namespace std::chrono_literals;

using Cache = LocalCache<int, std::string>;

// A fixed seed: admission has a random component, and tests must be reproducible.
inline constexpr std::uint64_t kTestSeed = 0x7e57'5eedULL;

// One slot of the finest timer wheel (2^30 ns, ~1.07 s): the documented delay between an
// entry's deadline and its reclamation ("at most ~1 s after it expired").
inline constexpr Duration kReclaimResolution = Duration(std::int64_t{1} << 30);

inline std::string value_for(int key) { return "value-" + std::to_string(key); }

// Options bounded to `max_entries`, with a fixed seed and, if given, a manual clock.
inline LocalCacheOptions bounded_to(std::size_t max_entries,
                                    std::shared_ptr<ManualClock> clock = nullptr,
                                    EvictionPolicy policy = EvictionPolicy::kAdaptiveTinyLfu) {
  LocalCacheOptions options;
  options.max_entries = max_entries;
  options.policy = policy;
  options.seed = kTestSeed;
  options.clock = std::move(clock);
  return options;
}

inline void put(Cache& cache, int key) { cache.put(key, value_for(key)); }

// The value for `key`, or nullopt on a miss or a negative entry.
inline std::optional<std::string> lookup(Cache& cache, int key) {
  Cached<std::string> found = cache.get(key);
  if (!found) return std::nullopt;
  return *found;
}

inline bool contains(Cache& cache, int key) { return cache.get(key).found(); }

// A cache user's access: a hit, or a miss followed by a put. Returns whether it hit.
inline bool access(Cache& cache, int key) {
  if (cache.get(key).found()) return true;
  put(cache, key);
  return false;
}

// A scan workload: `hot_keys` keys used five times each, then a one-pass scan of
// `scan_length` new keys during which the next hot key is used again every
// `scan_accesses_per_hot_access` scan accesses.
struct ScanWorkloadShape {
  int hot_keys;
  int scan_length;
  int scan_accesses_per_hot_access;
  // Hot accesses in the second half of the scan, long after the scan has filled the cache.
  constexpr int hot_accesses_late() const { return scan_length / 2 / scan_accesses_per_hot_access; }
};

// Runs `shape` through `cache`; returns how many hot accesses hit in the second half of the
// scan. With `replace_hot`, every hot access that hits also replaces the value.
inline int hot_hits_late_in_the_scan(Cache& cache, const ScanWorkloadShape& shape,
                                     bool replace_hot = false) {
  for (int round = 0; round < 5; ++round) {
    for (int key = 0; key < shape.hot_keys; ++key) access(cache, key);
  }
  int hot_hits = 0;
  int next_hot = 0;
  for (int i = 0; i < shape.scan_length; ++i) {
    access(cache, 1'000'000 + i);
    if (i % shape.scan_accesses_per_hot_access == 0) {
      const bool hit = access(cache, next_hot);
      if (hit && replace_hot) cache.put(next_hot, "replaced-" + std::to_string(i));
      if (i >= shape.scan_length / 2 && hit) ++hot_hits;
      next_hot = (next_hot + 1) % shape.hot_keys;
    }
  }
  return hot_hits;
}

inline const char* to_string(RemovalCause cause) {
  switch (cause) {
    case RemovalCause::kSize:
      return "kSize";
    case RemovalCause::kExpired:
      return "kExpired";
    case RemovalCause::kExplicit:
      return "kExplicit";
    case RemovalCause::kReplaced:
      return "kReplaced";
  }
  return "?";
}

// What a removal listener was told: the key, the departing value (nullopt for a negative
// entry) and why it left.
struct Removal {
  int key;
  std::optional<std::string> value;
  RemovalCause cause;

  bool operator==(const Removal&) const = default;
};

inline std::ostream& operator<<(std::ostream& out, RemovalCause cause) {
  return out << to_string(cause);
}
inline std::ostream& operator<<(std::ostream& out, const Removal& r) {
  return out << "{" << r.key << ", " << (r.value ? *r.value : std::string("<negative>")) << ", "
             << r.cause << "}";
}

// Records every notification of a removal listener. Thread-safe.
class RemovalLog {
 public:
  Cache::RemovalListener listener() {
    return [this](const int& key, const Cached<std::string>& departing, RemovalCause cause) {
      std::lock_guard lock(mutex_);
      removals_.push_back(
          {key, departing ? std::optional<std::string>(*departing) : std::nullopt, cause});
    };
  }

  std::vector<Removal> removals() const {
    std::lock_guard lock(mutex_);
    return removals_;
  }

  std::vector<int> keys_removed_because(RemovalCause cause) const {
    std::lock_guard lock(mutex_);
    std::vector<int> keys;
    for (const Removal& r : removals_) {
      if (r.cause == cause) keys.push_back(r.key);
    }
    return keys;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Removal> removals_;
};

}  // namespace tiercache::test
