// Cache<V> against real Redis servers: the shared standalone server of scripts/redis-env.sh
// (TIERCACHE_TEST_REDIS_URL) and, for restarts, a private one (support/redis_process.hpp).
//
// Two Cache objects with the same name and their own clients stand for two processes: each
// has its own L1, its own bus subscription and its own origin id, exactly as two pods would.
// (tiercache stampede runs the same with real processes: tests/tools.) Freshness is driven by
// a ManualClock shared by both; Redis's own key TTLs are real time and long.

#include "tiercache/cache.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../unit/prometheus_format.hpp"
#include "support/cache_fixture.hpp"
#include "support/redis_process.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache {
namespace {

// ---- read-through ------------------------------------------------------------------------------

TEST_F(CacheTest, ReadsThroughL1ThenL2ThenTheLoader) {
  auto a = process();
  auto b = process();
  CacheResult<std::string> first = a->get_or_load("user:1", loader_.fn());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, "value-of-user:1");
  EXPECT_EQ(first.source(), Source::kLoader);
  CacheResult<std::string> again = a->get_or_load("user:1", loader_.fn());
  EXPECT_EQ(again.source(), Source::kL1);
  EXPECT_EQ(again.get(), first.get()) << "an L1 hit hands out the very object cached";
  CacheResult<std::string> other = b->get_or_load("user:1", loader_.fn());
  EXPECT_EQ(other.source(), Source::kL2);
  EXPECT_EQ(*other, "value-of-user:1");
  EXPECT_EQ(b->get_or_load("user:1", loader_.fn()).source(), Source::kL1);
  EXPECT_EQ(loader_.calls(), 1);
}

TEST_F(CacheTest, GetNeverLoads) {
  auto a = process();
  EXPECT_TRUE(a->get("user:2").is_miss());
  a->get_or_load("user:2", loader_.fn());
  auto b = process();
  EXPECT_EQ(b->get("user:2").source(), Source::kL2);
  EXPECT_EQ(loader_.calls(), 1);
}

TEST_F(CacheTest, ExpiredValuesAreLoadedAgain) {
  options_.ttl = 10s;
  auto a = process();
  a->get_or_load("user:3", loader_.fn());
  clock_->advance(9s);
  EXPECT_EQ(a->get_or_load("user:3", loader_.fn()).source(), Source::kL1);
  clock_->advance(2s);
  loader_.set_prefix("new-");
  CacheResult<std::string> r = a->get_or_load("user:3", loader_.fn());
  EXPECT_EQ(r.source(), Source::kLoader);
  EXPECT_EQ(*r, "new-user:3");
  EXPECT_FALSE(r.is_stale());
  EXPECT_EQ(loader_.calls(), 2);
}

TEST_F(CacheTest, LoaderMayChooseTtlAndTags) {
  auto a = process();
  auto r = a->get_or_load("user:4", [](LoadContext& c) -> std::optional<std::string> {
    c.set_ttl(1s);
    c.add_tag("team:7");
    return "v";
  });
  EXPECT_EQ(r.tags(), std::vector<std::string>{"team:7"});
  clock_->advance(1500ms);
  EXPECT_NE(a->get_or_load("user:4", loader_.fn()).source(), Source::kL1);
}

// ---- negative caching --------------------------------------------------------------------------

TEST_F(CacheTest, NotFoundIsCachedInBothTiersForTheNegativeTtl) {
  options_.negative_ttl = 5s;
  loader_.set_absent(true);
  auto a = process();
  auto b = process();
  CacheResult<std::string> r = a->get_or_load("user:404", loader_.fn());
  EXPECT_TRUE(r.is_negative());
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(a->get_or_load("user:404", loader_.fn()).is_negative());
  CacheResult<std::string> from_l2 = b->get_or_load("user:404", loader_.fn());
  EXPECT_TRUE(from_l2.is_negative());
  EXPECT_EQ(from_l2.source(), Source::kL2);
  EXPECT_EQ(loader_.calls(), 1);
  clock_->advance(6s);
  loader_.set_absent(false);
  EXPECT_TRUE(a->get_or_load("user:404", loader_.fn()).has_value());
  EXPECT_EQ(loader_.calls(), 2);
}

// ---- jitter ------------------------------------------------------------------------------------

