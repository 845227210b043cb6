// CircuitBreaker (include/tiercache/circuit_breaker.hpp). States and transitions:
//
//   closed --(failure_threshold consecutive failures)--> open
//   open --(open_duration elapsed; next allow() is the probe)--> half-open
//   half-open --(probe succeeds)--> closed;  --(probe fails)--> open
//
// The closed path (allow() and record_success() with no failures pending) touches only
// atomics; the mutex orders transitions.

#include "tiercache/circuit_breaker.hpp"

namespace tiercache {

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, std::shared_ptr<const Clock> clock)
    : options_(options), clock_(clock ? std::move(clock) : default_clock()) {}

bool CircuitBreaker::allow() {
  if (state_.load(std::memory_order_acquire) == State::kClosed) return true;
  std::lock_guard lock(mutex_);
  switch (state_.load(std::memory_order_relaxed)) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (clock_->now() < open_until_) return false;
      state_.store(State::kHalfOpen, std::memory_order_release);
      probe_in_flight_ = true;
      return true;
    case State::kHalfOpen:
      if (probe_in_flight_) return false;
      probe_in_flight_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::record_success() {
  if (state_.load(std::memory_order_acquire) == State::kClosed &&
      consecutive_failures_.load(std::memory_order_relaxed) == 0) {
    return;
  }
  std::lock_guard lock(mutex_);
  consecutive_failures_.store(0, std::memory_order_relaxed);
  probe_in_flight_ = false;
  state_.store(State::kClosed, std::memory_order_release);
}

void CircuitBreaker::record_failure() {
  std::lock_guard lock(mutex_);
  switch (state_.load(std::memory_order_relaxed)) {
    case State::kClosed:
      if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 >=
          options_.failure_threshold) {
        open_locked();
      }
      break;
    case State::kHalfOpen:
      open_locked();
      break;
    case State::kOpen:
      break;  // a call that started before the circuit opened
  }
}

void CircuitBreaker::open_locked() {
  open_until_ = clock_->now() + options_.open_duration;
  probe_in_flight_ = false;
  consecutive_failures_.store(0, std::memory_order_relaxed);
  opened_.fetch_add(1, std::memory_order_relaxed);
  state_.store(State::kOpen, std::memory_order_release);
}

const char* to_string(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

}  // namespace tiercache
