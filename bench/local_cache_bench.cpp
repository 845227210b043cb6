// Micro-benchmarks: tiercache::LocalCache (default policy) against the MutexLru baseline
// (tools/sim/mutex_lru.hpp), same workloads, uint64_t keys and values.
//
// Benchmarks (names are <workload>/<cache>[/real_time][/threads:N]):
//   get_hit      100k-entry full cache; gets of present keys, Zipf(0.99) over them.
//   get_miss     same cache; gets of absent keys (uniform over 1M absent keys).
//   put_new      full 100k-entry cache; puts of never-seen keys (an eviction per put).
//   put_replace  full 100k-entry cache; puts of present keys, Zipf(0.99) over them.
//   mix          capacity 100k, Zipf(0.99) over 1M keys; 90% get (a miss is followed by a
//                put of the key), 10% put; 1 and 2 threads sharing one cache.
//   read_zipf    the throughput headline: the 100k most popular of 1M keys cached; gets
//                only, Zipf(0.99) over the 1M keys; 1 and 2 threads sharing one cache.
// Every benchmark reports items_per_second (operations per second of wall time, aggregate
// over threads: UseRealTime); the get workloads also report hit_ratio (hits / gets).
//
// Keys come from precomputed streams (bench/zipf.hpp; fixed seeds, one stream per thread;
// 1<<20 keys, 1<<23 for the 1M-key workloads), so no key generation is measured. Caches
// that are only read (get_*, read_zipf) and the mix cache are built once per process, in a
// function-local static (thread-safe initialisation, before the timed loop; the loop's
// start is a barrier of all threads), and reused by every run; put_* build a fresh cache
// per run, untimed. Successive runs continue each thread's stream where the last one
// stopped (stream_cursor).

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cache_adapters.hpp"
#include "zipf.hpp"

