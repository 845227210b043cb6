// What `tiercache chaos` records about a run: every completed cache call of every worker
// process (writes, reads, clears), the loads that failed or were slow, the calls that hung,
// and the faults the coordinator injected. The oracle (oracle.hpp) judges a run from these
// alone; the event log (event_log.hpp) carries them from the workers to the coordinator.
//
// Times are microseconds of CLOCK_MONOTONIC (std::chrono::steady_clock on Linux): one clock
// for every process of the machine, so a write's end in one process and a read's start in
// another compare directly.

#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace tiercache::cli::chaos {

using Micros = std::int64_t;
inline constexpr Micros kNever = std::numeric_limits<Micros>::max();  // a fault still active

// Now, in microseconds of CLOCK_MONOTONIC.
Micros now_us();

// A worker process: its slot (0..P-1) and how many times that slot was restarted before it.
struct ProcessId {
  unsigned index = 0;
  unsigned incarnation = 0;

  friend bool operator==(const ProcessId&, const ProcessId&) = default;
  friend auto operator<=>(const ProcessId&, const ProcessId&) = default;
  // "w2" for the first incarnation, "w2.1" after one restart.
  std::string name() const;
};

enum class WriteKind : std::uint8_t {
  kWriteThrough,  // write_through: the row's new version in the DB, then both tiers
  kInvalidate,    // invalidate-on-write: the row's version bumped in the DB, then invalidate()
  kTag,           // every row of a tag bumped in the DB, then invalidate_tag()
};

// A write whose cache call returned: the row `key` is at `version` (or later) in the DB.
struct WriteRecord {
  ProcessId process;
  unsigned thread = 0;
  WriteKind kind = WriteKind::kWriteThrough;
  std::int64_t key = 0;
  std::int64_t version = 0;
  Micros start = 0;  // the cache call began (for write_through: the DB writer had returned)
  Micros end = 0;    // the cache call returned
  // The cache said other processes were told: WriteResult::l2_written, or invalidate() /
  // invalidate_tag() returned true.
  bool l2_written = false;
  // The CacheError the call returned (to_string(CacheErrc)), or "" if none. Only
  // "writer_failed" means the database was not written (nothing happened); with any other
  // (e.g. "l2_unreachable") the write is in the database and counts.
  std::string error;
  bool failed() const { return error == "writer_failed"; }
};

enum class ReadOp : std::uint8_t {
  kGetOrLoad,
  kGet,
  kGetOrLoadMany,
  kAsyncFuture,    // async_get_or_load with asio::use_future
  kAsyncCallback,  // async_get_or_load with a completion handler
};

enum class Outcome : std::uint8_t { kValue, kNegative, kMiss, kError };

// ReadRecord::value_key of a value whose payload does not match its own key and version.
inline constexpr std::int64_t kCorruptValue = -2;

// A read that returned (or completed, for async reads).
struct ReadRecord {
  ProcessId process;
  unsigned thread = 0;
  ReadOp op = ReadOp::kGetOrLoad;
  std::int64_t key = 0;  // the key asked for
  Outcome outcome = Outcome::kValue;
  std::int64_t value_key = -1;  // kValue: the key embedded in the value, or kCorruptValue
  std::int64_t version = -1;    // kValue: the version embedded in the value
  bool stale = false;           // CacheResult::is_stale()
  char source = '-';            // CacheResult::source(): '1' L1, '2' L2, 'D' loader, '-' none
  Micros start = 0;             // the call began
  Micros end = 0;               // the call returned / the completion ran
  std::string error;            // kError: to_string(CacheErrc)
  // kValue: who produced the value and when (Row::origin, Row::origin_us); "-" and 0 if unknown.
  std::string origin = "-";
  Micros origin_us = 0;
};

// A load of `key` that failed ('f') or took at least the soft timeout ('s'): evidence that
// fail-safe may serve a stale value of the key around that time.
struct TroubleRecord {
  ProcessId process;
  std::int64_t key = 0;
  Micros start = 0;
  Micros end = 0;
  char what = 's';
};

// A call still running past the hang bound, seen by the worker's watchdog (the call may
// never return, so its own record may never come).
struct HangRecord {
  ProcessId process;
  unsigned thread = 0;
  std::string op;
  Micros start = 0;
};

// A clear() that returned.
struct ClearRecord {
  ProcessId process;
  unsigned thread = 0;
  Micros start = 0;
  Micros end = 0;
  bool ok = false;  // clear() returned true
};

// What a worker saw when it read back an older value than its own acknowledged write: a
// snapshot of what Redis held for the key (l2_snapshot.hpp), to explain the finding.
struct DiagnosticRecord {
  ProcessId process;
  std::int64_t key = 0;
  Micros time = 0;
  std::string text;  // one line
};

// A fault the coordinator injected, from `start` to `end` (kNever while active). Its effects
// outlast it by `tail` (reconnections, a dead holder's lock expiring).
struct FaultRecord {
  unsigned id = 0;
  std::string kind;  // e.g. "proxy-latency"
  std::string name;  // e.g. "redis-sigstop 1.2 s", "proxy-latency 150 ms"
  Micros start = 0;
  Micros end = kNever;
  Micros tail = 0;
  bool affects_bus = false;  // invalidation messages may be delayed or lost
  bool slows_loads = false;  // loads (loader or L2 round trips) may be slow or fail
  Micros effect_end() const { return end == kNever ? kNever : end + tail; }
};

const char* to_string(WriteKind kind);
const char* to_string(ReadOp op);

}  // namespace tiercache::cli::chaos
