// Counter, Gauge, Histogram, PrometheusText and key_pattern, one thread at a time; and the
// Prometheus format validator (prometheus_format.hpp) itself, on good and bad text.

#include "tiercache/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "prometheus_format.hpp"

namespace tiercache {
namespace {

using namespace std::chrono_literals;
using test::prometheus_format_errors;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Asserts that `text` is valid Prometheus text, showing the errors and the text if not.
void ExpectValid(const std::string& text) {
  EXPECT_THAT(prometheus_format_errors(text), IsEmpty()) << text;
}

// The validator's errors for `text`, joined, for matching with HasSubstr.
std::string ErrorsOf(const std::string& text) {
  std::string joined;
  for (const auto& e : prometheus_format_errors(text)) joined += e + "\n";
  return joined;
}

// ---- Counter and Gauge ---------------------------------------------------------------------

TEST(Counter, StartsAtZeroAndAddsUp) {
  Counter c;
  EXPECT_EQ(c.value(), 0u);
  c.inc();
  c.inc(41);
  EXPECT_EQ(c.value(), 42u);
}

TEST(Gauge, SetsAndAdds) {
  Gauge g;
  EXPECT_EQ(g.value(), 0.0);
  g.set(10);
  g.add(2.5);
  g.add(-4);
  EXPECT_EQ(g.value(), 8.5);
}

// ---- Histogram -----------------------------------------------------------------------------

TEST(Histogram, DefaultBoundsAreCacheLatencies) {
  Histogram h;
  EXPECT_THAT(h.upper_bounds(),
              ElementsAre(1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
                          5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10));
}

TEST(Histogram, EmptySnapshot) {
  Histogram h;
  const auto s = h.snapshot();
  EXPECT_EQ(s.upper_bounds, h.upper_bounds());
  EXPECT_EQ(s.cumulative_counts, std::vector<std::uint64_t>(23, 0));
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum_seconds, 0.0);
  EXPECT_EQ(s.quantile(0.5), 0.0);
  EXPECT_EQ(s.mean_seconds(), 0.0);
}

TEST(Histogram, AnObservationOnABoundFallsInThatBucket) {
  Histogram h({0.001, 0.002});
  h.observe(1ms);            // == first bound
  h.observe(1ms + 1ns);      // just above it
  h.observe_seconds(0.002);  // == second bound
  h.observe(3ms);            // +Inf
  const auto s = h.snapshot();
  EXPECT_THAT(s.cumulative_counts, ElementsAre(1, 3, 4));
  EXPECT_EQ(s.count, 4u);
}

// observe(Duration) uses whole-nanosecond bounds; they must agree with the double ones even
// for bounds that are not exact in binary (0.3 s is 0.29999999999999998890 s).
TEST(Histogram, DurationAndSecondsPlaceObservationsAlike) {
  const std::vector<double> bounds = {1e-9, 3e-7, 0.1, 0.3, 0.7, 1.1};
  Histogram by_duration(bounds);
  Histogram by_seconds(bounds);
  for (const double b : bounds) {
    const auto center = static_cast<std::int64_t>(std::llround(b * 1e9));
    for (std::int64_t ns = center - 2; ns <= center + 2; ++ns) {
      by_duration.observe(Duration(ns));
      by_seconds.observe_seconds(static_cast<double>(ns) / 1e9);
    }
  }
  EXPECT_EQ(by_duration.snapshot().cumulative_counts, by_seconds.snapshot().cumulative_counts);
}

TEST(Histogram, SumIsExactInNanoseconds) {
  Histogram h;
  h.observe(1500ns);
  h.observe(2ms);
  h.observe_seconds(0.25);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 0.2520015);
  EXPECT_DOUBLE_EQ(s.mean_seconds(), 0.2520015 / 3);
}

