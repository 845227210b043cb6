// A Clock tells tiercache what time it is. Every piece of time-based logic in the library
// (expiry, jitter, refresh, backoff) reads time through a Clock it was given, never from a
// global, so that tests can drive time by hand with ManualClock.
//
// Thread-safety: now() may be called from any number of threads at once; implementations
// must be safe for that. Time is monotonic: now() never goes backwards for one Clock.
// Ownership: caches hold a std::shared_ptr<const Clock>, so a clock outlives its users.

#pragma once

#include <atomic>
#include <chrono>
#include <memory>

namespace tiercache {

// Durations and instants used across the library: a steady, nanosecond-resolution clock.
using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

class Clock {
 public:
  virtual ~Clock() = default;
  // The current instant. Monotonic and thread-safe.
  virtual TimePoint now() const noexcept = 0;
};

// The real clock: std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const noexcept override;
};

// The process-wide default clock (a SteadyClock). Stateless, so sharing it is not global
// state in any observable sense.
std::shared_ptr<const Clock> default_clock();

// A clock that moves only when told to. For tests (the library's and its users').
// Starts at an arbitrary non-zero instant so "time zero" bugs are visible.
class ManualClock final : public Clock {
 public:
  ManualClock() = default;
  explicit ManualClock(TimePoint start) : now_ns_(start.time_since_epoch().count()) {}

  TimePoint now() const noexcept override {
    return TimePoint(Duration(now_ns_.load(std::memory_order_acquire)));
  }
  // Moves time forward by `d`. REQUIRES: d >= 0.
  void advance(Duration d) noexcept { now_ns_.fetch_add(d.count(), std::memory_order_acq_rel); }

 private:
  std::atomic<Duration::rep> now_ns_{Duration(std::chrono::hours(24 * 365)).count()};
};

}  // namespace tiercache
