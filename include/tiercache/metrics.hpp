// Metrics: the building blocks of tiercache's per-tier numbers (hits, misses, loads,
// latencies) and their rendering as Prometheus text (exposition format 0.0.4,
// https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Contract:
//  - Counter, Gauge and Histogram may be used from any number of threads at once. Updates
//    never lock, never allocate and never throw. The hot ones (Counter::inc,
//    Histogram::observe, called on every cache read) are one or two relaxed atomic adds on
//    one of kMetricStripes stripes padded to 128 bytes, picked by the calling thread's dense
//    index (detail::thread_index(), shared with LocalCache: a thread's very first use of
//    either takes a process-wide lock once to get its index), so up to kMetricStripes
//    threads never write the same cache line and more threads share lines evenly. Reads
//    (value, snapshot) sum the stripes: O(kMetricStripes), meant for scrapes, not hot paths.
//  - A read concurrent with updates counts each update entirely or not at all; reads by
//    one thread never go backwards. In a Histogram::Snapshot, count always equals the +Inf
//    bucket (both come from the same bucket reads), while sum_seconds may include or miss
//    observations still in flight.
//  - Counter, Gauge and Histogram are neither copyable nor movable: their addresses are what
//    the threads updating them share. Own them by value in a long-lived object, or behind a
//    pointer.
//  - Histogram buckets follow Prometheus: bucket i counts observations <= upper_bounds[i]
//    ("le"); an observation equal to a bound falls in that bound's bucket. observe(Duration)
//    places d exactly where observe_seconds(d.count() / 1e9) would. Observations below zero
//    count as zero (a latency cannot be negative; a clock stepping back must not corrupt the
//    sum); NaN observations are dropped. The sum is kept in whole nanoseconds, so it is
//    exact and the same whatever the interleaving of threads (observe_seconds rounds to the
//    nearest nanosecond for the sum; its bucket is chosen from the exact value).
//  - PrometheusText is a plain value, filled and rendered by one thread (one per scrape).
//    It validates names and labels when a sample is added and throws std::invalid_argument
//    on a programming error (bad name, type conflict, duplicate series, malformed
//    snapshot), so render() always produces text a Prometheus server accepts.
//  - key_pattern() turns a cache key into a bounded, printable-ASCII pattern with anything
//    that looks like an identifier replaced by '*'; see its comment for the exact rules.

#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tiercache/clock.hpp"
#include "tiercache/detail/readers.hpp"

namespace tiercache {

// Stripes per Counter and Histogram: threads with dense indices below this never share a
// stripe. A power of two. Memory: one 128-byte block per stripe of a Counter (2 KiB), and
// ceil((buckets + 2) / 16) blocks per stripe of a Histogram (4 KiB with the defaults).
inline constexpr std::size_t kMetricStripes = 16;
static_assert((kMetricStripes & (kMetricStripes - 1)) == 0, "kMetricStripes: a power of two");

namespace detail {

// The stripe the calling thread updates.
inline std::size_t metric_stripe() noexcept { return thread_index() & (kMetricStripes - 1); }

// The unit of striping: two cache lines of 64-bit counters. Two, not one, because Intel's
// spatial prefetcher fetches lines in aligned pairs, so writers one line apart still slow
// each other down (measured in bench/metrics_bench.cpp).
inline constexpr std::size_t kMetricBlockBytes = 2 * kCacheLine;
struct alignas(kMetricBlockBytes) MetricBlock {
  static constexpr std::size_t kCells = kMetricBlockBytes / sizeof(std::atomic<std::uint64_t>);
  std::atomic<std::uint64_t> cells[kCells] = {};
};

}  // namespace detail

// A monotonically increasing count (hits, misses, loads, errors).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds n. Lock-free; wraps around past 2^64 - 1.
  void inc(std::uint64_t n = 1) noexcept {
    stripes_[detail::metric_stripe()].cells[0].fetch_add(n, std::memory_order_relaxed);
  }
  // The sum of all inc() calls that happened before this read (and maybe some concurrent ones).
  std::uint64_t value() const noexcept;

 private:
  detail::MetricBlock stripes_[kMetricStripes];
};

// A value that goes up and down (entries, bytes, open connections). Not striped: meant for
// values set now and then, not on every read. add() is a compare-and-swap loop (lock-free).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  // Adds d (negative to subtract).
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<double>::is_always_lock_free);
  std::atomic<double> value_{0.0};
};

// A latency histogram with fixed bucket bounds (in seconds, the Prometheus base unit).
class Histogram {
 public:
  // Latency buckets suited to a cache, from an L1 hit to a slow load: 1us 2.5us 5us 10us
  // 25us 50us 100us 250us 500us 1ms 2.5ms 5ms 10ms 25ms 50ms 100ms 250ms 500ms 1s 2.5s 5s
  // 10s (and the implicit +Inf).
  static std::vector<double> default_bounds();

