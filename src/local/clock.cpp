#include "tiercache/clock.hpp"

namespace tiercache {

TimePoint SteadyClock::now() const noexcept {
  return std::chrono::time_point_cast<Duration>(std::chrono::steady_clock::now());
}

std::shared_ptr<const Clock> default_clock() {
  static const auto clock = std::make_shared<const SteadyClock>();
  return clock;
}

}  // namespace tiercache
