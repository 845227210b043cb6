// LocalCache: time-to-live. Time is a ManualClock moved by the test; nothing sleeps.
//
// Two things are distinct: an expired entry is never *returned* (every read checks the
// entry's own deadline), and it is *reclaimed* (removed, counted, reported to the listener)
// by maintenance once the timer wheel has passed its slot -- at most kReclaimResolution
// after the deadline.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr auto kDay = std::chrono::hours(24);

class LocalCacheExpiry : public ::testing::Test {
 protected:
  explicit LocalCacheExpiry(LocalCacheOptions options = bounded_to(100)) {
    options.clock = clock_;
    cache_ = std::make_unique<Cache>(options, Cache::Weigher{}, log_.listener());
  }

  Cache& cache() { return *cache_; }
  void advance(Duration d) { clock_->advance(d); }
  TimePoint now() const { return clock_->now(); }
  // Moves time to `deadline` + the reclamation delay, and runs maintenance.
  void pass_and_clean_up(Duration since_now) {
    advance(since_now + kReclaimResolution);
    cache().cleanup();
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  RemovalLog log_;
  std::unique_ptr<Cache> cache_;
};

// ---- an expired entry is never returned ----------------------------------------------------

TEST_F(LocalCacheExpiry, AnEntryIsReturnedUntilItsTtlHasPassed) {
  cache().put(1, value_for(1), 10s);

  advance(10s - 1ns);
  EXPECT_EQ(lookup(cache(), 1), value_for(1));
  advance(1ns);
  EXPECT_EQ(lookup(cache(), 1), std::nullopt) << "expired at its deadline";
}

TEST_F(LocalCacheExpiry, AnExpiredEntryCountsAsAMiss) {
  cache().put(1, value_for(1), 1s);
  advance(1s);

  cache().get(1);

  EXPECT_EQ(cache().stats().misses, 1u);
  EXPECT_EQ(cache().stats().hits, 0u);
}

TEST_F(LocalCacheExpiry, EachEntryHasItsOwnTtl) {
  cache().put(1, value_for(1), 1s);
  cache().put(2, value_for(2), 2s);
  put(cache(), 3);

  advance(1s);

  EXPECT_FALSE(contains(cache(), 1));
  EXPECT_TRUE(contains(cache(), 2));
  EXPECT_TRUE(contains(cache(), 3));
}

TEST_F(LocalCacheExpiry, WithoutATtlAnEntryNeverExpires) {
  put(cache(), 1);

  advance(100 * 365 * kDay);

  EXPECT_EQ(lookup(cache(), 1), value_for(1));
  EXPECT_EQ(cache().get(1).expires_at(), TimePoint::max());
}

TEST_F(LocalCacheExpiry, ExpiresAtIsTheWriteTimePlusTheTtl) {
  const TimePoint written = now();
  cache().put(1, value_for(1), 5min);
  advance(1min);

  EXPECT_EQ(cache().get(1).expires_at(), written + 5min);
}

TEST_F(LocalCacheExpiry, ReplacingAnEntryRestartsItsTtl) {
  cache().put(1, "first", 10s);
  advance(8s);
  cache().put(1, "second", 10s);

  advance(8s);
  EXPECT_EQ(lookup(cache(), 1), "second");
  pass_and_clean_up(0s);
  EXPECT_EQ(cache().stats().evictions_expired, 0u) << "the first deadline was cancelled";

  pass_and_clean_up(2s);
  EXPECT_FALSE(contains(cache(), 1));
  EXPECT_EQ(cache().stats().evictions_expired, 1u);
}

TEST_F(LocalCacheExpiry, ReplacingATimedEntryWithAnUntimedOneCancelsTheExpiry) {
  cache().put(1, "timed", 1s);
  put(cache(), 1);

  pass_and_clean_up(1h);

  EXPECT_EQ(lookup(cache(), 1), value_for(1));
  EXPECT_EQ(cache().stats().evictions_expired, 0u);
}

// ---- default TTLs --------------------------------------------------------------------------

class LocalCacheDefaultTtl : public LocalCacheExpiry {
 protected:
  static LocalCacheOptions with_default_ttls() {
    LocalCacheOptions options = bounded_to(100);
    options.default_ttl = 1min;
    options.default_negative_ttl = 5s;
    return options;
  }
  LocalCacheDefaultTtl() : LocalCacheExpiry(with_default_ttls()) {}
};

TEST_F(LocalCacheDefaultTtl, AppliesToValuesPutWithoutATtl) {
  put(cache(), 1);
  cache().put(2, value_for(2), 2min);
  EXPECT_TRUE(cache().put_if_absent(3, value_for(3)));

  advance(1min);

  EXPECT_FALSE(contains(cache(), 1));
  EXPECT_TRUE(contains(cache(), 2)) << "an explicit TTL wins over the default";
  EXPECT_FALSE(contains(cache(), 3));
}

TEST_F(LocalCacheDefaultTtl, NegativeEntriesHaveTheirOwnDefault) {
  cache().put_negative(1);

  advance(5s - 1ns);
  EXPECT_TRUE(cache().get(1).is_negative());
  advance(1ns);
  EXPECT_FALSE(cache().get(1).found());
}

TEST_F(LocalCacheExpiry, ANegativeEntryLivesThirtySecondsByDefault) {
  cache().put_negative(1);

  advance(30s - 1ns);
  EXPECT_TRUE(cache().get(1).is_negative());
  advance(1ns);
  EXPECT_FALSE(cache().get(1).found());
}

TEST_F(LocalCacheExpiry, ANegativeEntryMayHaveItsOwnTtl) {
  cache().put_negative(1, 2min);
  EXPECT_EQ(cache().get(1).expires_at(), now() + 2min);

  advance(2min);

  EXPECT_FALSE(cache().get(1).found());
}

// ---- a TTL <= 0 ----------------------------------------------------------------------------

TEST_F(LocalCacheExpiry, AZeroTtlRemovesTheKeyInsteadOfStoring) {
  put(cache(), 1);

  cache().put(1, "not stored", 0s);

  EXPECT_FALSE(contains(cache(), 1));
  EXPECT_EQ(cache().size(), 0u);
  EXPECT_EQ(cache().stats().puts, 1u);
  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, value_for(1), RemovalCause::kExplicit}));
}

