// Backoff: the delays between retries of something that keeps failing (a reconnect, a
// refresh), growing exponentially with random jitter so that many clients that failed
// together do not retry together.
//
// The n-th delay (n = 0, 1, ...) is min(cap, min_delay * 2^n) scaled by a uniform factor in
// [1 - jitter, 1 + jitter], where cap = max_delay / (1 + jitter): delays never exceed
// max_delay and stay spread out once they reach it (clients that failed together keep
// retrying apart). Without jitter the cap is max_delay itself. reset() starts
// over (call it after a success). The random source is a seeded counter-based generator,
// so a given seed always gives the same delays (tests rely on it). Not thread-safe: one
// Backoff per retrying thing, used by one thread (or under its owner's lock/strand).

#pragma once

#include <algorithm>
#include <cstdint>

#include "tiercache/clock.hpp"
#include "tiercache/detail/mix.hpp"

namespace tiercache {

class Backoff {
 public:
  // REQUIRES: Duration::zero() <= min_delay <= max_delay; 0 <= jitter <= 1.
  Backoff(Duration min_delay, Duration max_delay, double jitter, std::uint64_t seed)
      : min_delay_(min_delay), max_delay_(max_delay), jitter_(jitter), state_(seed) {}

  // The delay before the next retry; counts one more failure.
  Duration next() {
    const Duration cap = jitter_ <= 0
                             ? max_delay_
                             : Duration(static_cast<Duration::rep>(
                                   static_cast<double>(max_delay_.count()) / (1.0 + jitter_)));
    Duration base = cap;
    if (attempts_ < 62 && min_delay_.count() <= (cap.count() >> attempts_)) {
      base = std::min(cap, Duration(min_delay_.count() << attempts_));
    }
    ++attempts_;
    if (jitter_ <= 0) return base;
    const double unit = static_cast<double>(next_random() >> 11) * 0x1.0p-53;  // [0, 1)
    const double factor = 1.0 - jitter_ + 2.0 * jitter_ * unit;
    const double scaled = static_cast<double>(base.count()) * factor;
    return std::clamp(Duration(static_cast<Duration::rep>(scaled)), Duration::zero(), max_delay_);
  }

  // Failures counted since construction or the last reset().
  std::uint32_t attempts() const { return attempts_; }
  void reset() { attempts_ = 0; }

 private:
  std::uint64_t next_random() { return detail::splitmix64_next(state_); }

  Duration min_delay_;
  Duration max_delay_;
  double jitter_;
  std::uint64_t state_;
  std::uint32_t attempts_ = 0;
};

}  // namespace tiercache
