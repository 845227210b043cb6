// The oracle of `tiercache chaos` (oracle.hpp).
//
// Invariants:
//  - writes_[k] is sorted by version. A key's writes come from one thread at a time (its
//    owner, chaos/worker.cpp), so versions and end times grow together; the scan in
//    required_write() relies on "newer version = later end" only to stop early, never to
//    decide that a read is wrong.
//  - A read is judged once, after `settle`: every write that ended before it started has been
//    logged by then (a writer logs right after its call returns), as has every load trouble
//    that overlapped it (a hung load ends within the hang bound).
//  - forget_old() drops only what can no longer make a read wrong: writes older than the
//    newest acknowledged write that every future read must already see, and troubles that
//    ended before any future read's evidence window. Dropping too much could only hide a
//    violation (a false negative), never invent one.

#include "chaos/oracle.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace tiercache::cli::chaos {
namespace {

// How often check() forgets what can no longer matter.
constexpr Micros kForgetInterval = 10'000'000;
// The faults listed with a wrong value: those active from this long before the write it
// contradicts to this long after the read.
constexpr Micros kFaultContextBefore = 2'000'000;
constexpr Micros kFaultContextAfter = 1'000'000;
// Diagnostics kept, and how close to a wrong read (of the same key) one must be to be shown
// with it.
constexpr std::size_t kMaxDiagnostics = 200;
constexpr Micros kDiagnosticBefore = 1'000'000;
constexpr Micros kDiagnosticAfter = 2'000'000;

bool overlaps(Micros a_start, Micros a_end, Micros b_start, Micros b_end) {
  return a_start <= b_end && b_start <= a_end;
}

std::string seconds(Micros t, Micros origin) {
  char text[32];
  std::snprintf(text, sizeof text, "%+.3f s", static_cast<double>(t - origin) / 1e6);
  return text;
}

std::string milliseconds(Micros d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(d) / 1e3);
  return text;
}

const char* source_name(char source) {
  switch (source) {
    case '1':
      return "L1";
    case '2':
      return "L2";
    case 'D':
      return "the loader";
    default:
      return "nowhere";
  }
}

}  // namespace

Oracle::Oracle(OracleConfig config) : config_(config) {}

// ---- records ------------------------------------------------------------------------------------

void Oracle::add(const WriteRecord& write) {
  // A tag invalidation logs one record per row, all with the call's start: the call counts once.
  const auto call = std::make_tuple(write.process, write.thread, write.start);
  const bool new_call = write.kind != WriteKind::kTag || tag_calls_.insert(call).second;
  if (new_call) {
    ++totals_.ops;
    if (!write.error.empty()) {
      ++totals_.errors;
      ++totals_.errors_by_code[write.error];
    }
    if (write.end - write.start > config_.call_bound) {
      note_hang(write.process, write.thread, to_string(write.kind), write.start,
                write.end - write.start);
    }
  }
  if (write.failed()) return;
  ++totals_.writes;
  std::int64_t& newest = newest_write_[write.key];
  newest = std::max(newest, write.version);
  std::vector<WriteRecord>& list = writes_[write.key];
  auto at = std::upper_bound(
      list.begin(), list.end(), write.version,
      [](std::int64_t version, const WriteRecord& w) { return version < w.version; });
  list.insert(at, write);
}

void Oracle::add(ReadRecord read) {
  ++totals_.ops;
  ++totals_.reads;
  const Micros took = read.end - read.start;
  if (took > config_.call_bound) {
    note_hang(read.process, read.thread, to_string(read.op), read.start, took);
  }
  // A read that failed or waited the soft timeout is evidence of a slow or failing load of its
  // key, for the stale reads around it (a follower of its flight may have been served stale
  // the moment it joined).
  if (read.outcome == Outcome::kError || took >= config_.soft_timeout) {
    troubles_[read.key].push_back({read.start, read.end});
  }
  pending_.push_back(std::move(read));
}

void Oracle::add(const TroubleRecord& trouble) {
  troubles_[trouble.key].push_back({trouble.start, trouble.end});
}

void Oracle::add(const HangRecord& hang) {
  note_hang(hang.process, hang.thread, hang.op, hang.start, -1);
}

void Oracle::add(const ClearRecord& clear) {
  ++totals_.ops;
  ++totals_.clears;
  if (clear.end - clear.start > config_.call_bound) {
    note_hang(clear.process, clear.thread, "clear", clear.start, clear.end - clear.start);
  }
}

void Oracle::add(const DiagnosticRecord& diagnostic) {
  if (diagnostics_.size() < kMaxDiagnostics) diagnostics_.push_back(diagnostic);
}

void Oracle::note_hang(const ProcessId& process, unsigned thread, const std::string& op,
                       Micros start, Micros took) {
  if (!hang_keys_.insert({process, thread, start}).second) {
    // Seen already (the watchdog, then the call's own record): keep the duration if now known.
    for (HangFinding& h : hangs_) {
      if (h.process == process && h.thread == thread && h.start == start && took >= 0) {
        h.took = took;
      }
    }
    return;
  }
  ++totals_.hangs;
  hangs_.push_back(HangFinding{process, thread, op, start, took});
}

