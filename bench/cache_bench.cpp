// Micro-benchmarks of Cache<V> (the two-tier facade) against raw LocalCache: what the facade
// adds to an L1 hit -- freshness, tag and bus checks, metrics -- must stay under 2x a raw get.
//
// Benchmarks (1 and 2 threads; items_per_second is aggregate over threads):
//   l1_hit/local_cache     LocalCache<std::string, std::string>::get; 10k entries, each with
//                          a TTL (the cache always has one); Zipf(0.99) keys, all present.
//   l1_hit/get_or_load     Cache<std::string>::get_or_load of the same keys, all in L1 (the
//                          loader is never called). L1-only, or with L2 and its invalidation
//                          bus when TIERCACHE_BENCH_REDIS_URL is set (the bus check is then
//                          real).
//   get_or_load_many       (TIERCACHE_BENCH_REDIS_URL only) 100 keys, 90 of them in L2 and
//                          none in L1: counters report L2 requests and loader calls per call.
// Keys are precomputed strings like "user:123456" (short-string optimisation applies, as it
// would for most real keys).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tiercache/cache.hpp"
#include "tiercache/local_cache.hpp"
#include "zipf.hpp"

namespace tiercache::bench {
namespace {

constexpr std::size_t kEntries = 10'000;
constexpr std::size_t kStreamLength = 1u << 20;
constexpr std::size_t kStreamMask = kStreamLength - 1;
constexpr double kTheta = 0.99;

const std::vector<std::string>& key_stream(int thread) {
  static const std::vector<std::vector<std::string>> streams = [] {
    const ZipfDistribution zipf(kEntries, kTheta);
    std::vector<std::vector<std::string>> all;
    for (int t = 0; t < 2; ++t) {
      std::vector<std::string> keys;
      keys.reserve(kStreamLength);
      SplitMix64 rng(static_cast<std::uint64_t>(t) + 11);
      for (std::size_t i = 0; i < kStreamLength; ++i)
        keys.push_back("user:" + std::to_string(zipf(rng)));
      all.push_back(std::move(keys));
    }
    return all;
  }();
  return streams[static_cast<std::size_t>(thread)];
}

std::string value_of(std::size_t i) { return "value-of-user-" + std::to_string(i); }

LocalCache<std::string, std::string>& raw_cache() {
  static LocalCache<std::string, std::string>* cache = [] {
    LocalCacheOptions o;
    o.max_entries = kEntries * 2;
    auto* c = new LocalCache<std::string, std::string>(o);
    for (std::size_t i = 0; i < kEntries; ++i) {
      c->put("user:" + std::to_string(i), value_of(i), std::chrono::hours(1));
    }
    return c;
  }();
  return *cache;
}

std::shared_ptr<redis::Client> bench_client() {
  const char* url = std::getenv("TIERCACHE_BENCH_REDIS_URL");
  if (url == nullptr) return nullptr;
  redis::Result<redis::ClientConfig> config = redis::parse_url(url);
  if (!config.ok()) return nullptr;
  return std::make_shared<redis::Client>(*config);
}

Cache<std::string>& two_tier_cache() {
  static Cache<std::string>* cache = [] {
    CacheOptions o;
    o.name =
        "tc-bench-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    o.l1.max_entries = kEntries * 2;
    o.ttl = std::chrono::hours(1);
    o.l1_max_ttl = std::chrono::hours(1);
    auto* c = new Cache<std::string>(o, bench_client());
    for (std::size_t i = 0; i < kEntries; ++i) {
      c->get_or_load("user:" + std::to_string(i),
                     [i](std::string_view) { return std::optional<std::string>(value_of(i)); });
    }
    return c;
  }();
  return *cache;
}

void l1_hit_local_cache(benchmark::State& state) {
  auto& cache = raw_cache();
  const auto& keys = key_stream(state.thread_index());
  std::size_t i = 0, hits = 0;
  for (auto _ : state) {
    Cached<std::string> v = cache.get(keys[i++ & kStreamMask]);
    hits += v.has_value();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
  if (hits != static_cast<std::size_t>(state.iterations()))
    state.SkipWithError("a key was missing");
}

void l1_hit_get_or_load(benchmark::State& state) {
  auto& cache = two_tier_cache();
  const auto& keys = key_stream(state.thread_index());
  std::size_t i = 0, hits = 0;
  auto never = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  for (auto _ : state) {
    CacheResult<std::string> v = cache.get_or_load(keys[i++ & kStreamMask], never);
    hits += v.source() == Source::kL1;
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
  if (hits != static_cast<std::size_t>(state.iterations()))
    state.SkipWithError("not every read was an L1 hit");
}

void get_or_load_many(benchmark::State& state) {
  auto client = bench_client();
  if (!client) {
    state.SkipWithError("TIERCACHE_BENCH_REDIS_URL not set");
    return;
  }
  std::uint64_t requests = 0, loader_calls = 0, rounds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // A fresh namespace each round: 90 keys written by another "process", none in our L1.
    CacheOptions o;
    o.name = "tc-bench-many-" + std::to_string(rounds++) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    std::vector<std::string> keys;
    {
      Cache<std::string> writer(o, client);
      for (int k = 0; k < 100; ++k) keys.push_back("item:" + std::to_string(k));
      for (int k = 0; k < 90; ++k) {
        writer.get_or_load(keys[k], [](std::string_view key) {
          return std::optional<std::string>(std::string(key));
        });
      }
    }
    auto reader_client = bench_client();
    Cache<std::string> reader(o, reader_client);
    reader.get("warm-up");  // the namespace version is read once per process
    const redis::ClientStats before = reader_client->stats();
    state.ResumeTiming();
    auto results = reader.get_or_load_many(keys, [&](const std::vector<std::string>& missing) {
      ++loader_calls;
      std::map<std::string, std::string> out;
      for (const auto& k : missing) out[k] = k;
      return out;
    });
    state.PauseTiming();
    requests += reader_client->stats().requests - before.requests;
    benchmark::DoNotOptimize(results);
    state.ResumeTiming();
  }
  state.counters["l2_requests_per_call"] =
      benchmark::Counter(static_cast<double>(requests) / static_cast<double>(state.iterations()));
  state.counters["loader_calls_per_call"] = benchmark::Counter(
      static_cast<double>(loader_calls) / static_cast<double>(state.iterations()));
}

BENCHMARK(l1_hit_local_cache)->Name("l1_hit/local_cache")->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(l1_hit_get_or_load)->Name("l1_hit/get_or_load")->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(get_or_load_many)->Name("get_or_load_many")->UseRealTime()->Iterations(50);

}  // namespace
}  // namespace tiercache::bench

BENCHMARK_MAIN();
