// What a pod of `tiercache demo` tells the coordinator, and how the coordinator adds it up.
//
// Pods keep cumulative counts (Counts) and latency histograms (Latencies) and send them, as
// one text line, whenever the coordinator asks ("tick", every 250 ms). The coordinator keeps
// the latest line of each pod; the sum over pods minus the previous sum is one row of the
// timeline (timeline.hpp). Counts are cumulative so that nothing is lost or counted twice
// whatever the timing of the lines.
//
// Line format (one line, space-separated key=value tokens, unknown keys ignored):
//   S pod=I <count name>=N ... circuit=C bus=B inflight_peak=K
//     lat_<kind>=<bucket>:<n>,...  lat_<kind>_sum_ns=N  written=<seq>:<ns>,...
//     seen=<seq>:<ns>,...
// Latency buckets are sparse (only non-zero ones). `written` and `seen` are the update phase's
// marks since the previous line (not cumulative): when the database committed update <seq> of
// the watched user (pod 0), and when this pod first read it, in nanoseconds of the machine's
// monotonic clock (CLOCK_MONOTONIC, the same in every process).

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/metrics.hpp"

namespace tiercache::cli::demo {

// Cumulative counts of one pod (or, summed, of all pods).
enum Count : std::size_t {
  kReads,           // GetUser reads (the update watchers' polls are not counted)
  kL1Hits,          // answered by L1, fresh (values and "not found")
  kL2Hits,          // answered by L2, fresh
  kDbAnswers,       // answered by a load (this read's, or one it waited for)
  kStale,           // answered with a stale value (fail-safe)
  kNegative,        // of the answers above: "not found" (ids that do not exist)
  kErrors,          // failed: any error, except ...
  kUnavailable,     // ... the DB was down and L2 held no value of the id: nothing to serve
  kWrites,          // write_through calls
  kWriteErrors,     // write_through calls that failed (the DB writer threw: DB down)
  kDbSelects,       // loader queries (SELECT)
  kDbUpdates,       // writer queries (UPDATE)
  kDbRefused,       // loader calls refused while the DB was down
  kHotLoads,        // loads of the hot user during the hot-key phase
  kHotReads,        // reads of the hot user during the hot-key phase; of them, answered:
  kHotFromL2,       //   by L2 (after waiting for another pod's load, or before the expiry)
  kHotFromLoad,     //   by a load in this pod (the one load, or waiting on it: single-flight)
  kHotStale,        //   stale (the load took longer than the soft timeout)
  kTeamLoads,       // loads of users of the refreshed team during the tag phase
  kUpdates,         // updates of the watched user (pod 0, update phase)
  kLibStaleServed,  // tiercache_stale_served_total
  kLibCoalesced,    // tiercache_coalesced_waits_total
  kLibContended,    // tiercache_stampede_lock_total{result="contended"}
  kLibDistrusted,   // tiercache_l1_distrusted_total
  kLibBusGaps,      // tiercache_bus_gaps_total
  kLibL2Errors,     // tiercache_l2_problems_total{kind="error"} + {kind="skipped"}
  kCountCount
};
// Their names in stats lines.
inline constexpr std::array<std::string_view, kCountCount> kCountNames = {"reads",
                                                                          "l1",
                                                                          "l2",
                                                                          "db",
                                                                          "stale",
                                                                          "negative",
                                                                          "errors",
                                                                          "unavailable",
                                                                          "writes",
                                                                          "write_errors",
                                                                          "db_selects",
                                                                          "db_updates",
                                                                          "db_refused",
                                                                          "hot_loads",
                                                                          "hot_reads",
                                                                          "hot_l2",
                                                                          "hot_load",
                                                                          "hot_stale",
                                                                          "team_loads",
                                                                          "updates",
                                                                          "lib_stale",
                                                                          "lib_coalesced",
                                                                          "lib_contended",
                                                                          "lib_distrusted",
                                                                          "lib_gaps",
                                                                          "lib_l2_errors"};

struct Counts {
  std::array<std::uint64_t, kCountCount> n{};
  std::uint64_t operator[](Count c) const { return n[c]; }
  std::uint64_t& operator[](Count c) { return n[c]; }
  Counts& operator+=(const Counts& o);
  // Per count: this - o, or 0 where o is larger (a pod that restarted its counts cannot
  // happen, but a difference must never wrap).
  Counts minus(const Counts& o) const;
};

// Latency of reads, by what answered them.
enum LatencyKind : std::size_t { kLatAll, kLatL1, kLatL2, kLatDb, kLatencyKinds };
inline constexpr std::array<std::string_view, kLatencyKinds> kLatencyNames = {"all", "l1", "l2",
                                                                              "db"};

// The bounds of every latency histogram of the demo, in seconds: 10 per decade from 100 ns to
// 10 s (each 26% above the previous one), so a quantile is known to within about 13%.
const std::vector<double>& latency_bounds();

// One histogram over latency_bounds(): per-bucket (not cumulative) counts, the last one being
// +Inf, and the sum of the observations.
struct Buckets {
  std::vector<std::uint64_t> counts = std::vector<std::uint64_t>(latency_bounds().size() + 1);
  std::uint64_t sum_ns = 0;

  Buckets& operator+=(const Buckets& o);
  Buckets minus(const Buckets& o) const;
  std::uint64_t total() const;
  // From a tiercache::Histogram over latency_bounds().
  static Buckets from(const Histogram::Snapshot& s);
  // As a Snapshot (for PrometheusText and Snapshot::quantile).
  Histogram::Snapshot snapshot() const;
  // The q-quantile in microseconds (0 if empty).
  double quantile_us(double q) const;
};

struct Latencies {
  std::array<Buckets, kLatencyKinds> kinds;
  Latencies& operator+=(const Latencies& o);
  Latencies minus(const Latencies& o) const;
};

// One stats line of a pod.
struct PodStats {
  unsigned pod = 0;
  Counts counts;
  Latencies latency;
  int circuit = 0;                  // CircuitBreaker::State: 0 closed, 1 open, 2 half-open
  int bus_connected = 1;            // the invalidation bus
  std::uint32_t inflight_peak = 0;  // most loads running at once since the previous line
  struct Mark {
    std::uint64_t seq = 0;
    std::int64_t ns = 0;
    bool operator==(const Mark&) const = default;
  };
  std::vector<Mark> written;  // new since the previous line
  std::vector<Mark> seen;     // idem
};

std::string encode(const PodStats& stats);
// nullopt if the line is not a stats line ("S ...") or is malformed.
std::optional<PodStats> decode(std::string_view line);

// The value of the first sample of `family` in Prometheus text whose labels contain
// `label_part` (e.g. "result=\"contended\""; empty: any), or 0.
double prometheus_value(std::string_view text, std::string_view family,
                        std::string_view label_part = {});

}  // namespace tiercache::cli::demo
