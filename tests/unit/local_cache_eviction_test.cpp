// LocalCache: the bound (by count or by weight) and which entries the policy keeps --
// exact LRU, and W-TinyLFU's scan resistance and preference for frequency over recency.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

using ::testing::ElementsAre;

// A read whose note certainly reaches the policy (notes are lossy when a reader's ring is
// full; cleanup() drains it).
void use(Cache& cache, int key, int times) {
  for (int i = 0; i < times; ++i) {
    ASSERT_TRUE(cache.get(key).found()) << key;
    cache.cleanup();
  }
}

const char* policy_name(EvictionPolicy policy) {
  return policy == EvictionPolicy::kLru ? "Lru" : "AdaptiveTinyLfu";
}

// ---- bound by count ------------------------------------------------------------------------

class EvictionBound : public ::testing::TestWithParam<EvictionPolicy> {};

TEST_P(EvictionBound, TheEntryCountHoldsAfterEveryPut) {
  Cache cache(bounded_to(10, nullptr, GetParam()));
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> key(0, 99);

  for (int i = 0; i < 2000; ++i) {
    put(cache, key(rng));
    cache.get(key(rng));
    ASSERT_LE(cache.size(), 10u) << "after put " << i;
    ASSERT_EQ(cache.weight(), cache.size());
  }
  EXPECT_EQ(cache.size(), 10u) << "a full cache stays full";
}

TEST_P(EvictionBound, EveryEvictionIsReportedAsSize) {
  RemovalLog log;
  Cache cache(bounded_to(10, nullptr, GetParam()), {}, log.listener());

  for (int key = 0; key < 100; ++key) put(cache, key);

  EXPECT_EQ(log.keys_removed_because(RemovalCause::kSize).size(), 90u);
  EXPECT_EQ(cache.stats().evictions_size, 90u);
  for (const Removal& r : log.removals()) EXPECT_EQ(r.value, value_for(r.key));
}

// ---- bound by weight -----------------------------------------------------------------------

// Values weigh their length; the bound is 100.
class WeightBound : public ::testing::TestWithParam<EvictionPolicy> {
 protected:
  static LocalCacheOptions weight_bound(EvictionPolicy policy) {
    LocalCacheOptions options = bounded_to(1, nullptr, policy);
    options.max_weight = 100;
    return options;
  }
  static std::uint32_t length(const int&, const std::string& value) {
    return static_cast<std::uint32_t>(value.size());
  }
  static std::string weighing(std::size_t weight) { return std::string(weight, 'w'); }

  // The sum of the weights of the entries present (negative entries weigh 1).
  std::uint64_t weight_of_entries() {
    std::uint64_t total = 0;
    cache_.erase_if([&](const int&, const std::string* value) {
      total += value != nullptr ? value->size() : 1;
      return false;
    });
    return total;
  }

  RemovalLog log_;
  Cache cache_{weight_bound(GetParam()), length, log_.listener()};
};

TEST_P(WeightBound, TheTotalWeightHoldsAfterEveryPut) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> key(0, 49);
  std::uniform_int_distribution<std::size_t> weight(1, 40);

  for (int i = 0; i < 2000; ++i) {
    cache_.put(key(rng), weighing(weight(rng)));
    ASSERT_LE(cache_.weight(), 100u) << "after put " << i;
    ASSERT_EQ(cache_.weight(), weight_of_entries()) << "after put " << i;
  }
}

TEST_P(WeightBound, ReplacingWithALighterValueLowersTheWeight) {
  cache_.put(1, weighing(10));

  cache_.put(1, weighing(3));

  EXPECT_EQ(cache_.weight(), 3u);
}

TEST_P(WeightBound, ReplacingAValueWithANegativeEntryLowersTheWeight) {
  cache_.put(1, weighing(10));

  cache_.put_negative(1);

  EXPECT_EQ(cache_.weight(), 1u);
}

TEST_P(WeightBound, ReplacingWithAHeavierValueEvictsDownToTheBound) {
  for (int key = 1; key <= 9; ++key) cache_.put(key, weighing(10));

  cache_.put(1, weighing(40));

  EXPECT_LE(cache_.weight(), 100u);
  EXPECT_EQ(cache_.weight(), weight_of_entries());
  EXPECT_FALSE(log_.keys_removed_because(RemovalCause::kSize).empty());
}

TEST_P(WeightBound, ANegativeEntryWeighsOne) {
  cache_.put_negative(1);

  EXPECT_EQ(cache_.weight(), 1u);
}

TEST_P(WeightBound, AnEntryHeavierThanTheBoundIsNotKept) {
  cache_.put(1, weighing(101));

  EXPECT_FALSE(contains(cache_, 1));
  EXPECT_EQ(cache_.weight(), 0u);
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, weighing(101), RemovalCause::kSize}));
}

