// Cache<V> without Redis (L1-only mode): the read path, negative caching, single-flight,
// fail-safe, early refresh and invalidation, with time from a ManualClock. The same API as
// with Redis; the two-tier behaviour is tested against real servers in
// tests/integration/cache_test.cpp.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tiercache/cache.hpp"

namespace tiercache {
namespace {

using namespace std::chrono_literals;

class L1OnlyCache : public ::testing::Test {
 protected:
  L1OnlyCache() {
    options_.clock = clock_;
    options_.seed = 7;
    options_.jitter = 0;
    options_.early_refresh_beta = 0;
    options_.ttl = 10s;
    options_.negative_ttl = 2s;
    options_.logger = [](LogLevel, std::string_view) {};
  }
  Cache<std::string>& cache() {
    if (!cache_) cache_ = std::make_unique<Cache<std::string>>(options_);
    return *cache_;
  }
  auto loader() {
    return [this](std::string_view key) -> std::optional<std::string> {
      ++calls_;
      if (failing_) throw std::runtime_error("down");
      if (key.starts_with("missing")) return std::nullopt;
      return prefix_ + std::string(key);
    };
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  CacheOptions options_;
  std::unique_ptr<Cache<std::string>> cache_;
  std::atomic<int> calls_{0};
  std::atomic<bool> failing_{false};
  std::string prefix_ = "v-";
};

TEST_F(L1OnlyCache, LoadsOnceThenHits) {
  auto r = cache().get_or_load("a", loader());
  EXPECT_EQ(*r, "v-a");
  EXPECT_EQ(r.source(), Source::kLoader);
  auto again = cache().get_or_load("a", loader());
  EXPECT_EQ(again.source(), Source::kL1);
  EXPECT_EQ(again.get(), r.get());
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(cache().get("a").source(), Source::kL1);
  EXPECT_TRUE(cache().get("b").is_miss());
}

TEST_F(L1OnlyCache, ExpiresAfterTheTtl) {
  cache().get_or_load("a", loader());
  clock_->advance(10s);
  EXPECT_EQ(cache().get_or_load("a", loader()).source(), Source::kLoader);
  EXPECT_EQ(calls_, 2);
}

TEST_F(L1OnlyCache, RemembersNotFoundForTheNegativeTtl) {
  EXPECT_TRUE(cache().get_or_load("missing:1", loader()).is_negative());
  EXPECT_TRUE(cache().get_or_load("missing:1", loader()).is_negative());
  EXPECT_EQ(calls_, 1);
  clock_->advance(2s);
  EXPECT_TRUE(cache().get_or_load("missing:1", loader()).is_negative());
  EXPECT_EQ(calls_, 2);
}

TEST_F(L1OnlyCache, ConcurrentMissesShareOneLoad) {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  auto gated = [&](std::string_view key) -> std::optional<std::string> {
    ++calls_;
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return open; });
    return std::string(key);
  };
  Cache<std::string>& shared = cache();
  std::vector<std::future<CacheResult<std::string>>> callers;
  for (int i = 0; i < 16; ++i) {
    callers.push_back(
        std::async(std::launch::async, [&] { return shared.get_or_load("k", gated); }));
  }
  // Wait until every caller has joined the flight (the metric counts the followers).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (cache().render_prometheus().find("tiercache_coalesced_waits_total{cache=\"cache\"} 15") ==
             std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  {
    std::lock_guard lock(m);
    open = true;
  }
  cv.notify_all();
  for (auto& c : callers) EXPECT_EQ(*c.get(), "k");
  EXPECT_EQ(calls_, 1);
}

TEST_F(L1OnlyCache, FailSafeServesTheStaleValueWhenTheLoaderFails) {
  cache().get_or_load("a", loader());
  clock_->advance(11s);
  failing_ = true;
  auto r = cache().get_or_load("a", loader());
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r.is_stale());
  EXPECT_EQ(*r, "v-a");
  EXPECT_TRUE(cache().get_or_load("a", loader()).is_stale()) << "throttled, not reloaded";
  EXPECT_EQ(calls_, 2);
  clock_->advance(options_.fail_safe_throttle);
  failing_ = false;
  prefix_ = "w-";
  auto fresh = cache().get_or_load("a", loader());
  EXPECT_FALSE(fresh.is_stale());
  EXPECT_EQ(*fresh, "w-a");
}

TEST_F(L1OnlyCache, NoStaleValueMeansTheLoadersError) {
  failing_ = true;
  auto r = cache().get_or_load("a", loader());
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(r.error()->code, CacheErrc::kLoaderFailed);
  EXPECT_FALSE(r.has_value());
}