TEST_F(CacheTest, RedisTtlsAreSpreadWithinTheJitterBounds) {
  options_.ttl = 100s;
  options_.stale_window = 0s;
  options_.jitter = 0.2;
  auto a = process();
  Client client(*config_);
  std::int64_t low = INT64_MAX, high = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "j:" + std::to_string(i);
    a->get_or_load(key, loader_.fn());
    auto pttl = client.command("PTTL", options_.name + ":0:{" + key + "}");
    ASSERT_TRUE(pttl.ok());
    low = std::min(low, pttl->integer);
    high = std::max(high, pttl->integer);
  }
  EXPECT_GE(low, 80'000 - 1'000);  // 1 s of slack for the time the test takes
  EXPECT_LE(high, 120'000);
  EXPECT_GT(high - low, 20'000) << "TTLs must actually be spread";
}

// ---- the envelope ------------------------------------------------------------------------------

TEST_F(CacheTest, UndecodableL2EntriesAreMissesCountedAsCorrupt) {
  auto a = process();
  Client client(*config_);
  const std::vector<std::string> garbage = {"", "not an envelope", std::string(100, '\0'),
                                            std::string("TC\x01\xff\xff", 5)};
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    const std::string key = "bad:" + std::to_string(i);
    ASSERT_TRUE(client.command("SET", options_.name + ":0:{" + key + "}", garbage[i]).ok());
    CacheResult<std::string> r = a->get_or_load(key, loader_.fn());
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(*r, "value-of-" + key);
    EXPECT_EQ(r.source(), Source::kLoader);
  }
  EXPECT_EQ(loader_.calls(), 4);
  EXPECT_EQ(metric(*a, series("tiercache_l2_problems_total", "kind=\"corrupt\"")), 4u);
  // The loads replaced the garbage with envelopes another process can read.
  auto b = process();
  EXPECT_EQ(b->get("bad:1").source(), Source::kL2);
}