TEST_F(LocalCacheExpiry, ANegativeTtlRemovesTheKeyInsteadOfStoring) {
  put(cache(), 1);
  cache().put_negative(2);

  cache().put(1, "not stored", -1s);
  cache().put_negative(2, -1s);

  EXPECT_FALSE(contains(cache(), 1));
  EXPECT_FALSE(contains(cache(), 2));
  EXPECT_EQ(cache().size(), 0u);
}

TEST_F(LocalCacheExpiry, PutIfAbsentWithAZeroTtlStoresNothing) {
  EXPECT_FALSE(cache().put_if_absent(1, value_for(1), 0s));

  EXPECT_FALSE(contains(cache(), 1));
  EXPECT_EQ(cache().size(), 0u);
}

// ---- expired entries and writes ------------------------------------------------------------

TEST_F(LocalCacheExpiry, PutIfAbsentReplacesAnExpiredEntry) {
  cache().put(1, "stale", 1s);
  advance(1s);

  EXPECT_TRUE(cache().put_if_absent(1, "fresh"));

  EXPECT_EQ(lookup(cache(), 1), "fresh");
}

// For readers and for put_if_absent an expired entry is absent; a write that lands on one
// before it is reclaimed does not replace a value, it takes the place of an expired entry,
// which is reported and counted as expired (as Caffeine does) -- otherwise every hot key
// that expires and is reloaded would show up as a replacement, never as an expiry.
TEST_F(LocalCacheExpiry, AnExpiredEntryOverwrittenByAPutIsReportedAsExpired) {
  cache().put(1, "stale", 1s);
  advance(1s);

  cache().put(1, "fresh");

  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, "stale", RemovalCause::kExpired}));
  EXPECT_EQ(cache().stats().evictions_expired, 1u);
  EXPECT_EQ(cache().stats().replacements, 0u);
}

TEST_F(LocalCacheExpiry, AnExpiredEntryTakenOverByPutIfAbsentIsReportedAsExpired) {
  cache().put(1, "stale", 1s);
  advance(1s);

  ASSERT_TRUE(cache().put_if_absent(1, "fresh"));

  EXPECT_THAT(log_.removals(), ElementsAre(Removal{1, "stale", RemovalCause::kExpired}));
  EXPECT_EQ(cache().stats().evictions_expired, 1u);
  EXPECT_EQ(cache().stats().replacements, 0u);
}

TEST_F(LocalCacheExpiry, EraseFindsAnExpiredEntryNotYetReclaimed) {
  cache().put(1, value_for(1), 1s);
  advance(1s);

  EXPECT_TRUE(cache().erase(1));
  EXPECT_EQ(cache().size(), 0u);
}

// ---- reclamation ---------------------------------------------------------------------------

TEST_F(LocalCacheExpiry, CleanupReclaimsTheExpiredEntriesOnly) {
  cache().put(1, value_for(1), 5s);
  cache().put(2, value_for(2), 1min);
  put(cache(), 3);
  cache().put_negative(4, 5s);

  pass_and_clean_up(5s);

  EXPECT_EQ(cache().size(), 2u);
  EXPECT_EQ(cache().weight(), 2u);
  EXPECT_EQ(cache().stats().evictions_expired, 2u);
  EXPECT_THAT(log_.removals(),
              UnorderedElementsAre(Removal{1, value_for(1), RemovalCause::kExpired},
                                   Removal{4, std::nullopt, RemovalCause::kExpired}));
  EXPECT_EQ(lookup(cache(), 2), value_for(2));
  EXPECT_EQ(lookup(cache(), 3), value_for(3));
}

