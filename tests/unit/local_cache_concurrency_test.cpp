// LocalCache under concurrent lookups and writes: values always match their keys, the
// bound holds, racing writers resolve to one value per key, and entries are reclaimed only
// once no reader can see them. Labelled `concurrency`: scripts/test.sh runs it under
// ThreadSanitizer, so the work is sized by iteration counts, a few seconds there.
//
// Most scenarios run twice (CacheSize): at the small bound they were written for, where
// readers note every hit, and scaled up to kLargeCacheEntries or more, where the policy
// runs in marking mode: readers mark window and protected hits with a compare-exchange on
// the entry's clock byte instead of noting them, racing with the writers' CLOCK hand and
// second-chance window (detail/eviction_policy.hpp). Key ranges scale with the bound, so a
// scenario whose keys fit still fits and one that churns still churns; iteration counts
// stay as they are. Caches bounded by weight never mark (their size is unknown up front),
// so their scenarios run once.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "concurrency_test_support.hpp"
#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

// ---- cache sizes ---------------------------------------------------------------------------

// The policy's kMarkingMinEntries: from this many entries on, readers mark instead of noting.
constexpr std::size_t kLargeCacheEntries = 4096;

enum class CacheSize { kSmall, kLarge };

class LocalCacheConcurrencyAtSize : public ::testing::TestWithParam<CacheSize> {
 protected:
  // How many times larger than written a scenario for a cache of `bound` entries runs: 1,
  // or enough for kLargeCacheEntries.
  static std::size_t scale(std::size_t bound) {
    if (GetParam() == CacheSize::kSmall) return 1;
    return (kLargeCacheEntries + bound - 1) / bound;
  }
  static int scale(int keys, std::size_t bound) { return keys * static_cast<int>(scale(bound)); }
};

// ---- readers and writers -------------------------------------------------------------------

TEST_P(LocalCacheConcurrencyAtSize, ReadersOnlyEverSeeTheValueOfTheirKey) {
  constexpr int kReaders = 4;
  constexpr int kWriters = 2;
  constexpr int kLookups = 40'000;
  constexpr int kWrites = 15'000;
  const std::size_t kBound = 64 * scale(64);
  const int kKeys = scale(256, 64);  // overlapping: more keys than the bound
  Cache cache(bounded_to(kBound));
  for (int k = 0; k < static_cast<int>(kBound); ++k) cache.put(k, stamp(k, 0, -1));  // full
  std::atomic<int> wrong_values{0};
  std::atomic<int> hits{0};
  std::atomic<int> bound_breaches{0};

  run_together(kReaders + kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, kKeys - 1);
    if (t < kWriters) {
      for (int i = 0; i < kWrites; ++i) {
        const int k = key(rng);
        cache.put(k, stamp(k, t, i));
        if (cache.size() > kBound + kOnePutInFlight || cache.weight() > kBound + kOnePutInFlight) {
          bound_breaches.fetch_add(1);
        }
      }
    } else {
      for (int i = 0; i < kLookups; ++i) {
        const int k = key(rng);
        if (Cached<std::string> v = cache.get(k)) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (!belongs_to(*v, k)) wrong_values.fetch_add(1);
        }
      }
    }
  });

  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_EQ(bound_breaches.load(), 0);
  EXPECT_GT(hits.load(), 0) << "the readers must have had something to check";
  EXPECT_LE(cache.size(), kBound);
  EXPECT_EQ(cache.weight(), cache.size());
  EXPECT_EQ(misplaced_entries(cache), 0u);
}