TEST_F(CacheTest, AnEntryOfAnotherCodecIsAMiss) {
  struct Point {
    int x = 0;
  };
  auto a = process();
  a->get_or_load("p", loader_.fn());  // a string entry (StringCodec)
  Cache<std::vector<int>, JsonCodec> numbers(options_, std::make_shared<Client>(*config_));
  CacheResult<std::vector<int>> r = numbers.get_or_load("p", [](std::string_view) {
    return std::vector<int>{1, 2};
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r.source(), Source::kLoader);
}

TEST_F(CacheTest, SignedEnvelopesRejectForgedValues) {
  options_.envelope.hmac_key = "secret-key-of-the-service";
  auto a = process();
  a->get_or_load("user:5", loader_.fn());
  // Someone with write access to Redis but not the key replaces the value.
  CacheOptions forger = options_;
  forger.envelope.hmac_key = "";
  Cache<std::string> evil(forger, std::make_shared<Client>(*config_));
  evil.set("user:5", "forged");
  auto b = process();
  CacheResult<std::string> r = b->get_or_load("user:5", loader_.fn());
  EXPECT_EQ(*r, "value-of-user:5");
  EXPECT_EQ(r.source(), Source::kLoader);
  EXPECT_EQ(metric(*b, series("tiercache_l2_problems_total", "kind=\"corrupt\"")), 1u);
}

// ---- stampede protection -----------------------------------------------------------------------

TEST_F(CacheTest, ConcurrentCallersInOneProcessShareOneLoad) {
  auto a = process();
  loader_.hold();
  constexpr int kCallers = 24;
  std::vector<std::future<CacheResult<std::string>>> results;
  for (int i = 0; i < kCallers; ++i) {
    results.push_back(
        std::async(std::launch::async, [&] { return a->get_or_load("hot", loader_.fn()); }));
  }
  ASSERT_TRUE(loader_.wait_running(1));
  ASSERT_TRUE(eventually(
      [&] { return metric(*a, series("tiercache_coalesced_waits_total", "")) == kCallers - 1; }));
  loader_.release();
  for (auto& f : results) EXPECT_EQ(*f.get(), "value-of-hot");
  EXPECT_EQ(loader_.calls(), 1);
}

TEST_F(CacheTest, AnotherProcessWaitsForTheLockHoldersLoad) {
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  loader_.hold();
  auto first = std::async(std::launch::async, [&] { return a->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(loader_.wait_running(1));
  auto second = std::async(std::launch::async, [&] { return b->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(eventually([&] {
    return metric(*b, series("tiercache_stampede_lock_total", "result=\"contended\"")) == 1;
  }));
  loader_.release();
  EXPECT_EQ(*first.get(), "value-of-k");
  CacheResult<std::string> r = second.get();
  EXPECT_EQ(*r, "value-of-k");
  EXPECT_EQ(r.source(), Source::kL2) << "woken by the fill, it read L2";
  EXPECT_EQ(loader_.calls(), 1);
  EXPECT_EQ(metric(*b, series("tiercache_stampede_lock_total", "result=\"taken_over\"")), 0u);
}

TEST_F(CacheTest, TwoProcessesRefreshingAStaleValueLoadItOnce) {
  // Both see the value stale; one takes the lock, loads and stores; the other must then use
  // that value, not take the freed lock and load again (the lock script returns the value as
  // it is when the lock is taken).
  auto a = process();
  auto b = process();
  wait_for_bus(*a);
  wait_for_bus(*b);
  int doubled = 0;
  for (int round = 0; round < 100; ++round) {
    const std::string key = "stale:" + std::to_string(round);
    WriteOptions short_lived;
    short_lived.ttl = 20ms;
    a->set(key, "old", short_lived);
    b->get_or_load(key, loader_.fn());
    clock_->advance(30ms);  // stale in both processes and in L2
    std::atomic<int> loads{0};
    auto counting = [&loads](std::string_view) {
      loads.fetch_add(1);
      return std::optional<std::string>("new");
    };
    std::latch go(3);
    std::thread ta([&] {
      go.arrive_and_wait();
      a->get_or_load(key, counting);
    });
    std::thread tb([&] {
      go.arrive_and_wait();
      b->get_or_load(key, counting);
    });
    go.arrive_and_wait();
    ta.join();
    tb.join();
    if (loads.load() > 1) ++doubled;
  }
  EXPECT_EQ(doubled, 0) << "rounds out of 100 in which the value was loaded twice";
}

TEST_F(CacheTest, AWaiterTakesOverWhenTheLockHolderVanished) {
  options_.lock_ttl = 300ms;
  auto a = process();
  // A holder that died mid-load: its lock is there, and nobody will ever publish a fill.
  Client client(*config_);
  ASSERT_TRUE(client.command("SET", options_.name + ":lock:0:{k}", "dead-token", "PX", 300).ok());
  const auto start = std::chrono::steady_clock::now();
  CacheResult<std::string> r = a->get_or_load("k", loader_.fn());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(*r, "value-of-k");
  EXPECT_EQ(loader_.calls(), 1);
  EXPECT_GE(waited, 250ms) << "it waited for the lock to expire";
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(metric(*a, series("tiercache_stampede_lock_total", "result=\"taken_over\"")), 1u);
}

// The lock holder of the next test, run in a process of its own: the test binary re-executed
// with this (disabled) test selected and TIERCACHE_TEST_HOLDER_NAME set. It takes the lock
// through get_or_load, says so in Redis, and hangs in the loader until it is killed.
TEST(CacheHolder, DISABLED_HoldsTheLockUntilKilled) {
  const char* name = std::getenv("TIERCACHE_TEST_HOLDER_NAME");
  if (name == nullptr) GTEST_SKIP() << "only run by HolderKilledMidLoad";
  REQUIRE_SHARED_SERVER(config);
  CacheOptions options;
  options.name = name;
  options.lock_ttl = 500ms;
  options.hard_timeout = std::chrono::hours(1);
  Cache<std::string> cache(options, std::make_shared<Client>(*config));
  Client marker(*config);
  cache.get_or_load("k", [&](std::string_view) -> std::optional<std::string> {
    marker.command("SET", std::string(name) + ":loading", "1");
    while (true) ::pause();
  });
}

TEST(CacheHolderKilled, AnotherProcessTakesOverWhenTheHolderIsKilledMidLoad) {
  REQUIRE_SHARED_SERVER(config);
  const std::string name = unique_name();
  // Everything the child needs is prepared before fork(): between fork and exec it may only
  // make async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("TIERCACHE_TEST_HOLDER_NAME=" + name);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=CacheHolder.DISABLED_HoldsTheLockUntilKilled";
  std::string disabled = "--gtest_also_run_disabled_tests";
  std::string self = "/proc/self/exe";
  char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::execve(self.c_str(), argv, envp.data());
    ::_exit(127);
  }
  Client client(*config);
  const bool loading = eventually(
      [&] {
        auto r = client.command("EXISTS", name + ":loading");
        return r.ok() && r->integer == 1;
      },
      20s);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ASSERT_TRUE(loading) << "the holder process never started its load";

  CacheOptions options;
  options.name = name;
  options.lock_ttl = 500ms;
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> cache(options, std::make_shared<Client>(*config));
  std::atomic<int> loads{0};
  const auto start = std::chrono::steady_clock::now();
  CacheResult<std::string> r = cache.get_or_load("k", [&](std::string_view) {
    ++loads;
    return std::optional<std::string>("loaded-by-the-survivor");
  });
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "loaded-by-the-survivor");
  EXPECT_EQ(loads.load(), 1);
  EXPECT_NE(cache.render_prometheus().find("tiercache_stampede_lock_total{cache=\"" + name +
                                           "\",result=\"taken_over\"} 1"),
            std::string::npos);
}

TEST_F(CacheTest, TheHolderRenewsItsLockWhileALongLoadRuns) {
  options_.lock_ttl = 300ms;
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  loader_.hold();
  auto first = std::async(std::launch::async, [&] { return a->get_or_load("slow", loader_.fn()); });
  ASSERT_TRUE(loader_.wait_running(1));
  auto second =
      std::async(std::launch::async, [&] { return b->get_or_load("slow", loader_.fn()); });
  // Four lock lifetimes: without renewal, b would take over and load a second time.
  std::this_thread::sleep_for(1200ms);  // the duration under test, not a synchronisation
  EXPECT_EQ(loader_.calls(), 1);
  loader_.release();
  EXPECT_EQ(*first.get(), "value-of-slow");
  EXPECT_EQ(*second.get(), "value-of-slow");
  EXPECT_EQ(loader_.calls(), 1);
}

TEST_F(CacheTest, AnInvalidationDuringALoadKeepsTheOlderValueOut) {
  auto a = process();
  auto b = process();
  wait_for_bus(*a);
  loader_.hold();
  auto load = std::async(std::launch::async, [&] { return a->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(loader_.wait_running(1));
  b->set("k", "written-during-the-load");
  loader_.release();
  EXPECT_EQ(*load.get(), "value-of-k") << "the caller still gets what it asked for";
  EXPECT_TRUE(eventually([&] {
    auto r = a->get("k");
    return r.has_value() && *r == "written-during-the-load";
  }));
  auto c = process();
  EXPECT_EQ(*c->get("k"), "written-during-the-load");
}

// ---- early refresh -----------------------------------------------------------------------------

TEST_F(CacheTest, HotKeysAreRefreshedInTheBackgroundBeforeExpiry) {
  options_.ttl = 1s;
  options_.early_refresh_beta = 1.0;
  auto a = process();
  auto slow = [&](LoadContext& c) -> std::optional<std::string> {
    std::this_thread::sleep_for(50ms);  // the load time XFetch scales with
    return loader_.load(c.key());
  };
  a->get_or_load("hot", slow);
  clock_->advance(990ms);  // 10 ms left, load time 50 ms: P(refresh) = 1 - e^(-5) per hit
  loader_.set_prefix("refreshed-");
  CacheResult<std::string> during = a->get_or_load("hot", slow);
  EXPECT_EQ(during.source(), Source::kL1) << "served at once, refreshed behind";
  EXPECT_TRUE(eventually([&] {
    a->get_or_load("hot", slow);
    auto r = a->get("hot");
    return r.has_value() && *r == "refreshed-hot";
  }));
  EXPECT_EQ(loader_.calls(), 2);
  EXPECT_GE(metric(*a, series("tiercache_early_refreshes_total", "")), 1u);
}

TEST_F(CacheTest, NoEarlyRefreshFarFromExpiry) {
  options_.ttl = 100s;
  options_.early_refresh_beta = 1.0;
  auto a = process();
  a->get_or_load("k", [&](LoadContext& c) {
    std::this_thread::sleep_for(5ms);
    return loader_.load(c.key());
  });
  for (int i = 0; i < 1000; ++i) a->get_or_load("k", loader_.fn());
  EXPECT_EQ(loader_.calls(), 1);
}

// ---- fail-safe ---------------------------------------------------------------------------------

TEST_F(CacheTest, AFailingLoaderServesTheStaleValue) {
  options_.ttl = 10s;
  auto a = process();
  auto b = process();  // made before the clock moves: both processes share one wall time
  a->get_or_load("k", loader_.fn());
  clock_->advance(11s);
  loader_.set_failing(true);
  CacheResult<std::string> r = a->get_or_load("k", loader_.fn());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "value-of-k");
  EXPECT_TRUE(r.is_stale());
  EXPECT_EQ(metric(*a, series("tiercache_stale_served_total", "")), 1u);
  // Throttled: the failing database is not asked again at once.
  EXPECT_TRUE(a->get_or_load("k", loader_.fn()).is_stale());
  EXPECT_EQ(loader_.calls(), 2);
  // Another process (no L1 copy) gets the stale value from L2.
  CacheResult<std::string> from_l2 = b->get_or_load("k", loader_.fn());
  EXPECT_TRUE(from_l2.is_stale());
  EXPECT_EQ(*from_l2, "value-of-k");
}

TEST_F(CacheTest, AFailingLoaderWithoutStaleValueIsAnError) {
  auto a = process();
  loader_.set_failing(true);
  const std::string key = "user:secret-42";
  CacheResult<std::string> r = a->get_or_load(key, loader_.fn());
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(r.error()->code, CacheErrc::kLoaderFailed);
  // The message names the key's pattern, never the key.
  EXPECT_NE(r.error()->message.find(key_pattern(key)), std::string::npos) << r.error()->message;
  EXPECT_EQ(r.error()->message.find("secret-42"), std::string::npos) << r.error()->message;
  ASSERT_TRUE(r.error()->exception);
  EXPECT_THROW(std::rethrow_exception(r.error()->exception), std::runtime_error);
  EXPECT_EQ(metric(*a, series("tiercache_loads_total", "result=\"error\"")), 1u);
  loader_.set_failing(false);
  EXPECT_TRUE(a->get_or_load(key, loader_.fn()).has_value()) << "errors are not cached";
}

TEST_F(CacheTest, AHangingLoaderGivesTheStaleValueAtTheSoftTimeout) {
  options_.ttl = 10s;
  options_.soft_timeout = 50ms;
  auto a = process();
  a->get_or_load("k", loader_.fn());
  clock_->advance(11s);
  loader_.set_prefix("late-");
  loader_.hold();
  const auto start = std::chrono::steady_clock::now();
  CacheResult<std::string> r = a->get_or_load("k", loader_.fn());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(r.is_stale());
  EXPECT_EQ(*r, "value-of-k");
  loader_.release();  // the load goes on in the background and lands
  EXPECT_TRUE(eventually([&] {
    auto now = a->get("k");
    return now.has_value() && *now == "late-k";
  }));
}

TEST_F(CacheTest, AHangingLoaderWithoutStaleValueTimesOut) {
  options_.hard_timeout = 200ms;
  auto a = process();
  loader_.hold();
  const auto start = std::chrono::steady_clock::now();
  CacheResult<std::string> r = a->get_or_load("k", loader_.fn());
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(r.error()->code, CacheErrc::kLoaderTimeout);
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 2s);
  loader_.release();
}

// ---- invalidation ------------------------------------------------------------------------------

TEST_F(CacheTest, SetReachesTheOtherProcesses) {
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  a->get_or_load("user:9", loader_.fn());
  EXPECT_EQ(*b->get_or_load("user:9", loader_.fn()), "value-of-user:9");
  WriteResult w = a->set("user:9", "renamed");
  EXPECT_TRUE(w.ok());
  EXPECT_TRUE(w.l2_written);
  EXPECT_TRUE(eventually([&] { return *b->get_or_load("user:9", loader_.fn()) == "renamed"; }));
  EXPECT_EQ(loader_.calls(), 1);
}

TEST_F(CacheTest, InvalidateDropsEveryCopy) {
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  a->get_or_load("k", loader_.fn());
  b->get_or_load("k", loader_.fn());
  const auto received = [&] {
    return metric(*b, series("tiercache_invalidations_total", "direction=\"received\""));
  };
  const std::uint64_t before = received();
  EXPECT_TRUE(a->invalidate("k"));
  EXPECT_TRUE(eventually([&] { return b->get("k").is_miss(); }));
  EXPECT_TRUE(a->get("k").is_miss());
  EXPECT_EQ(received(), before + 1);
}

TEST_F(CacheTest, WriteThroughWritesTheDatabaseFirst) {
  auto a = process();
  std::map<std::string, std::string> db;
  WriteResult ok =
      a->write_through("user:1", "ada", [&](const std::string& v) { db["user:1"] = v; });
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(db["user:1"], "ada");
  EXPECT_EQ(*a->get("user:1"), "ada");
  WriteResult failed = a->write_through(
      "user:1", "bob", [](const std::string&) { throw std::runtime_error("constraint violated"); });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error->code, CacheErrc::kWriterFailed);
  EXPECT_EQ(*a->get("user:1"), "ada") << "the cache is untouched when the database write fails";
  auto b = process();
  EXPECT_EQ(*b->get("user:1"), "ada");
}

TEST_F(CacheTest, TagInvalidationMakesTaggedEntriesStaleEverywhere) {
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  auto tagged = [&](LoadContext& c) {
    c.add_tag("team:1");
    return loader_.load(c.key());
  };
  a->get_or_load("member:1", tagged);
  a->get_or_load("other", loader_.fn());
  b->get_or_load("member:1", tagged);
  b->get_or_load("other", loader_.fn());
  EXPECT_EQ(loader_.calls(), 2);
  clock_->advance(5ms);  // tag times have millisecond resolution
  EXPECT_TRUE(a->invalidate_tag("team:1"));
  clock_->advance(5ms);  // entries created in the invalidation's millisecond count as before it
  loader_.set_prefix("reloaded-");
  EXPECT_EQ(*a->get_or_load("member:1", tagged), "reloaded-member:1");
  EXPECT_TRUE(
      eventually([&] { return *b->get_or_load("member:1", tagged) == "reloaded-member:1"; }));
  EXPECT_EQ(*b->get_or_load("other", loader_.fn()), "value-of-other") << "untagged: untouched";
  EXPECT_EQ(loader_.calls(), 3) << "b found a's reload in L2";
  // A process that never heard the message learns the tag time from Redis.
  auto c = process();
  EXPECT_EQ(*c->get_or_load("member:1", tagged), "reloaded-member:1");
}

TEST_F(CacheTest, AWriteKeepsTheTagsOfTheEntryItReplacesInEveryProcess) {
  auto a = process();
  auto b = process();
  wait_for_bus(*a);
  auto tagged = [&](LoadContext& c) {
    c.add_tag("price-list");
    return loader_.load(c.key());
  };
  ASSERT_EQ(*a->get_or_load("price:1", tagged), "value-of-price:1");
  // b has no copy: it finds the tags in L2. Then a write-through without tags.
  ASSERT_TRUE(b->write_through("price:1", "12.50", [](const std::string&) {}).ok());
  EXPECT_EQ(b->get("price:1").tags(), std::vector<std::string>{"price-list"});
  ASSERT_TRUE(
      eventually([&] { return a->get("price:1").has_value() && *a->get("price:1") == "12.50"; }));
  EXPECT_EQ(a->get("price:1").tags(), std::vector<std::string>{"price-list"});
  // The tag still reaches the entry, in every process.
  clock_->advance(2s);  // beyond the processes' construction gaps (wall offsets)
  ASSERT_TRUE(a->invalidate_tag("price-list"));
  EXPECT_FALSE(process()->get("price:1").has_value());
  EXPECT_TRUE(eventually([&] { return !b->get("price:1").has_value(); }));
  // Unless told otherwise: keep_tags = false and no tags is "no tags".
  WriteOptions untagged;
  untagged.keep_tags = false;
  ASSERT_TRUE(b->set("price:2", "1.00", untagged).ok());
  EXPECT_TRUE(b->get("price:2").tags().empty());
}

TEST_F(CacheTest, ClearForgetsEverythingInEveryProcess) {
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  for (int i = 0; i < 10; ++i) {
    a->get_or_load("k" + std::to_string(i), loader_.fn());
    b->get_or_load("k" + std::to_string(i), loader_.fn());
  }
  EXPECT_EQ(loader_.calls(), 10);
  EXPECT_TRUE(a->clear());
  EXPECT_TRUE(eventually([&] { return b->get("k3").is_miss(); }));
  EXPECT_TRUE(a->get("k3").is_miss());
  EXPECT_EQ(b->get_or_load("k3", loader_.fn()).source(), Source::kLoader);
}

// ---- multi-key ---------------------------------------------------------------------------------

TEST_F(CacheTest, GetOrLoadManyLoadsOnlyTheMissingKeysInOneBatch) {
  auto writer = process();
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) keys.push_back("m:" + std::to_string(i));
  for (int i = 0; i < 90; ++i) writer->get_or_load(keys[i], loader_.fn());
  ASSERT_EQ(loader_.calls(), 90);

  auto client = std::make_shared<Client>(*config_);
  Cache<std::string> reader(options_, client);
  int batches = 0;
  std::vector<std::string> asked;
  reader.get("warm-up");  // reads the namespace version, once per process
  const redis::ClientStats before = client->stats();
  auto results = reader.get_or_load_many(keys, [&](const std::vector<std::string>& missing) {
    ++batches;
    asked = missing;
    std::map<std::string, std::string> found;
    for (const auto& k : missing) {
      if (k != "m:99") found[k] = "batch-" + k;
    }
    return found;
  });
  const redis::ClientStats after = client->stats();
  EXPECT_EQ(batches, 1);
  EXPECT_EQ(asked.size(), 10u);
  ASSERT_EQ(results.size(), 100u);
  for (int i = 0; i < 90; ++i) {
    EXPECT_EQ(*results[i], "value-of-" + keys[i]);
    EXPECT_EQ(results[i].source(), Source::kL2);
  }
  for (int i = 90; i < 99; ++i) EXPECT_EQ(*results[i], "batch-" + keys[i]);
  EXPECT_TRUE(results[99].is_negative());
  // One pipelined read-or-lock request, one pipelined store.
  EXPECT_EQ(after.requests - before.requests, 2u);
  auto again = reader.get_or_load_many(keys, [&](const std::vector<std::string>&) {
    ++batches;
    return std::map<std::string, std::string>();
  });
  EXPECT_EQ(batches, 1) << "all in L1 now";
  EXPECT_EQ(again[5].source(), Source::kL1);
}

// ---- async -------------------------------------------------------------------------------------

TEST_F(CacheTest, AsyncGetOrLoadCompletesThroughAnyToken) {
  auto a = process();
  std::future<CacheResult<std::string>> f =
      a->async_get_or_load("async:1", loader_.fn(), asio::use_future);
  EXPECT_EQ(*f.get(), "value-of-async:1");
  std::promise<CacheResult<std::string>> p;
  a->async_get_or_load("async:1", loader_.fn(),
                       [&](CacheResult<std::string> r) { p.set_value(std::move(r)); });
  CacheResult<std::string> hit = p.get_future().get();
  EXPECT_EQ(hit.source(), Source::kL1);
  EXPECT_EQ(loader_.calls(), 1);
  auto b = process();
  EXPECT_EQ(b->async_get("async:1", asio::use_future).get().source(), Source::kL2);
  EXPECT_TRUE(b->async_get("async:2", asio::use_future).get().is_miss());
}

TEST_F(CacheTest, AValueThatCannotBeStoredIsAnErrorAndDropsOldCopies) {
  options_.envelope.max_payload_bytes = 1000;
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  b->get_or_load("big", loader_.fn());
  WriteResult w = a->set("big", std::string(5000, 'x'));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error->code, CacheErrc::kEncodeFailed);
  EXPECT_TRUE(eventually([&] { return b->get("big").is_miss(); })) << "old copies dropped";
  CacheResult<std::string> r = a->get_or_load(
      "huge", [](std::string_view) { return std::optional<std::string>(std::string(5000, 'y')); });
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(r.error()->code, CacheErrc::kEncodeFailed);
}

