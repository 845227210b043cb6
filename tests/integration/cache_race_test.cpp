// Cache<V> under races and faults, against real Redis servers: each test forces one
// interleaving -- a loader held mid-load, a read held at a test hook (CacheOptions::test_hook)
// between its L2 reply and its store, a private redis-server paused with SIGSTOP -- and checks
// that no value read before an invalidation is stored or handed to a caller who arrived after
// it (docs/invalidation.md, "One rule for every invalidation source"), and that nothing hangs.
//
// Cache objects with the same name and their own clients stand for processes (cache_test.cpp).

#include <gtest/gtest.h>

#include <algorithm>
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/cache_fixture.hpp"
#include "support/redis_process.hpp"
#include "tiercache/cache.hpp"

namespace tiercache {
namespace {

// Holds the first read that reaches `point` for `key` (CacheOptions::test_hook) until release().
class HookGate {
 public:
  HookGate(std::string point, std::string key) : point_(std::move(point)), key_(std::move(key)) {}
  ~HookGate() { release(); }

  std::function<void(std::string_view, std::string_view)> hook() {
    return [this](std::string_view point, std::string_view key) {
      if (point != point_ || key != key_) return;
      std::unique_lock lock(mutex_);
      if (used_) return;
      used_ = true;
      held_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return released_; });
      held_ = false;
    };
  }
  bool wait_held(std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return held_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  const std::string point_;
  const std::string key_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool used_ = false;
  bool held_ = false;
  bool released_ = false;
};

// A database row: a version that writers bump. A load reads it when it starts (a snapshot, as
// a query would), then may be held before it returns.
class VersionedRow {
 public:
  // A loader returning "v<N>" where N is the version when the load began.
  auto loader(TestLoader& gate) {
    return [this, &gate](std::string_view key) -> std::optional<std::string> {
      const int seen = version_.load();
      gate.load(key);  // counts, and blocks while held
      return "v" + std::to_string(seen);
    };
  }
  void bump() { version_.fetch_add(1); }
  std::string current() const { return "v" + std::to_string(version_.load()); }