// Readers hit a hot quarter of the keys (marks, at the large size) and some cold ones
// (notes that promote them, which makes the writers' hand sweep the protected queue), while
// writers churn cold keys and replace hot ones. Every hit is counted, every value checked,
// and the hot set, hit far more often than anything else, stays.
TEST_P(LocalCacheConcurrencyAtSize, ReadersMarkHotEntriesWhileWritersChurnAndReplace) {
  constexpr int kReaders = 3;
  constexpr int kWriters = 2;
  constexpr int kLookups = 30'000;
  constexpr int kWrites = 12'000;
  const std::size_t kBound = 64 * scale(64);
  const int kHotKeys = scale(16, 64);
  const int kColdKeys = scale(512, 64);  // 8 times the bound
  Cache cache(bounded_to(kBound));
  for (int k = 0; k < kHotKeys; ++k) cache.put(k, stamp(k, 0, -1));
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> lookups{0};
  std::atomic<int> wrong_values{0};
  std::atomic<int> bound_breaches{0};

  run_together(kReaders + kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> hot(0, kHotKeys - 1);
    std::uniform_int_distribution<int> cold(kHotKeys, kHotKeys + kColdKeys - 1);
    if (t < kWriters) {
      for (int i = 0; i < kWrites; ++i) {
        const int k = i % 4 == 0 ? hot(rng) : cold(rng);
        cache.put(k, stamp(k, t, i));
        if (cache.size() > kBound + kOnePutInFlight || cache.weight() > kBound + kOnePutInFlight) {
          bound_breaches.fetch_add(1);
        }
      }
      return;
    }
    std::uint64_t my_hits = 0;
    for (int i = 0; i < kLookups; ++i) {
      const int k = i % 5 == 0 ? cold(rng) : hot(rng);
      if (Cached<std::string> v = cache.get(k)) {
        ++my_hits;
        if (!belongs_to(*v, k)) wrong_values.fetch_add(1);
      }
    }
    hits.fetch_add(my_hits);
    lookups.fetch_add(kLookups);
  });

  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_EQ(bound_breaches.load(), 0);
  EXPECT_LE(cache.size(), kBound);
  EXPECT_EQ(cache.weight(), cache.size());
  EXPECT_EQ(misplaced_entries(cache), 0u);
  const LocalCacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, hits.load()) << "marked hits are counted like noted ones";
  EXPECT_EQ(stats.hits + stats.misses, lookups.load());
  int hot_kept = 0;
  for (int k = 0; k < kHotKeys; ++k) hot_kept += contains(cache, k) ? 1 : 0;
  EXPECT_GE(hot_kept, kHotKeys * 3 / 4) << "of " << kHotKeys;
}

// The hash table starts small when bounded by weight and grows while readers walk it.
TEST(LocalCacheConcurrency, TheTableGrowsUnderReadersWithoutLosingEntries) {
  constexpr int kReaders = 3;
  constexpr int kKeys = 30'000;  // the table grows 5 times, from 1024 buckets
  constexpr int kLookups = 30'000;
  LocalCacheOptions options = bounded_to(1);
  options.max_weight = 1'000'000;
  Cache cache(options, [](const int&, const std::string&) { return 1u; });
  constexpr int kBeforeTheFirstGrowth = 1000;
  for (int k = 0; k < kBeforeTheFirstGrowth; ++k) cache.put(k, stamp(k, 0, k));
  std::atomic<int> published{kBeforeTheFirstGrowth};
  std::atomic<int> wrong_values{0};
  std::atomic<int> hits{0};

  run_together(1 + kReaders, [&](int t) {
    if (t == 0) {
      for (int k = kBeforeTheFirstGrowth; k < kKeys; ++k) {
        cache.put(k, stamp(k, 0, k));
        published.store(k + 1, std::memory_order_release);
      }
      return;
    }
    // Readers look up keys already written (a lookup during growth may miss; never lie).
    std::mt19937 rng(static_cast<unsigned>(t));
    for (int i = 0; i < kLookups; ++i) {
      const int written = published.load(std::memory_order_acquire);
      const int k = static_cast<int>(rng() % static_cast<unsigned>(written));
      if (Cached<std::string> v = cache.get(k)) {
        hits.fetch_add(1, std::memory_order_relaxed);
        if (!belongs_to(*v, k)) wrong_values.fetch_add(1);
      }
    }
  });

  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_GT(hits.load(), 0);
  ASSERT_EQ(cache.size(), static_cast<std::size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) ASSERT_EQ(lookup(cache, k), stamp(k, 0, k));
}

// Replaced entries are reclaimed as soon as possible (cleanup() after every write) while
// readers walk a long bucket chain (every key collides) past entries being replaced: a
// reader must never touch a reclaimed entry (AddressSanitizer reports it; otherwise the
// value check usually does).
struct CollidingHash {
  std::size_t operator()(int) const noexcept { return 7; }
};