TEST(CacheRedisSlow, APausedRedisCostsAtMostTheL2TimeoutPerCall) {
  test::RedisProcess server = test::RedisProcess::start();
  ClientConfig config;
  config.host = "127.0.0.1";
  config.port = server.port();
  CacheOptions options;
  options.name = unique_name();
  options.l2_timeout = 100ms;
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> cache(options, std::make_shared<Client>(config));
  auto loader = [](std::string_view key) { return std::optional<std::string>(std::string(key)); };
  ASSERT_TRUE(cache.get_or_load("warm", loader).has_value());
  server.pause();  // SIGSTOP: connections stay open, nothing answers
  for (int i = 0; i < 8; ++i) {
    const auto start = std::chrono::steady_clock::now();
    CacheResult<std::string> r = cache.get_or_load("slow-" + std::to_string(i), loader);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r.has_value()) << i;
    // A read and a write, each bounded by l2_timeout (then the circuit opens: no wait at all).
    EXPECT_LT(took, 2 * options.l2_timeout + 400ms) << i;
  }
  EXPECT_EQ(cache.circuit_state(), CircuitBreaker::State::kOpen);
  server.resume();
}

// ---- metrics -----------------------------------------------------------------------------------

TEST_F(CacheTest, MetricsAreValidPrometheusTextWithoutKeys) {
  auto a = process();
  a->get_or_load("user:secret-id-123", loader_.fn());
  a->get_or_load("user:secret-id-123", loader_.fn());
  loader_.set_failing(true);
  a->get_or_load("user:other-456", loader_.fn());
  PrometheusText text;
  a->collect(text);
  const std::string name = options_.name;
  options_.name += "-other";
  auto b = process();
  b->collect(text);  // two caches rendered together: one HELP/TYPE per family
  options_.name = name;
  const std::string rendered = text.render();
  const std::vector<std::string> errors = test::prometheus_format_errors(rendered);
  EXPECT_TRUE(errors.empty()) << errors.front() << "\n" << rendered;
  EXPECT_EQ(rendered.find("secret-id"), std::string::npos);
  EXPECT_EQ(rendered.find("other-456"), std::string::npos);
  EXPECT_EQ(metric(*a, series("tiercache_lookups_total", "tier=\"l1\",result=\"hit\"")), 1u);
  EXPECT_EQ(metric(*a, series("tiercache_loads_total", "result=\"ok\"")), 1u);
  EXPECT_EQ(metric(*a, series("tiercache_loads_total", "result=\"error\"")), 1u);
}

