// The coordinator's record of a run (timeline.hpp).

#include "demo/timeline.hpp"

#include <algorithm>

namespace tiercache::cli::demo {

double l1_hit_ratio(const Counts& c) {
  return c[kReads] == 0 ? 0.0 : static_cast<double>(c[kL1Hits]) / c[kReads];
}

double l2_hit_ratio(const Counts& c) {
  const std::uint64_t missed_l1 = c[kReads] - std::min(c[kReads], c[kL1Hits]);
  return missed_l1 == 0 ? 0.0 : static_cast<double>(c[kL2Hits]) / missed_l1;
}

double offload(const Counts& c) {
  if (c[kReads] == 0) return 0.0;
  return 1.0 - static_cast<double>(c[kDbSelects]) / c[kReads];
}

void Timeline::update(const PodStats& stats) {
  if (stats.pod >= latest_.size()) return;
  for (const PodStats::Mark& m : stats.written) {
    written_.push_back(m);
    writers_.push_back(stats.pod);
  }
  for (const PodStats::Mark& m : stats.seen) seen_.push_back(Sighting{phase_, stats.pod, m});
  latest_[stats.pod] = stats;
  latest_[stats.pod]->written.clear();
  latest_[stats.pod]->seen.clear();
}

bool Timeline::has_all_pods() const {
  return std::all_of(latest_.begin(), latest_.end(), [](const auto& s) { return s.has_value(); });
}

void Timeline::begin_phase(std::size_t phase, double t) {
  phase_ = phase;
  while (phase_starts_.size() <= phase) phase_starts_.push_back(t);
}

Counts Timeline::totals() const {
  Counts c;
  for (const auto& s : latest_) {
    if (s) c += s->counts;
  }
  return c;
}

Latencies Timeline::latency_totals() const {
  Latencies l;
  for (const auto& s : latest_) {
    if (s) l += s->latency;
  }
  return l;
}

const Row& Timeline::sample(double t) {
  Row row;
  row.t = t;
  row.seconds = t - previous_t_;
  row.phase = phase_;
  const Counts counts = totals();
  const Latencies latency = latency_totals();
  row.counts = counts.minus(previous_counts_);
  row.latency = latency.minus(previous_latency_);
  for (const auto& s : latest_) {
    if (!s) continue;
    if (s->circuit != 0) ++row.circuits_open;
    if (s->bus_connected == 0) ++row.buses_down;
    row.inflight_peak = std::max(row.inflight_peak, s->inflight_peak);
  }
  previous_counts_ = counts;
  previous_latency_ = latency;
  previous_t_ = t;
  rows_.push_back(row);
  return rows_.back();
}

PhaseSummary Timeline::summary(std::size_t phase) const {
  PhaseSummary out;
  const double start = phase < phase_starts_.size() ? phase_starts_[phase] : 0;
  const unsigned pods = static_cast<unsigned>(latest_.size());
  for (const Row& row : rows_) {
    if (row.phase != phase) continue;
    out.seconds += row.seconds;
    out.counts += row.counts;
    out.latency += row.latency;
    out.max_circuits_open = std::max(out.max_circuits_open, row.circuits_open);
    out.inflight_peak = std::max(out.inflight_peak, row.inflight_peak);
    out.peak_db_queries_per_second =
        std::max(out.peak_db_queries_per_second, row.db_queries_per_second());
    if (!out.all_open_after && row.circuits_open == pods) out.all_open_after = row.t - start;
    if (!out.all_closed_after && row.circuits_open == 0) out.all_closed_after = row.t - start;
  }
  return out;
}

std::vector<double> Timeline::propagation_us(std::optional<std::size_t> phase) const {
  std::vector<double> out;
  for (const Sighting& s : seen_) {
    if (phase && s.phase != *phase) continue;
    for (std::size_t i = 0; i < written_.size(); ++i) {
      if (written_[i].seq != s.mark.seq || writers_[i] == s.pod) continue;
      out.push_back(static_cast<double>(s.mark.ns - written_[i].ns) / 1000.0);
      break;
    }
  }
  return out;
}

}  // namespace tiercache::cli::demo
