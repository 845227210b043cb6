// Micro-benchmarks of the metrics' hot paths (include/tiercache/metrics.hpp), which a cache
// pays on every read, against the obvious alternatives:
//   shared_atomic/fetch_add      the baseline: one std::atomic<uint64_t> that every thread
//                                fetch_adds (one cache line bouncing between cores)
//   counter/inc                  Counter::inc (striped by thread)
//   shared_histogram/observe     a histogram of unstriped atomic buckets and sum, shared by
//                                every thread: what Histogram would be without stripes
//   histogram/observe            Histogram::observe(Duration) with the default buckets
//   private_histogram/observe    the same, each thread on a Histogram of its own: the
//                                control, what observe costs when nothing is shared
// each at 1 and 2 threads updating the same object (but the control). Items per second are
// aggregate over threads (UseRealTime). Observations cycle through 64 precomputed durations spread
// over the default buckets (1 us .. 2 s), so the bucket search is not one predicted branch.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tiercache/metrics.hpp"

namespace tiercache::bench {
namespace {

constexpr int kMaxThreads = 2;
constexpr std::size_t kObservations = 64;  // a power of two

std::array<Duration, kObservations> make_observations() {
  std::array<Duration, kObservations> d{};
  std::uint64_t x = 12345;
  for (auto& v : d) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    // Log-uniform-ish: 1 us times 2^(0..20), plus a jitter.
    const int shift = static_cast<int>((x >> 33) % 21);
    v = Duration((std::int64_t{1000} << shift) + static_cast<std::int64_t>((x >> 50) % 1000));
  }
  return d;
}
const std::array<Duration, kObservations> kDurations = make_observations();

// One cache line to itself, so that benchmarks do not disturb each other.
struct alignas(detail::kCacheLine) PaddedAtomic {
  std::atomic<std::uint64_t> value{0};
};
PaddedAtomic shared_atomic;
Counter counter;
Histogram histogram;

// Histogram without stripes: the same bucket search, one shared array of atomics.
class SharedHistogram {
 public:
  SharedHistogram() : bounds_(Histogram::default_bounds()), counts_(bounds_.size() + 1) {
    for (const double b : bounds_) bounds_ns_.push_back(static_cast<std::int64_t>(b * 1e9));
  }
  void observe(Duration d) noexcept {
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), d.count()) - bounds_ns_.begin());
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(d.count()), std::memory_order_relaxed);
  }

 private:
  std::vector<double> bounds_;
  std::vector<std::int64_t> bounds_ns_;
  std::vector<std::atomic<std::uint64_t>> counts_;
  std::atomic<std::uint64_t> sum_ns_{0};
};
SharedHistogram shared_histogram;
Histogram private_histograms[kMaxThreads];

void BM_SharedAtomicFetchAdd(benchmark::State& state) {
  for (auto _ : state) shared_atomic.value.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}

void BM_CounterInc(benchmark::State& state) {
  for (auto _ : state) counter.inc();
  state.SetItemsProcessed(state.iterations());
}

void BM_SharedHistogramObserve(benchmark::State& state) {
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 17;
  for (auto _ : state) shared_histogram.observe(kDurations[i++ & (kObservations - 1)]);
  state.SetItemsProcessed(state.iterations());
}

void BM_HistogramObserve(benchmark::State& state) {
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 17;
  for (auto _ : state) histogram.observe(kDurations[i++ & (kObservations - 1)]);
  state.SetItemsProcessed(state.iterations());
}

void BM_PrivateHistogramObserve(benchmark::State& state) {
  Histogram& mine = private_histograms[state.thread_index()];
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 17;
  for (auto _ : state) mine.observe(kDurations[i++ & (kObservations - 1)]);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_SharedAtomicFetchAdd)
    ->Name("shared_atomic/fetch_add")
    ->ThreadRange(1, kMaxThreads)
    ->UseRealTime();
BENCHMARK(BM_CounterInc)->Name("counter/inc")->ThreadRange(1, kMaxThreads)->UseRealTime();
BENCHMARK(BM_SharedHistogramObserve)
    ->Name("shared_histogram/observe")
    ->ThreadRange(1, kMaxThreads)
    ->UseRealTime();
BENCHMARK(BM_HistogramObserve)
    ->Name("histogram/observe")
    ->ThreadRange(1, kMaxThreads)
    ->UseRealTime();
BENCHMARK(BM_PrivateHistogramObserve)
    ->Name("private_histogram/observe")
    ->ThreadRange(1, kMaxThreads)
    ->UseRealTime();

}  // namespace
}  // namespace tiercache::bench

BENCHMARK_MAIN();