TEST_P(LocalCacheConcurrencyAtSize, ReclamationNeverFreesAnEntryAReaderIsLookingAt) {
  constexpr int kReaders = 3;
  constexpr int kKeys = 32;
  constexpr int kWrites = 30'000;
  constexpr int kLookups = 60'000;
  LocalCache<int, std::string, CollidingHash> cache(bounded_to(100 * scale(100)));
  for (int k = 0; k < kKeys; ++k) cache.put(k, stamp(k, 0, -1));
  std::atomic<int> wrong_values{0};

  run_together(1 + kReaders, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    if (t == 0) {
      for (int i = 0; i < kWrites; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        cache.put(k, stamp(k, t, i));
        cache.cleanup();
      }
      return;
    }
    for (int i = 0; i < kLookups; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      if (Cached<std::string> v = cache.get(k); v && !belongs_to(*v, k)) wrong_values.fetch_add(1);
    }
  });

  EXPECT_EQ(wrong_values.load(), 0);
}

// ---- races between writers of the same keys -----------------------------------------------

TEST_P(LocalCacheConcurrencyAtSize, RacingReplacementsLeaveOneLatestValuePerKey) {
  constexpr int kWriters = 4;
  constexpr int kReaders = 2;
  constexpr int kKeys = 16;
  constexpr int kRounds = 1'000;
  constexpr int kLookups = 40'000;
  RemovalCounter removals;
  Cache cache(bounded_to(100 * scale(100)), {}, removals.listener());
  std::atomic<int> wrong_values{0};

  run_together(kWriters + kReaders, [&](int t) {
    if (t < kWriters) {
      for (int round = 0; round < kRounds; ++round) {
        for (int k = 0; k < kKeys; ++k) cache.put(k, stamp(k, t, round));
      }
      return;
    }
    std::mt19937 rng(static_cast<unsigned>(t));
    for (int i = 0; i < kLookups; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      if (Cached<std::string> v = cache.get(k); v && !belongs_to(*v, k)) wrong_values.fetch_add(1);
    }
  });

  const std::uint64_t puts = std::uint64_t{kWriters} * kRounds * kKeys;
  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_EQ(cache.size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(cache.weight(), static_cast<std::uint64_t>(kKeys));
  EXPECT_EQ(cache.stats().puts, puts);
  EXPECT_EQ(cache.stats().replacements, puts - kKeys);
  EXPECT_EQ(removals.of(RemovalCause::kReplaced), puts - kKeys);
  EXPECT_EQ(removals.total(), puts - kKeys) << "nothing but replacements";
  for (int k = 0; k < kKeys; ++k) {
    const std::optional<std::string> last = lookup(cache, k);
    ASSERT_TRUE(last.has_value()) << k;
    EXPECT_TRUE(belongs_to(*last, k)) << *last;
    EXPECT_EQ(seq_of(*last), kRounds - 1) << "the last write of some writer wins: " << *last;
  }
}

TEST(LocalCacheConcurrency, RacingReplacementsKeepTheWeightExact) {
  constexpr int kWriters = 3;
  constexpr int kKeys = 32;
  constexpr int kWrites = 10'000;
  LocalCacheOptions options = bounded_to(1);
  options.max_weight = 1'000'000;  // never evicts: only replacements change the weight
  Cache cache(options, [](const int&, const std::string& v) {
    return static_cast<std::uint32_t>(v.size());
  });

  run_together(kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    for (int i = 0; i < kWrites; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      cache.put(k, stamp(k, t, i) + std::string(rng() % 20, '+'));  // lengths vary
    }
  });

  std::uint64_t weight_of_entries = 0;
  cache.erase_if([&](const int&, const std::string* v) {
    weight_of_entries += v->size();
    return false;
  });
  EXPECT_EQ(cache.weight(), weight_of_entries);
}

