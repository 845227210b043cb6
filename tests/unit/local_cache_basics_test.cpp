// LocalCache: what a single caller can observe -- lookups, writes, removals, negative
// entries, the lifetime of returned values, statistics and the removal listener.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

class LocalCacheBasics : public ::testing::Test {
 protected:
  RemovalLog log_;
  Cache cache_{bounded_to(100), {}, log_.listener()};
};

// ---- get and put ---------------------------------------------------------------------------

TEST_F(LocalCacheBasics, GetOfAnAbsentKeyIsAMiss) {
  Cached<std::string> found = cache_.get(1);

  EXPECT_FALSE(found.found());
  EXPECT_FALSE(found.has_value());
  EXPECT_FALSE(found.is_negative());
  EXPECT_EQ(found.get(), nullptr);
}

TEST_F(LocalCacheBasics, PutThenGetReturnsTheValue) {
  put(cache_, 1);

  EXPECT_EQ(lookup(cache_, 1), value_for(1));
  EXPECT_EQ(lookup(cache_, 2), std::nullopt);
}

TEST_F(LocalCacheBasics, PutReplacesTheValueAndReportsTheOldOne) {
  cache_.put(1, "old");
  cache_.put(1, "new");

  EXPECT_EQ(lookup(cache_, 1), "new");
  EXPECT_EQ(cache_.size(), 1u);
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, "old", RemovalCause::kReplaced}));
}

TEST_F(LocalCacheBasics, PutIfAbsentInsertsOnlyWhenTheKeyHoldsNoValue) {
  EXPECT_TRUE(cache_.put_if_absent(1, "first"));
  EXPECT_FALSE(cache_.put_if_absent(1, "second"));

  EXPECT_EQ(lookup(cache_, 1), "first");
  EXPECT_THAT(log_.removals(), IsEmpty());
  EXPECT_EQ(cache_.stats().puts, 1u);
}

TEST_F(LocalCacheBasics, PutIfAbsentReplacesANegativeEntry) {
  cache_.put_negative(1);

  EXPECT_TRUE(cache_.put_if_absent(1, "found after all"));

  EXPECT_EQ(lookup(cache_, 1), "found after all");
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, std::nullopt, RemovalCause::kReplaced}));
}

// ---- removal -------------------------------------------------------------------------------

TEST_F(LocalCacheBasics, EraseRemovesTheKeyAndSaysWhetherItWasThere) {
  EXPECT_FALSE(cache_.erase(1));
  put(cache_, 1);
  put(cache_, 2);

  EXPECT_TRUE(cache_.erase(1));

  EXPECT_FALSE(contains(cache_, 1));
  EXPECT_EQ(lookup(cache_, 2), value_for(2));
  EXPECT_EQ(cache_.size(), 1u);
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, value_for(1), RemovalCause::kExplicit}));
}

TEST_F(LocalCacheBasics, EraseIfRemovesTheMatchingEntriesOnly) {
  for (int key = 1; key <= 10; ++key) put(cache_, key);

  const std::size_t removed =
      cache_.erase_if([](const int& key, const std::string*) { return key % 2 == 0; });

  EXPECT_EQ(removed, 5u);
  EXPECT_EQ(cache_.size(), 5u);
  for (int key = 1; key <= 10; ++key) EXPECT_EQ(contains(cache_, key), key % 2 == 1) << key;
  EXPECT_THAT(log_.keys_removed_because(RemovalCause::kExplicit),
              UnorderedElementsAre(2, 4, 6, 8, 10));
}

TEST_F(LocalCacheBasics, EraseIfSeesTheValuesAndNullForNegativeEntries) {
  cache_.put(1, "keep");
  cache_.put(2, "drop");
  cache_.put_negative(3);

  const std::size_t removed = cache_.erase_if(
      [](const int&, const std::string* value) { return value == nullptr || *value == "drop"; });

  EXPECT_EQ(removed, 2u);
  EXPECT_EQ(lookup(cache_, 1), "keep");
  EXPECT_FALSE(contains(cache_, 2));
  EXPECT_FALSE(contains(cache_, 3));
}

TEST_F(LocalCacheBasics, ClearRemovesEveryEntry) {
  for (int key = 1; key <= 3; ++key) put(cache_, key);
  cache_.put_negative(4);

  cache_.clear();

  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_EQ(cache_.weight(), 0u);
  for (int key = 1; key <= 4; ++key) EXPECT_FALSE(contains(cache_, key));
  EXPECT_THAT(log_.keys_removed_because(RemovalCause::kExplicit), UnorderedElementsAre(1, 2, 3, 4));
  EXPECT_EQ(cache_.stats().removals_explicit, 4u);
}

TEST_F(LocalCacheBasics, TheCacheIsUsableAfterClear) {
  put(cache_, 1);
  cache_.clear();

  put(cache_, 1);

  EXPECT_EQ(lookup(cache_, 1), value_for(1));
  EXPECT_EQ(cache_.size(), 1u);
}

// ---- size and weight -----------------------------------------------------------------------