  Histogram();
  // REQUIRES: upper_bounds_seconds sorted, unique and finite (else std::invalid_argument).
  // May be empty: then the histogram has only the +Inf bucket (a count and a sum).
  explicit Histogram(std::vector<double> upper_bounds_seconds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Records one observation. Lock-free, never allocates.
  void observe(Duration d) noexcept {
    const std::int64_t ns = d.count() < 0 ? 0 : d.count();
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) - bounds_ns_.begin());
    record(bucket, static_cast<std::uint64_t>(ns));
  }
  void observe_seconds(double s) noexcept;

  struct Snapshot {
    std::vector<double> upper_bounds;  // seconds, increasing; +Inf implicit
    // Observations <= upper_bounds[i], for each bound, then the +Inf bucket (== count).
    std::vector<std::uint64_t> cumulative_counts;
    std::uint64_t count = 0;
    double sum_seconds = 0.0;

    // Estimate of the q-quantile (q in [0, 1], clamped; NaN -> 0), as Prometheus'
    // histogram_quantile(): the bucket holding rank q * count, then linear interpolation
    // inside it, the first bucket starting at 0 (or at its bound, if that is <= 0). A rank
    // in the +Inf bucket yields the highest finite bound. 0 if there are no observations.
    double quantile(double q) const;
    // sum_seconds / count; 0 if there are no observations.
    double mean_seconds() const;
  };
  Snapshot snapshot() const;

  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }

 private:
  void record(std::size_t bucket, std::uint64_t ns) noexcept {
    const std::size_t base = detail::metric_stripe() * cells_per_stripe_;
    cell(base + bucket).fetch_add(1, std::memory_order_relaxed);
    cell(base + sum_cell_).fetch_add(ns, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t>& cell(std::size_t i) const noexcept {
    return blocks_[i / detail::MetricBlock::kCells].cells[i % detail::MetricBlock::kCells];
  }

  std::vector<double> bounds_;
  // bounds_ns_[i]: the largest whole number of nanoseconds n with n / 1e9 <= bounds_[i],
  // so that observe(Duration) needs no floating point.
  std::vector<std::int64_t> bounds_ns_;
  // Per stripe: one cell per bucket (bounds, then +Inf), then the sum in nanoseconds;
  // padded to whole blocks.
  std::size_t sum_cell_ = 0;
  std::size_t cells_per_stripe_ = 0;
  std::unique_ptr<detail::MetricBlock[]> blocks_;
};

// Collects samples from any number of sources and renders them as Prometheus text, format
// 0.0.4. Rendering rules (decisions where the format leaves a choice):
//  - Families (one metric name) come out in first-seen order, each as one group:
//    "# HELP" (omitted if the help is empty; the first non-empty help wins), "# TYPE",
//    then its samples in the order they were added, whichever source added them.
//  - Counters: the sample name is the family name, which should end in _total (the
//    convention; not enforced). Histograms: name_bucket{...,le="..."} per bound and
//    le="+Inf", then name_sum and name_count; name should end in the unit (_seconds).
//  - Numbers: integers as integers; other values in the shortest form that reads back
//    exactly (as Go's client: "2.5e-06", "0.001"); NaN, +Inf, -Inf spelled so.
//  - Label values and help may hold any bytes: label values escape \ " and newline, help
//    escapes \ and newline, and invalid UTF-8 becomes U+FFFD.
// Throws std::invalid_argument when: a metric name does not match [a-zA-Z_:][a-zA-Z0-9_:]*;
// a label name does not match [a-zA-Z_][a-zA-Z0-9_]*, starts with "__" (reserved), repeats
// in one sample, or is "le" on a histogram; a name is reused with another type, or collides
// with a histogram's generated names (h_bucket, h_sum, h_count); a series (name and label
// set, in any order) is added twice; a snapshot is malformed (sizes, order, counts).
class PrometheusText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // The HTTP Content-Type of render()'s output.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  void counter(std::string_view name, std::string_view help, const Labels& labels,
               std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, const Labels& labels, double value);
  void histogram(std::string_view name, std::string_view help, const Labels& labels,
                 const Histogram::Snapshot& s);

  // The exposition: every line ends with '\n'; "" if nothing was added.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::string samples;  // rendered sample lines
  };

  static constexpr std::size_t kNewFamily = static_cast<std::size_t>(-1);

  // Checks that `name` is valid and free for a family of `type`; returns the index of its
  // family, or kNewFamily. Changes nothing.
  std::size_t check_family(std::string_view name, Type type) const;
  // Checks the labels (and that none is `extra_label`) and that the series is new, then
  // records the series; returns the rendered label part without its closing brace ("{a=\"b\""),
  // or "" for no labels, so that a caller may append "le".
  std::string open_labels(std::string_view sample_name, const Labels& labels,
                          std::string_view extra_label = {});
  // The family at `index` as check_family() returned it (creating it if kNewFamily).
  Family& family(std::size_t index, std::string_view name, std::string_view help, Type type);

  std::vector<Family> families_;
  std::unordered_map<std::string, std::size_t> family_of_name_;  // also generated names
  std::unordered_set<std::string> series_;                       // "name{sorted labels}"
};

// The pattern of a cache key, safe to put in logs and metric labels: the key with every
// segment that looks like an identifier replaced by '*'.
//  - Fields are separated by ':' '/' '|', and a field's segments by '.'. A field holding
//    an '@' (an email, a user@host) becomes one '*' as a whole: "alice@example.com" -> "*".
//  - A segment is kept only if it is 1 to 24 ASCII letters, '_' or '-', and does not look
//    like an encoded value: 8+ characters all hex ("deadbeef"), or 8+ characters of mixed
//    case more than a third uppercase (base64 without digits). Anything else -- a digit,
//    '@', space, any other punctuation, a non-ASCII byte, more than 24 characters -- is an
//    identifier: '*'. Empty segments stay empty ("a::b" -> "a::b").
//  - The result is at most kMaxKeyPatternLength characters of printable ASCII: a longer one
//    is cut after its last separator that fits, and ends in '*'.
// Examples: "user:123" -> "user:*"; "user:123:profile" -> "user:*:profile";
// "session/9f86d081884c7d65" -> "session/*"; "v2:user:42" -> "*:user:*"; "config" ->
// "config"; "" -> "". A word-like identifier ("user:alice") is NOT hidden: name keys with
// ids, or hash them, if their segments are personal data.
inline constexpr std::size_t kMaxKeyPatternLength = 64;
std::string key_pattern(std::string_view key);

}  // namespace tiercache