TEST_P(WeightBound, AnEntryHeavierThanTheBoundDisplacesNothing) {
  cache_.put(1, weighing(10));
  cache_.put(2, weighing(10));

  cache_.put(3, weighing(101));

  EXPECT_TRUE(contains(cache_, 1));
  EXPECT_TRUE(contains(cache_, 2));
  EXPECT_EQ(cache_.weight(), 20u);
  EXPECT_THAT(log_.keys_removed_because(RemovalCause::kSize), ElementsAre(3));
}

TEST_P(WeightBound, ReplacingWithAValueHeavierThanTheBoundDropsThatKeyOnly) {
  for (int key = 1; key <= 3; ++key) cache_.put(key, weighing(10));
  for (int key = 1; key <= 3; ++key) {
    cache_.get(key);  // settled in the main region, if the policy has one
    cache_.cleanup();
  }

  cache_.put(1, weighing(101));

  EXPECT_FALSE(contains(cache_, 1));
  EXPECT_TRUE(contains(cache_, 2));
  EXPECT_TRUE(contains(cache_, 3));
  EXPECT_EQ(cache_.weight(), 20u);
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, weighing(10), RemovalCause::kReplaced},
                                           Removal{1, weighing(101), RemovalCause::kSize}));
}

INSTANTIATE_TEST_SUITE_P(BothPolicies, EvictionBound,
                         ::testing::Values(EvictionPolicy::kLru, EvictionPolicy::kAdaptiveTinyLfu),
                         [](const auto& info) { return policy_name(info.param); });
INSTANTIATE_TEST_SUITE_P(BothPolicies, WeightBound,
                         ::testing::Values(EvictionPolicy::kLru, EvictionPolicy::kAdaptiveTinyLfu),
                         [](const auto& info) { return policy_name(info.param); });

// ---- LRU -----------------------------------------------------------------------------------

TEST(LruEviction, EvictsTheLeastRecentlyUsedExactly) {
  RemovalLog log;
  Cache cache(bounded_to(3, nullptr, EvictionPolicy::kLru), {}, log.listener());
  put(cache, 1);
  put(cache, 2);
  put(cache, 3);

  cache.get(1);   // order, oldest first: 2 3 1
  put(cache, 4);  // evicts 2 -> 3 1 4
  cache.get(3);   // 1 4 3
  put(cache, 5);  // evicts 1 -> 4 3 5
  put(cache, 4);  // a replacement is a use: 3 5 4
  put(cache, 6);  // evicts 3

  EXPECT_THAT(log.keys_removed_because(RemovalCause::kSize), ElementsAre(2, 1, 3));
}

// ---- W-TinyLFU -----------------------------------------------------------------------------

// A hot set of 50 keys in a cache of 100, then a one-pass scan of 10,000 new keys during
// which each hot key is used again every ~250 accesses: too far apart for recency alone.
class ScanWorkload : public ::testing::Test {
 protected:
  static constexpr ScanWorkloadShape kShape = {
      .hot_keys = 50, .scan_length = 10'000, .scan_accesses_per_hot_access = 4};
  static constexpr int kHotAccessesLate = kShape.hot_accesses_late();

  static int hot_hits_late_in_the_scan(Cache& cache) {
    return test::hot_hits_late_in_the_scan(cache, kShape);
  }
};

TEST_F(ScanWorkload, TinyLfuKeepsTheHotSetThroughTheScan) {
  Cache cache(bounded_to(100));

  const int hits = hot_hits_late_in_the_scan(cache);

  EXPECT_GE(hits, kHotAccessesLate * 9 / 10);
}

TEST_F(ScanWorkload, LruLosesTheHotSetToTheScan) {
  Cache cache(bounded_to(100, nullptr, EvictionPolicy::kLru));

  const int hits = hot_hits_late_in_the_scan(cache);

  EXPECT_EQ(hits, 0);
}

TEST(TinyLfuEviction, FrequentlyUsedEntriesOutliveRecentlyAddedOnes) {
  Cache cache(bounded_to(100));
  for (int key = 0; key < 100; ++key) put(cache, key);
  for (int key = 0; key < 10; ++key) use(cache, key, 5);

  for (int key = 100; key < 200; ++key) put(cache, key);  // as many newcomers as the bound

  for (int key = 0; key < 10; ++key) EXPECT_TRUE(contains(cache, key)) << key;
  EXPECT_EQ(cache.size(), 100u);
}

TEST(LruEviction, RecentlyAddedEntriesDisplaceFrequentlyUsedOnes) {
  Cache cache(bounded_to(100, nullptr, EvictionPolicy::kLru));
  for (int key = 0; key < 100; ++key) put(cache, key);
  for (int key = 0; key < 10; ++key) use(cache, key, 5);

  for (int key = 100; key < 200; ++key) put(cache, key);

  for (int key = 0; key < 10; ++key) EXPECT_FALSE(contains(cache, key)) << key;
}

}  // namespace
}  // namespace tiercache::test
