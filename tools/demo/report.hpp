// What `tiercache demo` tells people: the explanation of each phase, its result, the final
// tables and last line, and the --report files:
//   metrics.prom   every pod's cache metrics (label pod="I" added) and the demo's own
//                  (tiercache_demo_*), as one valid Prometheus text exposition
//   timeline.csv   one row per 250 ms tick
//   report.html    self-contained (inline CSS and SVG, no script, font or network): the run's
//                  parameters, the phases with their results, the tables, and three charts --
//                  hit ratio per tier, DB queries/s and reads/s, read latency p50/p99 -- over
//                  time with the phases as labelled bands.

#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "demo/phases.hpp"
#include "demo/timeline.hpp"

namespace tiercache::cli::demo {

// The parameters of a run, for explanations and the report.
struct RunInfo {
  std::string run_id;
  std::string cache_name;
  std::string redis;  // what Redis: "private redis-server on 127.0.0.1:P" or the redacted URL
  bool private_redis = true;
  unsigned pods = 0;
  unsigned workers = 0;
  std::int64_t users = 0;
  double reads_per_second = 0;  // all pods; 0: unpaced
  std::chrono::microseconds db_latency{0};
  unsigned max_concurrent_loads = 0;
  std::size_t l1_entries = 0;
  std::uint64_t seed = 0;
  Plan plan;
};

// One line: what phase i does and what to look for.
std::string phase_explanation(std::size_t phase, const RunInfo& info);
// One line: what phase i showed (printed when it ends).
std::string phase_result(std::size_t phase, const Timeline& timeline, const RunInfo& info);

// The final tables (lines without the leading "# ").
std::vector<std::string> result_lines(const Timeline& timeline, const RunInfo& info);
// The machine-readable last line:
//   reads=R l1_hit_ratio=A l2_hit_ratio=B db_reads=D offload_pct=O p99_us=L stale_serves=S
std::string last_line(const Timeline& timeline);

// "1.23 ms", "45.6 us", "789 ns".
std::string format_latency_us(double us);

// The --report files. Each throws std::runtime_error if it cannot write.
void write_timeline_csv(const std::string& path, const Timeline& timeline, const RunInfo& info);
void write_report_html(const std::string& path, const Timeline& timeline, const RunInfo& info,
                       const std::vector<std::string>& phase_results);
// pod_texts[i]: pod i's final render_prometheus() ("" if it sent none).
std::string merged_prometheus(const std::vector<std::string>& pod_texts, const Timeline& timeline,
                              const RunInfo& info);
void write_file(const std::string& path, const std::string& content);

}  // namespace tiercache::cli::demo
