// A worker process of `tiercache chaos`: one "pod" of the service under test, started by the
// coordinator (fork + exec of `tiercache chaos-worker`), possibly killed with SIGKILL and
// started again at any time.
//
// A worker has its own Redis client (through the coordinator's fault proxy), its own
// Cache<Row> (its own L1; L2, locks and the invalidation bus shared with the other workers
// through the cache's name) and its own SQLite connections (row_db.hpp). Its threads, paced:
//   readers (kReaders)  get_or_load of Zipf-distributed rows, now and then get(),
//                       get_or_load_many() of a few rows, or a row that does not exist
//   async (1)           async_get_or_load, alternately with asio::use_future and a callback
//   writers (kWriters)  the rows of the tags this worker owns (tag t belongs to worker t % P):
//                       write_through (version + 1 in a compare-and-set, then both tiers),
//                       invalidate-on-write (version + 1, then invalidate), and a whole tag
//                       (every row's version + 1 in one transaction, then invalidate_tag);
//                       writer 0 also calls clear() now and then
//   watchdog (1)        logs a HangRecord for a call running past the hang bound
// A row is written by one thread only, so its writes are serialised, as a service serialises
// the writes of one entity: the oracle judges the cache, not racing writers.
//
// Every call is logged to the worker's event log (event_log.hpp) when it returns, with the
// times it began and ended. Loaders log a TroubleRecord when they fail or take the soft
// timeout.
//
// Commands from the coordinator, one line each on command_fd:
//   loader ok|hang|fail   from now on loaders work / hang kLoaderHang after reading / throw
//   die-in-load           the next loader to run (after reading its row) SIGKILLs the process
//   stop                  stop the threads, destroy the cache, send "E", exit 0 (EOF: same)
// Lines to the coordinator on report_fd: "R" when ready, "E" at the end, "X <message>" if it
// could not start (the pod protocol of tools/demo/pod.hpp, read by demo::PodChannels).

#pragma once

#include <cstdint>
#include <string>

#include "chaos/records.hpp"

namespace tiercache::cli::chaos {

struct WorkerConfig {
  ProcessId process;
  unsigned processes = 1;  // P: which tags this worker writes
  std::int64_t keys = 0;
  std::string redis_url;  // the fault proxy's
  std::string db_path;
  std::string cache_name;  // also the Redis client name (the bus-kill fault finds it by it)
  std::string log_path;
  std::uint64_t seed = 0;
  // get_or_load_many reads rows of every tag, those invalidated by tag included (by default
  // only rows of tags never invalidated by tag: its batch loader cannot tag what it loads).
  bool batch_all_rows = false;
  int command_fd = -1;
  int report_fd = -1;
};

// The body of the worker process. Returns its exit status.
int run_worker(const WorkerConfig& config);

}  // namespace tiercache::cli::chaos