TEST_F(LocalCacheBasics, SizeAndWeightCountTheEntries) {
  for (int key = 1; key <= 7; ++key) put(cache_, key);
  cache_.put_negative(8);
  put(cache_, 1);  // a replacement adds nothing

  EXPECT_EQ(cache_.size(), 8u);
  EXPECT_EQ(cache_.weight(), 8u);
  EXPECT_EQ(cache_.max_weight(), 100u);
}

TEST(LocalCacheConstruction, AWeigherIsIgnoredWhenCountingEntries) {
  Cache cache(bounded_to(10), [](const int&, const std::string&) { return 7u; });

  for (int key = 1; key <= 3; ++key) put(cache, key);

  EXPECT_EQ(cache.weight(), 3u);
  EXPECT_EQ(cache.max_weight(), 10u);
}

TEST(LocalCacheConstruction, RejectsAZeroEntryBound) {
  EXPECT_THROW(Cache cache(bounded_to(0)), std::invalid_argument);
}

TEST(LocalCacheConstruction, RejectsAWeightBoundWithoutAWeigher) {
  LocalCacheOptions options = bounded_to(10);
  options.max_weight = 1000;

  EXPECT_THROW(Cache cache(options), std::invalid_argument);
}

// ---- negative entries ----------------------------------------------------------------------

TEST_F(LocalCacheBasics, ANegativeEntryIsNeitherAValueNorAMiss) {
  cache_.put_negative(1);

  Cached<std::string> found = cache_.get(1);

  EXPECT_TRUE(found.found());
  EXPECT_TRUE(found.is_negative());
  EXPECT_FALSE(found.has_value());
  EXPECT_EQ(found.get(), nullptr);
}

TEST_F(LocalCacheBasics, APutOverANegativeEntryStoresTheValue) {
  cache_.put_negative(1);

  put(cache_, 1);

  EXPECT_EQ(lookup(cache_, 1), value_for(1));
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, std::nullopt, RemovalCause::kReplaced}));
}

TEST_F(LocalCacheBasics, ANegativeEntryOverAValueHidesIt) {
  put(cache_, 1);

  cache_.put_negative(1);

  EXPECT_TRUE(cache_.get(1).is_negative());
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, value_for(1), RemovalCause::kReplaced}));
}

// ---- values are shared, never copied, and outlive their entry ------------------------------

// Counts its copies; moves are free.
struct CopyCounter {
  explicit CopyCounter(int* copies) : copies(copies) {}
  CopyCounter(const CopyCounter& other) : copies(other.copies) { ++*copies; }
  CopyCounter(CopyCounter&&) noexcept = default;
  CopyCounter& operator=(const CopyCounter&) = delete;
  CopyCounter& operator=(CopyCounter&&) = delete;
  int* copies;
};

TEST(LocalCacheValues, AreNeverCopied) {
  int copies = 0;
  LocalCache<int, CopyCounter> cache(bounded_to(10));

  cache.put(1, CopyCounter(&copies));
  Cached<CopyCounter> first = cache.get(1);
  Cached<CopyCounter> second = cache.get(1);
  Cached<CopyCounter> shared = first;

  EXPECT_EQ(copies, 0);
  EXPECT_EQ(first.get(), second.get()) << "every lookup returns the cache's own object";
  EXPECT_EQ(shared.get(), first.get());
}

// A value whose lifetime a test can watch through a weak_ptr.
struct Probe {
  std::shared_ptr<int> alive = std::make_shared<int>(42);
};

class LocalCacheValueLifetime : public ::testing::Test {
 protected:
  // Stores a Probe under `key` and returns a watch on its lifetime.
  std::weak_ptr<int> put_probe(LocalCache<int, Probe>& cache, int key) {
    Probe probe;
    std::weak_ptr<int> watch = probe.alive;
    cache.put(key, std::move(probe));
    return watch;
  }
};

TEST_F(LocalCacheValueLifetime, AHeldValueOutlivesItsEviction) {
  LocalCache<int, Probe> cache(bounded_to(1, nullptr, EvictionPolicy::kLru));
  std::weak_ptr<int> watch = put_probe(cache, 1);
  Cached<Probe> held = cache.get(1);

  put_probe(cache, 2);  // evicts key 1
  cache.cleanup();      // and lets the cache drop its own reference

  ASSERT_FALSE(cache.get(1).found());
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(*held->alive, 42);
  held = Cached<Probe>();
  EXPECT_TRUE(watch.expired()) << "the last holder frees the value";
}

TEST_F(LocalCacheValueLifetime, AHeldValueOutlivesTheCache) {
  auto cache = std::make_unique<LocalCache<int, Probe>>(bounded_to(10));
  std::weak_ptr<int> watch = put_probe(*cache, 1);
  Cached<Probe> held = cache->get(1);

  cache.reset();

  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(*held->alive, 42);
  held = Cached<Probe>();
  EXPECT_TRUE(watch.expired());
}

