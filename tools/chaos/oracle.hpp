// The oracle of `tiercache chaos`: from the records of a run (records.hpp) alone, decides
// whether the cache ever served a wrong value, hung, or lost a write. docs/chaos.md states the
// rules and why each bound is what it is; in short, a read R of key k is WRONG if:
//   1. its value embeds another key than k (or a payload that is not its own key's and
//      version's), or it says "not found" (or, for get_or_load, "miss")
//      for a row that exists, or a value for one that does not;
//   2. read-your-writes: it started after a write of k by the same process returned with
//      l2_written, and returned an older version;
//   3. cross-process: it started more than the staleness bound after a write of k by another
//      process returned with l2_written, and returned an older version. The bound is
//      healthy_bound (bus delivery), or degraded_bound when a fault that may delay or cut an
//      invalidation bus overlapped [write start, write end + healthy_bound] (faults count until
//      their end plus their tail);
//   and, for 2 and 3, an older value flagged stale (fail-safe) is excused only if every write
//   it missed is a tag invalidation (which makes entries stale, not gone: a value removed by
//   write_through or invalidate is never served, not even stale -- docs/fail-safe.md), and
//   with evidence that the load path was slow or failing around it: the read itself waited the
//   soft timeout, or a load or a read of k failed or took the soft timeout within
//   [R.start - stale_evidence, R.end], or a fault that slows loads was active then.
// A call is a HANG if it took longer than call_bound (or the worker's watchdog saw it pass
// that bound); each call counts once. A logged write is LOST if the DB, at the end, holds an
// older version of its row.
//
// Incremental: records are added as the coordinator reads them (in any order across
// processes); check(now) judges the reads that ended at least `settle` ago -- by then every
// write, load trouble and fault that can matter to them has been added -- and forgets them.
// Memory stays bounded by the settle window, plus per key the writes still able to matter.
// Not thread-safe: one thread (the coordinator's) drives it.

#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "chaos/records.hpp"

namespace tiercache::cli::chaos {

struct OracleConfig {
  std::int64_t keys = 0;      // rows 1..keys exist; keys above do not
  Micros healthy_bound = 0;   // bus delivery while no fault may cut a bus
  Micros degraded_bound = 0;  // staleness allowed when one may have
  Micros call_bound = 0;      // a call taking longer is a hang
  Micros soft_timeout = 0;    // CacheOptions::soft_timeout
  Micros stale_evidence = 0;  // fail_safe_throttle + margin: see rule 2/3 above
  Micros settle = 0;          // a read is judged this long after it ended
};

// A read judged wrong, with what it contradicts.
struct WrongValue {
  ReadRecord read;
  std::string rule;  // "other-key", "corrupt", "not-found", "miss", "phantom", "read-your-writes",
                     // "cross-process"
  std::optional<WriteRecord> write;  // rules 2 and 3: the newest write the read had to see
  Micros bound = 0;                  // rule 3: the staleness bound applied to that write
  std::vector<FaultRecord> faults;   // faults active around [write start - 2 s, read end + 1 s]
};

struct HangFinding {
  ProcessId process;
  unsigned thread = 0;
  std::string op;
  Micros start = 0;
  Micros took = -1;  // -1: never returned (seen by the watchdog only)
};

struct OracleTotals {
  std::uint64_t ops = 0;  // completed calls: reads, writes, clears
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;  // completed write records (a tag invalidation: one per row)
  std::uint64_t clears = 0;
  std::uint64_t wrong_values = 0;
  std::uint64_t hangs = 0;
  std::uint64_t errors = 0;  // typed errors returned to callers (reads and writes)
  std::map<std::string, std::uint64_t> errors_by_code;  // to_string(CacheErrc) -> count
  std::uint64_t stale_served = 0;                       // reads flagged stale
  std::uint64_t stale_excused = 0;  // ... of which older than rule 2/3 required, with evidence
  std::uint64_t unacknowledged_older = 0;  // reads older than an l2_written=false write (not
                                           // promised: docs/write-through.md)
  std::uint64_t bad_lines = 0;             // log lines that did not parse
  Micros max_staleness = 0;  // largest read start - acknowledged newer write end (unflagged)
};

class Oracle {
 public:
  explicit Oracle(OracleConfig config);