TEST(Histogram, NegativeCountsAsZeroAndNaNIsDropped) {
  Histogram h({0.0, 1.0});
  h.observe(-5ms);
  h.observe_seconds(-1.0);
  h.observe_seconds(kNaN);
  h.observe_seconds(kInf);
  const auto s = h.snapshot();
  EXPECT_THAT(s.cumulative_counts, ElementsAre(2, 2, 3));
  EXPECT_EQ(s.count, 3u);
}

TEST(Histogram, HugeObservationsSaturateInTheSum) {
  Histogram h({1.0});
  h.observe(Duration::max());
  h.observe_seconds(1e300);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 2u);
  EXPECT_TRUE(std::isfinite(s.sum_seconds));
  EXPECT_GT(s.sum_seconds, 1e10);
}

TEST(Histogram, BoundsMustBeSortedUniqueAndFinite) {
  const auto make = [](std::vector<double> bounds) { Histogram h(std::move(bounds)); };
  EXPECT_THROW(make({0.2, 0.1}), std::invalid_argument);
  EXPECT_THROW(make({0.1, 0.1}), std::invalid_argument);
  EXPECT_THROW(make({0.1, kInf}), std::invalid_argument);
  EXPECT_THROW(make({kNaN}), std::invalid_argument);
  Histogram only_inf(std::vector<double>{});
  only_inf.observe(1s);
  EXPECT_THAT(only_inf.snapshot().cumulative_counts, ElementsAre(1));
}

TEST(HistogramQuantile, InterpolatesInsideTheBucket) {
  Histogram h({1.0, 2.0, 4.0});
  for (int i = 0; i < 10; ++i) h.observe_seconds(0.5);  // (0, 1]
  for (int i = 0; i < 10; ++i) h.observe_seconds(1.5);  // (1, 2]
  const auto s = h.snapshot();
  EXPECT_DOUBLE_EQ(s.quantile(0.25), 0.5);  // rank 5 of 10 in the first bucket, from 0
  EXPECT_DOUBLE_EQ(s.quantile(0.5), 1.0);
  EXPECT_DOUBLE_EQ(s.quantile(0.75), 1.5);
  EXPECT_DOUBLE_EQ(s.quantile(1.0), 2.0);
}

TEST(HistogramQuantile, SkipsEmptyBucketsAndClampsQ) {
  Histogram h({1.0, 2.0, 4.0});
  for (int i = 0; i < 4; ++i) h.observe_seconds(3.0);  // (2, 4]
  const auto s = h.snapshot();
  EXPECT_DOUBLE_EQ(s.quantile(0.0), 2.0);  // the lower edge of the first non-empty bucket
  EXPECT_DOUBLE_EQ(s.quantile(0.5), 3.0);
  EXPECT_DOUBLE_EQ(s.quantile(-1.0), 2.0);
  EXPECT_DOUBLE_EQ(s.quantile(7.0), 4.0);
  EXPECT_EQ(s.quantile(kNaN), 0.0);
}

TEST(HistogramQuantile, RankInTheInfBucketGivesTheHighestBound) {
  Histogram h({1.0, 2.0});
  h.observe_seconds(0.5);
  h.observe_seconds(100.0);
  EXPECT_DOUBLE_EQ(h.snapshot().quantile(0.99), 2.0);
}

// ---- PrometheusText ------------------------------------------------------------------------

TEST(PrometheusText, NothingRendersAsEmptyText) {
  EXPECT_EQ(PrometheusText().render(), "");
  ExpectValid("");
}

TEST(PrometheusText, CounterAndGauge) {
  PrometheusText text;
  text.counter("tiercache_hits_total", "Lookups that found a value.", {{"tier", "l1"}}, 12);
  text.gauge("tiercache_entries", "Entries in the cache.", {}, 3);
  EXPECT_EQ(text.render(),
            "# HELP tiercache_hits_total Lookups that found a value.\n"
            "# TYPE tiercache_hits_total counter\n"
            "tiercache_hits_total{tier=\"l1\"} 12\n"
            "# HELP tiercache_entries Entries in the cache.\n"
            "# TYPE tiercache_entries gauge\n"
            "tiercache_entries 3\n");
  ExpectValid(text.render());
}

