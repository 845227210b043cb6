// Chooses the tuning of an adaptive W-TinyLFU policy by watching ghosts. Internal.
//
// A few *ghost* policies -- W-TinyLFU with fixed tunings (window share, sketch memory),
// holding keys' hashes only, no values -- replay the same requests as the real cache. At
// the end of each period the ghost with the best recent hit count (an exponentially
// decayed sum over periods) wins, and the real policy adopts its tuning. This is the
// "experts" form of adaptation (Ari et al., "ACME: Adaptive Caching Using Multiple
// Experts", 2002) rather than Caffeine's hill climbing, which measured worse on the
// reference traces (docs/local-cache.md).
//
// Cost control by spatial sampling (Waldspurger et al., "Cache Modeling and Optimization
// using Miniature Simulations", USENIX ATC 2017): only keys whose seeded hash falls in a
// 1/R slice are replayed, into ghosts of 1/R of the capacity. R is a power of two chosen so
// that a ghost holds about kGhostEntries entries, and doubles (dropping half the sampled
// keys -- the 1/2R slice is inside the 1/R one) if weighted entries turn out smaller than
// expected. So the ghosts cost O(kGhosts x kGhostEntries) memory whatever the cache size,
// and O(kGhosts / R) work per request.
//
// Not thread-safe: used under the cache's writer lock.

#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "tiercache/detail/eviction_policy.hpp"

namespace tiercache::detail {

class PolicyTuner {
 public:
  // `max_weight` and `expected_entries` as for EvictionPolicy.
  // `marking`: whether the ghosts use CLOCK marking like the policy they tune.
  PolicyTuner(std::uint64_t max_weight, std::size_t expected_entries, std::uint64_t seed,
              bool marking);
  ~PolicyTuner();
  PolicyTuner(const PolicyTuner&) = delete;
  PolicyTuner& operator=(const PolicyTuner&) = delete;

  // The tuning to start with.
  const PolicyTuning& initial() const;
  // Whether the ghosts replay requests for `hash` (the sampled slice). Thread-safe: readers
  // ask it to decide whether a hit must reach the policy.
  bool sampled(std::uint32_t hash) const {
    return (mix64(hash ^ sampling_.salt) & sampling_.mask.load(std::memory_order_relaxed)) == 0;
  }
  // Replays one request (every get that reached the policy, hit or miss, and every put).
  // Returns the tuning to switch to when the winner changes, else nullptr.
  const PolicyTuning* record(std::uint32_t hash, std::uint32_t weight);

 private:
  class Ghost;
  void halve_sample();
  const PolicyTuning* end_period();

  std::vector<std::unique_ptr<Ghost>> ghosts_;
  // Read by every reader, written only when the sample halves: on a line of its own.
  struct alignas(64) Sampling {
    std::uint64_t salt;
    std::atomic<std::uint64_t> mask{0};  // R - 1
  } sampling_;
  std::uint64_t ghost_max_weight_;
  std::uint64_t period_;
  std::uint64_t requests_in_period_ = 0;
  std::size_t current_ = 0;
};

}  // namespace tiercache::detail
