// Replaying a trace through a cache policy: the engine of `tiercache sim`.
//
// Two measurements:
//  - replay(): the hit count of a cache of a given capacity over the whole trace, one
//    request at a time (get; on a miss, put), deterministic for a given seed;
//  - measure_reads(): read throughput -- the cache is filled with the trace's first
//    capacity/2 distinct keys, then T threads replay the trace with gets only (each from
//    its own offset, wrapping around) for a given wall-clock duration.
//
// Policies: LocalCache (adaptive W-TinyLFU, or its LRU mode), the MutexLru baseline of
// mutex_lru.hpp, and Belady's clairvoyant MIN (optimal.hpp; hit counts only).

#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "sim/optimal.hpp"

namespace tiercache::sim {

enum class Policy : std::uint8_t {
  kTiercache,     // LocalCache, EvictionPolicy::kAdaptiveTinyLfu (the default)
  kTiercacheLru,  // LocalCache, EvictionPolicy::kLru
  kLru,           // MutexLru, the hand-written baseline
  kOptimal,       // Belady's MIN with bypass; replay() only
};

// The names of the policies on the command line, in Policy order.
inline constexpr std::array<std::string_view, 4> kPolicyNames = {"tiercache", "tiercache-lru",
                                                                 "lru", "optimal"};
std::optional<Policy> parse_policy(std::string_view name);
std::string_view policy_name(Policy policy);

// Seed of the LocalCaches (hashing and admission randomness) unless one is given.
inline constexpr std::uint64_t kDefaultCacheSeed = 42;
// Readers in measure_reads() check the stop flag once per this many gets.
inline constexpr std::uint64_t kReadsPerStopCheck = 256;

struct HitCount {
  std::uint64_t requests = 0;
  std::uint64_t hits = 0;
  double hit_ratio() const {
    return requests == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(requests);
  }
};

struct ThroughputResult {
  std::uint64_t operations = 0;  // gets, all threads together
  std::uint64_t hits = 0;
  double seconds = 0;              // wall clock from the start signal to the last join
  std::size_t preloaded_keys = 0;  // keys put before the timed phase
  std::uint64_t checksum = 0;      // sum of the values read: keeps the gets observable
  double ops_per_second() const { return seconds > 0 ? operations / seconds : 0.0; }
  double hit_ratio() const {
    return operations == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(operations);
  }
};

// Replays one trace (which must outlive the simulator) through any policy and capacity.
// Not thread-safe; measure_reads() starts its own threads.
class Simulator {
 public:
  explicit Simulator(std::span<const std::uint64_t> trace,
                     std::uint64_t cache_seed = kDefaultCacheSeed);

  std::size_t requests() const { return trace_.size(); }
  std::size_t distinct_keys() const { return distinct_keys_; }

  // Entries a LocalCache of `capacity` is built with: min(capacity, distinct_keys()) -- a
  // cache that can hold every key of the trace never evicts, so the hit count is the same,
  // and an absurd capacity does not size the cache's tables to match.
  std::size_t cache_entries(std::size_t capacity) const;

  // The hit count of `policy` with room for `capacity` keys. REQUIRES: capacity > 0.
  HitCount replay(Policy policy, std::size_t capacity);

  // Read throughput (see the top of this file). Sleeps for `duration`; with a zero duration
  // every thread still does kReadsPerStopCheck gets. REQUIRES: capacity > 0, threads > 0,
  // policy != kOptimal (std::invalid_argument otherwise).
  ThroughputResult measure_reads(Policy policy, std::size_t capacity, unsigned threads,
                                 std::chrono::nanoseconds duration);

 private:
  std::span<const std::uint64_t> trace_;
  std::uint64_t cache_seed_;
  std::size_t distinct_keys_;
  std::optional<BeladyOracle> oracle_;  // built on the first kOptimal replay
};

}  // namespace tiercache::sim
