// The faults of `tiercache chaos`: what they are, the seeded schedule that picks them, and the
// injector that starts and ends them (docs/chaos.md, "The faults").
//
//   redis-sigstop          SIGSTOP redis-server for a while, then SIGCONT
//   redis-kill             SIGKILL redis-server; restart it (empty) on the same port later
//   proxy-cut              close every connection through the proxy
//   proxy-latency          add latency each way
//   proxy-bandwidth        limit every connection's bandwidth
//   proxy-half-open        swallow bytes both ways (writes succeed, no reply comes)
//   proxy-freeze           freeze the open connections for good (new ones work); at the end
//                          they are cut, as a hung server's sockets finally are
//   proxy-refuse           cut every connection and close new ones at once, for a while
//   proxy-reset            reset a connection in the middle of a reply (RST)
//   bus-kill               CLIENT KILL the run's pub/sub connections (the invalidation buses)
//   loader-hang            one worker's loaders hang past the hard timeout after reading
//   loader-fail            every worker's loaders throw (the database is down)
//   worker-kill            a worker SIGKILLs itself in the middle of a load (holding the
//                          stampede lock); it is started again later
// The redis-* faults need the server's process: without a private server (--url) they are
// left out of the schedule, and the run says so.
//
// Not thread-safe: the coordinator's thread drives the injector.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/records.hpp"
#include "sim/random.hpp"

namespace tiercache::testing {
class FaultProxy;
}
namespace tiercache::redis {
class Client;
}

namespace tiercache::cli::demo {
class PrivateRedis;
}

namespace tiercache::cli::chaos {

class WorkerPool;

enum class FaultKind : std::uint8_t {
  kRedisStop,
  kRedisKill,
  kProxyCut,
  kProxyLatency,
  kProxyBandwidth,
  kProxyHalfOpen,
  kProxyFreeze,
  kProxyRefuse,
  kProxyReset,
  kBusKill,
  kLoaderHang,
  kLoaderFail,
  kWorkerKill,
};
inline constexpr std::size_t kFaultKinds = 13;
const char* to_string(FaultKind kind);
// The kind named `name` ("proxy-freeze"), or nullopt.
std::optional<FaultKind> fault_kind(std::string_view name);
// Whether the kind needs redis-server's process (a private server).
bool needs_redis_process(FaultKind kind);

struct FaultPlan {
  FaultKind kind = FaultKind::kProxyCut;
  std::chrono::milliseconds duration{0};  // 0: instantaneous
  std::uint64_t amount = 0;               // latency ms, bandwidth bytes/s, reset after bytes
  unsigned worker = 0;                    // loader-hang, worker-kill: which worker
};

// Picks the faults of a run from its seed: the same seed gives the same sequence of faults
// (their timing follows the run). Kinds are drawn from a shuffled bag of every kind, refilled
// when empty, so that every kind comes once in each round of kinds().size() faults (a 60 s
// run sees each at least once) in an order that differs from seed to seed.
class FaultSchedule {
 public:
  // `only`: the kinds to use (empty: every kind); redis-* kinds are dropped without a redis
  // process. REQUIRES: at least one kind is left.
  FaultSchedule(std::uint64_t seed, bool redis_process, unsigned workers,
                const std::vector<FaultKind>& only = {});
  // The next fault, and how long to wait after the previous one ended before starting it.
  FaultPlan next();
  std::chrono::milliseconds next_gap();
  // The kinds this schedule uses.
  const std::vector<FaultKind>& kinds() const { return kinds_; }

 private:
  std::chrono::milliseconds between(std::int64_t low_ms, std::int64_t high_ms);

  sim::SplitMix64 random_;
  unsigned workers_;
  std::vector<FaultKind> kinds_;
  std::vector<FaultKind> bag_;  // the kinds left in this round
};

// Starts and ends faults, and says what each did.
class FaultInjector {
 public:
  // `redis` is null with --url (then redis-* faults are never planned). `admin` talks to Redis
  // directly (not through the proxy). `cache_name` is also the workers' Redis client name.
  FaultInjector(testing::FaultProxy& proxy, demo::PrivateRedis* redis, redis::Client& admin,
                WorkerPool& workers, std::string cache_name);

  // Starts `plan`'s fault. Returns the record to keep (start set; end set already for an
  // instantaneous fault), with a note of what happened in `name`.
  FaultRecord begin(const FaultPlan& plan);
  // Ends it (start again what was stopped). Returns a note ("" if nothing to say).
  std::string end(const FaultPlan& plan);
  // Heals whatever may still be broken (the run is ending).
  void heal_all();

 private:
  std::optional<pid_t> redis_pid();
  std::string kill_buses();
  std::string kill_worker_in_load(unsigned index);

  testing::FaultProxy& proxy_;
  demo::PrivateRedis* redis_;
  redis::Client& admin_;
  WorkerPool& workers_;
  std::string cache_name_;
  std::optional<pid_t> redis_pid_;  // known since the last (re)start
  bool redis_stopped_ = false;
};

}  // namespace tiercache::cli::chaos