TEST_F(CacheTest, LogsNameKeyPatternsNeverKeys) {
  std::vector<std::string> lines;
  std::mutex mutex;
  options_.logger = [&](LogLevel, std::string_view m) {
    std::lock_guard lock(mutex);
    lines.emplace_back(m);
  };
  auto a = process();
  Client client(*config_);
  client.command("SET", options_.name + ":0:{user:8812}", "garbage");
  a->get_or_load("user:8812", loader_.fn());
  loader_.set_failing(true);
  a->get_or_load("user:4471", loader_.fn());
  std::lock_guard lock(mutex);
  ASSERT_GE(lines.size(), 2u);
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("8812"), std::string::npos) << line;
    EXPECT_EQ(line.find("4471"), std::string::npos) << line;
  }
}

// ---- Redis down --------------------------------------------------------------------------------

TEST(CacheRedisDown, ServesFromL1AndTheLoaderAndRecovers) {
  test::RedisProcess server = test::RedisProcess::start();
  ClientConfig config;
  config.host = "127.0.0.1";
  config.port = server.port();
  config.connect_timeout = 200ms;
  config.reconnect_max_delay = 100ms;
  CacheOptions options;
  options.name = unique_name();
  options.l2_timeout = 100ms;
  options.circuit_breaker.failure_threshold = 2;
  options.circuit_breaker.open_duration = 200ms;
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> cache(options, std::make_shared<Client>(config));
  std::atomic<int> loads{0};
  auto loader = [&](std::string_view key) {
    ++loads;
    return std::optional<std::string>("v-" + std::string(key));
  };
  ASSERT_EQ(*cache.get_or_load("before", loader), "v-before");

  server.kill();
  // No request fails because Redis is down: L1 and the loader answer.
  EXPECT_EQ(*cache.get_or_load("before", loader), "v-before");
  for (int i = 0; i < 20; ++i) {
    CacheResult<std::string> r = cache.get_or_load("during-" + std::to_string(i), loader);
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_TRUE(r.ok());
  }
  EXPECT_EQ(cache.circuit_state(), CircuitBreaker::State::kOpen);

  server.restart();
  EXPECT_TRUE(eventually(
      [&] {
        cache.get_or_load("probe-" + std::to_string(loads.load()), loader);
        return cache.circuit_state() == CircuitBreaker::State::kClosed;
      },
      10s));
  // Writes reach Redis again.
  cache.set("after", "x");
  Client check(config);
  EXPECT_TRUE(eventually([&] {
    auto r = check.command("EXISTS", options.name + ":0:{after}");
    return r.ok() && r->integer == 1;
  }));
}

