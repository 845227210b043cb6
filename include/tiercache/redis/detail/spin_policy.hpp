// SpinPolicy: whether a blocking call on the fast path waits for its reply by polling the
// socket without sleeping (spinning: a non-blocking read, then sched_yield, again) for up to a
// budget, or sleeps in the kernel at once.
//
// Sleeping costs a wake-up when the reply arrives. On a VM whose idle cores halt, that wake-up
// can cost more than the loopback round trip itself (about 35 us of a 70 us GET on the 2-core
// VM of docs/redis-client.md); spinning keeps the core awake and the reply is read as it lands.
// Spinning is worth it only where it is measurably faster: with Redis far away the reply comes
// after the budget anyway, and with Redis on the caller's core the spin delays the server. So
// the policy measures both: it keeps a moving average of the wait (from the request written to
// its last reply read) under each choice, uses the faster one (spinning must win by a margin,
// since it burns a core), and tries the other one from time to time so that a change of
// conditions is noticed: sleeping every kExploreEvery-th call while spinning is preferred;
// spinning every kExploreEvery-th call at first while sleeping is, and half as often after each
// try that does not make it preferred, down to one call in kMaxExploreEvery (so a far or busy
// server costs little spinning). A budget of zero never spins.
//
// Not thread-safe: a connection's fast path has one caller at a time, and ownership passes
// under a mutex (Connection::try_direct), which orders the calls. Time is given, not read:
// callers measure the waits; tests feed them.
#pragma once

#include <chrono>
#include <cstdint>

namespace tiercache::redis::detail {

class SpinPolicy {
 public:
  // One call in kExploreEvery takes the choice that is not currently preferred (for spinning,
  // at first: see above).
  static constexpr std::uint32_t kExploreEvery = 16;
  static constexpr std::uint32_t kMaxExploreEvery = 256;
  // Spinning is preferred only when its average wait is below this fraction of sleeping's.
  static constexpr double kSpinMargin = 0.9;

  explicit SpinPolicy(std::chrono::nanoseconds budget)
      : budget_(budget < std::chrono::nanoseconds::zero() ? std::chrono::nanoseconds::zero()
                                                          : budget) {}

  std::chrono::nanoseconds budget() const { return budget_; }

  // Whether the next wait spins (for up to budget()) before sleeping.
  bool spin_next() {
    if (budget_ == std::chrono::nanoseconds::zero()) return false;
    if (spin_avg_ns_ < 0) return true;    // never measured: try it
    if (sleep_avg_ns_ < 0) return false;  // likewise
    const bool preferred = prefers_spinning();
    const std::uint32_t every = preferred ? kExploreEvery : spin_explore_every_;
    return ++calls_ % every == 0 ? !preferred : preferred;
  }

  // Records a completed wait: whether it spun, and how long it took from the request written
  // to its last reply read. Waits that failed (timeout, lost connection) are not recorded.
  void record(bool spun, std::chrono::nanoseconds waited) {
    double& avg = spun ? spin_avg_ns_ : sleep_avg_ns_;
    auto sample = static_cast<double>(waited.count());
    if (sample < 0) sample = 0;
    if (avg < 0) {
      avg = sample;
      return;
    }
    // One stalled reply (a slow command, a preempted server) must not decide for hundreds of
    // calls: a sample counts for at most kMaxStep times the average. A real change of level
    // still takes over within a few samples.
    if (sample > avg * kMaxStep + kFloorNs) sample = avg * kMaxStep + kFloorNs;
    avg += (sample - avg) * kWeight;
    if (prefers_spinning()) {
      spin_explore_every_ = kExploreEvery;
    } else if (spun && spin_explore_every_ < kMaxExploreEvery) {
      spin_explore_every_ *= 2;  // a try that lost: try less often
    }
  }

  // How many calls apart spinning is tried while sleeping is preferred (for tests).
  std::uint32_t spin_explore_every() const { return spin_explore_every_; }

  // Whether spinning is the current choice (for stats and tests).
  bool prefers_spinning() const {
    return budget_ > std::chrono::nanoseconds::zero() && spin_avg_ns_ >= 0 &&
           (sleep_avg_ns_ < 0 || spin_avg_ns_ < sleep_avg_ns_ * kSpinMargin);
  }

 private:
  static constexpr double kWeight = 1.0 / 8;  // of a new sample in the moving average
  static constexpr double kMaxStep = 4;
  static constexpr double kFloorNs = 1000;

  std::chrono::nanoseconds budget_;
  double spin_avg_ns_ = -1;   // < 0: no sample yet
  double sleep_avg_ns_ = -1;  // < 0: no sample yet
  std::uint32_t calls_ = 0;
  std::uint32_t spin_explore_every_ = kExploreEvery;
};

}  // namespace tiercache::redis::detail