// Two sources (say two caches) adding to the same families: one HELP/TYPE each, samples
// grouped under it, families in the order first seen.
TEST(PrometheusText, GroupsSamplesOfAFamilyFromSeveralSources) {
  PrometheusText text;
  for (const std::string cache : {"users", "orders"}) {
    text.counter("hits_total", "Hits.", {{"cache", cache}}, 1);
    text.gauge("entries", "Entries.", {{"cache", cache}}, 2);
  }
  EXPECT_EQ(text.render(),
            "# HELP hits_total Hits.\n"
            "# TYPE hits_total counter\n"
            "hits_total{cache=\"users\"} 1\n"
            "hits_total{cache=\"orders\"} 1\n"
            "# HELP entries Entries.\n"
            "# TYPE entries gauge\n"
            "entries{cache=\"users\"} 2\n"
            "entries{cache=\"orders\"} 2\n");
  ExpectValid(text.render());
}

TEST(PrometheusText, Histogram) {
  Histogram h({0.001, 0.0025});
  h.observe(500us);
  h.observe(2ms);
  h.observe(1s);
  PrometheusText text;
  text.histogram("get_seconds", "Get latency.", {{"tier", "l2"}}, h.snapshot());
  EXPECT_EQ(text.render(),
            "# HELP get_seconds Get latency.\n"
            "# TYPE get_seconds histogram\n"
            "get_seconds_bucket{tier=\"l2\",le=\"0.001\"} 1\n"
            "get_seconds_bucket{tier=\"l2\",le=\"0.0025\"} 2\n"
            "get_seconds_bucket{tier=\"l2\",le=\"+Inf\"} 3\n"
            "get_seconds_sum{tier=\"l2\"} 1.0025\n"
            "get_seconds_count{tier=\"l2\"} 3\n");
  ExpectValid(text.render());
}

