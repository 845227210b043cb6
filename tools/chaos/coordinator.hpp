// The coordinator of `tiercache chaos` (docs/chaos.md): sets the run up, injects the faults,
// feeds the workers' event logs to the oracle while the run goes on, and reports.
//
//   1. A temporary directory; the SQLite database of `keys` rows (row_db.hpp), created before
//      any thread or process exists.
//   2. Redis: a private redis-server (tools/demo/redis_server.hpp) unless `url` is given.
//   3. The fault proxy (tests/support/fault_proxy.hpp) in front of it: every worker reaches
//      Redis through it, so the coordinator controls the network of every worker.
//   4. `processes` workers (worker_pool.hpp), all ready before the clock starts.
//   5. For `seconds`: a healthy start, then faults one at a time (faults.hpp: seeded kind and
//      length, 1-3 s of health between two), none started in the last seconds; every second
//      the new log lines go to the oracle (oracle.hpp), which judges the reads older than its
//      settle time, and a progress line is printed; a line when each fault begins and ends.
//   6. The end: every fault healed, the workers stopped (each sends "E"), the last log lines
//      judged, the database compared with the logged writes (lost writes), the report: every
//      wrong value and hang in detail, the totals, and the machine-readable last line
//        ops=N wrong_values=W hangs=H lost_writes=L max_staleness_ms=S errors=E faults=F
//   The temporary directory (database, event logs, redis.log) is removed after a clean run
//   and kept, and named, after any other.
//
// Exit status: 0 clean; 1 a wrong value, a hang, a lost write, a worker that crashed, or a
// run that could not be carried out; 2 usage; 130 interrupted.

#pragma once

#include <cstdint>
#include <string>

namespace tiercache::cli::chaos {

struct ChaosArguments {
  double seconds = 60;
  std::string url;  // empty: a private redis-server
  unsigned processes = 4;
  std::uint64_t seed = 1;
  std::int64_t keys = 2000;
  bool batch_all_rows = false;  // worker.hpp, WorkerConfig::batch_all_rows
  std::string faults;           // comma-separated fault kinds to use (empty: all; faults.hpp)
};

int run_chaos(const ChaosArguments& args);

}  // namespace tiercache::cli::chaos
