// What the threads of a chaos worker share (worker_state.hpp).

#include "chaos/worker_state.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "chaos/l2_snapshot.hpp"
#include "chaos/settings.hpp"
#include "chaos/worker.hpp"
#include "stampede/processes.hpp"

namespace tiercache::cli::chaos {
namespace {

// Library log messages forwarded to the coordinator, per level (the run's figures come from
// the event log; these only say what the library thought of it).
constexpr int kLogSamplesPerLevel = 5;
// L2 snapshots a worker takes at most (each costs a SCAN of the keyspace).
constexpr std::size_t kMaxSnapshots = 8;

class DatabaseDown : public std::runtime_error {
 public:
  DatabaseDown() : std::runtime_error("database unavailable (chaos: loader-fail fault)") {}
};

// n of "row:<n>", or -1.
std::int64_t key_number(std::string_view key) {
  std::int64_t n = -1;
  if (key.starts_with("row:")) {
    key.remove_prefix(4);
    std::from_chars(key.data(), key.data() + key.size(), n);
  }
  return n;
}

}  // namespace

void Reporter::line(std::string text) {
  text.push_back('\n');
  std::lock_guard lock(mutex_);
  stampede::write_all(fd_, text.data(), text.size());
}

CacheOptions logged_options(CacheOptions o, const std::shared_ptr<Reporter>& reporter) {
  auto sent = std::make_shared<std::array<std::atomic<int>, 4>>();
  o.logger = [reporter, sent](LogLevel level, std::string_view message) {
    auto& n = (*sent)[static_cast<std::size_t>(level) & 3];
    if (n.fetch_add(1, std::memory_order_relaxed) < kLogSamplesPerLevel) {
      reporter->line("L " + std::string(to_string(level)) + " " + std::string(message));
    }
  };
  return o;
}

WorkerState::WorkerState(const WorkerConfig& config)
    : process(config.process), db(config.db_path), log(config.log_path) {}

bool WorkerState::sleep_for(Clock::duration d) {
  std::unique_lock lock(mutex_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

bool WorkerState::stopped() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void WorkerState::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void WorkerState::fault_point(LoaderMode mode) {
  if (mode == LoaderMode::kFail) throw DatabaseDown();
}

void WorkerState::after_read(LoaderMode mode) {
  if (die_in_load_.load(std::memory_order_acquire)) ::kill(::getpid(), SIGKILL);
  if (mode == LoaderMode::kHang) sleep_for(kLoaderHang);
}

void WorkerState::note_trouble(std::int64_t key, Micros start, char what) {
  log.append(TroubleRecord{process, key, start, now_us(), what});
}

std::optional<Row> WorkerState::load(std::int64_t key, LoadContext& context) {
  const Micros start = now_us();
  const LoaderMode mode = mode_.load(std::memory_order_acquire);
  std::optional<Row> row;
  try {
    fault_point(mode);
    row = db.find(key);
    after_read(mode);
  } catch (...) {
    note_trouble(key, start, 'f');
    throw;
  }
  if (row) {
    context.add_tag(tag_name(row->tag));
    row->origin = process.name();
    row->origin_us = start;
  }
  if (now_us() - start >= to_micros(kSoftTimeout)) note_trouble(key, start, 's');
  return row;
}

std::map<std::string, Row> WorkerState::load_many(const std::vector<std::string>& keys) {
  const Micros start = now_us();
  const LoaderMode mode = mode_.load(std::memory_order_acquire);
  std::vector<std::int64_t> numbers;
  numbers.reserve(keys.size());
  for (const std::string& k : keys) numbers.push_back(key_number(k));
  std::vector<Row> rows;
  try {
    fault_point(mode);
    rows = db.find_many(numbers);
    after_read(mode);
  } catch (...) {
    for (std::int64_t n : numbers) note_trouble(n, start, 'f');
    throw;
  }
  if (now_us() - start >= to_micros(kSoftTimeout)) {
    for (std::int64_t n : numbers) note_trouble(n, start, 's');
  }
  std::map<std::string, Row> out;
  for (Row& row : rows) {
    row.origin = process.name();
    row.origin_us = start;
    std::string key = row_key(row.key);
    out.emplace(std::move(key), std::move(row));
  }
  return out;
}

void WorkerState::set_redis(std::shared_ptr<redis::Client> client, std::string cache_name) {
  std::lock_guard lock(acknowledged_mutex_);
  client_ = std::move(client);
  cache_name_ = std::move(cache_name);
}

void WorkerState::note_acknowledged_write(std::int64_t key, std::int64_t version, Micros end) {
  std::lock_guard lock(acknowledged_mutex_);
  Acknowledged& a = acknowledged_[key];
  if (version > a.version) a = Acknowledged{version, end};
}

void WorkerState::note_read(const ReadRecord& read) {
  log.append(read);
  if (read.outcome != Outcome::kValue || read.stale) return;
  std::shared_ptr<redis::Client> client;
  std::string name;
  {
    std::lock_guard lock(acknowledged_mutex_);
    auto it = acknowledged_.find(read.key);
    if (it == acknowledged_.end() || it->second.version <= read.version ||
        it->second.end >= read.start || snapshotted_.size() >= kMaxSnapshots ||
        !snapshotted_.insert(read.key).second || !client_) {
      return;
    }
    client = client_;
    name = cache_name_;
  }
  const Micros now = now_us();
  log.append(
      DiagnosticRecord{process, read.key, now, l2_snapshot(*client, name, row_key(read.key))});
}

ReadRecord read_record(const CacheResult<Row>& r, ProcessId process, unsigned thread, ReadOp op,
                       std::int64_t key, Micros start, Micros end) {
  ReadRecord rec;
  rec.process = process;
  rec.thread = thread;
  rec.op = op;
  rec.key = key;
  rec.start = start;
  rec.end = end;
  rec.stale = r.is_stale();
  switch (r.source()) {
    case Source::kL1:
      rec.source = '1';
      break;
    case Source::kL2:
      rec.source = '2';
      break;
    case Source::kLoader:
      rec.source = 'D';
      break;
    case Source::kNone:
      rec.source = '-';
      break;
  }
  if (r.has_value()) {
    rec.outcome = Outcome::kValue;
    rec.value_key = r->key;
    rec.version = r->version;
    rec.origin = r->origin.empty() ? std::string("-") : r->origin;
    rec.origin_us = r->origin_us;
    if (r->payload != row_payload(r->key, r->version)) rec.value_key = kCorruptValue;
  } else if (r.is_negative()) {
    rec.outcome = Outcome::kNegative;
  } else if (const CacheError* e = r.error()) {
    rec.outcome = Outcome::kError;
    rec.error = to_string(e->code);
  } else {
    rec.outcome = Outcome::kMiss;
  }
  return rec;
}

}  // namespace tiercache::cli::chaos
