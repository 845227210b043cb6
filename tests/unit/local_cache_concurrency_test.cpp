// LocalCache under concurrent use. Run under ThreadSanitizer by scripts/test.sh (label
// `concurrency`), so the work is sized by iteration counts, kept to a few seconds there.
//
// Every value written encodes its key, its writer and a sequence number (stamp()), so a
// value returned for the wrong key, a torn or freed value, or a lost update is detected.
// Threads start together on a latch and are joined; nothing sleeps.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

// The value written for `key` by `writer` as its `seq`-th write: "k<key>:w<writer>:s<seq>".
std::string stamp(int key, int writer, int seq) {
  return "k" + std::to_string(key) + ":w" + std::to_string(writer) + ":s" + std::to_string(seq);
}
bool belongs_to(const std::string& value, int key) {
  return value.rfind("k" + std::to_string(key) + ":", 0) == 0;
}
int writer_of(const std::string& value) {
  const std::size_t w = value.find(":w");
  return std::stoi(value.substr(w + 2));
}
int seq_of(const std::string& value) {
  const std::size_t s = value.find(":s");
  return std::stoi(value.substr(s + 2));
}

// Runs body(thread_index) on `threads` threads released together; returns once all are done.
template <class Body>
void run_together(int threads, Body body) {
  std::latch start(threads);
  std::vector<std::jthread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&start, &body, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
}

// A put returns with the cache within its bound, but another writer's put may be between
// its insertion and its eviction (the contract's one-entry slack, seen by size() readers).
constexpr std::size_t kOnePutInFlight = 1;

// Counts removals by cause. Thread-safe; cheap enough not to serialise the test.
struct RemovalCounter {
  std::atomic<std::uint64_t> by_cause[4] = {};

  void count(RemovalCause cause) {
    by_cause[static_cast<int>(cause)].fetch_add(1, std::memory_order_relaxed);
  }
  Cache::RemovalListener listener() {
    return [this](const int&, const Cached<std::string>&, RemovalCause cause) { count(cause); };
  }
  std::uint64_t of(RemovalCause cause) const {
    return by_cause[static_cast<int>(cause)].load(std::memory_order_relaxed);
  }
  std::uint64_t total() const {
    return of(RemovalCause::kSize) + of(RemovalCause::kExpired) + of(RemovalCause::kExplicit) +
           of(RemovalCause::kReplaced);
  }
};

// Entries whose value is not their key's, found by visiting every entry.
std::size_t misplaced_entries(Cache& cache) {
  std::size_t misplaced = 0;
  cache.erase_if([&](const int& key, const std::string* value) {
    if (value != nullptr && !belongs_to(*value, key)) ++misplaced;
    return false;
  });
  return misplaced;
}

// ---- readers and writers -------------------------------------------------------------------

TEST(LocalCacheConcurrency, ReadersOnlyEverSeeTheValueOfTheirKey) {
  constexpr int kReaders = 4;
  constexpr int kWriters = 2;
  constexpr int kLookups = 40'000;
  constexpr int kWrites = 15'000;
  constexpr std::size_t kBound = 64;
  Cache cache(bounded_to(kBound));
  for (int k = 0; k < static_cast<int>(kBound); ++k) cache.put(k, stamp(k, 0, -1));  // full
  std::atomic<int> wrong_values{0};
  std::atomic<int> hits{0};
  std::atomic<int> bound_breaches{0};

  run_together(kReaders + kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, 255);  // overlapping: more keys than the bound
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

TEST(LocalCacheConcurrency, ReclamationNeverFreesAnEntryAReaderIsLookingAt) {
  constexpr int kReaders = 3;
  constexpr int kKeys = 32;
  constexpr int kWrites = 30'000;
  constexpr int kLookups = 60'000;
  LocalCache<int, std::string, CollidingHash> cache(bounded_to(100));
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

TEST(LocalCacheConcurrency, RacingReplacementsLeaveOneLatestValuePerKey) {
  constexpr int kWriters = 4;
  constexpr int kReaders = 2;
  constexpr int kKeys = 16;
  constexpr int kRounds = 1'000;
  constexpr int kLookups = 40'000;
  RemovalCounter removals;
  Cache cache(bounded_to(100), {}, removals.listener());
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

TEST(LocalCacheConcurrency, PutIfAbsentHasExactlyOneWinnerPerKey) {
  constexpr int kThreads = 4;
  constexpr int kKeys = 500;
  constexpr int kRounds = 10;
  Cache cache(bounded_to(2 * kKeys));  // room for every key: no winner is evicted

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

TEST(LocalCacheConcurrency, HeldValuesStayValidWhileTheirEntriesAreEvicted) {
  constexpr int kReaders = 3;
  constexpr int kWriters = 2;
  constexpr int kLookups = 20'000;
  constexpr int kWrites = 20'000;
  constexpr std::size_t kHeldPerReader = 32;
  auto cache = std::make_unique<Cache>(bounded_to(8));  // tiny: constant eviction
  for (int k = 0; k < 8; ++k) cache->put(k, stamp(k, 0, -1));
  std::vector<std::vector<std::pair<int, Cached<std::string>>>> held(kReaders);
  std::atomic<int> damaged{0};

  run_together(kReaders + kWriters, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, 63);
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

// ---- removals concurrent with lookups ------------------------------------------------------

TEST(LocalCacheConcurrency, EraseAndClearRaceWithLookupsSafely) {
  constexpr int kReaders = 3;
  constexpr int kOperations = 15'000;
  RemovalCounter removals;
  Cache cache(bounded_to(128), {}, removals.listener());
  std::atomic<int> wrong_values{0};
  std::atomic<std::uint64_t> stored{0};

  run_together(kReaders + 2, [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(t));
    std::uniform_int_distribution<int> key(0, 199);
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
  EXPECT_LE(cache.size(), 128u);
  EXPECT_EQ(cache.weight(), cache.size());
  EXPECT_EQ(stored.load() - cache.size(), removals.total());
  EXPECT_EQ(misplaced_entries(cache), 0u);
}

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

TEST(LocalCacheConcurrency, StressMixingEveryOperation) {
  constexpr int kThreads = 6;
  constexpr int kOperations = 12'000;
  constexpr std::size_t kBound = 100;
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
    std::uniform_int_distribution<int> key(0, 299);
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

}  // namespace
}  // namespace tiercache::test