namespace tiercache::bench {
namespace {

constexpr std::size_t kCapacity = 100'000;       // entries in the benchmarked caches
constexpr std::uint64_t kUniverse = 1'000'000;   // distinct keys of the mix/read_zipf workloads
constexpr double kTheta = 0.99;                  // Zipf exponent
constexpr std::size_t kStreamLength = 1u << 20;  // keys per stream of the read caches
constexpr std::size_t kStreamMask = kStreamLength - 1;
// Keys per stream of the 1M-key workloads (mix, read_zipf): several times what a policy
// remembers (TinyLFU ages its counts every 10 * capacity accesses), so that the stream's
// wrapping around, which repeats the very same draws, cannot inflate the hit ratio.
constexpr std::size_t kUniverseStreamLength = 1u << 23;
constexpr std::size_t kUniverseStreamMask = kUniverseStreamLength - 1;
constexpr std::size_t kWarmupLength = 1u << 22;        // mix operations before the first run
constexpr std::size_t kNewKeyStreamLength = 1u << 22;  // distinct keys for put_new
constexpr int kMaxThreads = 2;

// Item-number ranges (keys are scramble_key(item)); disjoint, so absent keys are absent.
// Items [0, kUniverse) are ranked by popularity: item r has Zipf rank r.
constexpr std::uint64_t kAbsentItemBase = std::uint64_t{1} << 40;
constexpr std::uint64_t kNewItemBase = std::uint64_t{1} << 41;

// Seeds of the streams.
constexpr std::uint64_t kHitSeed = 1;
constexpr std::uint64_t kMissSeed = 2;
constexpr std::uint64_t kUniverseSeed = 100;  // + thread index
constexpr std::uint64_t kWarmupSeed = 99;

const ZipfDistribution& universe_zipf() {
  static const ZipfDistribution zipf(kUniverse, kTheta);
  return zipf;
}

// Zipf(0.99) over the kCapacity most popular items: every key is present in a read cache.
const std::vector<std::uint64_t>& hit_stream() {
  static const std::vector<std::uint64_t> keys =
      zipf_key_stream(ZipfDistribution(kCapacity, kTheta), kStreamLength, kHitSeed);
  return keys;
}

// Uniform over kUniverse items that are never inserted.
const std::vector<std::uint64_t>& miss_stream() {
  static const std::vector<std::uint64_t> keys =
      uniform_key_stream(kUniverse, kStreamLength, kMissSeed, kAbsentItemBase);
  return keys;
}

// Zipf(0.99) over kUniverse items, one independent stream per thread.
const std::vector<std::uint64_t>& universe_stream(int thread) {
  static const std::array<std::vector<std::uint64_t>, kMaxThreads> streams = [] {
    std::array<std::vector<std::uint64_t>, kMaxThreads> s;
    for (int t = 0; t < kMaxThreads; ++t) {
      s[static_cast<std::size_t>(t)] = zipf_key_stream(
          universe_zipf(), kUniverseStreamLength, kUniverseSeed + static_cast<std::uint64_t>(t));
    }
    return s;
  }();
  return streams.at(static_cast<std::size_t>(thread));
}

// kNewKeyStreamLength distinct keys that are in no other stream.
const std::vector<std::uint64_t>& new_key_stream() {
  static const std::vector<std::uint64_t> keys =
      sequential_key_stream(kNewKeyStreamLength, kNewItemBase);
  return keys;
}

// A cache holding exactly the kCapacity most popular items (what a perfect policy keeps).
template <class Cache>
std::unique_ptr<Cache> make_full_cache() {
  auto cache = std::make_unique<Cache>(kCapacity);
  for (std::uint64_t r = 0; r < kCapacity; ++r) cache->put(scramble_key(r), r);
  cache->cleanup();
  return cache;
}

// Shared by get_hit, get_miss and read_zipf: never written after construction.
template <class Cache>
Cache& read_cache() {
  static const std::unique_ptr<Cache> cache = make_full_cache<Cache>();
  return *cache;
}

// One operation of the mix workload; returns 1 for a get hit, 0 otherwise.
template <class Cache>
inline std::uint64_t mix_op(Cache& cache, std::uint64_t key, std::uint64_t value, bool is_put,
                            std::uint64_t& gets) {
  if (is_put) {
    cache.put(key, value);
    return 0;
  }
  ++gets;
  std::uint64_t v = 0;
  const bool hit = cache.get(key, &v);
  benchmark::DoNotOptimize(v);
  if (!hit) cache.put(key, value);
  return hit ? 1 : 0;
}

// The mix cache, warmed up by a separate kWarmupLength-operation stream so that the timed
// runs see the steady state rather than a cold cache. Shared by all runs and thread counts.
template <class Cache>
Cache& mix_cache() {
  static const std::unique_ptr<Cache> cache = [] {
    auto c = std::make_unique<Cache>(kCapacity);
    const std::vector<std::uint64_t> warmup =
        zipf_key_stream(universe_zipf(), kWarmupLength, kWarmupSeed);
    std::uint64_t gets = 0;
    for (std::size_t i = 0; i < warmup.size(); ++i) {
      mix_op(*c, warmup[i], i, i % 10 == 9, gets);
    }
    c->cleanup();
    return c;
  }();
  return *cache;
}

void report_items(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void report(benchmark::State& state, std::uint64_t hits, std::uint64_t gets) {
  report_items(state);
  // Every thread runs the same number of iterations: the mean of the per-thread ratios is
  // the overall ratio.
  state.counters["hit_ratio"] =
      benchmark::Counter(gets == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(gets),
                         benchmark::Counter::kAvgThreads);
}

// Where thread `thread` of benchmark `Tag` on `Cache` is in its key stream. Runs of a
// benchmark (the iteration-count probes, then the measured run; then the next thread count)
// go on from
// where the previous one stopped instead of replaying the start of the stream: a replay
// would find the keys it touched a moment ago still cached and inflate the hit ratio of a
// shared, written cache. Each thread writes only its own slot, and runs are separated by
// thread joins.
struct GetHitTag {};
struct GetMissTag {};
struct ReadZipfTag {};
struct MixTag {};

template <class Tag, class Cache>
std::size_t& stream_cursor(int thread) {
  static std::array<std::size_t, kMaxThreads> cursors{};
  return cursors.at(static_cast<std::size_t>(thread));
}

// Gets only, of `keys`, on `cache`.
template <class Tag, class Cache>
void run_gets(benchmark::State& state, Cache& cache, const std::vector<std::uint64_t>& keys) {
  const std::size_t mask = keys.size() - 1;  // sizes are powers of two
  std::size_t& cursor = stream_cursor<Tag, Cache>(state.thread_index());
  std::size_t i = cursor;
  std::uint64_t hits = 0;
  for (auto _ : state) {
    std::uint64_t v = 0;
    const bool hit = cache.get(keys[i & mask], &v);
    benchmark::DoNotOptimize(hit);
    benchmark::DoNotOptimize(v);
    hits += hit ? 1 : 0;
    ++i;
  }
  cursor = i;
  report(state, hits, static_cast<std::uint64_t>(state.iterations()));
}

template <class Cache>
void BM_GetHit(benchmark::State& state) {
  run_gets<GetHitTag>(state, read_cache<Cache>(), hit_stream());
}

template <class Cache>
void BM_GetMiss(benchmark::State& state) {
  run_gets<GetMissTag>(state, read_cache<Cache>(), miss_stream());
}

template <class Cache>
void BM_ReadZipf(benchmark::State& state) {
  run_gets<ReadZipfTag>(state, read_cache<Cache>(), universe_stream(state.thread_index()));
}

template <class Cache>
void BM_PutNew(benchmark::State& state) {
  const std::vector<std::uint64_t>& keys = new_key_stream();
  std::unique_ptr<Cache> cache = make_full_cache<Cache>();
  std::size_t i = 0;
  for (auto _ : state) {
    cache->put(keys[i & (kNewKeyStreamLength - 1)], i);
    ++i;
  }
  benchmark::DoNotOptimize(cache.get());
  report_items(state);
}

template <class Cache>
void BM_PutReplace(benchmark::State& state) {
  const std::vector<std::uint64_t>& keys = hit_stream();
  std::unique_ptr<Cache> cache = make_full_cache<Cache>();
  std::size_t i = 0;
  for (auto _ : state) {
    cache->put(keys[i & kStreamMask], i);
    ++i;
  }
  benchmark::DoNotOptimize(cache.get());
  report_items(state);
}

template <class Cache>
void BM_Mix(benchmark::State& state) {
  Cache& cache = mix_cache<Cache>();
  const std::vector<std::uint64_t>& keys = universe_stream(state.thread_index());
  std::size_t& cursor = stream_cursor<MixTag, Cache>(state.thread_index());
  std::size_t i = cursor;
  unsigned op = 0;  // every 10th operation is a put
  std::uint64_t hits = 0;
  std::uint64_t gets = 0;
  for (auto _ : state) {
    const bool is_put = ++op == 10;
    if (is_put) op = 0;
    hits += mix_op(cache, keys[i & kUniverseStreamMask], i, is_put, gets);
    ++i;
  }
  cursor = i;
  report(state, hits, gets);
}

template <class Cache>
std::string name(const char* workload) {
  return std::string(workload) + "/" + Cache::kName;
}

// Registers one workload for every cache, side by side in the run order.
template <class... Caches>
struct Registrar {
  template <void (*... Fns)(benchmark::State&)>
  static void single(const char* workload) {
    (benchmark::RegisterBenchmark(name<Caches>(workload).c_str(), Fns)->UseRealTime(), ...);
  }
  template <void (*... Fns)(benchmark::State&)>
  static void threaded(const char* workload) {
    (benchmark::RegisterBenchmark(name<Caches>(workload).c_str(), Fns)
         ->UseRealTime()
         ->Threads(1)
         ->Threads(kMaxThreads),
     ...);
  }
};

#if TIERCACHE_BENCH_HAVE_MUTEX_LRU
#define TIERCACHE_BENCH_CACHES TiercacheAdapter, MutexLruAdapter
#define TIERCACHE_BENCH_FNS(bm) bm<TiercacheAdapter>, bm<MutexLruAdapter>
#else
#define TIERCACHE_BENCH_CACHES TiercacheAdapter
#define TIERCACHE_BENCH_FNS(bm) bm<TiercacheAdapter>
#endif

void register_benchmarks() {
  using R = Registrar<TIERCACHE_BENCH_CACHES>;
  R::single<TIERCACHE_BENCH_FNS(BM_GetHit)>("get_hit");
  R::single<TIERCACHE_BENCH_FNS(BM_GetMiss)>("get_miss");
  R::single<TIERCACHE_BENCH_FNS(BM_PutNew)>("put_new");
  R::single<TIERCACHE_BENCH_FNS(BM_PutReplace)>("put_replace");
  R::threaded<TIERCACHE_BENCH_FNS(BM_Mix)>("mix");
  R::threaded<TIERCACHE_BENCH_FNS(BM_ReadZipf)>("read_zipf");
}

}  // namespace
}  // namespace tiercache::bench

int main(int argc, char** argv) {
  tiercache::bench::register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  using namespace tiercache::bench;
  benchmark::AddCustomContext("mutex_lru_baseline",
                              TIERCACHE_BENCH_HAVE_MUTEX_LRU ? "yes" : "absent");
  benchmark::AddCustomContext("capacity", std::to_string(kCapacity));
  benchmark::AddCustomContext("zipf_theta", "0.99");
  benchmark::AddCustomContext(
      "read_zipf_ideal_hit_ratio",
      std::to_string(universe_zipf().top_mass(kCapacity)));  // hottest 100k of 1M
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
