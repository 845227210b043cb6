// A pod of `tiercache demo`: one process of the "user service", forked by the coordinator.
//
// A pod has its own Redis client, its own tiercache::Cache<User> (its own L1; L2 and the
// invalidation bus shared with the other pods through the cache's name), its own SQLite
// connection, and `workers` threads serving a Zipfian stream of GetUser(id) reads, a few
// write-throughs and a few ids that do not exist. It obeys commands from the coordinator, one
// line each on `command_fd`:
//   phase I    enter phase I (phases.hpp); pod 0 also performs the phase's action:
//              hot-key: re-stores the hot user with the short TTL (Cache::set, WriteOptions::ttl)
//              update: writes the watched user's name (write_through) every kUpdateInterval;
//                every pod (pod 0 too) polls the watched user and notes each new name
//              tag-refresh: invalidate_tag("team:<kRefreshedTeam>")
//              db-down / db-back (every pod): the loader and the writer throw / work again
//   tick       send a stats line now (stats.hpp)
//   stop       stop the workers, send the final stats line, the cache's Prometheus text and
//              "E", and exit (EOF on command_fd does the same)
// and writes to `report_fd`: "R" once ready, "S ..." stats lines, "L <level> <message>" for
// the first few messages of the library's log, "P <line>" for each line of the final
// Prometheus text, "E" at the end, or "X <message>" if it could not start.

#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "demo/phases.hpp"
#include "tiercache/redis/config.hpp"

namespace tiercache::cli::demo {

struct PodConfig {
  unsigned index = 0;
  unsigned pods = 1;
  std::int64_t users = 0;
  std::string db_path;
  redis::ClientConfig redis;
  std::string cache_name;
  std::chrono::microseconds db_latency{0};
  unsigned workers = 1;
  double reads_per_second = 0;  // this pod's target; 0: as fast as it can
  unsigned max_concurrent_loads = 1;
  std::size_t l1_entries = 0;
  Plan plan;
  std::optional<std::uint64_t> cache_seed;  // CacheOptions::seed (the pod's own)
  std::uint64_t workload_seed = 0;          // the pod's own
  int command_fd = -1;
  int report_fd = -1;
};

// The body of the pod process. Returns its exit status.
int run_pod(const PodConfig& config);

}  // namespace tiercache::cli::demo
