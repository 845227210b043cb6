// CircuitBreaker: stops calling a dependency that keeps failing, and tries it again later.
//
// The cache puts one in front of Redis: when L2 calls fail `failure_threshold` times in a row
// the circuit *opens* and L2 is skipped (reads go to L1 and the loader, writes are dropped and
// counted) for `open_duration`; then it is *half-open*: one caller is let through as a probe.
// The probe's success closes the circuit; its failure opens it again for another
// open_duration. So a dead Redis costs one timed-out call per open_duration, not one per
// request, and recovery needs no operator.
//
// Thread-safety: all members may be called from any number of threads. allow() is one atomic
// load on the closed path. Time comes from the injected Clock.

#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "tiercache/clock.hpp"

namespace tiercache {

struct CircuitBreakerOptions {
  // Consecutive failures that open the circuit. REQUIRES: >= 1.
  std::uint32_t failure_threshold = 5;
  // How long the circuit stays open before a probe is let through.
  Duration open_duration = std::chrono::seconds(2);
};

class CircuitBreaker {
 public:
  enum class State : std::uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

  CircuitBreaker(CircuitBreakerOptions options, std::shared_ptr<const Clock> clock);

  // Whether a call may go ahead. In the half-open state, true for one caller (the probe)
  // until it reports; that caller MUST then call record_success() or record_failure().
  bool allow();
  void record_success();
  void record_failure();

  State state() const { return state_.load(std::memory_order_acquire); }
  // Times the circuit went from closed (or half-open) to open.
  std::uint64_t opened_count() const { return opened_.load(std::memory_order_relaxed); }

 private:
  void open_locked();  // REQUIRES: mutex_ held

  const CircuitBreakerOptions options_;
  const std::shared_ptr<const Clock> clock_;
  std::atomic<State> state_{State::kClosed};
  std::atomic<std::uint32_t> consecutive_failures_{0};
  std::atomic<std::uint64_t> opened_{0};
  std::mutex mutex_;  // guards the transitions below
  TimePoint open_until_{};
  bool probe_in_flight_ = false;
};

const char* to_string(CircuitBreaker::State state);

}  // namespace tiercache
