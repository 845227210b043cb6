// LocalCache's accounting under concurrent use: statistics, the removal listener (every
// removal reported exactly once, callbacks into the cache without deadlock), and a stress
// test mixing every operation with time moving. Labelled `concurrency` (run under
// ThreadSanitizer by scripts/test.sh): sized by iteration counts, a few seconds there.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "concurrency_test_support.hpp"
#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

// ---- statistics ----------------------------------------------------------------------------

// Lookups are counted per reader thread; the sum must be exact, also across threads that
// come and go (and whose places are taken by new threads).
TEST(LocalCacheConcurrency, StatisticsCountEveryLookupOfEveryThread) {
  constexpr int kRounds = 3;
  constexpr int kThreads = 4;
  constexpr int kLookupsOfEachKind = 5'000;
  Cache cache(bounded_to(10));
  put(cache, 1);
  cache.put_negative(2);

  for (int round = 0; round < kRounds; ++round) {
    run_together(kThreads, [&](int) {
      for (int i = 0; i < kLookupsOfEachKind; ++i) {
        cache.get(1);
        cache.get(2);
        cache.get(3);
      }
    });
  }

  const std::uint64_t each = std::uint64_t{kRounds} * kThreads * kLookupsOfEachKind;
  const LocalCacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, each);
  EXPECT_EQ(stats.negative_hits, each);
  EXPECT_EQ(stats.misses, each);
}

// ---- the removal listener ------------------------------------------------------------------

// Every value stored leaves exactly once -- replaced, evicted or erased -- or is still there.
TEST(LocalCacheConcurrency, TheListenerSeesEveryRemovalExactlyOnce) {
  constexpr int kWriters = 4;
  constexpr int kWrites = 10'000;
  std::mutex departed_mutex;
  std::vector<std::string> departed;
  RemovalCounter removals;
  Cache cache(bounded_to(64), {},
              [&](const int&, const Cached<std::string>& value, RemovalCause cause) {
                removals.count(cause);
                std::lock_guard lock(departed_mutex);
                departed.push_back(*value);
              });

  run_together(kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, 511);
    for (int i = 0; i < kWrites; ++i) {
      const int k = key(rng);
      if (i % 10 == 9) {
        cache.erase(k);
      } else {
        cache.put(k, stamp(k, t, i));
      }
    }
  });

  std::vector<std::string> remaining;
  cache.erase_if([&](const int&, const std::string* v) {
    remaining.push_back(*v);
    return false;
  });
  const std::uint64_t puts = std::uint64_t{kWriters} * kWrites * 9 / 10;
  EXPECT_EQ(cache.stats().puts, puts);
  EXPECT_EQ(puts - cache.size(), removals.total());
  EXPECT_EQ(removals.of(RemovalCause::kSize), cache.stats().evictions_size);
  EXPECT_EQ(removals.of(RemovalCause::kReplaced), cache.stats().replacements);
  EXPECT_EQ(removals.of(RemovalCause::kExplicit), cache.stats().removals_explicit);
  EXPECT_GT(removals.of(RemovalCause::kSize), 0u);
  EXPECT_GT(removals.of(RemovalCause::kReplaced), 0u);

  // Each stamp is unique: the departed and the remaining are every value put, once each.
  std::vector<std::string> accounted = departed;
  accounted.insert(accounted.end(), remaining.begin(), remaining.end());
  std::sort(accounted.begin(), accounted.end());
  EXPECT_EQ(std::adjacent_find(accounted.begin(), accounted.end()), accounted.end())
      << "a value was reported twice";
  EXPECT_EQ(accounted.size(), puts);
}

// The listener runs outside the cache's lock, so it may read the cache while other threads
// write to it (a deadlock would hang this test until ctest's timeout).
TEST(LocalCacheConcurrency, AListenerReadingTheCacheDoesNotDeadlockWithWriters) {
  constexpr int kWriters = 3;
  constexpr int kWrites = 10'000;
  std::unique_ptr<Cache> cache;
  std::atomic<int> wrong_values{0};
  std::atomic<int> notifications{0};
  cache = std::make_unique<Cache>(bounded_to(32), Cache::Weigher{},
                                  [&](const int& key, const Cached<std::string>&, RemovalCause) {
                                    notifications.fetch_add(1, std::memory_order_relaxed);
                                    if (Cached<std::string> now = cache->get(key);
                                        now && !belongs_to(*now, key)) {
                                      wrong_values.fetch_add(1);
                                    }
                                    if (cache->size() > 32 + kOnePutInFlight)
                                      wrong_values.fetch_add(1);
                                  });

  run_together(kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    for (int i = 0; i < kWrites; ++i) {
      const int k = static_cast<int>(rng() % 128);
      if (i % 5 == 0) {
        cache->erase(k);
      } else {
        cache->put(k, stamp(k, t, i));
      }
    }
  });

  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_GT(notifications.load(), 0);
}