TEST_P(LocalCacheConcurrencyAtSize, PutIfAbsentHasExactlyOneWinnerPerKey) {
  constexpr int kThreads = 4;
  constexpr int kKeys = 500;
  constexpr int kRounds = 10;
  Cache cache(
      bounded_to(2 * kKeys * scale(2 * kKeys)));  // room for every key: no winner is evicted

  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::atomic<int>> wins(kKeys);
    std::vector<std::atomic<int>> winner(kKeys);
    run_together(kThreads, [&](int t) {
      std::vector<int> keys(kKeys);
      for (int k = 0; k < kKeys; ++k) keys[k] = k;
      std::shuffle(keys.begin(), keys.end(), std::mt19937(static_cast<unsigned>(round * 10 + t)));
      for (int k : keys) {
        if (cache.put_if_absent(k, stamp(k, t, round))) {
          wins[k].fetch_add(1);
          winner[k].store(t);
        }
      }
    });

    for (int k = 0; k < kKeys; ++k) {
      ASSERT_EQ(wins[k].load(), 1) << "key " << k << " in round " << round;
      const std::optional<std::string> stored = lookup(cache, k);
      ASSERT_TRUE(stored.has_value()) << k;
      ASSERT_EQ(writer_of(*stored), winner[k].load()) << "the winner's value is the one kept";
    }
    cache.clear();
  }
}

// ---- values held by readers ----------------------------------------------------------------

TEST_P(LocalCacheConcurrencyAtSize, HeldValuesStayValidWhileTheirEntriesAreEvicted) {
  constexpr int kReaders = 3;
  constexpr int kWriters = 2;
  constexpr int kLookups = 20'000;
  constexpr int kWrites = 20'000;
  constexpr std::size_t kHeldPerReader = 32;
  const int kBound = scale(8, 8);
  const int kKeys = scale(64, 8);  // 8 times the bound: constant eviction
  auto cache = std::make_unique<Cache>(bounded_to(static_cast<std::size_t>(kBound)));
  for (int k = 0; k < kBound; ++k) cache->put(k, stamp(k, 0, -1));
  std::vector<std::vector<std::pair<int, Cached<std::string>>>> held(kReaders);
  std::atomic<int> damaged{0};

  run_together(kReaders + kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, kKeys - 1);
    if (t < kWriters) {
      for (int i = 0; i < kWrites; ++i) {
        const int k = key(rng);
        cache->put(k, stamp(k, t, i));
        if (i % 500 == 0) cache->erase(key(rng));
        if (i % 2000 == 0) cache->cleanup();  // reclaims retired entries right away
      }
      return;
    }
    auto& mine = held[t - kWriters];
    for (int i = 0; i < kLookups; ++i) {
      const int k = key(rng);
      if (Cached<std::string> v = cache->get(k)) {
        if (mine.size() < kHeldPerReader) {
          mine.emplace_back(k, std::move(v));
        } else {
          mine[static_cast<std::size_t>(i) % kHeldPerReader] = {k, std::move(v)};
        }
      }
      if (i % 64 == 0) {
        for (const auto& [held_key, value] : mine) {
          if (!belongs_to(*value, held_key)) damaged.fetch_add(1);
        }
      }
    }
  });

  cache->cleanup();
  cache.reset();
  std::size_t checked = 0;
  for (const auto& mine : held) {
    for (const auto& [key, value] : mine) {
      EXPECT_TRUE(belongs_to(*value, key)) << "after the cache is gone";
      ++checked;
    }
  }
  EXPECT_EQ(damaged.load(), 0);
  EXPECT_GT(checked, 0u);
}

