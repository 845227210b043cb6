// The TinyLFU frequency sketch: an approximate, aging count of how often each key was
// accessed recently, in 4 bits per counter. Internal.
//
// Count-Min sketch (Cormode & Muthukrishnan, 2005) as used by TinyLFU (Einziger, Friedman &
// Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM ToS 2017), with the
// cache-line-blocked layout of Caffeine's FrequencySketch: the four counters of a key live
// in one 64-byte block, so an increment touches one cache line.
//
// Aging ("reset"): after sample_size() = factor x capacity increments every counter is
// halved, so the sketch reflects recent history. The factor is tunable at run time: the
// TinyLFU paper and Caffeine use 10; looping workloads want a longer memory (see
// PolicyTuner).
//
// Hash flooding: keys are mixed with a per-sketch random seed before indexing, so an
// attacker who does not know the seed cannot aim collisions at a chosen counter.
//
// Not thread-safe: used under the cache's writer lock.

#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tiercache/detail/mix.hpp"

namespace tiercache::detail {

class FrequencySketch {
 public:
  explicit FrequencySketch(std::uint64_t seed) : seed_(seed) {}

  // Sizes the sketch for a cache of up to `max_entries` entries. Cheap when unchanged;
  // resizing clears the counts.
  void ensure_capacity(std::size_t max_entries);

  // Estimated recent frequency of `hash`, in [0, 15].
  std::uint32_t frequency(std::uint32_t hash) const noexcept;

  // Records one access of `hash`.
  void increment(std::uint32_t hash) noexcept;

  // Hints the CPU to fetch the cache line of `hash`'s counters (for batched updates).
  void prefetch(std::uint32_t hash) const noexcept {
    if (table_.empty()) return;
    const std::uint64_t block_hash = mix64(hash ^ seed_);
    __builtin_prefetch(&table_[(block_hash & block_mask_) * kWordsPerBlock], 1);
  }

  std::size_t sample_size() const noexcept { return sample_size_; }
  // Sets the aging period to factor x capacity increments.
  void set_sample_factor(double factor);

 private:
  static constexpr std::size_t kWordsPerBlock = 8;  // one 64-byte cache line

  void reset() noexcept;

  std::uint64_t seed_;
  std::vector<std::uint64_t> table_;
  std::uint64_t block_mask_ = 0;
  std::size_t entries_ = 16;
  double sample_factor_ = 10.0;
  std::size_t sample_size_ = 0;
  std::size_t additions_ = 0;
};

}  // namespace tiercache::detail
