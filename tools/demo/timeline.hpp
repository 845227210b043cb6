// The coordinator's record of a `tiercache demo` run: the latest stats of each pod, a row per
// tick (250 ms) with what happened in it (the sum over pods of the counts' growth), and what
// each phase added up to.

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "demo/phases.hpp"
#include "demo/stats.hpp"

namespace tiercache::cli::demo {

// One tick.
struct Row {
  double t = 0;        // seconds from the start of the load to the end of the tick
  double seconds = 0;  // the tick's length
  std::size_t phase = 0;
  Counts counts;                    // what happened during the tick, all pods
  Latencies latency;                // idem
  unsigned circuits_open = 0;       // pods whose L2 circuit is open or half-open at the end
  unsigned buses_down = 0;          // pods whose invalidation bus is disconnected at the end
  std::uint32_t inflight_peak = 0;  // most loads at once in one pod during the tick

  double per_second(Count c) const { return seconds > 0 ? counts[c] / seconds : 0; }
  double db_queries_per_second() const {
    return seconds > 0 ? (counts[kDbSelects] + counts[kDbUpdates]) / seconds : 0;
  }
};

// Hit ratios as the demo defines them: L1 = fresh L1 answers / reads; L2 = fresh L2 answers /
// reads that missed L1; offload = 1 - DB reads (SELECTs) / reads.
double l1_hit_ratio(const Counts& c);
double l2_hit_ratio(const Counts& c);
double offload(const Counts& c);

// A phase, added up.
struct PhaseSummary {
  double seconds = 0;
  Counts counts;
  Latencies latency;
  unsigned max_circuits_open = 0;
  std::uint32_t inflight_peak = 0;
  double peak_db_queries_per_second = 0;
  // Seconds from the phase's start to the end of the first tick with every pod's circuit open
  // / with every pod's circuit closed again; nullopt if that never happened in the phase.
  std::optional<double> all_open_after;
  std::optional<double> all_closed_after;
};

class Timeline {
 public:
  explicit Timeline(unsigned pods) : latest_(pods) {}

  // A stats line from a pod. Its update marks go to the current phase.
  void update(const PodStats& stats);
  bool has_all_pods() const;
  // The phase now starting, `t` seconds after the load started.
  void begin_phase(std::size_t phase, double t);
  // Closes a tick at `t` from the pods' latest stats; returns it.
  const Row& sample(double t);

  const std::vector<Row>& rows() const { return rows_; }
  const std::vector<double>& phase_starts() const { return phase_starts_; }
  std::size_t phase() const { return phase_; }
  // Everything, from the pods' latest (final) stats.
  Counts totals() const;
  Latencies latency_totals() const;
  // Propagation samples (microseconds): for each update a pod other than the writer saw, from
  // the database's commit to that pod's first read of it. Only phase `phase` if given.
  std::vector<double> propagation_us(std::optional<std::size_t> phase = std::nullopt) const;
  PhaseSummary summary(std::size_t phase) const;
  const std::vector<std::optional<PodStats>>& latest() const { return latest_; }

 private:
  std::vector<std::optional<PodStats>> latest_;  // by pod
  std::vector<Row> rows_;
  Counts previous_counts_;
  Latencies previous_latency_;
  double previous_t_ = 0;
  std::size_t phase_ = 0;
  std::vector<double> phase_starts_;
  struct Sighting {
    std::size_t phase;
    unsigned pod;
    PodStats::Mark mark;
  };
  std::vector<PodStats::Mark> written_;
  std::vector<unsigned> writers_;  // by written_ entry
  std::vector<Sighting> seen_;
};

}  // namespace tiercache::cli::demo
