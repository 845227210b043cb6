// time_left: what remains of a request's deadline, as the timespec that ppoll and futex take.
// Internal.
#pragma once

#include <chrono>
#include <ctime>
#include <optional>

#include "tiercache/redis/detail/pending_request.hpp"

namespace tiercache::redis::detail {

// The time from now until `deadline`; nullopt once it has passed.
inline std::optional<timespec> time_left(RequestClock::time_point deadline) {
  const auto left = deadline - RequestClock::now();
  if (left <= RequestClock::duration::zero()) return std::nullopt;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace tiercache::redis::detail