// ---- faults -------------------------------------------------------------------------------------

unsigned Oracle::start_fault(FaultRecord fault) {
  fault.id = static_cast<unsigned>(faults_.size()) + 1;
  faults_.push_back(std::move(fault));
  return faults_.back().id;
}

void Oracle::end_fault(unsigned id, Micros end) {
  if (id >= 1 && id <= faults_.size()) faults_[id - 1].end = end;
}

std::vector<const FaultRecord*> Oracle::active_faults() const {
  std::vector<const FaultRecord*> out;
  for (const FaultRecord& f : faults_) {
    if (f.end == kNever) out.push_back(&f);
  }
  return out;
}

// ---- judging ------------------------------------------------------------------------------------

void Oracle::check(Micros now) {
  std::deque<ReadRecord> later;
  for (ReadRecord& read : pending_) {
    if (read.end + config_.settle <= now) {
      judge(read);
    } else {
      later.push_back(std::move(read));
    }
  }
  pending_.swap(later);
  if (now - last_forget_ >= kForgetInterval) {
    last_forget_ = now;
    Micros oldest = now - config_.settle;
    for (const ReadRecord& read : pending_) oldest = std::min(oldest, read.start);
    forget_old(oldest - config_.degraded_bound - config_.call_bound);
  }
}

void Oracle::finish() {
  for (const ReadRecord& read : pending_) judge(read);
  pending_.clear();
}

Micros Oracle::bound_of(const WriteRecord& write) const {
  for (const FaultRecord& f : faults_) {
    if (f.affects_bus &&
        overlaps(f.start, f.effect_end(), write.start, write.end + config_.healthy_bound)) {
      return config_.degraded_bound;
    }
  }
  return config_.healthy_bound;
}

Oracle::Requirement Oracle::required_write(const ReadRecord& read) {
  auto found = writes_.find(read.key);
  if (found == writes_.end()) return {};
  const std::vector<WriteRecord>& list = found->second;
  bool unacknowledged_older = false;
  Requirement needed;
  for (std::size_t i = list.size(); i-- > 0;) {
    const WriteRecord& w = list[i];
    if (w.version <= read.version) break;  // the read has this version, or a newer one
    if (w.end >= read.start) continue;     // not returned when the read began
    if (!w.l2_written) {
      if (w.end + config_.degraded_bound < read.start) unacknowledged_older = true;
      continue;
    }
    const Micros bound = w.process == read.process ? 0 : bound_of(w);
    if (w.end + bound >= read.start) continue;  // not necessarily visible yet
    if (needed.write == nullptr) {
      needed.write = &w;
      needed.bound = bound;
    }
    if (w.kind != WriteKind::kTag) {
      needed.removed = true;
      break;  // nothing below can change the verdict
    }
  }
  if (needed.write == nullptr && unacknowledged_older) ++totals_.unacknowledged_older;
  return needed;
}

bool Oracle::stale_is_excused(const ReadRecord& read) const {
  if (read.end - read.start >= config_.soft_timeout) return true;
  const Micros from = read.start - config_.stale_evidence;
  if (auto t = troubles_.find(read.key); t != troubles_.end()) {
    for (const Interval& i : t->second) {
      if (overlaps(i.start, i.end, from, read.end)) return true;
    }
  }
  for (const FaultRecord& f : faults_) {
    if (f.slows_loads && overlaps(f.start, f.effect_end(), from, read.end)) return true;
  }
  return false;
}

void Oracle::judge(const ReadRecord& read) {
  const bool exists = read.key >= 1 && read.key <= config_.keys;
  switch (read.outcome) {
    case Outcome::kError:
      ++totals_.errors;
      ++totals_.errors_by_code[read.error.empty() ? std::string("?") : read.error];
      return;
    case Outcome::kMiss:
      if (read.op != ReadOp::kGet) wrong(read, "miss", nullptr, 0);  // get_or_load never misses
      return;
    case Outcome::kNegative:
      if (exists) wrong(read, "not-found", nullptr, 0);
      return;
    case Outcome::kValue:
      break;
  }
  if (read.stale) ++totals_.stale_served;
  if (!exists) {
    wrong(read, "phantom", nullptr, 0);
    return;
  }
  if (read.value_key == kCorruptValue) {
    wrong(read, "corrupt", nullptr, 0);
    return;
  }
  if (read.value_key != read.key) {
    wrong(read, "other-key", nullptr, 0);
    return;
  }
  const auto found = writes_.find(read.key);
  if (!read.stale && found != writes_.end()) {
    // Staleness observed: from the first acknowledged newer write to the read's start.
    for (const WriteRecord& w : found->second) {
      if (w.version > read.version && w.l2_written && w.end < read.start) {
        totals_.max_staleness = std::max(totals_.max_staleness, read.start - w.end);
        break;
      }
    }
  }
  const Requirement needed = required_write(read);
  if (needed.write == nullptr) return;
  if (read.stale && !needed.removed && stale_is_excused(read)) {
    ++totals_.stale_excused;
    return;
  }
  wrong(read, needed.write->process == read.process ? "read-your-writes" : "cross-process",
        needed.write, needed.bound);
}

