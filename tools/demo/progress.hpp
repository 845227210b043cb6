// The live progress line of `tiercache demo`: phase, reads/s, L1 and L2 hit ratio, DB
// queries/s, read latency p50/p99, stale serves, errors, circuits open -- over the last second
// (four 250 ms rows: one is too noisy to read). Rewritten in place (\r) when stdout is a
// terminal, one line per second otherwise (logs, CI). Lines of their own (phase announcements,
// results) go through line(), which first clears an in-place line.

#pragma once

#include <string>

#include "demo/timeline.hpp"

namespace tiercache::cli::demo {

class Progress {
 public:
  Progress();
  // After each tick (row) of the timeline; `phase_elapsed`: seconds since the phase began.
  void row(const Timeline& timeline, double phase_elapsed);
  // A line of its own.
  void line(const std::string& text);

 private:
  bool tty_;
  bool pending_ = false;  // an in-place line is on screen
  unsigned ticks_ = 0;
};

// "812", "12.3k", "1.25M".
std::string si(double v);

}  // namespace tiercache::cli::demo
