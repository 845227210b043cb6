// detail::FrequencySketch: TinyLFU's approximate, aging access counts (4-bit counters).

#include "tiercache/detail/frequency_sketch.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>

namespace tiercache::detail {
namespace {

constexpr std::uint64_t kSeed = 0x5eed;
constexpr std::uint32_t kMaxCount = 15;

// A sketch for a cache of `capacity` entries.
FrequencySketch sketch_for(std::size_t capacity, std::uint64_t seed = kSeed) {
  FrequencySketch sketch(seed);
  sketch.ensure_capacity(capacity);
  return sketch;
}

void increment(FrequencySketch& sketch, std::uint32_t hash, int times) {
  for (int i = 0; i < times; ++i) sketch.increment(hash);
}

// Hashes as the cache would give them: well mixed.
std::uint32_t hash_of(std::uint64_t key) { return static_cast<std::uint32_t>(mix64(key)); }

TEST(FrequencySketch, AnUnseenKeyHasFrequencyZero) {
  FrequencySketch sketch = sketch_for(1024);

  EXPECT_EQ(sketch.frequency(hash_of(1)), 0u);
}

TEST(FrequencySketch, CountsEachIncrementOfAKey) {
  FrequencySketch sketch = sketch_for(1024);

  for (std::uint32_t count = 1; count <= kMaxCount; ++count) {
    sketch.increment(hash_of(7));
    EXPECT_EQ(sketch.frequency(hash_of(7)), count);
  }
}

TEST(FrequencySketch, SaturatesAtFifteen) {
  FrequencySketch sketch = sketch_for(1024);

  increment(sketch, hash_of(7), 40);

  EXPECT_EQ(sketch.frequency(hash_of(7)), kMaxCount);
}

TEST(FrequencySketch, NeverUnderestimatesAKeysCount) {
  FrequencySketch sketch = sketch_for(512);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> times(0, 12);
  std::map<std::uint32_t, std::uint32_t> counts;
  std::size_t increments = 0;
  for (std::uint64_t key = 0; key < 400; ++key) {
    const int n = times(rng);
    increment(sketch, hash_of(key), n);
    counts[hash_of(key)] = static_cast<std::uint32_t>(n);
    increments += static_cast<std::size_t>(n);
  }
  ASSERT_LT(increments, sketch.sample_size()) << "the test must not trigger aging";

  for (const auto& [hash, count] : counts) EXPECT_GE(sketch.frequency(hash), count);
}

TEST(FrequencySketch, WithoutCapacityItCountsNothing) {
  FrequencySketch sketch(kSeed);

  sketch.increment(hash_of(1));

  EXPECT_EQ(sketch.frequency(hash_of(1)), 0u);
}

TEST(FrequencySketch, AgingHalvesEveryCountAfterASample) {
  FrequencySketch sketch = sketch_for(1024);
  increment(sketch, hash_of(1), kMaxCount);  // all 15 increments count as additions
  ASSERT_EQ(sketch.frequency(hash_of(1)), kMaxCount);

  // Distinct keys, one increment each, up to one short of the sample...
  std::uint64_t key = 1000;
  const std::size_t additions_left = sketch.sample_size() - kMaxCount;
  for (std::size_t i = 0; i + 1 < additions_left; ++i) sketch.increment(hash_of(key++));
  EXPECT_EQ(sketch.frequency(hash_of(1)), kMaxCount);

  sketch.increment(hash_of(key++));  // ...and the one that completes it.
  EXPECT_EQ(sketch.frequency(hash_of(1)), kMaxCount / 2);
}

TEST(FrequencySketch, TheSampleScalesWithTheAgingFactor) {
  FrequencySketch sketch = sketch_for(1024);
  const std::size_t default_sample = sketch.sample_size();

  sketch.set_sample_factor(25);

  EXPECT_EQ(sketch.sample_size(), 25u * 1024u);
  EXPECT_EQ(default_sample, 10u * 1024u) << "TinyLFU's and Caffeine's default";
}

TEST(FrequencySketch, SaturatedKeysDoNotAdvanceAging) {
  FrequencySketch sketch = sketch_for(16);
  increment(sketch, hash_of(1), kMaxCount);

  // Far more increments than a sample, all on a saturated key: no aging.
  increment(sketch, hash_of(1), static_cast<int>(10 * sketch.sample_size()));

  EXPECT_EQ(sketch.frequency(hash_of(1)), kMaxCount);
}

TEST(FrequencySketch, TheSameSeedGivesTheSameEstimates) {
  FrequencySketch a = sketch_for(64, 1);
  FrequencySketch b = sketch_for(64, 1);
  std::mt19937 rng(5);
  for (int i = 0; i < 500; ++i) {
    const std::uint32_t h = hash_of(rng() % 200);
    a.increment(h);
    b.increment(h);
  }

  for (std::uint64_t key = 0; key < 200; ++key) {
    EXPECT_EQ(a.frequency(hash_of(key)), b.frequency(hash_of(key)));
  }
}

TEST(FrequencySketch, AnySeedNeverUnderestimates) {
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    FrequencySketch sketch = sketch_for(64, seed);
    for (std::uint64_t key = 0; key < 40; ++key) increment(sketch, hash_of(key), key % 8);

    for (std::uint64_t key = 0; key < 40; ++key) {
      EXPECT_GE(sketch.frequency(hash_of(key)), key % 8) << "seed " << seed << " key " << key;
    }
  }
}

}  // namespace
}  // namespace tiercache::detail