void Oracle::wrong(const ReadRecord& read, std::string rule, const WriteRecord* write,
                   Micros bound) {
  ++totals_.wrong_values;
  WrongValue w;
  w.read = read;
  w.rule = std::move(rule);
  if (write != nullptr) w.write = *write;
  w.bound = bound;
  const Micros from = (write != nullptr ? write->start : read.start) - kFaultContextBefore;
  for (const FaultRecord& f : faults_) {
    if (overlaps(f.start, f.effect_end(), from, read.end + kFaultContextAfter)) {
      w.faults.push_back(f);
    }
  }
  wrong_.push_back(std::move(w));
}

void Oracle::forget_old(Micros horizon) {
  for (auto& [key, list] : writes_) {
    // The newest acknowledged write that ended before the horizon: every later read must see
    // it (or a newer one), so nothing older can matter any more.
    std::size_t keep_from = 0;
    for (std::size_t i = list.size(); i-- > 0;) {
      if (list[i].l2_written && list[i].end < horizon) {
        keep_from = i;
        break;
      }
    }
    if (keep_from > 0) list.erase(list.begin(), list.begin() + static_cast<long>(keep_from));
  }
  for (auto& [key, list] : troubles_) {
    std::erase_if(list,
                  [&](const Interval& i) { return i.end < horizon - config_.stale_evidence; });
  }
  std::erase_if(tag_calls_, [&](const auto& call) { return std::get<2>(call) < horizon; });
}

// ---- reporting ----------------------------------------------------------------------------------

std::string Oracle::describe(const WrongValue& wrong, Micros origin) const {
  const ReadRecord& r = wrong.read;
  std::string out = "WRONG VALUE (" + wrong.rule + "): " + r.process.name() + " thread " +
                    std::to_string(r.thread) + " " + to_string(r.op) +
                    " of row:" + std::to_string(r.key) + " started at " + seconds(r.start, origin) +
                    ", took " + milliseconds(r.end - r.start) + ", ";
  switch (r.outcome) {
    case Outcome::kValue:
      out += "returned row:" + std::to_string(r.value_key) + " version " +
             std::to_string(r.version) + " from " + source_name(r.source) +
             (r.stale ? " flagged stale, with no sign of a slow or failing load around it"
                      : " (not flagged stale)");
      if (r.origin != "-") {
        out += "\n    that value was produced by " + r.origin + " at " +
               seconds(r.origin_us, origin) +
               " (a write_through, or its loader's database read began then)";
      }
      break;
    case Outcome::kNegative:
      out += "returned \"not found\" from " + std::string(source_name(r.source));
      break;
    case Outcome::kMiss:
      out += "returned a miss";
      break;
    case Outcome::kError:
      out += "returned an error";
      break;
  }
  if (wrong.write) {
    const WriteRecord& w = *wrong.write;
    out += "\n    but version " + std::to_string(w.version) + " was written by " +
           w.process.name() + " thread " + std::to_string(w.thread) + " (" + to_string(w.kind) +
           ", l2_written) in [" + seconds(w.start, origin) + ", " + seconds(w.end, origin) + "]";
    if (w.process == r.process) {
      out += ": the same process, before the read began (" + milliseconds(r.start - w.end) +
             " before)";
    } else {
      out += "; staleness bound " + milliseconds(wrong.bound) + ", so visible everywhere from " +
             seconds(w.end + wrong.bound, origin) + ": the read began " +
             milliseconds(r.start - w.end - wrong.bound) + " after that (" +
             milliseconds(r.start - w.end) + " after the write returned)";
    }
  }
  for (const DiagnosticRecord& d : diagnostics_) {
    if (d.key == r.key && d.time >= r.start - kDiagnosticBefore &&
        d.time <= r.end + kDiagnosticAfter) {
      out += "\n    seen by " + d.process.name() + " at " + seconds(d.time, origin) + ": " + d.text;
    }
  }
  if (wrong.faults.empty()) {
    out += "\n    faults around it: none";
  } else {
    for (const FaultRecord& f : wrong.faults) {
      out += "\n    fault around it: #" + std::to_string(f.id) + " " + f.name + " [" +
             seconds(f.start, origin) + ", " +
             (f.end == kNever ? std::string("still active") : seconds(f.end, origin)) + "]";
    }
  }
  return out;
}

std::string Oracle::describe(const HangFinding& hang, Micros origin) {
  return "HANG: " + hang.process.name() + " thread " + std::to_string(hang.thread) + " " + hang.op +
         " started at " + seconds(hang.start, origin) +
         (hang.took >= 0 ? " took " + milliseconds(hang.took) : std::string(" never returned"));
}

}  // namespace tiercache::cli::chaos
