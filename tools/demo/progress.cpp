// The progress line of `tiercache demo` (progress.hpp).

#include "demo/progress.hpp"

#include <unistd.h>

#include <cstdio>
#include <vector>

#include "demo/report.hpp"

namespace tiercache::cli::demo {
namespace {

// Rows per line: without a terminal, one line per second; the line sums as many rows.
constexpr unsigned kRowsPerLine = 4;

}  // namespace

std::string si(double v) {
  char buffer[32];
  if (v >= 1e6) {
    std::snprintf(buffer, sizeof buffer, "%.2fM", v / 1e6);
  } else if (v >= 1e4) {
    std::snprintf(buffer, sizeof buffer, "%.1fk", v / 1e3);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.0f", v);
  }
  return buffer;
}

Progress::Progress() : tty_(::isatty(STDOUT_FILENO) == 1) {}

void Progress::row(const Timeline& timeline, double phase_elapsed) {
  ++ticks_;
  if (!tty_ && ticks_ % kRowsPerLine != 0) return;
  const std::vector<Row>& rows = timeline.rows();
  Counts c;
  Latencies l;
  double seconds = 0;
  unsigned circuits = 0;
  for (std::size_t i = rows.size(), n = 0; i > 0 && n < kRowsPerLine; --i, ++n) {
    c += rows[i - 1].counts;
    l += rows[i - 1].latency;
    seconds += rows[i - 1].seconds;
    if (n == 0) circuits = rows[i - 1].circuits_open;
  }
  if (seconds <= 0) return;
  const std::string unavailable =
      c[kUnavailable] == 0 ? std::string() : " unavailable " + std::to_string(c[kUnavailable]);
  char line[512];
  std::snprintf(line, sizeof line,
                "# [%-14s %5.1fs] %7s reads/s | L1 %5.1f%% L2 %5.1f%% | DB %6s q/s | p50 %9s "
                "p99 %9s | stale %llu errors %llu%s | circuit open %u/%zu",
                std::string(kPhases[timeline.phase()].name).c_str(), phase_elapsed,
                si(c[kReads] / seconds).c_str(), 100 * l1_hit_ratio(c), 100 * l2_hit_ratio(c),
                si((c[kDbSelects] + c[kDbUpdates]) / seconds).c_str(),
                format_latency_us(l.kinds[kLatAll].quantile_us(0.5)).c_str(),
                format_latency_us(l.kinds[kLatAll].quantile_us(0.99)).c_str(),
                static_cast<unsigned long long>(c[kStale]),
                static_cast<unsigned long long>(c[kErrors]), unavailable.c_str(), circuits,
                timeline.latest().size());
  if (tty_) {
    std::printf("\r\033[K%s", line);
    pending_ = true;
  } else {
    std::printf("%s\n", line);
  }
  std::fflush(stdout);
}

void Progress::line(const std::string& text) {
  if (pending_) std::printf("\r\033[K");
  pending_ = false;
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

}  // namespace tiercache::cli::demo
