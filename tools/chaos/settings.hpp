// The configuration of a `tiercache chaos` run that two sides must agree on: the workers build
// their cache and Redis client from it, and the coordinator derives the oracle's bounds from
// the same numbers (docs/chaos.md, "The bounds"). Change a value here and both follow.

#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include "chaos/oracle.hpp"
#include "tiercache/options.hpp"
#include "tiercache/redis/config.hpp"

namespace tiercache::cli::chaos {

using std::chrono::milliseconds;

// ---- the workers' cache (CacheOptions) ----------------------------------------------------------
// Short enough that entries expire, refresh early and go stale within a run.
inline constexpr milliseconds kTtl{8'000};
// The library's defaults, named because the bounds depend on them.
inline constexpr milliseconds kSoftTimeout{100};
inline constexpr milliseconds kFailSafeThrottle{1'000};
inline constexpr milliseconds kDisconnectedL1Ttl{5'000};
// Shorter than the default 30 s, so that a hung loader produces timeouts within a run.
inline constexpr milliseconds kHardTimeout{2'000};
// Shorter than the default 5 s: a killed lock holder is taken over within a run's fault.
inline constexpr milliseconds kLockTtl{2'000};
inline constexpr std::uint32_t kMaxConcurrentLoads = 8;

// ---- the workers' Redis client (ClientConfig) ---------------------------------------------------
// A silent connection (frozen, or its server stopped) is noticed within
// 2 * health_check_interval + command_timeout: the PING goes out after a full idle interval,
// which the check may just have missed, and is waited for command_timeout.
inline constexpr milliseconds kHealthCheckInterval{1'000};
inline constexpr milliseconds kCommandTimeout{1'000};
inline constexpr milliseconds kConnectTimeout{1'000};
inline constexpr milliseconds kReconnectMaxDelay{500};

// ---- faults -------------------------------------------------------------------------------------
// How long a hung loader hangs: past the hard timeout, so its callers time out.
inline constexpr milliseconds kLoaderHang = kHardTimeout + milliseconds(1'000);

// ---- the oracle's bounds (docs/chaos.md explains each) ------------------------------------------
// Bus delivery while no fault is near: the docs promise "milliseconds"; this allows for a
// loaded two-core machine running every process of the run.
inline constexpr milliseconds kHealthyBound{1'000};
// Slack added to bounds derived from the library's timings (scheduling, timer granularity).
inline constexpr milliseconds kMargin{1'000};
// A call taking longer than the hard timeout plus this is a hang.
inline constexpr milliseconds kHangMargin{2'000};
// Reads are judged this long after they end (longer than a hung load and any hang bound).
inline constexpr milliseconds kSettle{10'000};

// A duration in the records' unit (records.hpp).
constexpr Micros to_micros(milliseconds d) { return static_cast<Micros>(d.count()) * 1000; }

// How long a dead bus takes to be noticed (see kHealthCheckInterval).
constexpr milliseconds bus_detection() { return 2 * kHealthCheckInterval + kCommandTimeout; }
// How long after a network fault ends a client may still be reconnecting.
constexpr milliseconds reconnection() { return kReconnectMaxDelay + kConnectTimeout; }

inline OracleConfig oracle_config(std::int64_t keys) {
  const auto us = to_micros;
  OracleConfig c;
  c.keys = keys;
  c.healthy_bound = us(kHealthyBound);
  // While a bus may be down, an L1 copy is served until it is disconnected_l1_ttl old or the
  // dead bus is noticed (whichever is later), and the reconnection that drops every copy may
  // take a reconnection() more.
  c.degraded_bound =
      us(std::max(kDisconnectedL1Ttl, bus_detection()) + kReconnectMaxDelay + kMargin);
  c.call_bound = us(kHardTimeout + kHangMargin);
  c.soft_timeout = us(kSoftTimeout);
  c.stale_evidence = us(kFailSafeThrottle + kMargin);
  c.settle = us(kSettle);
  return c;
}

inline CacheOptions cache_options(std::string name, std::int64_t keys, std::uint64_t seed) {
  CacheOptions o;
  o.name = std::move(name);
  o.ttl = kTtl;
  o.soft_timeout = kSoftTimeout;
  o.hard_timeout = kHardTimeout;
  o.fail_safe_throttle = kFailSafeThrottle;
  o.disconnected_l1_ttl = kDisconnectedL1Ttl;
  o.lock_ttl = kLockTtl;
  o.max_concurrent_loads = kMaxConcurrentLoads;
  // Half the rows: L1 evicts, so reads keep going to L2 and the loader.
  o.l1.max_entries = static_cast<std::size_t>(std::max<std::int64_t>(100, keys / 2));
  o.seed = seed;
  return o;
}

inline void tune_client(redis::ClientConfig& config) {
  config.health_check_interval = kHealthCheckInterval;
  config.command_timeout = kCommandTimeout;
  config.connect_timeout = kConnectTimeout;
  config.reconnect_max_delay = kReconnectMaxDelay;
}

}  // namespace tiercache::cli::chaos
