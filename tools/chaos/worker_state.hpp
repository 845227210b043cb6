// What the threads of a `tiercache chaos` worker share (worker.hpp): its system of record as
// the cache sees it -- the loaders, with the faults the coordinator switches on in them --, its
// event log, its line to the coordinator, and the stop signal.
//
// Loaders hold a WorkerState by shared_ptr: a load may outlive the call that started it
// (cache.hpp), and even the Cache. Thread-safety: every member may be used from any thread.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "chaos/event_log.hpp"
#include "chaos/records.hpp"
#include "chaos/row_db.hpp"
#include "tiercache/cache_result.hpp"
#include "tiercache/options.hpp"

namespace tiercache::redis {
class Client;
}

namespace tiercache::cli::chaos {

struct WorkerConfig;

// What a loader does when it runs (the loader-hang and loader-fail faults).
enum class LoaderMode : int {
  kOk,
  kHang,  // reads its row, then waits kLoaderHang (or until the worker stops) before returning
  kFail,  // throws at once, as a database that is down
};

// Whole lines to the coordinator on the report pipe, from any thread (the library's logger
// calls from its own threads).
class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}
  void line(std::string text);

 private:
  std::mutex mutex_;
  int fd_;
};

// `o` with a logger that forwards the first few messages of each level to the coordinator
// (the pod protocol's "L <level> <message>"); the rest are dropped.
CacheOptions logged_options(CacheOptions o, const std::shared_ptr<Reporter>& reporter);

class WorkerState {
 public:
  using Clock = std::chrono::steady_clock;

  // Opens the database and the event log. Throws std::runtime_error.
  explicit WorkerState(const WorkerConfig& config);

  // Waits `d`; false if stop() came first (or had come).
  bool sleep_for(Clock::duration d);
  bool stopped();
  void stop();

  // The loader of get_or_load and async_get_or_load: the row, tagged "tag:<n>", its
  // provenance set (Row::origin). Logs a TroubleRecord if it throws or takes the soft timeout.
  std::optional<Row> load(std::int64_t key, LoadContext& context);
  // The batch loader of get_or_load_many (keys "row:<n>"): the rows that exist. It cannot tag
  // them (no LoadContext). Troubles are logged per key.
  std::map<std::string, Row> load_many(const std::vector<std::string>& keys);

  // Logs a read; if it returned (unflagged) an older version than this process's own
  // acknowledged write of the key that returned before the read began -- read-your-writes,
  // checkable here at once -- also logs a snapshot of what Redis holds for the key (the first
  // few times, one per key).
  void note_read(const ReadRecord& read);
  // A write of this process that returned with l2_written.
  void note_acknowledged_write(std::int64_t key, std::int64_t version, Micros end);
  // The client and cache name note_read() snapshots Redis with.
  void set_redis(std::shared_ptr<redis::Client> client, std::string cache_name);

  void set_mode(LoaderMode mode) { mode_.store(mode, std::memory_order_release); }
  // The next loader to run SIGKILLs the process after reading its row (the worker-kill fault).
  void die_in_next_load() { die_in_load_.store(true, std::memory_order_release); }

  const ProcessId process;
  RowDb db;
  EventLog log;

 private:
  void fault_point(LoaderMode mode);  // before the database read
  void after_read(LoaderMode mode);   // after it
  void note_trouble(std::int64_t key, Micros start, char what);

  struct Acknowledged {
    std::int64_t version = 0;
    Micros end = 0;
  };
  std::mutex acknowledged_mutex_;  // acknowledged_, snapshotted_
  std::unordered_map<std::int64_t, Acknowledged> acknowledged_;
  std::unordered_set<std::int64_t> snapshotted_;
  std::shared_ptr<redis::Client> client_;
  std::string cache_name_;

  std::atomic<LoaderMode> mode_{LoaderMode::kOk};
  std::atomic<bool> die_in_load_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// The record of a read, from what the cache returned. A value whose payload does not match
// its own key and version gets value_key = kCorruptValue.
ReadRecord read_record(const CacheResult<Row>& r, ProcessId process, unsigned thread, ReadOp op,
                       std::int64_t key, Micros start, Micros end);

}  // namespace tiercache::cli::chaos
