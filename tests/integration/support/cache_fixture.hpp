// Test support for Cache<V> integration tests: the shared server of scripts/redis-env.sh,
// polling with a deadline, unique cache names, a loader that can be held, and the CacheTest
// fixture whose process() makes a Cache standing for one process (its own client, L1 and bus
// subscription).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "tiercache/cache.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache {
namespace {

using namespace std::chrono_literals;
using redis::Client;
using redis::ClientConfig;

std::optional<ClientConfig> shared_server() {
  const char* url = std::getenv("TIERCACHE_TEST_REDIS_URL");
  if (url == nullptr) return std::nullopt;
  redis::Result<ClientConfig> config = redis::parse_url(url);
  if (!config.ok()) return std::nullopt;
  return config.value();
}

#define REQUIRE_SHARED_SERVER(config)                   \
  std::optional<ClientConfig> config = shared_server(); \
  if (!config) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_URL not set (scripts/redis-env.sh)"

// Polls `condition` until it holds or `limit` passes: for effects that travel through Redis
// (pub/sub) and background threads. Returns whether it held.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A unique cache name per test (and per run), so tests on a shared server never meet.
std::string unique_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("tc-test-") + info->name() + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// A loader that counts its calls and can be held (blocked) until released.
class TestLoader {
 public:
  TestLoader() = default;
  // Lets a held load go, so that a test that failed half-way does not hang on it.
  ~TestLoader() { release(); }
  std::optional<std::string> load(std::string_view key) {
    calls_.fetch_add(1);
    std::unique_lock lock(mutex_);
    ++running_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !held_; });
    --running_;
    if (fail_) throw std::runtime_error("database down");
    if (absent_) return std::nullopt;
    return prefix_ + std::string(key);
  }
  auto fn() {
    return [this](std::string_view key) { return load(key); };
  }
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void release() {
    std::lock_guard lock(mutex_);
    held_ = false;
    changed_.notify_all();
  }
  bool wait_running(int n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return running_ >= n; });
  }
  void set_prefix(std::string p) {
    std::lock_guard lock(mutex_);
    prefix_ = std::move(p);
  }
  void set_failing(bool f) {
    std::lock_guard lock(mutex_);
    fail_ = f;
  }
  void set_absent(bool a) {
    std::lock_guard lock(mutex_);
    absent_ = a;
  }
  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  int running_ = 0;
  bool held_ = false;
  bool fail_ = false;
  bool absent_ = false;
  std::string prefix_ = "value-of-";
};

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = shared_server();
    if (!config_) GTEST_SKIP() << "TIERCACHE_TEST_REDIS_URL not set (scripts/redis-env.sh)";
    options_.name = unique_name();
    options_.clock = clock_;
    options_.seed = 42;
    options_.jitter = 0;
    options_.early_refresh_beta = 0;
    options_.soft_timeout = 50ms;
    options_.hard_timeout = 5s;
    options_.logger = [](LogLevel, std::string_view) {};
  }

  // A cache standing for one process: its own client, L1 and bus subscription.
  std::unique_ptr<Cache<std::string>> process() {
    return std::make_unique<Cache<std::string>>(options_, std::make_shared<Client>(*config_));
  }
  // Waits until `cache`'s invalidation bus is subscribed (so it hears what others publish).
  void wait_for_bus(Cache<std::string>& cache) {
    ASSERT_TRUE(eventually([&] {
      return cache.render_prometheus().find("tiercache_bus_connected{cache=\"" + options_.name +
                                            "\"} 1") != std::string::npos;
    }));
    // Connected is not yet subscribed: a round trip through the bus proves it.
    Client probe(*config_);
    const std::string key = "probe-" + std::to_string(probes_++);
    auto other = process();
    ASSERT_TRUE(eventually([&] {
      other->set(key, "x");
      return cache.get(key).has_value() && (other->invalidate(key), true) &&
             eventually([&] { return !cache.get(key).has_value(); }, 200ms);
    }));
  }
  std::string raw_get(const std::string& redis_key) {
    Client client(*config_);
    auto r = client.command("GET", redis_key);
    return r.ok() && r->is_string() ? r->string : std::string();
  }
  std::uint64_t metric(Cache<std::string>& cache, const std::string& series) {
    const std::string text = cache.render_prometheus();
    const std::size_t at = text.find(series + " ");
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(at + series.size() + 1));
  }
  std::string series(const std::string& family, const std::string& labels) {
    return family + "{cache=\"" + options_.name + "\"" + (labels.empty() ? "" : "," + labels) + "}";
  }

  std::optional<ClientConfig> config_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  CacheOptions options_;
  TestLoader loader_;
  int probes_ = 0;
};

}  // namespace
}  // namespace tiercache
