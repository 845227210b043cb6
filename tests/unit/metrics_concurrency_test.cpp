// Counter, Gauge and Histogram updated from many threads at once: nothing is lost (totals
// are exact), and a reader running alongside sees consistent, never-decreasing values.
// Threads start together on a latch and are joined; nothing sleeps. Sized to take about a
// second under ThreadSanitizer on 2 cores.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#include "concurrency_test_support.hpp"
#include "prometheus_format.hpp"
#include "tiercache/metrics.hpp"

namespace tiercache {
namespace {

using namespace std::chrono_literals;
using test::run_together;

constexpr int kThreads = 4;
constexpr int kOpsPerThread = 1'500'000;
// More threads than stripes, so that some share one.
constexpr int kManyThreads = 2 * static_cast<int>(kMetricStripes) + 3;
constexpr int kOpsPerManyThread = 60'000;

// The i-th observation of thread t: spread over the default buckets, 0 to ~1.3 s.
Duration observation(int t, int i) {
  return Duration((std::int64_t{i} * 7919 + std::int64_t{t} * 104'729) % 1'300'000'000);
}

TEST(CounterConcurrency, IncrementsFromManyThreadsAddUpExactly) {
  Counter c;
  run_together(kThreads, [&](int t) {
    for (int i = 0; i < kOpsPerThread; ++i) c.inc(static_cast<std::uint64_t>(t + 1));
  });
  EXPECT_EQ(c.value(), std::uint64_t{kOpsPerThread} * (1 + 2 + 3 + 4));
}

TEST(CounterConcurrency, MoreThreadsThanStripesStillAddUpExactly) {
  Counter c;
  run_together(kManyThreads, [&](int) {
    for (int i = 0; i < kOpsPerManyThread; ++i) c.inc();
  });
  EXPECT_EQ(c.value(), std::uint64_t{kManyThreads} * kOpsPerManyThread);
}

TEST(GaugeConcurrency, AddsFromManyThreadsAreNotLost) {
  Gauge g;
  run_together(kThreads, [&](int t) {
    for (int i = 0; i < kOpsPerThread / 4; ++i) g.add(t % 2 == 0 ? 3.0 : -1.0);
  });
  EXPECT_EQ(g.value(), (kOpsPerThread / 4) * (3.0 + 3.0 - 1.0 - 1.0));
}

// Every observation lands in its bucket and in the sum: the concurrent histogram equals one
// fed the same observations by one thread.
TEST(HistogramConcurrency, ObservationsFromManyThreadsAreCountedExactly) {
  Histogram shared;
  run_together(kThreads, [&](int t) {
    for (int i = 0; i < kOpsPerThread; ++i) shared.observe(observation(t, i));
  });
  Histogram sequential;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kOpsPerThread; ++i) sequential.observe(observation(t, i));
  }
  const auto got = shared.snapshot();
  const auto want = sequential.snapshot();
  EXPECT_EQ(got.count, std::uint64_t{kThreads} * kOpsPerThread);
  EXPECT_EQ(got.cumulative_counts, want.cumulative_counts);
  EXPECT_EQ(got.sum_seconds, want.sum_seconds);  // whole nanoseconds: exact in any order
}

TEST(HistogramConcurrency, MoreThreadsThanStripesStillCountExactly) {
  Histogram shared({0.001, 0.01});
  run_together(kManyThreads, [&](int t) {
    for (int i = 0; i < kOpsPerManyThread; ++i) shared.observe(Duration(t % 3) * 5'000'000);
  });
  // t % 3 == 0: 0 ms, 1: 5 ms, 2: 10 ms (on the bound), over 35 threads: 12, 12, 11 threads.
  const std::uint64_t per = kOpsPerManyThread;
  const auto s = shared.snapshot();
  EXPECT_EQ(s.cumulative_counts, (std::vector<std::uint64_t>{12 * per, 35 * per, 35 * per}));
  EXPECT_EQ(s.sum_seconds, static_cast<double>(per * (12 * 5'000'000 + 11 * 10'000'000)) / 1e9);
}

// A scraper reading while writers write: each snapshot is self-consistent (count equals the
// +Inf bucket, counts cumulative) and renders as valid Prometheus text; no bucket, count or
// counter ever goes backwards between two reads.
TEST(MetricsConcurrency, ReadsDuringWritesAreConsistentAndMonotonic) {
  Counter hits;
  Histogram latency;
  std::atomic<int> writers_left{kThreads - 1};
  int snapshots = 0;
  run_together(kThreads, [&](int t) {
    if (t == 0) {  // the scraper
      std::uint64_t last_hits = 0;
      Histogram::Snapshot last = latency.snapshot();
      do {  // at least once, however fast the writers are
        const std::uint64_t h = hits.value();
        const Histogram::Snapshot s = latency.snapshot();
        ASSERT_GE(h, last_hits);
        ASSERT_EQ(s.count, s.cumulative_counts.back());
        for (std::size_t b = 0; b < s.cumulative_counts.size(); ++b) {
          if (b > 0) {
            ASSERT_GE(s.cumulative_counts[b], s.cumulative_counts[b - 1]);
          }
          ASSERT_GE(s.cumulative_counts[b], last.cumulative_counts[b]);
        }
        if (snapshots++ % 64 == 0) {
          PrometheusText text;
          text.counter("hits_total", "Hits.", {{"tier", "l1"}}, h);
          text.histogram("get_seconds", "Latency.", {{"tier", "l1"}}, s);
          ASSERT_TRUE(test::prometheus_format_errors(text.render()).empty()) << text.render();
        }
        last_hits = h;
        last = s;
      } while (writers_left.load(std::memory_order_acquire) > 0);
      return;
    }
    for (int i = 0; i < kOpsPerThread; ++i) {
      hits.inc();
      latency.observe(observation(t, i));
    }
    writers_left.fetch_sub(1, std::memory_order_release);
  });
  EXPECT_GT(snapshots, 0);
  EXPECT_EQ(hits.value(), std::uint64_t{kThreads - 1} * kOpsPerThread);
  EXPECT_EQ(latency.snapshot().count, std::uint64_t{kThreads - 1} * kOpsPerThread);
}

}  // namespace
}  // namespace tiercache
