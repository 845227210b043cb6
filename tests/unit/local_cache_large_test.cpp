// LocalCache with 4096 or more entries, where the policy runs in marking mode: readers do
// not note hits on window and protected entries, they mark them (CLOCK; see
// detail/eviction_policy.hpp). The scenarios of the small-cache tests that depend on which
// hits reach the policy -- scan resistance, the bound, replacement, negative entries and
// exact statistics -- rerun at that size, single-threaded.

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

// Large enough for marking (kMarkingMinEntries is 4096).
constexpr std::size_t kLargeBound = 10'000;

// ---- scan resistance -----------------------------------------------------------------------

// A hot set of 2,000 keys in a cache of 10,000, then a one-pass scan of 64,000 new keys
// during which each hot key is used again every ~18,000 accesses: too far apart for
// recency alone (18,000 > 10,000), so only frequency keeps the hot set.
class LargeScanWorkload : public ::testing::Test {
 protected:
  static constexpr ScanWorkloadShape kShape = {
      .hot_keys = 2'000, .scan_length = 64'000, .scan_accesses_per_hot_access = 8};
  static constexpr int kHotAccessesLate = kShape.hot_accesses_late();

  static int hot_hits_late_in_the_scan(Cache& cache, bool replace_hot = false) {
    return test::hot_hits_late_in_the_scan(cache, kShape, replace_hot);
  }
};

TEST_F(LargeScanWorkload, TinyLfuKeepsTheHotSetThroughTheScan) {
  Cache cache(bounded_to(kLargeBound));

  const int hits = hot_hits_late_in_the_scan(cache);

  EXPECT_GE(hits, kHotAccessesLate * 9 / 10) << "of " << kHotAccessesLate;
  EXPECT_EQ(cache.size(), kLargeBound);
}

TEST_F(LargeScanWorkload, TinyLfuKeepsAHotSetWhoseValuesAreReplacedThroughTheScan) {
  Cache cache(bounded_to(kLargeBound));

  const int hits = hot_hits_late_in_the_scan(cache, /*replace_hot=*/true);

  EXPECT_GE(hits, kHotAccessesLate * 9 / 10) << "of " << kHotAccessesLate;
  EXPECT_EQ(cache.size(), kLargeBound);
}

TEST_F(LargeScanWorkload, LruLosesTheHotSetToTheScan) {
  Cache cache(bounded_to(kLargeBound, nullptr, EvictionPolicy::kLru));

  const int hits = hot_hits_late_in_the_scan(cache);

  EXPECT_EQ(hits, 0);
}

// Hits on entries already in the main region are only marks; they must still protect.
TEST(LargeTinyLfuEviction, FrequentlyUsedEntriesOutliveRecentlyAddedOnes) {
  Cache cache(bounded_to(kLargeBound));
  constexpr int kBound = static_cast<int>(kLargeBound);
  for (int key = 0; key < kBound; ++key) put(cache, key);
  for (int key = 0; key < 100; ++key) {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(contains(cache, key)) << key;
  }

  for (int key = kBound; key < 2 * kBound; ++key) put(cache, key);  // as many newcomers

  int kept = 0;
  for (int key = 0; key < 100; ++key) kept += contains(cache, key) ? 1 : 0;
  EXPECT_GE(kept, 95);
  EXPECT_EQ(cache.size(), kLargeBound);
}

// ---- the bound -----------------------------------------------------------------------------

class LargeEvictionBound : public ::testing::TestWithParam<EvictionPolicy> {};

TEST_P(LargeEvictionBound, TheEntryCountHoldsAfterEveryPut) {
  RemovalLog log;
  Cache cache(bounded_to(kLargeBound, nullptr, GetParam()), {}, log.listener());
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> key(0, 3 * static_cast<int>(kLargeBound));
  std::uniform_int_distribution<int> hot(0, 999);

  for (int i = 0; i < 60'000; ++i) {
    put(cache, key(rng));
    for (int j = 0; j < 3; ++j) cache.get(hot(rng));  // marks, mostly
    cache.get(key(rng));
    ASSERT_LE(cache.size(), kLargeBound) << "after put " << i;
    ASSERT_EQ(cache.weight(), cache.size()) << "after put " << i;
  }
  EXPECT_EQ(cache.size(), kLargeBound) << "a full cache stays full";
  const LocalCacheStats stats = cache.stats();
  EXPECT_EQ(stats.puts - stats.replacements - stats.evictions_size, cache.size());
  EXPECT_EQ(log.keys_removed_because(RemovalCause::kSize).size(), stats.evictions_size);
  for (const Removal& r : log.removals()) ASSERT_EQ(r.value, value_for(r.key));
}

