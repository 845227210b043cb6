// The phases of `tiercache demo`, and the timings derived from --seconds.
//
// The database outage comes before the Redis outage: fail-safe serves values kept in Redis past
// their expiry (the stale window), and a private redis-server restarts empty -- after it, the
// values loaded since the restart would not have expired yet, and the long tail of users would
// have nothing to serve. Before it, L2 holds every value loaded since the start, and those
// whose TTL ran out are what fail-safe serves.
//
// The default run lasts kDefaultSeconds (60 s of load). --seconds S scales every phase, the
// cache TTL and the hot key's short TTL by S / kDefaultSeconds, but no phase gets shorter than
// its minimum (what it needs to show its effect: e.g. a Redis restart takes the client's
// reconnect plus the circuit breaker's open period before L2 is back), so a short S may run a
// few seconds longer than asked.

#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tiercache::cli::demo {

enum class PhaseId : std::uint8_t {
  kWarmUp,
  kSteady,
  kHotKey,
  kUpdate,
  kTagRefresh,
  kDbDown,
  kDbBack,
  kRedisDown,
  kRedisBack,
};
inline constexpr std::size_t kPhaseCount = 9;

struct PhaseInfo {
  PhaseId id;
  std::string_view name;  // short, for the progress line, the CSV and the charts
  double default_seconds;
  double min_seconds;
};

inline constexpr std::array<PhaseInfo, kPhaseCount> kPhases = {{
    {PhaseId::kWarmUp, "warm-up", 6, 2},
    {PhaseId::kSteady, "steady", 8, 2},
    {PhaseId::kHotKey, "hot-key-expiry", 7, 2.5},
    {PhaseId::kUpdate, "update", 6, 2},
    {PhaseId::kTagRefresh, "tag-refresh", 7, 2},
    {PhaseId::kDbDown, "db-down", 5, 1.5},
    {PhaseId::kDbBack, "db-back", 6, 2},
    {PhaseId::kRedisDown, "redis-down", 5, 1.5},
    {PhaseId::kRedisBack, "redis-back", 10, 4},
}};

inline constexpr double kDefaultSeconds = [] {
  double total = 0;
  for (const PhaseInfo& p : kPhases) total += p.default_seconds;
  return total;
}();

// The hottest user (Zipf rank 1 is id 1): its TTL expires under load in the hot-key phase.
inline constexpr std::int64_t kHotUserId = 1;
// The user whose update is watched by every pod in the update phase (rank 2).
inline constexpr std::int64_t kWatchedUserId = 2;
// The team invalidated in the tag phase (neither of the users above is in it).
inline constexpr std::int64_t kRefreshedTeam = 3;

// Timings of one run.
struct Plan {
  double scale = 1.0;
  std::array<double, kPhaseCount> seconds{};
  std::chrono::milliseconds ttl{};      // the cache's TTL (and negative TTL)
  std::chrono::milliseconds hot_ttl{};  // the hot key's short TTL in the hot-key phase

  double total_seconds() const {
    double total = 0;
    for (double s : seconds) total += s;
    return total;
  }
  // Seconds from the start of the load to the start of phase i.
  double start_of(std::size_t i) const {
    double t = 0;
    for (std::size_t j = 0; j < i; ++j) t += seconds[j];
    return t;
  }
};

// The default cache TTL: long enough that most reads are hits, short enough that values expire
// during the run (so the database-down phase has stale values to serve).
inline constexpr std::chrono::milliseconds kDefaultTtl{30'000};
inline constexpr std::chrono::milliseconds kMinTtl{5'000};
inline constexpr std::chrono::milliseconds kDefaultHotTtl{2'000};
inline constexpr std::chrono::milliseconds kMinHotTtl{500};

inline Plan make_plan(double total_seconds) {
  Plan plan;
  plan.scale = total_seconds / kDefaultSeconds;
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    // A whole number of 250 ms ticks (the coordinator's rhythm).
    const double s = std::max(kPhases[i].min_seconds, kPhases[i].default_seconds * plan.scale);
    plan.seconds[i] = std::round(s * 4) / 4;
  }
  const auto scaled = [&](std::chrono::milliseconds d, std::chrono::milliseconds low) {
    return std::max(low, std::chrono::milliseconds(static_cast<std::int64_t>(
                             static_cast<double>(d.count()) * plan.scale)));
  };
  plan.ttl = scaled(kDefaultTtl, kMinTtl);
  plan.hot_ttl = scaled(kDefaultHotTtl, kMinHotTtl);
  return plan;
}

}  // namespace tiercache::cli::demo