 private:
  std::atomic<int> version_{1};
};

class CacheRaceTest : public CacheTest {
 protected:
  std::unique_ptr<Cache<std::string>> process_with_hook(HookGate& gate) {
    CacheOptions o = options_;
    o.test_hook = gate.hook();
    return std::make_unique<Cache<std::string>>(o, std::make_shared<Client>(*config_));
  }
  // Starts get_or_load(key) on `cache` with loader_ held; the entry is tagged `tag`.
  std::future<CacheResult<std::string>> held_tagged_load(Cache<std::string>& cache, std::string key,
                                                         std::string tag) {
    loader_.hold();
    return std::async(std::launch::async, [this, &cache, key, tag] {
      return cache.get_or_load(key, [this, tag](LoadContext& c) {
        c.add_tag(tag);
        return loader_.load(c.key());
      });
    });
  }
  // Invalidation messages `cache` received from other processes so far.
  std::uint64_t received(Cache<std::string>& cache) {
    return metric(cache, series("tiercache_invalidations_total", "direction=\"received\""));
  }
  // Waits until `cache` received more than `before` of them.
  bool received_more(Cache<std::string>& cache, std::uint64_t before) {
    return eventually([&] { return received(cache) > before; });
  }
};

// ---- 1. a hung loader ------------------------------------------------------------------------

TEST_F(CacheRaceTest, AHungLoaderBlocksTheKeyForAtMostMaxLoadTimeAnywhere) {
  options_.max_load_time = 300ms;
  options_.lock_ttl = 150ms;
  auto a = process();
  auto b = process();
  wait_for_bus(*b);
  loader_.hold();
  auto hung = std::async(std::launch::async, [&] {
    return a->get_or_load("k", [&](std::string_view key) -> std::optional<std::string> {
      loader_.load(key);
      return "hung-value";
    });
  });
  ASSERT_TRUE(loader_.wait_running(1));
  // Another process: once the hold passes max_load_time the lock is released and it loads.
  auto other = b->get_or_load("k", [](std::string_view) { return std::string("b-value"); });
  ASSERT_TRUE(other.has_value()) << (other.error() ? other.error()->message : "miss");
  EXPECT_EQ(*other, "b-value");
  // This process: a caller after max_load_time does not join the hung flight.
  auto again = a->get_or_load("k", [](std::string_view) { return std::string("a-value"); });
  ASSERT_TRUE(again.has_value()) << (again.error() ? again.error()->message : "miss");
  EXPECT_EQ(*again, "b-value") << "read from L2, where the other process stored it";
  // The hung load ends: its caller gets its value, and it is stored nowhere.
  loader_.release();
  EXPECT_EQ(*hung.get(), "hung-value");
  EXPECT_EQ(*a->get("k"), "b-value");
  EXPECT_EQ(*process()->get("k"), "b-value");
}

// ---- 2. get_or_load_many after a read timeout -----------------------------------------------

TEST(CacheRaceRedis, ABatchLoadAfterAReadTimeoutNeverOverwritesANewerWrite) {
  test::RedisProcess redis = test::RedisProcess::start();
  redis::Result<ClientConfig> config = redis::parse_url(redis.url());
  ASSERT_TRUE(config.ok());
  CacheOptions options;
  options.name = "tc-race-batch";
  options.jitter = 0;
  options.early_refresh_beta = 0;
  options.l2_timeout = 150ms;
  options.circuit_breaker.failure_threshold = 1000;  // keep trying L2: the point of the test
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> a(options, std::make_shared<Client>(*config));
  Cache<std::string> b(options, std::make_shared<Client>(*config));
  ASSERT_TRUE(b.set("k", "before").ok());
  TestLoader loader;
  loader.hold();
  redis.pause();  // a's read-or-lock times out: it loads without the lock
  auto many = std::async(std::launch::async, [&] {
    return a.get_or_load_many({"k"}, [&](const std::vector<std::string>& keys) {
      std::map<std::string, std::string> out;
      for (const auto& k : keys) out[k] = *loader.load(k);
      return out;
    });
  });
  ASSERT_TRUE(loader.wait_running(1));
  redis.resume();
  ASSERT_TRUE(eventually([&] { return b.set("k", "written-meanwhile").l2_written; }));
  loader.release();
  EXPECT_EQ(*many.get()[0], "value-of-k") << "the caller gets what it loaded";
  Cache<std::string> c(options, std::make_shared<Client>(*config));
  EXPECT_EQ(*c.get("k"), "written-meanwhile") << "the load stored nothing without the lock";
}

TEST_F(CacheRaceTest, AKeyAskedTwiceInOneBatchIsLoadedOnceEvenIfInvalidatedBetween) {
  HookGate gate("many:joined", "k");  // held after the first place of "k" joined its flight
  auto a = process_with_hook(gate);
  std::vector<std::vector<std::string>> asked;
  std::mutex asked_mutex;
  auto batch = [&](const std::vector<std::string>& keys) {
    {
      std::lock_guard lock(asked_mutex);
      asked.push_back(keys);
    }
    std::map<std::string, std::string> out;
    for (const auto& k : keys) out[k] = "value-of-" + k;
    return out;
  };
  // Without L2 (as when Redis is down), every place this call leads goes to the batch loader.
  ReadOptions no_l2;
  no_l2.skip_l2 = true;
  auto many = std::async(std::launch::async, [&] {
    return a->get_or_load_many({"k", "other", "k"}, batch, no_l2);
  });
  ASSERT_TRUE(gate.wait_held());
  ASSERT_TRUE(a->invalidate("k"));  // the first flight of "k" is covered from now on
  gate.release();
  auto r = many.get();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(*r[0], "value-of-k");
  EXPECT_EQ(*r[2], "value-of-k") << "not a value the batch loader's map gave away twice";
  for (const auto& keys : asked) {
    EXPECT_EQ(std::count(keys.begin(), keys.end(), "k"), 1) << "the batch loader saw k twice";
  }
  EXPECT_EQ(*a->get("k"), "value-of-k");
}

// ---- 3. clear() during a load -----------------------------------------------------------------

TEST_F(CacheRaceTest, ClearDuringALoadKeepsThePreClearRowOutOfTheNewNamespace) {
  auto a = process();
  auto b = process();
  wait_for_bus(*a);
  loader_.hold();
  auto load = std::async(std::launch::async, [&] { return a->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(loader_.wait_running(1));
  const std::uint64_t before = received(*a);
  ASSERT_TRUE(b->clear());
  ASSERT_TRUE(received_more(*a, before));
  loader_.release();
  EXPECT_EQ(*load.get(), "value-of-k") << "its caller was already waiting";
  EXPECT_TRUE(process()->get("k").is_miss()) << "not stored under the new version";
  EXPECT_TRUE(a->get("k").is_miss()) << "not kept in the loading process's L1 either";
}

TEST_F(CacheRaceTest, AWriteByAProcessThatHasNotHeardAClearLandsInTheNewNamespace) {
  HookGate bus("bus:clear", "1");  // a hears the clear only at the end
  auto a = process_with_hook(bus);
  auto b = process();
  wait_for_bus(*a);
  ASSERT_TRUE(b->clear());  // version 0 -> 1
  ASSERT_TRUE(bus.wait_held());
  VersionedRow row;
  TestLoader free_gate;
  ASSERT_EQ(*b->get_or_load("k", row.loader(free_gate)), "v1");  // stored under version 1
  row.bump();
  ASSERT_TRUE(a->set("k", "v2").ok());  // a still knows version 0
  bus.release();
  EXPECT_EQ(*process()->get("k"), "v2") << "the write reached the namespace readers use";
  EXPECT_TRUE(eventually([&] { return b->get("k").has_value() && *b->get("k") == "v2"; }));
}

// ---- 4. a tag invalidation during a load ------------------------------------------------------

TEST_F(CacheRaceTest, ATagInvalidationDuringALoadIsNotLost) {
  auto a = process();
  auto b = process();
  wait_for_bus(*a);
  auto load = held_tagged_load(*a, "k", "t");
  ASSERT_TRUE(loader_.wait_running(1));
  clock_->advance(2s);
  const std::uint64_t before = received(*a);
  ASSERT_TRUE(b->invalidate_tag("t"));
  ASSERT_TRUE(received_more(*a, before));
  clock_->advance(2s);  // the load ends after the invalidation
  loader_.release();
  EXPECT_EQ(*load.get(), "value-of-k");
  // Its read began before the invalidation: stale everywhere, however late it was stored.
  EXPECT_FALSE(process()->get("k").has_value());
  EXPECT_FALSE(a->get("k").has_value());
  EXPECT_FALSE(b->get("k").has_value());
}

TEST_F(CacheRaceTest, ALoadStoredBeforeItsProcessHeardATagInvalidationIsStaleEverywhere) {
  HookGate bus("bus:tag", "t");  // a hears the invalidation only after its load is stored
  auto a = process_with_hook(bus);
  auto b = process();
  auto load = held_tagged_load(*a, "k", "t");
  ASSERT_TRUE(loader_.wait_running(1));
  clock_->advance(2s);
  ASSERT_TRUE(b->invalidate_tag("t"));
  ASSERT_TRUE(bus.wait_held());
  clock_->advance(2s);
  loader_.release();
  EXPECT_EQ(*load.get(), "value-of-k");
  // Stored in L2, created when its read began -- before the invalidation.
  EXPECT_FALSE(process()->get("k").has_value());
  bus.release();
  EXPECT_TRUE(eventually([&] { return !a->get("k").has_value(); }));
}

// ---- 5. get() racing a write -----------------------------------------------------------------

TEST_F(CacheRaceTest, AGetRacingItsOwnProcesssSetDoesNotRevertIt) {
  auto writer = process();
  ASSERT_TRUE(writer->set("k", "old").ok());
  HookGate gate("get:l2_read", "k");
  auto a = process_with_hook(gate);
  auto read = std::async(std::launch::async, [&] { return a->get("k"); });
  ASSERT_TRUE(gate.wait_held());  // a has read "old" from L2, not yet stored it in L1
  ASSERT_TRUE(a->set("k", "new").ok());
  gate.release();
  EXPECT_EQ(*read.get(), "old") << "it began before the write";
  EXPECT_EQ(*a->get("k"), "new") << "but did not put the old value back in L1";
}

TEST_F(CacheRaceTest, AGetRacingAnotherProcesssWriteStoresNothing) {
  auto writer = process();
  ASSERT_TRUE(writer->set("k", "old").ok());
  HookGate gate("get:l2_read", "k");
  auto a = process_with_hook(gate);
  wait_for_bus(*a);
  auto read = std::async(std::launch::async, [&] { return a->get("k"); });
  ASSERT_TRUE(gate.wait_held());
  const std::uint64_t before = received(*a);
  ASSERT_TRUE(writer->set("k", "new").ok());
  ASSERT_TRUE(received_more(*a, before));
  gate.release();
  EXPECT_EQ(*read.get(), "old");
  EXPECT_EQ(*a->get("k"), "new");
}

// ---- 6. read-your-writes with invalidate-on-write ---------------------------------------------

TEST_F(CacheRaceTest, ACallerAfterAnInvalidationNeverGetsTheLoadThatBeganBeforeIt) {
  auto a = process();
  VersionedRow row;
  TestLoader first_gate;
  first_gate.hold();
  auto before =
      std::async(std::launch::async, [&] { return a->get_or_load("k", row.loader(first_gate)); });
  ASSERT_TRUE(first_gate.wait_running(1));  // read v1, held
  row.bump();                               // db.update()
  ASSERT_TRUE(a->invalidate("k"));          // invalidate(k)
  TestLoader free_gate;
  auto after = a->get_or_load("k", row.loader(free_gate));  // get_or_load(k)
  ASSERT_TRUE(after.has_value()) << (after.error() ? after.error()->message : "miss");
  EXPECT_EQ(*after, "v2");
  first_gate.release();
  EXPECT_EQ(*before.get(), "v1") << "it was waiting before the invalidation";
  EXPECT_EQ(*a->get("k"), "v2") << "the older load did not overwrite L1";
  EXPECT_EQ(*process()->get("k"), "v2") << "nor L2";
}

TEST_F(CacheRaceTest, ACallerAfterATagInvalidationNeverGetsTheLoadThatBeganBeforeIt) {
  auto a = process();
  wait_for_bus(*a);  // its first confirmation drops everything: let it pass first
  VersionedRow row;
  TestLoader first_gate;
  first_gate.hold();
  auto tagged = [&](TestLoader& gate) {
    return [&row, &gate](LoadContext& c) {
      c.add_tag("t");
      return row.loader(gate)(c.key());
    };
  };
  auto before =
      std::async(std::launch::async, [&] { return a->get_or_load("k", tagged(first_gate)); });
  ASSERT_TRUE(first_gate.wait_running(1));
  row.bump();
  clock_->advance(2s);
  ASSERT_TRUE(a->invalidate_tag("t"));
  // This caller joins the flight (its tag is not known yet) but may not take its value.
  TestLoader free_gate;
  auto after =
      std::async(std::launch::async, [&] { return a->get_or_load("k", tagged(free_gate)); });
  ASSERT_TRUE(
      eventually([&] { return metric(*a, series("tiercache_coalesced_waits_total", "")) >= 1; }));
  first_gate.release();
  EXPECT_EQ(*before.get(), "v1");
  auto r = after.get();
  ASSERT_TRUE(r.has_value()) << (r.error() ? r.error()->message : "miss");
  EXPECT_EQ(*r, "v2");
}

// ---- 7. tag knowledge ----------------------------------------------------------------------

TEST_F(CacheRaceTest, AnL2EntryCheckedAgainstItsTagsWhileATagInvalidationArrivesIsNotKept) {
  auto writer = process();
  WriteOptions tagged;
  tagged.tags = {"t"};
  ASSERT_TRUE(writer->set("k", "old", tagged).ok());
  clock_->advance(2s);
  HookGate gate("get:l2_read", "k");
  auto a = process_with_hook(gate);
  wait_for_bus(*a);
  auto read = std::async(std::launch::async, [&] { return a->get("k"); });
  ASSERT_TRUE(gate.wait_held());  // decoded and checked against tag t: not invalidated yet
  const std::uint64_t before = received(*a);
  ASSERT_TRUE(writer->invalidate_tag("t"));
  ASSERT_TRUE(received_more(*a, before));
  gate.release();
  EXPECT_EQ(*read.get(), "old");
  EXPECT_FALSE(a->get("k").has_value()) << "the tag-invalidated entry was not kept in L1";
}

TEST_F(CacheRaceTest, ATagTimeReadFromRedisNeverHidesANewerOneFromTheBus) {
  auto writer = process();
  ASSERT_TRUE(writer->invalidate_tag("t"));  // an old invalidation: Redis holds its time
  clock_->advance(2s);
  HookGate gate("tags:read", "t");
  auto a = process_with_hook(gate);
  wait_for_bus(*a);
  VersionedRow row;
  TestLoader free_gate;
  auto tagged = [&](LoadContext& c) {
    c.add_tag("t");
    return row.loader(free_gate)(c.key());
  };
  ASSERT_EQ(*a->get_or_load("k", tagged), "v1");  // created after the old invalidation
  // The next read checks tag t, unknown to a: it asks Redis, and is held with the answer.
  auto check = std::async(std::launch::async, [&] { return a->get_or_load("k", tagged); });
  ASSERT_TRUE(gate.wait_held());
  row.bump();
  clock_->advance(2s);
  const std::uint64_t before = received(*a);
  ASSERT_TRUE(writer->invalidate_tag("t"));  // a newer one, heard on the bus meanwhile
  ASSERT_TRUE(received_more(*a, before));
  gate.release();
  check.get();  // old or new: it was concurrent with the invalidation
  EXPECT_EQ(*a->get_or_load("k", tagged), "v2") << "the newer tag time was kept";
}

// ---- fail-safe and invalidation ---------------------------------------------------------------

TEST_F(CacheRaceTest, AnInvalidatedValueIsNeverServedStale) {
  options_.ttl = 1s;
  options_.soft_timeout = 5s;
  auto a = process();
  ASSERT_EQ(*a->get_or_load("k", loader_.fn()), "value-of-k");
  clock_->advance(2s);  // expired: a stale candidate for fail-safe
  loader_.set_failing(true);
  loader_.hold();
  auto read = std::async(std::launch::async, [&] { return a->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(loader_.wait_running(1));
  ASSERT_TRUE(a->invalidate("k"));
  loader_.release();  // the load fails: the stale value was invalidated meanwhile
  auto r = read.get();
  EXPECT_FALSE(r.has_value()) << "served " << *r;
  ASSERT_NE(r.error(), nullptr);
}

// ---- async reads ----------------------------------------------------------------------------

TEST_F(CacheRaceTest, AsyncMissesAreBoundedAndTheirDeadlinesCountFromTheCall) {
  options_.max_concurrent_loads = 1;  // one pool thread for asynchronous reads
  options_.max_queued_async_reads = 3;
  options_.hard_timeout = 300ms;
  auto a = process();
  loader_.hold();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::future<CacheResult<std::string>>> reads;
  for (int i = 0; i < 4; ++i) {
    reads.push_back(a->async_get_or_load("k" + std::to_string(i), loader_.fn(), asio::use_future));
  }
  // Three wait (the first holds the thread); the fourth is refused at once.
  auto refused = reads[3].get();
  ASSERT_NE(refused.error(), nullptr);
  EXPECT_EQ(refused.error()->code, CacheErrc::kOverloaded);
  for (int i = 0; i < 3; ++i) {
    auto r = reads[i].get();
    ASSERT_NE(r.error(), nullptr) << i;
    EXPECT_EQ(r.error()->code, CacheErrc::kLoaderTimeout) << i;
  }
  // Each waited at most its own hard timeout from its call, not the ones before it in line.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3 * options_.hard_timeout);
  loader_.release();
}

TEST_F(CacheRaceTest, AnAsyncReadRefusedAtOnceDoesNotRunItsHandlerInsideTheCall) {
  options_.max_queued_async_reads = 0;  // every miss is refused
  auto a = process();
  asio::io_context io;
  bool ran = false;
  CacheErrc code{};
  a->async_get_or_load("k", loader_.fn(), asio::bind_executor(io, [&](CacheResult<std::string> r) {
                         ran = true;
                         code = r.error() ? r.error()->code : CacheErrc{};
                       }));
  EXPECT_FALSE(ran) << "completed inside async_get_or_load";
  io.run();
  EXPECT_TRUE(ran);
  EXPECT_EQ(code, CacheErrc::kOverloaded);
}

TEST_F(CacheRaceTest, ShutdownCompletesWaitingCallersAndQueuedAsyncReadsAtOnce) {
  options_.max_concurrent_loads = 1;
  options_.hard_timeout = 60s;
  auto a = process();
  wait_for_bus(*a);
  loader_.hold();
  Cache<std::string>* const cache = a.get();  // the callers' view; `a` itself is reset below
  auto waiting =
      std::async(std::launch::async, [&] { return cache->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(loader_.wait_running(1));
  auto queued = a->async_get_or_load("other", loader_.fn(), asio::use_future);
  auto joined =
      std::async(std::launch::async, [&] { return cache->get_or_load("k", loader_.fn()); });
  ASSERT_TRUE(
      eventually([&] { return metric(*a, series("tiercache_coalesced_waits_total", "")) >= 1; }));
  const auto start = std::chrono::steady_clock::now();
  std::thread destroy([&] { a.reset(); });
  EXPECT_EQ(waiting.get().error()->code, CacheErrc::kClosed);
  EXPECT_EQ(joined.get().error()->code, CacheErrc::kClosed);
  EXPECT_EQ(queued.get().error()->code, CacheErrc::kClosed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s) << "not the 60 s hard timeout";
  loader_.release();
  destroy.join();
}

// ---- smaller ------------------------------------------------------------------------------------

TEST(CacheRaceRedis, ATimedOutReadOrLockReleasesTheLockItMayHaveTaken) {
  test::RedisProcess redis = test::RedisProcess::start();
  redis::Result<ClientConfig> config = redis::parse_url(redis.url());
  ASSERT_TRUE(config.ok());
  CacheOptions options;
  options.name = "tc-race-token";
  options.l2_timeout = 150ms;
  options.lock_ttl = 30s;
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> a(options, std::make_shared<Client>(*config));
  ASSERT_TRUE(a.get("warm-up").is_miss());  // the namespace version is known
  redis.pause();
  auto r = a.get_or_load("k", [](std::string_view) { return std::string("v"); });
  EXPECT_EQ(*r, "v");
  redis.resume();  // the script runs now, and takes the lock with a's token
  Client probe(*config);
  EXPECT_TRUE(eventually([&] {
    auto exists = probe.command("EXISTS", "tc-race-token:lock:0:{k}");
    return exists.ok() && exists->integer == 0;
  })) << "the lock would block every process for lock_ttl";
}

TEST(CacheRaceRedis, AWriteRedisDidNotTakeIsNotOk) {
  test::RedisProcess redis = test::RedisProcess::start();
  redis::Result<ClientConfig> config = redis::parse_url(redis.url());
  ASSERT_TRUE(config.ok());
  CacheOptions options;
  options.name = "tc-race-write";
  options.l2_timeout = 100ms;
  options.logger = [](LogLevel, std::string_view) {};
  Cache<std::string> a(options, std::make_shared<Client>(*config));
  ASSERT_TRUE(a.set("k", "v1").ok());
  redis.pause();
  WriteResult w = a.set("k", "v2");
  redis.resume();
  EXPECT_FALSE(w.ok());
  EXPECT_FALSE(w.l2_written);
  ASSERT_NE(w.error, nullptr);
  EXPECT_EQ(w.error->code, CacheErrc::kL2Unreachable);
  EXPECT_EQ(*a.get("k"), "v2") << "this process has the new value";
}

}  // namespace
}  // namespace tiercache