TEST_F(LocalCacheExpiry, AnExpiredEntryIsNotReclaimedBeforeItsDeadline) {
  cache().put(1, value_for(1), 5s);

  advance(5s - 1ns);
  cache().cleanup();

  EXPECT_EQ(cache().size(), 1u);
  EXPECT_THAT(log_.removals(), IsEmpty());
}

TEST_F(LocalCacheExpiry, AnyWriteReclaimsExpiredEntries) {
  cache().put(1, value_for(1), 5s);
  advance(5s + kReclaimResolution);

  put(cache(), 2);

  EXPECT_EQ(cache().size(), 1u);
  EXPECT_THAT(log_.keys_removed_because(RemovalCause::kExpired), ElementsAre(1));
}

TEST_F(LocalCacheExpiry, ManyEntriesExpiringTogetherAreAllReclaimed) {
  for (int key = 0; key < 50; ++key) cache().put(key, value_for(key), 3s);
  for (int key = 50; key < 100; ++key) cache().put(key, value_for(key), 1h);

  pass_and_clean_up(3s);

  EXPECT_EQ(cache().size(), 50u);
  EXPECT_EQ(cache().stats().evictions_expired, 50u);
  for (int key = 50; key < 100; ++key) EXPECT_TRUE(contains(cache(), key)) << key;
}

// ---- TTLs beyond the timer wheel's finest levels -------------------------------------------

// Deadlines from a minute to a year: each spends time in the wheel's coarser levels (the
// finest covers ~68 s, the coarsest ~6.5 days, later ones wait in an overflow bucket).
TEST_F(LocalCacheExpiry, LongTtlsExpireOnTimeWhenTimeMovesInSteps) {
  const Duration ttls[] = {2min, 3h, 2 * kDay, 10 * kDay, 100 * kDay, 365 * kDay};
  for (int key = 0; key < 6; ++key) cache().put(key, value_for(key), ttls[key]);

  Duration elapsed{0};
  while (elapsed < 365 * kDay + 1h) {
    advance(1h);
    elapsed += 1h;
    cache().cleanup();
    for (int key = 0; key < 6; ++key) {
      const bool due = elapsed >= ttls[key];
      const bool reclaimable = elapsed >= ttls[key] + kReclaimResolution;
      ASSERT_EQ(contains(cache(), key), !due) << "key " << key << " after " << elapsed.count();
      if (reclaimable) {
        ASSERT_THAT(log_.keys_removed_because(RemovalCause::kExpired), ::testing::Contains(key))
            << "key " << key << " after " << elapsed.count();
      }
    }
  }
  EXPECT_EQ(cache().size(), 0u);
  EXPECT_EQ(cache().stats().evictions_expired, 6u);
}

TEST_F(LocalCacheExpiry, ALongTtlExpiresOnTimeWhenTimeJumpsPastIt) {
  cache().put(1, value_for(1), 100 * kDay);

  advance(100 * kDay - 1s);
  cache().cleanup();
  EXPECT_EQ(lookup(cache(), 1), value_for(1));

  pass_and_clean_up(1s);
  EXPECT_EQ(cache().size(), 0u);
  EXPECT_THAT(log_.keys_removed_because(RemovalCause::kExpired), ElementsAre(1));
}

TEST_F(LocalCacheExpiry, AHugeTtlSaturatesInsteadOfOverflowing) {
  const Duration until_the_end_of_time = TimePoint::max() - now();
  cache().put(1, value_for(1), Duration::max() - 1ns);
  cache().put(2, value_for(2), until_the_end_of_time + 1ns);

  advance(100 * 365 * kDay);
  cache().cleanup();

  EXPECT_EQ(cache().get(1).expires_at(), TimePoint::max());
  EXPECT_EQ(lookup(cache(), 1), value_for(1));
  EXPECT_EQ(lookup(cache(), 2), value_for(2));
  EXPECT_EQ(cache().stats().evictions_expired, 0u);
}

TEST_F(LocalCacheExpiry, ATtlSetAfterALongIdleExpiresOnTime) {
  // The wheel only moves while it holds entries; a first deadline after a long idle period
  // must still be found.
  advance(7 * kDay);
  cache().put(1, value_for(1), 5s);

  pass_and_clean_up(5s);

  EXPECT_THAT(log_.keys_removed_because(RemovalCause::kExpired), ElementsAre(1));
}

}  // namespace
}  // namespace tiercache::test