TEST_F(LocalCacheValueLifetime, ErasedValuesAreFreedOnceNobodyHoldsThem) {
  LocalCache<int, Probe> cache(bounded_to(10));
  std::weak_ptr<int> watch = put_probe(cache, 1);

  cache.erase(1);
  cache.cleanup();

  EXPECT_TRUE(watch.expired());
}

TEST_F(LocalCacheValueLifetime, DestroyingTheCacheFreesItsValues) {
  std::vector<std::weak_ptr<int>> watches;
  {
    LocalCache<int, Probe> cache(bounded_to(10));
    for (int key = 0; key < 5; ++key) watches.push_back(put_probe(cache, key));
    put_probe(cache, 0);  // one retired by replacement, not yet reclaimed
  }
  for (const auto& watch : watches) EXPECT_TRUE(watch.expired());
}

// ---- statistics ----------------------------------------------------------------------------

TEST_F(LocalCacheBasics, StatsCountLookupsAndWrites) {
  put(cache_, 1);
  put(cache_, 1);
  cache_.put_negative(2);
  cache_.get(1);
  cache_.get(1);
  cache_.get(2);
  cache_.get(3);
  cache_.erase(1);

  const LocalCacheStats stats = cache_.stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.negative_hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.puts, 3u);
  EXPECT_EQ(stats.replacements, 1u);
  EXPECT_EQ(stats.removals_explicit, 1u);
  EXPECT_EQ(stats.evictions_size, 0u);
  EXPECT_EQ(stats.evictions_expired, 0u);
  EXPECT_EQ(stats.listener_failures, 0u);
  EXPECT_DOUBLE_EQ(stats.hit_ratio(), 3.0 / 4.0);
}

TEST(LocalCacheStats, HitRatioOfNoLookupsIsZero) { EXPECT_EQ(LocalCacheStats{}.hit_ratio(), 0.0); }

TEST(LocalCacheStats, EvictionsToRespectTheBoundAreCounted) {
  Cache cache(bounded_to(2, nullptr, EvictionPolicy::kLru));

  for (int key = 1; key <= 5; ++key) put(cache, key);

  EXPECT_EQ(cache.stats().evictions_size, 3u);
}

// ---- the removal listener ------------------------------------------------------------------

TEST(LocalCacheListener, IsToldOfEveryRemovalWithItsCause) {
  auto clock = std::make_shared<ManualClock>();
  RemovalLog log;
  Cache cache(bounded_to(2, clock, EvictionPolicy::kLru), {}, log.listener());

  cache.put(1, "replaced");
  cache.put(1, "erased");
  cache.erase(1);
  cache.put(2, "expired", 1s);
  clock->advance(1s + kReclaimResolution);
  cache.cleanup();
  cache.put(3, "evicted");
  cache.put(4, "kept");
  cache.put(5, "kept");

  EXPECT_THAT(log.removals(), ElementsAre(Removal{1, "replaced", RemovalCause::kReplaced},
                                          Removal{1, "erased", RemovalCause::kExplicit},
                                          Removal{2, "expired", RemovalCause::kExpired},
                                          Removal{3, "evicted", RemovalCause::kSize}));
}

TEST(LocalCacheListener, AThrowingListenerIsCountedAndTheCacheStaysConsistent) {
  int calls = 0;
  Cache cache(bounded_to(10), {}, [&](const int&, const Cached<std::string>&, RemovalCause) {
    ++calls;
    throw std::runtime_error("listener failed");
  });
  for (int key = 1; key <= 3; ++key) put(cache, key);

  EXPECT_NO_THROW(cache.clear());
  EXPECT_NO_THROW(cache.put(4, "a"));
  EXPECT_NO_THROW(cache.put(4, "b"));

  EXPECT_EQ(calls, 4) << "one failure does not skip the notifications after it";
  EXPECT_EQ(cache.stats().listener_failures, 4u);
  EXPECT_EQ(cache.stats().removals_explicit, 3u);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.weight(), 1u);
  EXPECT_EQ(lookup(cache, 4), "b");
  for (int key = 1; key <= 3; ++key) EXPECT_FALSE(contains(cache, key));
}

TEST(LocalCacheListener, MayCallBackIntoTheCacheWithoutDeadlock) {
  std::unique_ptr<Cache> cache;
  std::vector<std::optional<std::string>> seen_during_removal;
  cache = std::make_unique<Cache>(
      bounded_to(10), Cache::Weigher{},
      [&](const int& key, const Cached<std::string>&, RemovalCause cause) {
        seen_during_removal.push_back(lookup(*cache, key));
        if (key == 1 && cause == RemovalCause::kExplicit) {
          cache->put(2, "written by the listener");
          cache->erase(3);  // notifies the listener again, from inside the listener
        }
      });
  put(*cache, 1);
  put(*cache, 3);

  cache->erase(1);

  EXPECT_EQ(lookup(*cache, 2), "written by the listener");
  EXPECT_FALSE(contains(*cache, 3));
  EXPECT_THAT(seen_during_removal, ElementsAre(std::nullopt, std::nullopt))
      << "the listener runs after the entry is gone, for key 1 and then key 3";
}

}  // namespace
}  // namespace tiercache::test