TEST_F(L1OnlyCache, StaleWindowZeroDisablesFailSafe) {
  options_.stale_window = 0s;
  cache().get_or_load("a", loader());
  clock_->advance(11s);
  failing_ = true;
  auto r = cache().get_or_load("a", loader());
  ASSERT_NE(r.error(), nullptr);
}

TEST_F(L1OnlyCache, EarlyRefreshReplacesAHotEntryBeforeItExpires) {
  options_.early_refresh_beta = 1.0;
  options_.ttl = 1s;
  auto slow = [&](std::string_view key) -> std::optional<std::string> {
    ++calls_;
    std::this_thread::sleep_for(20ms);  // the load time early refresh scales with
    return prefix_ + std::string(key);
  };
  cache().get_or_load("hot", slow);
  clock_->advance(999ms);  // 1 ms left, 20 ms load: P(refresh per hit) = 1 - e^-20
  prefix_ = "new-";
  EXPECT_EQ(*cache().get_or_load("hot", slow), "v-hot") << "served at once";
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (*cache().get("hot") != "new-hot" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(*cache().get("hot"), "new-hot");
  EXPECT_EQ(calls_, 2);
}

TEST_F(L1OnlyCache, SetAndInvalidate) {
  cache().get_or_load("a", loader());
  WriteResult w = cache().set("a", "written");
  EXPECT_TRUE(w.ok());
  EXPECT_FALSE(w.l2_written) << "no L2 in this mode";
  EXPECT_EQ(*cache().get("a"), "written");
  EXPECT_TRUE(cache().invalidate("a"));
  EXPECT_TRUE(cache().get("a").is_miss());
  cache().get_or_load("b", loader());
  EXPECT_TRUE(cache().clear());
  EXPECT_TRUE(cache().get("b").is_miss());
}

TEST_F(L1OnlyCache, TagInvalidationReloadsOnlyTaggedEntries) {
  auto tagged = [&](LoadContext& c) -> std::optional<std::string> {
    ++calls_;
    c.add_tag("group:1");
    return prefix_ + std::string(c.key());
  };
  cache().get_or_load("t", tagged);
  cache().get_or_load("u", loader());
  clock_->advance(1ms);
  EXPECT_TRUE(cache().invalidate_tag("group:1"));
  clock_->advance(1ms);
  prefix_ = "w-";
  EXPECT_EQ(*cache().get_or_load("t", tagged), "w-t");
  EXPECT_EQ(*cache().get_or_load("u", loader()), "v-u");
  EXPECT_EQ(calls_, 3);
}

TEST_F(L1OnlyCache, GetOrLoadManyCallsTheBatchLoaderOnceForTheMisses) {
  cache().get_or_load("k1", loader());
  std::vector<std::string> asked;
  auto results = cache().get_or_load_many({"k1", "k2", "missing:3"},
                                          [&](const std::vector<std::string>& keys) {
                                            asked = keys;
                                            std::map<std::string, std::string> out;
                                            for (const auto& k : keys) {
                                              if (!k.starts_with("missing")) out[k] = "b-" + k;
                                            }
                                            return out;
                                          });
  EXPECT_EQ(asked, (std::vector<std::string>{"k2", "missing:3"}));
  EXPECT_EQ(*results[0], "v-k1");
  EXPECT_EQ(*results[1], "b-k2");
  EXPECT_TRUE(results[2].is_negative());
}

TEST_F(L1OnlyCache, ABatchLoaderThatThrowsFailsEachMissingKey) {
  auto results = cache().get_or_load_many({"x", "y"}, [](const std::vector<std::string>&) {
    throw std::runtime_error("batch down");
    return std::map<std::string, std::string>();
  });
  for (const auto& r : results) {
    ASSERT_NE(r.error(), nullptr);
    EXPECT_EQ(r.error()->code, CacheErrc::kLoaderFailed);
  }
}

TEST(LocalCacheInsert, ReturnsAHandleEvenWhenTheEntryIsNotKept) {
  LocalCacheOptions o;
  o.max_entries = 1;
  LocalCache<int, std::string> l1(o);
  Cached<std::string> first = l1.insert(1, "one");
  Cached<std::string> second = l1.insert(2, "two");
  EXPECT_EQ(*first, "one");
  EXPECT_EQ(*second, "two");
  EXPECT_LE(l1.size(), 1u);
  Cached<std::string> lone = l1.wrap(3, "three");
  EXPECT_EQ(*lone, "three");
  EXPECT_FALSE(l1.get(3).found()) << "wrap does not store";
  Cached<std::string> none = l1.insert(4, "four", Duration::zero());
  EXPECT_EQ(*none, "four");
  EXPECT_FALSE(l1.get(4).found());
}

}  // namespace
}  // namespace tiercache
