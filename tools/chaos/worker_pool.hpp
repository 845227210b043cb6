// WorkerPool: the coordinator's worker processes of `tiercache chaos` -- started, killed and
// started again one slot at a time, while the run goes on.
//
// A worker is `tiercache chaos-worker ...` (worker.hpp), started by fork + exec of this very
// program (/proc/self/exe): the coordinator has threads by the time it restarts a killed
// worker (the fault proxy's, its Redis client's), and only exec gives the child a clean
// process. Between fork and exec the child calls only async-signal-safe functions: it moves
// its two pipe ends to descriptors 3 (commands) and 4 (reports), closes every other
// descriptor above 4, ignores SIGINT (Ctrl-C is the coordinator's to handle) and asks to be
// SIGKILLed when the coordinator dies (PR_SET_PDEATHSIG).
//
// The pipes speak the pod protocol of tools/demo/pod.hpp, read with demo::PodChannels: "R"
// ready, "E" finished, "X <message>" failed. Each incarnation writes its own event log,
// <log_dir>/events-<slot>-<incarnation>.log; tails() has one LogTail per incarnation ever
// started, in start order.
//
// Not thread-safe: the coordinator's thread drives it. The destructor SIGKILLs and reaps
// every worker still running.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chaos/event_log.hpp"
#include "chaos/records.hpp"
#include "demo/pod_channels.hpp"
#include "demo/timeline.hpp"

namespace tiercache::cli::chaos {

// What every worker is started with (worker.hpp's WorkerConfig, less the per-slot fields).
struct WorkerLaunch {
  unsigned processes = 1;
  std::int64_t keys = 0;
  std::string redis_url;
  std::string db_path;
  std::string cache_name;
  std::string log_dir;
  std::uint64_t seed = 0;
  bool batch_all_rows = false;
};

class WorkerPool {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts nothing. Throws std::runtime_error if this program's path cannot be found.
  explicit WorkerPool(WorkerLaunch launch);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Starts slot `index` (its first or next incarnation). Throws std::runtime_error.
  void start(unsigned index);
  // Reads the workers' lines until every running worker is ready (true) or `deadline`.
  bool wait_ready(Clock::time_point deadline);
  // Reads whatever the workers sent, for at most until `deadline`.
  void pump(Clock::time_point deadline);

  void send(unsigned index, std::string_view command);
  void send_all(std::string_view command);

  // Waits until slot `index` exits on its own (true), or `deadline`.
  bool wait_exit(unsigned index, Clock::time_point deadline);
  // SIGKILLs slot `index` (unless already gone) and reaps it.
  void kill(unsigned index);
  // "stop" to every worker; waits until each sent "E" and exited, or `deadline`; kills the
  // rest. Returns the workers that did not finish cleanly (with why).
  std::vector<std::string> stop_all(Clock::time_point deadline);

  // Workers that died without being told to (crashed, or failed), since the last call: one
  // line each ("w2 exited with signal 11"). Their slots are not running any more.
  std::vector<std::string> take_unexpected_exits();

  unsigned size() const { return static_cast<unsigned>(slots_.size()); }
  bool running(unsigned index) const { return slots_[index].pid > 0; }
  ProcessId process(unsigned index) const { return {index, slots_[index].incarnation}; }
  pid_t pid(unsigned index) const { return slots_[index].pid; }
  std::vector<LogTail>& tails() { return tails_; }
  // Closes the logs of incarnations that had exited before the last read of tails() (nothing
  // more can come): a long run does not keep a descriptor per restart.
  void drop_retired_tails();
  // The library's log lines the workers forwarded, each once: "<level> <message> (pods I, J)".
  std::vector<std::string> log_lines() const { return channels_.log_lines(); }

 private:
  struct Slot {
    pid_t pid = -1;
    unsigned incarnation = 0;
    unsigned started = 0;      // incarnations started so far
    bool expect_exit = false;  // told to stop, or killed on purpose
  };
  // Reaps slot `index` if it exited (waiting up to `wait` for it); returns why it ended
  // ("" if still running).
  std::string reap(unsigned index, std::chrono::milliseconds wait);
  // Notes the slots whose pipe closed without "E" and that were not told to go.
  void collect_exits();

  WorkerLaunch launch_;
  std::string executable_;
  std::vector<Slot> slots_;
  demo::PodChannels channels_;
  demo::Timeline timeline_{0};  // PodChannels::pump wants one; workers send no stats
  std::vector<LogTail> tails_;
  std::vector<bool> retired_;  // by tails_ entry: its process has exited
  std::vector<std::string> unexpected_;
};

}  // namespace tiercache::cli::chaos