// ---- everything at once --------------------------------------------------------------------

// Runs at a small bound (readers note every hit) and at a large one, where the policy
// marks window and protected hits instead (CLOCK; detail/eviction_policy.hpp), with as
// many times more keys.
class LocalCacheStress : public ::testing::TestWithParam<std::size_t> {};

TEST_P(LocalCacheStress, StressMixingEveryOperation) {
  constexpr int kThreads = 6;
  constexpr int kOperations = 12'000;
  const std::size_t kBound = GetParam();
  const int kKeys = 3 * static_cast<int>(kBound);
  constexpr std::size_t kHeld = 16;
  auto clock = std::make_shared<ManualClock>();
  RemovalCounter removals;
  Cache cache(bounded_to(kBound, clock), {}, removals.listener());
  std::atomic<std::uint64_t> stored{0};
  std::atomic<int> wrong_values{0};
  std::atomic<int> bound_breaches{0};
  std::atomic<int> expired_returned{0};

  run_together(kThreads, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(1000 + t));
    std::uniform_int_distribution<int> key(0, kKeys - 1);
    std::uniform_int_distribution<int> op(0, 999);
    const std::optional<Duration> ttls[] = {std::nullopt, 500ms, 3s, 1min};
    std::vector<std::pair<int, Cached<std::string>>> held;
    for (int i = 0; i < kOperations; ++i) {
      const int k = key(rng);
      const int o = op(rng);
      const std::optional<Duration> ttl = ttls[rng() % 4];
      if (o < 450) {
        const TimePoint asked_at = clock->now();
        Cached<std::string> v = cache.get(k);
        if (v && !belongs_to(*v, k)) wrong_values.fetch_add(1);
        if (v.found() && v.expires_at() <= asked_at) expired_returned.fetch_add(1);
        if (v && held.size() < kHeld) {
          held.emplace_back(k, std::move(v));
        } else if (v) {
          held[rng() % kHeld] = {k, std::move(v)};
        }
      } else if (o < 700) {
        cache.put(k, stamp(k, t, i), ttl);
        stored.fetch_add(1);
      } else if (o < 800) {
        if (cache.put_if_absent(k, stamp(k, t, i), ttl)) stored.fetch_add(1);
      } else if (o < 850) {
        cache.put_negative(k, ttl);
        stored.fetch_add(1);
      } else if (o < 940) {
        cache.erase(k);
      } else if (o < 950) {
        cache.erase_if([&](const int& key_seen, const std::string* v) {
          return (v != nullptr && !belongs_to(*v, key_seen)) || key_seen % 7 == t;
        });
      } else if (o < 952) {
        cache.clear();
      } else if (o < 975) {
        cache.cleanup();
      } else {
        clock->advance(std::chrono::milliseconds(rng() % 2000));
      }
      if (cache.size() > kBound + kOnePutInFlight) bound_breaches.fetch_add(1);
    }
    for (const auto& [held_key, v] : held) {
      if (!belongs_to(*v, held_key)) wrong_values.fetch_add(1);
    }
  });

  cache.cleanup();
  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_EQ(expired_returned.load(), 0) << "an entry expired before the lookup was returned";
  EXPECT_EQ(bound_breaches.load(), 0);
  EXPECT_LE(cache.size(), kBound);
  EXPECT_EQ(cache.weight(), cache.size());
  EXPECT_EQ(cache.stats().puts, stored.load());
  EXPECT_EQ(stored.load() - cache.size(), removals.total());
  const LocalCacheStats stats = cache.stats();
  EXPECT_EQ(
      stats.evictions_size + stats.evictions_expired + stats.removals_explicit + stats.replacements,
      removals.total());
  EXPECT_GT(removals.of(RemovalCause::kExpired), 0u) << "time moved: some entries expired";
  EXPECT_EQ(misplaced_entries(cache), 0u);
}

INSTANTIATE_TEST_SUITE_P(Bound, LocalCacheStress, ::testing::Values(100, 4100),
                         [](const auto& info) {
                           return std::string(info.param < 4096 ? "Small" : "Large");
                         });

}  // namespace
}  // namespace tiercache::test
