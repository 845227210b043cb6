// SyncRequest: a PendingRequest that a blocking call waits on. Internal.
//
// The caller submits it and calls wait_until(); the connection calls complete() once. The
// handoff is one atomic word: the caller spins on it briefly, then sleeps on it (a futex on
// Linux, a condition variable elsewhere); complete() publishes the result, then wakes the
// caller only if it sleeps. Whichever comes first decides: the outcome, or the caller's own
// deadline (a backstop: the connection enforces deadlines itself, but nothing completes a
// request on an io_context nobody runs).

#pragma once

#include <atomic>
#include <optional>
#include <vector>

#include "tiercache/redis/detail/pending_request.hpp"

#if !defined(__linux__)
#include <condition_variable>
#include <mutex>
#endif

namespace tiercache::redis::detail {

class SyncRequest final : public PendingRequest {
 public:
  using PendingRequest::PendingRequest;

  void complete(std::optional<Error> error) noexcept override;

  // The outcome, or a kTimeout error if none arrived by `until`.
  Result<std::vector<Reply>> wait_until(RequestClock::time_point until);

 private:
  static constexpr int kWaiting = 0;
  static constexpr int kSleeping = 1;
  static constexpr int kDone = 2;

  // Sleeps while state_ is kSleeping, until woken or `until`; false on timeout.
  bool sleep_until(RequestClock::time_point until);
  void wake();

  std::atomic<int> state_{kWaiting};
  std::optional<Result<std::vector<Reply>>> result_;  // written before state_ becomes kDone
#if !defined(__linux__)
  std::mutex mutex_;
  std::condition_variable done_;
#endif
};

}  // namespace tiercache::redis::detail
