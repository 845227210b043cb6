// The pieces of `tiercache demo` that need no Redis and no processes (tools/demo/): the phase
// plan, the stats lines between pods and coordinator, the SQLite database, and the report --
// metrics.prom must be valid Prometheus text (checked by tests/unit/prometheus_format.hpp) and
// report.html self-contained. The whole demo runs in the `demo_cli` test (integration).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../unit/prometheus_format.hpp"
#include "demo/phases.hpp"
#include "demo/report.hpp"
#include "demo/stats.hpp"
#include "demo/timeline.hpp"
#include "demo/user_db.hpp"
#include "tiercache/cache.hpp"

namespace tiercache::cli::demo {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A directory of its own, removed at the end.
class TempDir {
 public:
  TempDir() {
    path_ =
        std::filesystem::temp_directory_path() /
        ("tiercache-demo-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

PodStats some_stats(unsigned pod, std::uint64_t reads) {
  PodStats s;
  s.pod = pod;
  s.counts[kReads] = reads;
  s.counts[kL1Hits] = reads * 8 / 10;
  s.counts[kL2Hits] = reads / 10;
  s.counts[kDbAnswers] = reads / 20;
  s.counts[kDbSelects] = reads / 20;
  s.counts[kStale] = 3;
  s.circuit = 1;
  s.bus_connected = 0;
  s.inflight_peak = 4;
  s.latency.kinds[kLatAll].counts[3] = reads;
  s.latency.kinds[kLatAll].sum_ns = reads * 700;
  s.latency.kinds[kLatL1].counts[3] = reads * 8 / 10;
  if (pod == 0) s.written = {{1, 1'000'000}, {2, 2'000'000}};
  s.seen = {{1, 1'812'500}, {2, 3'040'000}};
  return s;
}

TEST(DemoPlan, TheDefaultIsTheDefaultPhasesAndScalingKeepsTheMinimums) {
  const Plan plan = make_plan(kDefaultSeconds);
  EXPECT_DOUBLE_EQ(plan.total_seconds(), kDefaultSeconds);
  EXPECT_EQ(plan.ttl, kDefaultTtl);
  EXPECT_EQ(plan.hot_ttl, kDefaultHotTtl);

  const Plan short_plan = make_plan(20);
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    EXPECT_GE(short_plan.seconds[i], kPhases[i].min_seconds) << kPhases[i].name;
    EXPECT_DOUBLE_EQ(short_plan.seconds[i] * 4, std::round(short_plan.seconds[i] * 4))
        << "a whole number of 250 ms ticks";
  }
  EXPECT_LT(short_plan.total_seconds(), 25);
  EXPECT_EQ(short_plan.ttl, std::chrono::milliseconds(10000));  // 30 s x 20/60
  EXPECT_EQ(short_plan.hot_ttl, std::chrono::milliseconds(666));
}

TEST(DemoStats, ALineRoundTrips) {
  const PodStats sent = some_stats(2, 1000);
  const std::optional<PodStats> got = decode(encode(sent));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->pod, 2u);
  EXPECT_EQ(got->counts.n, sent.counts.n);
  EXPECT_EQ(got->circuit, 1);
  EXPECT_EQ(got->bus_connected, 0);
  EXPECT_EQ(got->inflight_peak, 4u);
  EXPECT_EQ(got->latency.kinds[kLatAll].counts, sent.latency.kinds[kLatAll].counts);
  EXPECT_EQ(got->latency.kinds[kLatAll].sum_ns, sent.latency.kinds[kLatAll].sum_ns);
  EXPECT_EQ(got->seen, sent.seen);
  EXPECT_EQ(decode(encode(some_stats(0, 1)))->written, some_stats(0, 1).written);
}

TEST(DemoStats, OtherLinesAreNotStats) {
  EXPECT_FALSE(decode("R").has_value());
  EXPECT_FALSE(decode("S reads=1").has_value()) << "no pod";
  EXPECT_FALSE(decode("S pod=1 reads=x").has_value());
  EXPECT_FALSE(decode("S pod=1 lat_all=999999:1").has_value()) << "bucket out of range";
}

TEST(DemoStats, LatencyBoundsAreTenPerDecadeAndReadWell) {
  const std::vector<double>& b = latency_bounds();
  ASSERT_EQ(b.size(), 81u);
  EXPECT_DOUBLE_EQ(b.front(), 1e-7);
  EXPECT_DOUBLE_EQ(b[1], 1.26e-7);
  EXPECT_DOUBLE_EQ(b[10], 1e-6);
  EXPECT_DOUBLE_EQ(b.back(), 10.0);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(DemoTimeline, ARowIsWhatTheTickAdded) {
  Timeline timeline(2);
  timeline.begin_phase(0, 0);
  timeline.update(some_stats(0, 1000));
  timeline.update(some_stats(1, 1000));
  timeline.sample(0.25);
  timeline.update(some_stats(0, 3000));
  timeline.update(some_stats(1, 1000));
  const Row& row = timeline.sample(0.5);
  EXPECT_EQ(row.counts[kReads], 2000u);
  EXPECT_DOUBLE_EQ(row.per_second(kReads), 8000);
  EXPECT_EQ(row.circuits_open, 2u);
  EXPECT_EQ(row.buses_down, 2u);
  EXPECT_EQ(timeline.totals()[kReads], 4000u);
  // Pod 1 "saw" each of pod 0's two updates in both of its lines (in real runs a pod reports
  // each update once); pod 0's own sightings do not count.
  EXPECT_THAT(timeline.propagation_us(), ::testing::ElementsAre(812.5, 1040.0, 812.5, 1040.0));
  EXPECT_EQ(timeline.summary(0).counts[kReads], 4000u);
}

TEST(DemoReport, MetricsAreOneValidPrometheusTextWithAPodLabel) {
  // Two pods' real cache metrics (L1-only caches: no Redis here).
  std::vector<std::string> texts;
  for (int pod = 0; pod < 2; ++pod) {
    CacheOptions options;
    options.name = "demo-test";
    Cache<User> cache(options);
    for (int id = 1; id <= 3; ++id) {
      cache.get_or_load("user:" + std::to_string(id), [id](std::string_view) {
        return std::optional<User>(User{id, "Ada Lovelace", "ada@example.com", 1, 0});
      });
    }
    texts.push_back(cache.render_prometheus());
  }
  Timeline timeline(2);
  timeline.begin_phase(0, 0);
  timeline.update(some_stats(0, 1000));
  timeline.update(some_stats(1, 2000));
  timeline.sample(0.25);
  RunInfo info;
  info.cache_name = "demo-test";
  info.pods = 2;

  const std::string merged = merged_prometheus(texts, timeline, info);
  EXPECT_THAT(test::prometheus_format_errors(merged), ::testing::IsEmpty()) << merged;
  EXPECT_THAT(merged, HasSubstr("tiercache_lookups_total{pod=\"0\",cache=\"demo-test\""));
  EXPECT_THAT(merged, HasSubstr("tiercache_lookups_total{pod=\"1\",cache=\"demo-test\""));
  EXPECT_THAT(merged, HasSubstr("tiercache_demo_reads_total{cache=\"demo-test\",pod=\"1\","
                                "answer=\"l1\"} 1600"));
  EXPECT_THAT(merged, HasSubstr("tiercache_demo_invalidation_propagation_seconds_count"));
}

TEST(DemoReport, TheFilesAreWrittenAndThePageIsSelfContained) {
  TempDir dir;
  Timeline timeline(1);
  RunInfo info;
  info.run_id = "test";
  info.pods = 1;
  info.plan = make_plan(kDefaultSeconds);
  double t = 0;
  std::uint64_t reads = 0;
  for (std::size_t phase = 0; phase < kPhaseCount; ++phase) {
    timeline.begin_phase(phase, t);
    for (int tick = 0; tick < 4; ++tick) {
      reads += 1000;
      timeline.update(some_stats(0, reads));
      t += 0.25;
      timeline.sample(t);
    }
  }
  std::vector<std::string> results;
  for (std::size_t phase = 0; phase < kPhaseCount; ++phase) {
    results.push_back(phase_result(phase, timeline, info));
  }
  write_report_html(dir.file("report.html"), timeline, info, results);
  write_timeline_csv(dir.file("timeline.csv"), timeline, info);

  const std::string html = read_file(dir.file("report.html"));
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("hot-key-expiry"));
  EXPECT_THAT(html, HasSubstr("<polyline"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("http")));  // nothing fetched: no URL at all
  EXPECT_THAT(html, Not(HasSubstr("@import")));

  const std::string csv = read_file(dir.file("timeline.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 4 * static_cast<long>(kPhaseCount));
  EXPECT_THAT(csv, HasSubstr("\n0.25,warm-up,4000,"));
}

TEST(DemoUserDb, FindsUpdatesAndCountsQueries) {
  TempDir dir;
  const std::string path = dir.file("users.db");
  UserDb::create(path, 1000, 7);
  UserDb db(path, std::chrono::microseconds(0));
  const std::optional<User> user = db.find(42);
  ASSERT_TRUE(user.has_value());
  EXPECT_EQ(user->id, 42);
  EXPECT_EQ(user->team, 42 % kTeams);
  EXPECT_THAT(user->email, HasSubstr(".42@example.com"));
  EXPECT_FALSE(db.find(1001).has_value());
  db.update_name(42, "Grace Hopper #1", 123);
  EXPECT_EQ(db.find(42)->name, "Grace Hopper #1");
  EXPECT_EQ(db.selects(), 3u);
  EXPECT_EQ(db.updates(), 1u);

  // The same data for the same seed.
  const std::string again = dir.file("again.db");
  UserDb::create(again, 1000, 7);
  EXPECT_EQ(UserDb(again, std::chrono::microseconds(0)).find(42)->name, user->name);
}

}  // namespace
}  // namespace tiercache::cli::demo