TEST(CacheRedisDown, DistrustsL1WhenTheBusIsDownTooLong) {
  test::RedisProcess server = test::RedisProcess::start();
  ClientConfig config;
  config.host = "127.0.0.1";
  config.port = server.port();
  config.reconnect_max_delay = 100ms;
  auto clock = std::make_shared<ManualClock>();
  CacheOptions options;
  options.name = unique_name();
  options.clock = clock;
  options.disconnected_l1_ttl = 5s;
  options.l2_timeout = 100ms;
  options.soft_timeout = 5s;  // wait for the reload rather than take the distrusted copy
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> cache(options, std::make_shared<Client>(config));
  std::atomic<int> loads{0};
  auto loader = [&](std::string_view) {
    ++loads;
    return std::optional<std::string>("v" + std::to_string(loads.load()));
  };
  ASSERT_TRUE(eventually([&] {
    return cache.render_prometheus().find("tiercache_bus_connected{cache=\"" + options.name +
                                          "\"} 1") != std::string::npos;
  }));
  cache.get_or_load("k", loader);
  server.kill();
  ASSERT_TRUE(eventually([&] {
    return cache.render_prometheus().find("tiercache_bus_connected{cache=\"" + options.name +
                                          "\"} 0") != std::string::npos;
  }));
  clock->advance(4s);
  EXPECT_EQ(*cache.get_or_load("k", loader), "v1") << "recent enough: still served";
  clock->advance(2s);
  EXPECT_EQ(*cache.get_or_load("k", loader), "v2") << "older than disconnected_l1_ttl: reloaded";
}

}  // namespace
}  // namespace tiercache