  void add(const WriteRecord& write);
  void add(ReadRecord read);
  void add(const TroubleRecord& trouble);
  void add(const HangRecord& hang);
  void add(const ClearRecord& clear);
  void add(const DiagnosticRecord& diagnostic);  // kept (the first kMaxDiagnostics) for describe()
  void add_bad_lines(std::uint64_t n) { totals_.bad_lines += n; }

  // Faults, as the coordinator injects them. start_fault returns the fault's id.
  unsigned start_fault(FaultRecord fault);
  void end_fault(unsigned id, Micros end);
  // Faults active at `now` (end not yet set).
  std::vector<const FaultRecord*> active_faults() const;
  const std::vector<FaultRecord>& faults() const { return faults_; }

  // Judges the reads that ended at least settle before `now`.
  void check(Micros now);
  // Judges every read left (the run is over: every record is in).
  void finish();

  // Rule 5: the rows whose DB version (`db_version(key)`, nullopt: no such row) is older than
  // their newest logged completed write. Returns (key, logged version, DB version) of each.
  template <class DbVersion>
  std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> lost_writes(
      DbVersion&& db_version) const {
    std::vector<std::tuple<std::int64_t, std::int64_t, std::int64_t>> lost;
    for (const auto& [key, version] : newest_write_) {
      const std::optional<std::int64_t> in_db = db_version(key);
      if (!in_db || *in_db < version) lost.emplace_back(key, version, in_db.value_or(-1));
    }
    return lost;
  }

  const OracleTotals& totals() const { return totals_; }
  const std::vector<WrongValue>& wrong_values() const { return wrong_; }
  const std::vector<HangFinding>& hangs() const { return hangs_; }
  // Reads added but not judged yet.
  std::size_t pending() const { return pending_.size(); }

  // A human-readable account of a finding; times are printed relative to `origin`.
  std::string describe(const WrongValue& wrong, Micros origin) const;
  static std::string describe(const HangFinding& hang, Micros origin);

 private:
  void judge(const ReadRecord& read);
  // The newest write of `read.key` the read had to see (rules 2 and 3), and its bound.
  struct Requirement {
    const WriteRecord* write = nullptr;  // the newest write the read missed
    Micros bound = 0;
    bool removed = false;  // one of the writes it missed removed the value (not a tag)
  };
  Requirement required_write(const ReadRecord& read);
  Micros bound_of(const WriteRecord& write) const;
  bool stale_is_excused(const ReadRecord& read) const;
  void note_hang(const ProcessId& process, unsigned thread, const std::string& op, Micros start,
                 Micros took);
  void wrong(const ReadRecord& read, std::string rule, const WriteRecord* write, Micros bound);
  void forget_old(Micros horizon);

  OracleConfig config_;
  OracleTotals totals_;
  // Completed acknowledged-or-not writes per key, in version order (a key's writes are
  // serialised by its owner: versions grow with time).
  std::unordered_map<std::int64_t, std::vector<WriteRecord>> writes_;
  std::map<std::int64_t, std::int64_t> newest_write_;  // key -> newest logged version
  // Intervals during which a load or a read of the key failed or was slow.
  struct Interval {
    Micros start;
    Micros end;
  };
  std::unordered_map<std::int64_t, std::vector<Interval>> troubles_;
  std::vector<FaultRecord> faults_;
  std::deque<ReadRecord> pending_;
  std::set<std::tuple<ProcessId, unsigned, Micros>> hang_keys_;
  std::set<std::tuple<ProcessId, unsigned, Micros>> tag_calls_;  // tag invalidations counted
  std::vector<WrongValue> wrong_;
  std::vector<DiagnosticRecord> diagnostics_;
  std::vector<HangFinding> hangs_;
  Micros last_forget_ = 0;
};

}  // namespace tiercache::cli::chaos