// Handles may move between threads and outlive both the thread that looked them up and
// the entry: here they are looked up by threads that then exit, kept while new threads
// (which may take over the exited threads' bookkeeping) read on, and finally released by
// yet other threads -- all while a writer replaces and reclaims the entries.
TEST_P(LocalCacheConcurrencyAtSize, HandlesOutliveTheThreadsThatLookedThemUp) {
  constexpr int kThreads = 2;
  constexpr int kHandlesPerThread = 6;  // fewer than a thread's cheap handle slots
  const int kKeys = scale(16, 16);      // as many as the bound
  constexpr int kWrites = 5'000;
  constexpr int kLookups = 20'000;
  Cache cache(bounded_to(static_cast<std::size_t>(kKeys)));
  for (int k = 0; k < kKeys; ++k) cache.put(k, stamp(k, 0, -1));
  std::mutex kept_mutex;
  std::vector<std::pair<int, Cached<std::string>>> kept;
  std::atomic<int> wrong_values{0};
  auto churn = [&](int writer) {
    std::mt19937 rng(static_cast<unsigned>(writer));
    for (int i = 0; i < kWrites; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      cache.put(k, stamp(k, writer, i));
      if (i % 16 == 0) cache.cleanup();
    }
  };

  // 1. Lookups by threads that exit with their handles kept.
  run_together(kThreads + 1, [&](int t) {
    if (t == kThreads) return churn(100);
    for (int k = 0; k < kHandlesPerThread; ++k) {
      Cached<std::string> v = cache.get(t * kHandlesPerThread + k);
      std::lock_guard lock(kept_mutex);
      kept.emplace_back(t * kHandlesPerThread + k, std::move(v));
    }
  });
  // 2. New threads read on while the handles are kept.
  run_together(kThreads + 1, [&](int t) {
    if (t == kThreads) return churn(200);
    std::mt19937 rng(static_cast<unsigned>(t));
    for (int i = 0; i < kLookups; ++i) {
      const int k = static_cast<int>(rng() % kKeys);
      if (Cached<std::string> v = cache.get(k); v && !belongs_to(*v, k)) wrong_values.fetch_add(1);
    }
  });
  cache.cleanup();
  // 3. Other threads check and release the kept handles.
  run_together(kThreads, [&](int t) {
    for (std::size_t i = static_cast<std::size_t>(t); i < kept.size(); i += kThreads) {
      auto& [key, value] = kept[i];
      if (value && !belongs_to(*value, key)) wrong_values.fetch_add(1);
      value = Cached<std::string>();
    }
  });

  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_EQ(kept.size(), static_cast<std::size_t>(kThreads * kHandlesPerThread));
}

TEST(LocalCacheConcurrency, AHandleReleasedOnAnotherThreadAfterTheCacheIsGoneFreesItsValue) {
  struct Probe {
    std::shared_ptr<int> alive = std::make_shared<int>(42);
  };
  auto cache = std::make_unique<LocalCache<int, Probe>>(bounded_to(10));
  Probe probe;
  const std::weak_ptr<int> watch = probe.alive;
  cache->put(1, std::move(probe));
  Cached<Probe> held = cache->get(1);

  cache.reset();
  ASSERT_FALSE(watch.expired());
  std::jthread([&] {
    EXPECT_EQ(*held->alive, 42);
    held = Cached<Probe>();
  }).join();

  EXPECT_TRUE(watch.expired());
}

// ---- removals concurrent with lookups ------------------------------------------------------

TEST_P(LocalCacheConcurrencyAtSize, EraseAndClearRaceWithLookupsSafely) {
  constexpr int kReaders = 3;
  constexpr int kOperations = 15'000;
  const std::size_t kBound = 128 * scale(128);
  RemovalCounter removals;
  Cache cache(bounded_to(kBound), {}, removals.listener());
  std::atomic<int> wrong_values{0};
  std::atomic<std::uint64_t> stored{0};

  run_together(kReaders + 2, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, scale(200, 128) - 1);
    if (t == 0) {  // the writer
      for (int i = 0; i < kOperations; ++i) {
        const int k = key(rng);
        cache.put(k, stamp(k, t, i));
        stored.fetch_add(1);
      }
    } else if (t == 1) {  // the remover
      for (int i = 0; i < kOperations; ++i) {
        if (i % 1000 == 999) {
          cache.clear();
        } else if (i % 300 == 299) {
          cache.erase_if([](const int& k, const std::string*) { return k % 3 == 0; });
        } else {
          cache.erase(key(rng));
        }
      }
    } else {
      for (int i = 0; i < 2 * kOperations; ++i) {
        const int k = key(rng);
        if (Cached<std::string> v = cache.get(k); v && !belongs_to(*v, k)) {
          wrong_values.fetch_add(1);
        }
      }
    }
  });

  EXPECT_EQ(wrong_values.load(), 0);
  EXPECT_LE(cache.size(), kBound);
  EXPECT_EQ(cache.weight(), cache.size());
  EXPECT_EQ(stored.load() - cache.size(), removals.total());
  EXPECT_EQ(misplaced_entries(cache), 0u);
}

INSTANTIATE_TEST_SUITE_P(Bound, LocalCacheConcurrencyAtSize,
                         ::testing::Values(CacheSize::kSmall, CacheSize::kLarge),
                         [](const auto& info) {
                           return std::string(info.param == CacheSize::kSmall ? "Small" : "Large");
                         });

}  // namespace
}  // namespace tiercache::test