TEST(PrometheusText, HistogramWithoutLabelsAndDefaultBounds) {
  Histogram h;
  h.observe(3us);
  PrometheusText text;
  text.histogram("load_seconds", "", {}, h.snapshot());
  const std::string out = text.render();
  EXPECT_THAT(out, HasSubstr("\nload_seconds_bucket{le=\"1e-06\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("\nload_seconds_bucket{le=\"5e-06\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("\nload_seconds_bucket{le=\"0.0001\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("\nload_seconds_bucket{le=\"10\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("\nload_seconds_sum 3e-06\n"));
  EXPECT_EQ(out.find("# HELP"), std::string::npos);  // empty help: no HELP line
  ExpectValid(out);
}

TEST(PrometheusText, NumbersReadBackExactly) {
  PrometheusText text;
  const std::vector<double> values = {0.1, -2.5, 1e-7, 123456.789, 1e300, 0.0};
  for (std::size_t i = 0; i < values.size(); ++i) {
    text.gauge("g", "", {{"i", std::to_string(i)}}, values[i]);
  }
  text.gauge("special", "", {{"v", "nan"}}, kNaN);
  text.gauge("special", "", {{"v", "inf"}}, kInf);
  text.gauge("special", "", {{"v", "-inf"}}, -kInf);
  const std::string out = text.render();
  EXPECT_THAT(out, HasSubstr("g{i=\"0\"} 0.1\n"));
  EXPECT_THAT(out, HasSubstr("g{i=\"1\"} -2.5\n"));
  EXPECT_THAT(out, HasSubstr("g{i=\"2\"} 1e-07\n"));
  EXPECT_THAT(out, HasSubstr("g{i=\"3\"} 123456.789\n"));
  EXPECT_THAT(out, HasSubstr("g{i=\"4\"} 1e+300\n"));
  EXPECT_THAT(out, HasSubstr("g{i=\"5\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("special{v=\"nan\"} NaN\n"));
  EXPECT_THAT(out, HasSubstr("special{v=\"inf\"} +Inf\n"));
  EXPECT_THAT(out, HasSubstr("special{v=\"-inf\"} -Inf\n"));
  ExpectValid(out);
}

TEST(PrometheusText, EscapesLabelValuesAndHelp) {
  PrometheusText text;
  text.counter("c_total", "a \\ help\nwith \"quotes\"", {{"key", "a\\b\"c\nd"}}, 1);
  EXPECT_EQ(text.render(),
            "# HELP c_total a \\\\ help\\nwith \"quotes\"\n"
            "# TYPE c_total counter\n"
            "c_total{key=\"a\\\\b\\\"c\\nd\"} 1\n");
  ExpectValid(text.render());
}

TEST(PrometheusText, InvalidUtf8BecomesReplacementCharacter) {
  PrometheusText text;
  text.gauge("g", "caf\xC3\xA9 \xFF", {{"name", "caf\xC3\xA9\xC3"}}, 1);
  EXPECT_EQ(text.render(),
            "# HELP g caf\xC3\xA9 \xEF\xBF\xBD\n"
            "# TYPE g gauge\n"
            "g{name=\"caf\xC3\xA9\xEF\xBF\xBD\"} 1\n");
  ExpectValid(text.render());
}

TEST(PrometheusText, RejectsInvalidNames) {
  PrometheusText text;
  EXPECT_THROW(text.counter("", "", {}, 1), std::invalid_argument);
  EXPECT_THROW(text.counter("1abc", "", {}, 1), std::invalid_argument);
  EXPECT_THROW(text.counter("a-b", "", {}, 1), std::invalid_argument);
  EXPECT_THROW(text.gauge("g", "", {{"a:b", "x"}}, 1), std::invalid_argument);
  EXPECT_THROW(text.gauge("g", "", {{"", "x"}}, 1), std::invalid_argument);
  EXPECT_THROW(text.gauge("g", "", {{"__name__", "x"}}, 1), std::invalid_argument);
  EXPECT_THROW(text.gauge("g", "", {{"a", "x"}, {"a", "y"}}, 1), std::invalid_argument);
  EXPECT_THROW(text.histogram("h", "", {{"le", "1"}}, Histogram().snapshot()),
               std::invalid_argument);
  // Nothing of the rejected calls is left behind.
  EXPECT_EQ(text.render(), "");
  text.gauge("ns:sub_metric", "", {{"_a1", "x"}}, 1);
  ExpectValid(text.render());
}

TEST(PrometheusText, RejectsTypeConflictsAndNameCollisions) {
  PrometheusText text;
  text.counter("x_total", "", {}, 1);
  EXPECT_THROW(text.gauge("x_total", "", {{"a", "b"}}, 1), std::invalid_argument);
  text.histogram("h", "", {}, Histogram().snapshot());
  EXPECT_THROW(text.gauge("h_count", "", {}, 1), std::invalid_argument);
  EXPECT_THROW(text.counter("h", "", {{"a", "b"}}, 1), std::invalid_argument);
  text.gauge("g_sum", "", {}, 1);
  EXPECT_THROW(text.histogram("g", "", {}, Histogram().snapshot()), std::invalid_argument);
  ExpectValid(text.render());
}

TEST(PrometheusText, RejectsDuplicateSeries) {
  PrometheusText text;
  text.counter("c_total", "", {{"a", "1"}, {"b", "2"}}, 1);
  EXPECT_THROW(text.counter("c_total", "", {{"b", "2"}, {"a", "1"}}, 5), std::invalid_argument);
  text.counter("c_total", "", {{"a", "1"}}, 1);  // another label set: another series
  text.histogram("h", "", {}, Histogram().snapshot());
  EXPECT_THROW(text.histogram("h", "", {}, Histogram().snapshot()), std::invalid_argument);
  ExpectValid(text.render());
}

TEST(PrometheusText, RejectsMalformedSnapshots) {
  PrometheusText text;
  Histogram::Snapshot s;
  s.upper_bounds = {1.0};
  s.cumulative_counts = {1};  // no +Inf count
  EXPECT_THROW(text.histogram("h", "", {}, s), std::invalid_argument);
  s.cumulative_counts = {2, 1};  // decreasing
  s.count = 1;
  EXPECT_THROW(text.histogram("h", "", {}, s), std::invalid_argument);
  s.cumulative_counts = {1, 2};
  s.count = 3;  // differs from +Inf
  EXPECT_THROW(text.histogram("h", "", {}, s), std::invalid_argument);
  s.upper_bounds = {2.0, 1.0};
  s.cumulative_counts = {1, 2, 3};
  EXPECT_THROW(text.histogram("h", "", {}, s), std::invalid_argument);
  EXPECT_EQ(text.render(), "");
}

TEST(PrometheusText, FirstNonEmptyHelpWins) {
  PrometheusText text;
  text.gauge("g", "", {{"s", "1"}}, 1);
  text.gauge("g", "Second.", {{"s", "2"}}, 1);
  text.gauge("g", "Third.", {{"s", "3"}}, 1);
  EXPECT_THAT(text.render(), HasSubstr("# HELP g Second.\n"));
  ExpectValid(text.render());
}

// ---- the validator, on text that breaks the rules ------------------------------------------

TEST(PrometheusFormatValidator, AcceptsTheSpecExample) {
  ExpectValid(
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
      "\n"
      "# Escaping in label values:\n"
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
      "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
      "metric_without_timestamp_and_labels 12.47\n"
      "something_weird{problem=\"division by zero\"} +Inf -3982045\n"
      "# HELP http_request_duration_seconds A histogram of the request duration.\n"
      "# TYPE http_request_duration_seconds histogram\n"
      "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
      "http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n"
      "http_request_duration_seconds_bucket{le=\"0.2\"} 100392\n"
      "http_request_duration_seconds_bucket{le=\"0.5\"} 129389\n"
      "http_request_duration_seconds_bucket{le=\"1\"} 133988\n"
      "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
      "http_request_duration_seconds_sum 53423\n"
      "http_request_duration_seconds_count 144320\n"
      "# HELP rpc_duration_seconds A summary of the RPC duration in seconds.\n"
      "# TYPE rpc_duration_seconds summary\n"
      "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
      "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
      "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
      "rpc_duration_seconds_sum 1.7560473e+07\n"
      "rpc_duration_seconds_count 2693\n");
}

TEST(PrometheusFormatValidator, RejectsBadLines) {
  EXPECT_THAT(ErrorsOf("a 1"), HasSubstr("does not end with"));
  EXPECT_THAT(ErrorsOf("1a 1\n"), HasSubstr("invalid metric name"));
  EXPECT_THAT(ErrorsOf("a-b 1\n"), HasSubstr("invalid value"));
  EXPECT_THAT(ErrorsOf("a{1b=\"x\"} 1\n"), HasSubstr("invalid label name"));
  EXPECT_THAT(ErrorsOf("a{b=x} 1\n"), HasSubstr("not quoted"));
  EXPECT_THAT(ErrorsOf("a{b=\"x} 1\n"), HasSubstr("unterminated label value"));
  EXPECT_THAT(ErrorsOf("a{b=\"x\\t\"} 1\n"), HasSubstr("invalid escape"));
  EXPECT_THAT(ErrorsOf("a{b=\"x\" c=\"y\"} 1\n"), HasSubstr("expected ','"));
  EXPECT_THAT(ErrorsOf("a{b=\"x\",b=\"y\"} 1\n"), HasSubstr("repeated"));
  EXPECT_THAT(ErrorsOf("a{b=\"x\"}\n"), HasSubstr("missing value"));
  EXPECT_THAT(ErrorsOf("a one\n"), HasSubstr("invalid value"));
  EXPECT_THAT(ErrorsOf("a 1 2.5\n"), HasSubstr("invalid timestamp"));
  EXPECT_THAT(ErrorsOf("a 1 2 3\n"), HasSubstr("unexpected text"));
  EXPECT_THAT(ErrorsOf("a{b=\"\xFF\"} 1\n"), HasSubstr("UTF-8"));
  EXPECT_THAT(ErrorsOf("# HELP a bad \\t escape\n"), HasSubstr("invalid escape in HELP"));
  EXPECT_THAT(ErrorsOf("# TYPE 9a counter\n"), HasSubstr("invalid metric name"));
}

TEST(PrometheusFormatValidator, RejectsBadFamilies) {
  EXPECT_THAT(ErrorsOf("# TYPE a countr\na 1\n"), HasSubstr("unknown type"));
  EXPECT_THAT(ErrorsOf("# TYPE a gauge\n# TYPE a gauge\na 1\n"), HasSubstr("second TYPE"));
  EXPECT_THAT(ErrorsOf("# HELP a x\n# HELP a y\na 1\n"), HasSubstr("second HELP"));
  EXPECT_THAT(ErrorsOf("a 1\n# TYPE a gauge\n"), HasSubstr("after its samples"));
  EXPECT_THAT(ErrorsOf("h_count 1\n# TYPE h histogram\n"), HasSubstr("after its samples"));
  EXPECT_THAT(ErrorsOf("a{x=\"1\"} 1\nb 1\na{x=\"2\"} 1\n"), HasSubstr("not grouped"));
  EXPECT_THAT(ErrorsOf("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n"),
              HasSubstr("duplicate series"));
  EXPECT_THAT(ErrorsOf("# TYPE c_total counter\nc_total -1\n"), HasSubstr("negative counter"));
  EXPECT_THAT(ErrorsOf("# TYPE s summary\ns 1\ns_sum 1\ns_count 1\n"),
              HasSubstr("without quantile"));
}

TEST(PrometheusFormatValidator, RejectsBadHistograms) {
  const std::string type = "# TYPE h histogram\n";
  const std::string tail = "h_sum 1\nh_count 2\n";
  EXPECT_THAT(ErrorsOf(type +
                       "h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
                       "h_bucket{le=\"+Inf\"} 2\n" +
                       tail),
              HasSubstr("le not increasing"));
  EXPECT_THAT(ErrorsOf(type + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 2\n" + tail),
              HasSubstr("not le=\"+Inf\""));
  EXPECT_THAT(ErrorsOf(type + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n" + tail),
              HasSubstr("counts decrease"));
  EXPECT_THAT(ErrorsOf(type + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 3\n" + tail),
              HasSubstr("_count differs"));
  EXPECT_THAT(ErrorsOf(type + "h_bucket{le=\"+Inf\"} 2\nh_count 2\n"), HasSubstr("no _sum"));
  EXPECT_THAT(ErrorsOf(type + "h_bucket{le=\"+Inf\"} 2\nh_sum 2\n"), HasSubstr("no _count"));
  EXPECT_THAT(ErrorsOf(type + "h_bucket 2\n" + tail), HasSubstr("without an le label"));
  EXPECT_THAT(ErrorsOf(type + "h_bucket{le=\"x\"} 2\n" + tail), HasSubstr("invalid le"));
  EXPECT_THAT(ErrorsOf(type + "h 2\n" + tail), HasSubstr("in histogram family"));
  // Series are told apart by their labels other than le.
  ExpectValid(type +
              "h_bucket{t=\"a\",le=\"1\"} 1\nh_bucket{t=\"a\",le=\"+Inf\"} 1\n"
              "h_bucket{t=\"b\",le=\"+Inf\"} 5\n"
              "h_sum{t=\"a\"} 1\nh_count{t=\"a\"} 1\nh_sum{t=\"b\"} 1\nh_count{t=\"b\"} 5\n");
}

// ---- key_pattern ---------------------------------------------------------------------------

TEST(KeyPattern, ExamplesOfTheContract) {
  EXPECT_EQ(key_pattern(""), "");
  EXPECT_EQ(key_pattern("config"), "config");
  EXPECT_EQ(key_pattern("user:123"), "user:*");
  EXPECT_EQ(key_pattern("user:123:profile"), "user:*:profile");
  EXPECT_EQ(key_pattern("session/9f86d081884c7d65"), "session/*");
  EXPECT_EQ(key_pattern("alice@example.com"), "*");
  EXPECT_EQ(key_pattern("v2:user:42"), "*:user:*");
}

TEST(KeyPattern, SeparatorsAndSegments) {
  EXPECT_EQ(key_pattern("user:alice@example.com:orders"), "user:*:orders");
  EXPECT_EQ(key_pattern("api.example.com/users/42"), "api.example.com/users/*");
  EXPECT_EQ(key_pattern("tenant|acme-corp|user_profile"), "tenant|acme-corp|user_profile");
  EXPECT_EQ(key_pattern("ip:10.0.0.1"), "ip:*.*.*.*");
  EXPECT_EQ(key_pattern("a::b/"), "a::b/");
  EXPECT_EQ(key_pattern(":"), ":");
}

TEST(KeyPattern, IdentifiersAreHidden) {
  EXPECT_EQ(key_pattern("session:550e8400-e29b-41d4-a716-446655440000"), "session:*");
  EXPECT_EQ(key_pattern("blob:deadbeef"), "blob:*");                    // hex, no digit
  EXPECT_EQ(key_pattern("cafe:face"), "cafe:face");                     // short words stay
  EXPECT_EQ(key_pattern("token:QmFzZVNpeHR5Rm91cg"), "token:*");        // base64
  EXPECT_EQ(key_pattern("token:xKqWbZtRmPv"), "token:*");               // base64, no digit
  EXPECT_EQ(key_pattern("op:getUserById"), "op:getUserById");           // camelCase stays
  EXPECT_EQ(key_pattern("word:abcdefghijklmnopqrstuvwxyz"), "word:*");  // > 24 chars
  EXPECT_EQ(key_pattern("name:John Smith"), "name:*");                  // space
  EXPECT_EQ(key_pattern("name:Jos\xC3\xA9"), "name:*");                 // non-ASCII
  EXPECT_EQ(key_pattern("line:a\nb"), "line:*");                        // control character
  EXPECT_EQ(key_pattern("q:a+b=c"), "q:*");                             // punctuation
}

TEST(KeyPattern, ResultIsBounded) {
  std::string long_key;
  for (int i = 0; i < 40; ++i) long_key += "segment:";
  const std::string pattern = key_pattern(long_key);
  EXPECT_LE(pattern.size(), kMaxKeyPatternLength);
  EXPECT_EQ(pattern, "segment:segment:segment:segment:segment:segment:segment:*");

  const std::string huge(1 << 20, 'a');  // one 1 MiB segment
  EXPECT_EQ(key_pattern(huge), "*");
  std::string many_dots;
  for (int i = 0; i < 100'000; ++i) many_dots += "ab.";
  EXPECT_LE(key_pattern(many_dots).size(), kMaxKeyPatternLength);
  EXPECT_EQ(key_pattern(std::string(200, ':')), std::string(63, ':') + "*");
}

// Whatever the bytes of the key, its pattern is printable ASCII and fits in a label.
TEST(KeyPattern, AnyKeyGivesPrintableAscii) {
  std::string key;
  for (int c = 0; c < 256; ++c) key += static_cast<char>(c);
  for (std::size_t start = 0; start < key.size(); start += 7) {
    const std::string pattern = key_pattern(std::string_view(key).substr(start, 20));
    for (const char c : pattern) EXPECT_TRUE(c >= 0x20 && c < 0x7F) << pattern;
    PrometheusText text;
    text.counter("c_total", "", {{"key", pattern}}, 1);
    ExpectValid(text.render());
  }
}

}  // namespace
}  // namespace tiercache
