// The two caches the benchmarks compare, behind one tiny interface:
//   - TiercacheAdapter: tiercache::LocalCache<uint64_t, uint64_t>, default policy
//     (adaptive W-TinyLFU), fixed seed;
//   - MutexLruAdapter:  the MutexLru baseline of tools/sim/mutex_lru.hpp (std::mutex +
//     std::list + std::unordered_map, values behind std::shared_ptr<const V>).
//
// get() reads the value through the handle the cache returns (as a caller would) and
// returns whether it was a hit; the handle and the value go through DoNotOptimize-like
// escapes in the benchmarks, not here, so this header does not depend on Google Benchmark.
//
// TIERCACHE_BENCH_HAVE_MUTEX_LRU is 1 when the baseline header is present.

#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tiercache/local_cache.hpp"

#if __has_include("sim/mutex_lru.hpp")
#include "sim/mutex_lru.hpp"
#define TIERCACHE_BENCH_HAVE_MUTEX_LRU 1
#else
#define TIERCACHE_BENCH_HAVE_MUTEX_LRU 0
#endif

namespace tiercache::bench {

// Seed of every LocalCache in the benchmarks (reproducible hashing and admission).
inline constexpr std::uint64_t kCacheSeed = 0x7469657263616368ULL;  // "tiercach"

class TiercacheAdapter {
 public:
  using Cache = tiercache::LocalCache<std::uint64_t, std::uint64_t>;
  static constexpr const char* kName = "tiercache";

  explicit TiercacheAdapter(std::size_t capacity) : cache_(options(capacity)) {}

  // Looks `key` up; on a hit stores the value in `*out`.
  bool get(std::uint64_t key, std::uint64_t* out) {
    const Cached<std::uint64_t> v = cache_.get(key);
    if (!v) return false;
    *out = *v;
    return true;
  }
  void put(std::uint64_t key, std::uint64_t value) { cache_.put(key, value); }
  void cleanup() { cache_.cleanup(); }
  std::size_t size() const { return cache_.size(); }
  Cache& cache() { return cache_; }

 private:
  static LocalCacheOptions options(std::size_t capacity) {
    LocalCacheOptions o;
    o.max_entries = capacity;
    o.seed = kCacheSeed;
    return o;  // policy: the default (adaptive W-TinyLFU)
  }
  Cache cache_;
};

#if TIERCACHE_BENCH_HAVE_MUTEX_LRU
class MutexLruAdapter {
 public:
  using Cache = MutexLru<std::uint64_t, std::uint64_t>;
  static constexpr const char* kName = "mutex_lru";

  explicit MutexLruAdapter(std::size_t capacity) : cache_(capacity) {}

  bool get(std::uint64_t key, std::uint64_t* out) {
    const std::shared_ptr<const std::uint64_t> v = cache_.get(key);
    if (!v) return false;
    *out = *v;
    return true;
  }
  void put(std::uint64_t key, std::uint64_t value) { cache_.put(key, value); }
  void cleanup() {}
  Cache& cache() { return cache_; }

 private:
  Cache cache_;
};
#endif

}  // namespace tiercache::bench
