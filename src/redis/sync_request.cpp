#include "redis/sync_request.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "redis/time_left.hpp"
#endif

namespace tiercache::redis::detail {

namespace {
// Polls of the state before sleeping: a few microseconds, enough for a reply already on its
// way, not enough to steal a core from the I/O thread for a whole round trip.
constexpr int kSpins = 256;
}  // namespace

void SyncRequest::complete(std::optional<Error> error) noexcept {
  result_.emplace(outcome(std::move(error)));
  if (state_.exchange(kDone, std::memory_order_acq_rel) == kSleeping) wake();
}

Result<std::vector<Reply>> SyncRequest::wait_until(RequestClock::time_point until) {
  for (int i = 0; i < kSpins; ++i) {
    if (state_.load(std::memory_order_acquire) == kDone) return std::move(*result_);
  }
  int expected = kWaiting;
  if (state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) {
    if (!sleep_until(until)) {
      return make_error(Errc::kTimeout, "no reply by the deadline (is the io_context running?)");
    }
  }
  return std::move(*result_);
}

#if defined(__linux__)

bool SyncRequest::sleep_until(RequestClock::time_point until) {
  static_assert(sizeof(std::atomic<int>) == sizeof(int));
  auto* word = reinterpret_cast<int*>(&state_);
  while (state_.load(std::memory_order_acquire) != kDone) {
    const std::optional<timespec> timeout = time_left(until);
    if (!timeout) return false;
    // Returns at once if the word is no longer kSleeping (the result came in between).
    ::syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, kSleeping, &*timeout, nullptr, 0);
  }
  return true;
}

void SyncRequest::wake() {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

#else

bool SyncRequest::sleep_until(RequestClock::time_point until) {
  std::unique_lock lock(mutex_);
  return done_.wait_until(lock, until,
                          [&] { return state_.load(std::memory_order_acquire) == kDone; });
}

void SyncRequest::wake() {
  { std::lock_guard lock(mutex_); }  // the caller is asleep, or will see kDone
  done_.notify_one();
}

#endif

}  // namespace tiercache::redis::detail
