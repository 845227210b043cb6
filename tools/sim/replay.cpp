// Trace replay through LocalCache, MutexLru and Belady's MIN (see replay.hpp).
//
// Both caches are driven by the same templates, with the same value semantics: the value
// of key k is k, stored once and handed back by reference (Cached<V> / shared_ptr<const V>),
// and every hit reads it, so neither cache can be credited for work the compiler dropped.

#include "sim/replay.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "sim/mutex_lru.hpp"
#include "sim/trace.hpp"
#include "tiercache/local_cache.hpp"

namespace tiercache::sim {
namespace {

using TiercacheCache = LocalCache<std::uint64_t, std::uint64_t>;
using BaselineCache = MutexLru<std::uint64_t, std::uint64_t>;

LocalCacheOptions local_cache_options(Policy policy, std::size_t entries, std::uint64_t seed) {
  LocalCacheOptions options;
  options.max_entries = entries;
  options.policy =
      policy == Policy::kTiercacheLru ? EvictionPolicy::kLru : EvictionPolicy::kAdaptiveTinyLfu;
  options.seed = seed;
  return options;
}

template <class Cache>
HitCount replay_through(Cache& cache, std::span<const std::uint64_t> trace) {
  HitCount count;
  count.requests = trace.size();
  for (const std::uint64_t key : trace) {
    if (cache.get(key)) {
      ++count.hits;
    } else {
      cache.put(key, key);
    }
  }
  return count;
}

// Puts the first `count` distinct keys of `trace`; returns how many there were.
template <class Cache>
std::size_t preload(Cache& cache, std::span<const std::uint64_t> trace, std::size_t count) {
  std::unordered_set<std::uint64_t> seen;
  seen.reserve(count);
  for (const std::uint64_t key : trace) {
    if (seen.size() == count) break;
    if (seen.insert(key).second) cache.put(key, key);
  }
  if constexpr (requires { cache.cleanup(); }) cache.cleanup();
  return seen.size();
}

template <class Cache>
ThroughputResult read_concurrently(Cache& cache, std::span<const std::uint64_t> trace,
                                   unsigned threads, std::chrono::nanoseconds duration) {
  // One line per reader: the counters are written once, at the end, but stay apart anyway.
  struct alignas(64) ReaderTotals {
    std::uint64_t operations = 0;
    std::uint64_t hits = 0;
    std::uint64_t checksum = 0;
  };
  std::vector<ReaderTotals> totals(threads);
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};

  const auto reader = [&](unsigned index) {
    const std::size_t n = trace.size();
    // Spread the starting points over the trace. n * index fits in 64 bits: n keys are in
    // memory (n < 2^40) and index < threads (< 2^24 in any conceivable run).
    std::size_t position = static_cast<std::size_t>(std::uint64_t{n} * index / threads);
    ReaderTotals local;
    ready.fetch_add(1, std::memory_order_release);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    do {
      for (std::uint64_t i = 0; i < kReadsPerStopCheck; ++i) {
        const auto value = cache.get(trace[position]);
        if (value) {
          ++local.hits;
          local.checksum += *value;
        }
        if (++position == n) position = 0;
      }
      local.operations += kReadsPerStopCheck;
    } while (!stop.load(std::memory_order_relaxed));
    totals[index] = local;
  };

  std::vector<std::thread> workers;
  workers.reserve(threads);
  try {
    for (unsigned t = 0; t < threads; ++t) workers.emplace_back(reader, t);
  } catch (...) {
    stop.store(true);
    go.store(true);
    for (std::thread& w : workers) w.join();
    throw;
  }
  while (ready.load(std::memory_order_acquire) < threads) std::this_thread::yield();

  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(duration);
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& w : workers) w.join();
  const auto end = std::chrono::steady_clock::now();

  ThroughputResult result;
  result.seconds = std::chrono::duration<double>(end - start).count();
  for (const ReaderTotals& t : totals) {
    result.operations += t.operations;
    result.hits += t.hits;
    result.checksum += t.checksum;
  }
  return result;
}

template <class Cache>
ThroughputResult measure_with(Cache& cache, std::span<const std::uint64_t> trace,
                              std::size_t capacity, unsigned threads,
                              std::chrono::nanoseconds duration) {
  const std::size_t preloaded = preload(cache, trace, capacity / 2);
  ThroughputResult result = read_concurrently(cache, trace, threads, duration);
  result.preloaded_keys = preloaded;
  return result;
}

}  // namespace

std::optional<Policy> parse_policy(std::string_view name) {
  for (std::size_t i = 0; i < kPolicyNames.size(); ++i) {
    if (kPolicyNames[i] == name) return static_cast<Policy>(i);
  }
  return std::nullopt;
}

std::string_view policy_name(Policy policy) {
  return kPolicyNames.at(static_cast<std::size_t>(policy));
}

Simulator::Simulator(std::span<const std::uint64_t> trace, std::uint64_t cache_seed)
    : trace_(trace), cache_seed_(cache_seed), distinct_keys_(count_distinct_keys(trace)) {}

std::size_t Simulator::cache_entries(std::size_t capacity) const {
  return std::max<std::size_t>(1, std::min(capacity, distinct_keys_));
}

HitCount Simulator::replay(Policy policy, std::size_t capacity) {
  if (capacity == 0) throw std::invalid_argument("Simulator::replay: capacity must be > 0");
  switch (policy) {
    case Policy::kTiercache:
    case Policy::kTiercacheLru: {
      TiercacheCache cache(local_cache_options(policy, cache_entries(capacity), cache_seed_));
      return replay_through(cache, trace_);
    }
    case Policy::kLru: {
      BaselineCache cache(capacity);
      return replay_through(cache, trace_);
    }
    case Policy::kOptimal: {
      if (!oracle_) oracle_.emplace(trace_);
      return HitCount{trace_.size(), oracle_->hits(capacity)};
    }
  }
  throw std::invalid_argument("Simulator::replay: unknown policy");
}

ThroughputResult Simulator::measure_reads(Policy policy, std::size_t capacity, unsigned threads,
                                          std::chrono::nanoseconds duration) {
  if (capacity == 0) throw std::invalid_argument("Simulator::measure_reads: capacity must be > 0");
  if (threads == 0) throw std::invalid_argument("Simulator::measure_reads: threads must be > 0");
  if (trace_.empty()) throw std::invalid_argument("Simulator::measure_reads: empty trace");
  switch (policy) {
    case Policy::kTiercache:
    case Policy::kTiercacheLru: {
      TiercacheCache cache(local_cache_options(policy, cache_entries(capacity), cache_seed_));
      return measure_with(cache, trace_, capacity, threads, duration);
    }
    case Policy::kLru: {
      BaselineCache cache(capacity);
      return measure_with(cache, trace_, capacity, threads, duration);
    }
    case Policy::kOptimal:
      throw std::invalid_argument(
          "Simulator::measure_reads: optimal is an offline bound, it has no throughput");
  }
  throw std::invalid_argument("Simulator::measure_reads: unknown policy");
}

}  // namespace tiercache::sim