INSTANTIATE_TEST_SUITE_P(BothPolicies, LargeEvictionBound,
                         ::testing::Values(EvictionPolicy::kLru, EvictionPolicy::kAdaptiveTinyLfu),
                         [](const auto& info) {
                           return std::string(
                               info.param == EvictionPolicy::kLru ? "Lru" : "AdaptiveTinyLfu");
                         });

// ---- replacement and negative entries ------------------------------------------------------

TEST(LargeCache, AReplacedHotEntryReturnsTheNewValueAndHeldOldValuesStay) {
  RemovalLog log;
  Cache cache(bounded_to(kLargeBound), {}, log.listener());
  for (int key = 0; key < 100; ++key) put(cache, key);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(contains(cache, 7));  // marked hits
  Cached<std::string> held = cache.get(7);

  cache.put(7, "new-7");

  EXPECT_EQ(lookup(cache, 7), "new-7");
  EXPECT_EQ(*held, value_for(7)) << "a held value outlives its replacement";
  EXPECT_EQ(cache.size(), 100u);
  EXPECT_EQ(cache.weight(), 100u);
  EXPECT_EQ(cache.stats().replacements, 1u);
  EXPECT_EQ(log.removals(), (std::vector<Removal>{{7, value_for(7), RemovalCause::kReplaced}}));
}

TEST(LargeCache, NegativeEntriesAreFoundReplacedAndExpired) {
  auto clock = std::make_shared<ManualClock>();
  Cache cache(bounded_to(kLargeBound, clock));
  for (int key = 0; key < 5000; ++key) put(cache, key);
  cache.put_negative(1, 10s);
  cache.put_negative(9000, 10s);
  for (int i = 0; i < 20; ++i) {  // negative hits go through marking too
    ASSERT_TRUE(cache.get(1).is_negative());
    ASSERT_TRUE(cache.get(9000).is_negative());
  }

  cache.put(9000, value_for(9000));
  clock->advance(11s);

  EXPECT_FALSE(cache.get(1).found()) << "the negative entry expired";
  EXPECT_EQ(lookup(cache, 9000), value_for(9000)) << "a value replaced the negative entry";
  cache.put_negative(2);
  const Cached<std::string> two = cache.get(2);
  EXPECT_TRUE(two.is_negative()) << "a negative entry replaced a value";
  EXPECT_FALSE(two.has_value());
  const LocalCacheStats stats = cache.stats();
  EXPECT_EQ(stats.negative_hits, 41u);
  EXPECT_EQ(stats.replacements, 3u) << "1 and 2 by negative entries, 9000 by a value";
}

// ---- statistics ----------------------------------------------------------------------------

TEST(LargeCache, StatisticsAreExactInSingleThreadedUse) {
  RemovalLog log;
  Cache cache(bounded_to(kLargeBound), {}, log.listener());
  constexpr int kKeys = 15'000;
  for (int key = 0; key < kKeys; ++key) put(cache, key);  // 5,000 evicted
  cache.put_negative(kKeys);
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  for (int round = 0; round < 3; ++round) {
    for (int key = 0; key < kKeys; ++key) {
      if (cache.get(key).has_value()) {
        ++hits;
      } else {
        ++misses;
      }
    }
  }
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(cache.get(kKeys).is_negative());
  for (int key = 0; key < 50; ++key) cache.erase(key + 100'000);  // absent: not counted
  cache.put(kKeys - 1, "again");                                  // a replacement
  cache.cleanup();

  const LocalCacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, hits);
  EXPECT_EQ(stats.misses, misses);
  EXPECT_EQ(hits + misses, 3u * kKeys);
  EXPECT_EQ(hits, 3u * (kLargeBound - 1)) << "lookups evict nothing: the bound, minus the "
                                             "negative entry, hits in each round";
  EXPECT_EQ(stats.negative_hits, 7u);
  EXPECT_EQ(stats.puts, kKeys + 2u);
  EXPECT_EQ(stats.replacements, 1u);
  EXPECT_EQ(stats.removals_explicit, 0u);
  EXPECT_EQ(stats.evictions_size, stats.puts - stats.replacements - cache.size());
  EXPECT_EQ(log.keys_removed_because(RemovalCause::kSize).size(), stats.evictions_size);
  EXPECT_EQ(cache.size(), kLargeBound);
}

}  // namespace
}  // namespace tiercache::test
