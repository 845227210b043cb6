// Pacer: one worker thread's schedule of calls at a steady rate, and its own random numbers
// (seeded, so a run's workload is reproducible up to timing).

#pragma once

#include <chrono>
#include <cstdint>

#include "sim/random.hpp"

namespace tiercache::cli::chaos {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;

  // REQUIRES: per_second > 0.
  Pacer(double per_second, std::uint64_t seed)
      : interval_(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(1.0 / per_second))),
        due_(Clock::now()),
        random_(seed) {}

  // Waits until the next call is due; false if `stopper.sleep_for(d)` (which returns false
  // when told to stop) was interrupted. A thread that fell more than kMaxLag behind (a call
  // that hung) starts afresh rather than bursting to catch up.
  template <class Stopper>
  bool wait(Stopper& stopper) {
    due_ += interval_;
    const Clock::time_point now = Clock::now();
    if (now - due_ > kMaxLag) due_ = now;
    if (due_ > now) return stopper.sleep_for(due_ - now);
    return !stopper.stopped();
  }

  // Uniform in [0, 1).
  double uniform() { return random_.next_double(); }
  // Uniform in [0, n). REQUIRES: n > 0.
  std::uint64_t below(std::uint64_t n) { return random_.next_below(n); }

 private:
  static constexpr std::chrono::milliseconds kMaxLag{100};

  Clock::duration interval_;
  Clock::time_point due_;
  sim::SplitMix64 random_;
};

}  // namespace tiercache::cli::chaos
