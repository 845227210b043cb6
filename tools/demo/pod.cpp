// A pod of `tiercache demo` (pod.hpp): the GetUser service on Cache<User>, its workload, and
// the pod's side of the conversation with the coordinator.
//
// How a read is accounted (stats.hpp, Count): by what CacheResult says -- a fresh answer by its
// source (L1, L2, a load), a stale answer as fail-safe, an error as kErrors -- except an error
// caused by the simulated database outage when nothing could have been served: fail-safe
// serves the value L1 or L2 holds past its expiry, so the pod then looks in Redis itself (the
// key layout of docs/FORMAT.md) and counts kUnavailable if L2 held no value of the id created
// before the read began (an id never cached since Redis restarted, or one that does not exist:
// "not found" has no stale window), kErrors if it did (fail-safe should have served it).

#include "demo/pod.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "demo/stats.hpp"
#include "demo/user_db.hpp"
#include "sim/random.hpp"
#include "sim/zipf.hpp"
#include "stampede/processes.hpp"
#include "tiercache/cache.hpp"
#include "tiercache/envelope.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli::demo {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// The workload.
constexpr double kZipfTheta = 0.99;       // skew of the ids read (rank r has weight r^-theta)
constexpr double kWriteFraction = 0.015;  // operations that update a user (write-through)
constexpr double kAbsentFraction = 0.04;  // reads of ids that do not exist (negative caching)
// A worker sleeps only when this far ahead of its pace (a few reads per wake-up rather than
// one: fewer context switches), and starts afresh when this far behind rather than bursting.
constexpr microseconds kPacingSlack{1000};
constexpr milliseconds kMaxPacingLag{100};
// The update phase: pod 0 writes the watched user this often; every pod reads it this often.
constexpr milliseconds kUpdateInterval{200};
constexpr microseconds kWatchInterval{100};
// How long a pod waits for Redis to answer when it starts.
constexpr milliseconds kRedisWait{5000};
// Library log messages forwarded to the coordinator, per level (the rest are only counted).
constexpr int kLogSamplesPerLevel = 3;

// What the loader and the writer throw in the db-down phase.
class DatabaseDown : public std::runtime_error {
 public:
  DatabaseDown() : std::runtime_error("database unavailable (simulated: the db-down phase)") {}
};

bool caused_by_database_down(const CacheError& error) {
  if (!error.exception) return false;
  try {
    std::rethrow_exception(error.exception);
  } catch (const DatabaseDown&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string user_key(std::int64_t id) { return "user:" + std::to_string(id); }

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Nanoseconds on the machine's monotonic clock, the same in every process (CLOCK_MONOTONIC):
// the update phase compares a writer's and a reader's readings.
std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

// A user's name without the suffix the demo's writes append (" #...").
std::string base_name(const std::string& name) { return name.substr(0, name.find(" #")); }

// The sequence number of the watched user's name after an update: "<name> #<seq>".
std::optional<std::uint64_t> update_seq(const std::string& name) {
  const std::size_t hash = name.rfind(" #");
  if (hash == std::string::npos) return std::nullopt;
  try {
    return std::stoull(name.substr(hash + 2));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Whole lines to the coordinator, from any thread.
class ReportPipe {
 public:
  explicit ReportPipe(int fd) : fd_(fd) {}
  void line(std::string text) {
    text.push_back('\n');
    std::lock_guard lock(mutex_);
    stampede::write_all(fd_, text.data(), text.size());
  }

 private:
  std::mutex mutex_;
  int fd_;
};

// What the workers, the loaders and the command thread share. Loaders hold it by shared_ptr:
// a load may outlive the read that started it (cache.hpp).
struct PodState {
  explicit PodState(const PodConfig& config)
      : index(config.index), users(config.users), db(config.db_path, config.db_latency) {
    for (auto& h : latency) h = std::make_unique<Histogram>(latency_bounds());
  }

  // The loader: one SELECT, tagged with the user's team.
  std::optional<User> load(std::int64_t id, LoadContext& context) {
    if (db_down.load(std::memory_order_acquire)) {
      counts[kDbRefused].inc();
      throw DatabaseDown();
    }
    const std::uint32_t now = in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    std::uint32_t peak = in_flight_peak.load(std::memory_order_relaxed);
    while (now > peak && !in_flight_peak.compare_exchange_weak(peak, now)) {
    }
    std::optional<User> user;
    try {
      user = db.find(id);
    } catch (...) {
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      throw;
    }
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    const auto current = static_cast<PhaseId>(phase.load(std::memory_order_relaxed));
    if (user) {
      context.add_tag(team_tag(user->team));
      if (current == PhaseId::kTagRefresh && user->team == kRefreshedTeam) {
        counts[kTeamLoads].inc();
      }
    }
    if (id == kHotUserId && current == PhaseId::kHotKey) counts[kHotLoads].inc();
    return user;
  }

  // The database writer of write_through.
  void write(const User& user) {
    if (db_down.load(std::memory_order_acquire)) throw DatabaseDown();
    db.update_name(user.id, user.name, user.updated_at);
  }

  const unsigned index;
  const std::int64_t users;
  UserDb db;
  std::atomic<int> phase{-1};
  std::atomic<bool> db_down{false};
  std::atomic<std::uint32_t> in_flight{0};
  std::atomic<std::uint32_t> in_flight_peak{0};
  std::array<Counter, kCountCount> counts;
  std::array<std::unique_ptr<Histogram>, kLatencyKinds> latency;
  // The update phase's marks (stats.hpp), since the last stats line.
  void mark(std::vector<PodStats::Mark>& marks, std::uint64_t seq) {
    const std::int64_t now = monotonic_ns();
    std::lock_guard lock(marks_mutex);
    marks.push_back(PodStats::Mark{seq, now});
  }
  std::mutex marks_mutex;
  std::vector<PodStats::Mark> written;
  std::vector<PodStats::Mark> seen;
};

auto loader_for(const std::shared_ptr<PodState>& state, std::int64_t id) {
  return [state, id](LoadContext& context) { return state->load(id, context); };
}

// Sleeps that end early when told to stop.
class Stopper {
 public:
  // False if stopped.
  bool sleep_for(SteadyClock::duration d) {
    std::unique_lock lock(mutex_);
    return !cv_.wait_for(lock, d, [&] { return stopped_; });
  }
  bool stopped() {
    std::lock_guard lock(mutex_);
    return stopped_;
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

class Pod {
 public:
  Pod(const PodConfig& config, std::shared_ptr<PodState> state,
      std::shared_ptr<redis::Client> client, std::shared_ptr<ReportPipe> report)
      : config_(config),
        state_(std::move(state)),
        report_(std::move(report)),
        client_(client),
        cache_(cache_options(config, report_), std::move(client)) {}

  ~Pod() { stop_all(); }

  // Reads commands until "stop" or EOF.
  void serve_commands() {
    std::string buffer;
    char chunk[256];
    while (true) {
      const ssize_t n = ::read(config_.command_fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // EOF: the coordinator is gone
      buffer.append(chunk, static_cast<std::size_t>(n));
      std::size_t newline;
      while ((newline = buffer.find('\n')) != std::string::npos) {
        const std::string command = buffer.substr(0, newline);
        buffer.erase(0, newline + 1);
        if (command == "stop") return;
        handle(command);
      }
    }
  }

  // Stops everything, then sends the final stats, the Prometheus text and "E".
  void finish() {
    stop_all();
    send_stats();
    std::string text = cache_.render_prometheus();
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t end = text.find('\n', start);
      report_->line("P " + text.substr(start, end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    report_->line("E");
  }

 private:
  static CacheOptions cache_options(const PodConfig& config,
                                    const std::shared_ptr<ReportPipe>& report) {
    CacheOptions o;
    o.name = config.cache_name;
    o.ttl = config.plan.ttl;
    o.negative_ttl = config.plan.ttl;
    o.l1.max_entries = config.l1_entries;
    o.max_concurrent_loads = config.max_concurrent_loads;
    o.seed = config.cache_seed;
    // The library's log: the first few messages of each level go to the coordinator (the
    // database-down phase makes a warning per failed load), the rest are counted there from the
    // metrics.
    auto sent = std::make_shared<std::array<std::atomic<int>, 4>>();
    o.logger = [report, sent](LogLevel level, std::string_view message) {
      auto& n = (*sent)[static_cast<std::size_t>(level) & 3];
      if (n.fetch_add(1, std::memory_order_relaxed) < kLogSamplesPerLevel) {
        report->line("L " + std::string(to_string(level)) + " " + std::string(message));
      }
    };
    return o;
  }

  void handle(const std::string& command) {
    if (command == "tick") {
      send_stats();
    } else if (command.starts_with("phase ")) {
      const int phase = std::stoi(command.substr(6));
      if (phase >= 0 && static_cast<std::size_t>(phase) < kPhaseCount) enter(phase);
    }
  }

  void enter(int phase) {
    stop_phase_threads();
    state_->phase.store(phase, std::memory_order_release);
    if (workers_.empty()) {
      for (unsigned w = 0; w < config_.workers; ++w) workers_.emplace_back([this, w] { work(w); });
    }
    const bool leader = config_.index == 0;
    switch (static_cast<PhaseId>(phase)) {
      case PhaseId::kHotKey:
        if (leader) shorten_hot_key_ttl();
        break;
      case PhaseId::kUpdate:
        phase_stopper_ = std::make_unique<Stopper>();
        phase_threads_.emplace_back([this] { watch(); });
        if (leader) phase_threads_.emplace_back([this] { update(); });
        break;
      case PhaseId::kTagRefresh:
        if (leader) cache_.invalidate_tag(team_tag(kRefreshedTeam));
        break;
      case PhaseId::kDbDown:
        state_->db_down.store(true, std::memory_order_release);
        break;
      case PhaseId::kDbBack:
        state_->db_down.store(false, std::memory_order_release);
        break;
      default:
        break;
    }
  }

  // Re-stores the hot user, unchanged, with the short TTL: it then expires everywhere at the
  // same moment, while every pod reads it.
  void shorten_hot_key_ttl() {
    const std::string key = user_key(kHotUserId);
    CacheResult<User> current = cache_.get_or_load(key, loader_for(state_, kHotUserId));
    if (!current.has_value()) return;
    WriteOptions options;
    options.ttl = config_.plan.hot_ttl;
    options.tags = {team_tag(current->team)};
    cache_.set(key, *current, options);
  }

  // ---- the workload -------------------------------------------------------------------------

  void work(unsigned worker) {
    sim::SplitMix64 rng(config_.workload_seed * 1'000'003 + worker);
    const auto uniform = [&rng] { return rng.next_double(); };
    const sim::ZipfRankSampler zipf(static_cast<std::uint64_t>(config_.users), kZipfTheta);
    const bool paced = config_.reads_per_second > 0;
    const auto interval = std::chrono::duration_cast<SteadyClock::duration>(
        std::chrono::duration<double>(paced ? config_.workers / config_.reads_per_second : 0));
    SteadyClock::time_point due = SteadyClock::now();
    while (!stopping_.load(std::memory_order_relaxed)) {
      if (paced) {
        due += interval;
        const SteadyClock::time_point now = SteadyClock::now();
        if (due > now + kPacingSlack) {
          std::this_thread::sleep_until(due);
        } else if (now - due > kMaxPacingLag) {
          due = now;
        }
      }
      const double op = uniform();
      const auto id = static_cast<std::int64_t>(zipf(uniform));
      if (op < kWriteFraction && id != kHotUserId && id != kWatchedUserId) {
        write_user(id);
      } else if (op < kWriteFraction + kAbsentFraction) {
        read(config_.users + id);  // ids above N do not exist
      } else {
        read(id);
      }
    }
  }

  CacheResult<User> read(std::int64_t id) {
    const std::int64_t started_unix_ms = unix_ms();
    const auto t0 = SteadyClock::now();
    CacheResult<User> r = cache_.get_or_load(user_key(id), loader_for(state_, id));
    const auto took = SteadyClock::now() - t0;
    account(id, r, took, started_unix_ms);
    return r;
  }

  void account(std::int64_t id, const CacheResult<User>& r, SteadyClock::duration took,
               std::int64_t started_unix_ms) {
    PodState& s = *state_;
    s.counts[kReads].inc();
    s.latency[kLatAll]->observe(took);
    if (id == kHotUserId &&
        s.phase.load(std::memory_order_relaxed) == static_cast<int>(PhaseId::kHotKey)) {
      s.counts[kHotReads].inc();
      if (r.is_stale()) {
        s.counts[kHotStale].inc();
      } else if (r.source() == Source::kL2) {
        s.counts[kHotFromL2].inc();
      } else if (r.source() == Source::kLoader) {
        s.counts[kHotFromLoad].inc();
      }
    }
    if (r.has_value() || r.is_negative()) {
      if (r.is_negative()) s.counts[kNegative].inc();
      if (r.is_stale()) {
        s.counts[kStale].inc();
        return;
      }
      switch (r.source()) {
        case Source::kL1:
          s.counts[kL1Hits].inc();
          s.latency[kLatL1]->observe(took);
          break;
        case Source::kL2:
          s.counts[kL2Hits].inc();
          s.latency[kLatL2]->observe(took);
          break;
        default:
          s.counts[kDbAnswers].inc();
          s.latency[kLatDb]->observe(took);
          break;
      }
      return;
    }
    const CacheError* error = r.error();
    if (error != nullptr && caused_by_database_down(*error) && !l2_had_value(id, started_unix_ms)) {
      s.counts[kUnavailable].inc();
    } else {
      s.counts[kErrors].inc();
    }
  }

  // Whether L2 holds a value of `id` created at or before `before_ms` (unix ms): what
  // fail-safe could have served. Reads Redis directly: "<name>:version", then the entry
  // "<name>:<version>:{user:<id>}" (docs/FORMAT.md).
  bool l2_had_value(std::int64_t id, std::int64_t before_ms) {
    if (id > state_->users) return false;  // does not exist: never a value
    const std::string& name = config_.cache_name;
    redis::Result<redis::Reply> version = client_->command("GET", name + ":version");
    if (!version.ok()) return false;
    const std::string v = version->is_string() ? version->string : "0";
    redis::Result<redis::Reply> entry =
        client_->command("GET", name + ":" + v + ":{" + user_key(id) + "}");
    if (!entry.ok() || !entry->is_string()) return false;
    DecodedEnvelope envelope;
    if (decode_envelope(entry->string, EnvelopeOptions{}, envelope) != EnvelopeStatus::kOk) {
      return false;
    }
    return !envelope.meta.negative && envelope.meta.created_ms <= before_ms;
  }

  void write_user(std::int64_t id) {
    CacheResult<User> current = read(id);  // read-modify-write, as a service would
    if (!current.has_value()) return;
    User user = *current;
    user.name = base_name(user.name) + " #" + std::to_string(++edits_) + "-" +
                std::to_string(config_.index);
    user.updated_at = unix_ms();
    WriteOptions options;
    options.tags = {team_tag(user.team)};
    state_->counts[kWrites].inc();
    const WriteResult w = cache_.write_through(
        user_key(id), user, [state = state_](const User& u) { state->write(u); }, options);
    if (!w.ok()) state_->counts[kWriteErrors].inc();
  }

  // ---- the update phase ---------------------------------------------------------------------

  // Pod 0: a new name for the watched user every kUpdateInterval, "<name> #<seq>"; the
  // database writer notes when the UPDATE committed.
  void update() {
    const std::string key = user_key(kWatchedUserId);
    std::uint64_t seq = 0;
    while (phase_stopper_->sleep_for(kUpdateInterval)) {
      CacheResult<User> current = cache_.get_or_load(key, loader_for(state_, kWatchedUserId));
      if (!current.has_value()) continue;
      User user = *current;
      user.name = base_name(user.name) + " #" + std::to_string(++seq);
      user.updated_at = unix_ms();
      WriteOptions options;
      options.tags = {team_tag(user.team)};
      const WriteResult w = cache_.write_through(
          key, user,
          [state = state_, seq](const User& u) {
            state->write(u);
            state->mark(state->written, seq);
          },
          options);
      if (w.ok()) state_->counts[kUpdates].inc();
    }
  }

  // Every pod: reads the watched user every kWatchInterval and notes when it first sees each
  // update (the coordinator compares with when the writer's database committed it).
  void watch() {
    const std::string key = user_key(kWatchedUserId);
    std::uint64_t last_seq = 0;
    do {
      CacheResult<User> current = cache_.get_or_load(key, loader_for(state_, kWatchedUserId));
      if (!current.has_value()) continue;
      const std::optional<std::uint64_t> seq = update_seq(current->name);
      if (!seq || *seq <= last_seq) continue;
      last_seq = *seq;
      state_->mark(state_->seen, *seq);
    } while (phase_stopper_->sleep_for(kWatchInterval));
  }

  void stop_phase_threads() {
    if (phase_stopper_) phase_stopper_->stop();
    for (std::thread& t : phase_threads_) t.join();
    phase_threads_.clear();
  }

  void stop_all() {
    stop_phase_threads();
    stopping_.store(true, std::memory_order_relaxed);
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  // ---- stats --------------------------------------------------------------------------------

  void send_stats() {
    PodState& s = *state_;
    PodStats stats;
    stats.pod = config_.index;
    for (std::size_t i = 0; i < kCountCount; ++i) stats.counts.n[i] = s.counts[i].value();
    stats.counts[kDbSelects] = s.db.selects();
    stats.counts[kDbUpdates] = s.db.updates();
    const std::string text = cache_.render_prometheus();
    const auto lib = [&](std::string_view family, std::string_view labels = {}) {
      return static_cast<std::uint64_t>(prometheus_value(text, family, labels));
    };
    stats.counts[kLibStaleServed] = lib("tiercache_stale_served_total");
    stats.counts[kLibCoalesced] = lib("tiercache_coalesced_waits_total");
    stats.counts[kLibContended] = lib("tiercache_stampede_lock_total", "result=\"contended\"");
    stats.counts[kLibDistrusted] = lib("tiercache_l1_distrusted_total");
    stats.counts[kLibBusGaps] = lib("tiercache_bus_gaps_total");
    stats.counts[kLibL2Errors] = lib("tiercache_l2_problems_total", "kind=\"error\"") +
                                 lib("tiercache_l2_problems_total", "kind=\"skipped\"");
    stats.bus_connected = static_cast<int>(lib("tiercache_bus_connected"));
    stats.circuit = static_cast<int>(cache_.circuit_state());
    stats.inflight_peak = s.in_flight_peak.exchange(s.in_flight.load(std::memory_order_relaxed));
    for (std::size_t k = 0; k < kLatencyKinds; ++k) {
      stats.latency.kinds[k] = Buckets::from(s.latency[k]->snapshot());
    }
    {
      std::lock_guard lock(s.marks_mutex);
      stats.written.swap(s.written);
      stats.seen.swap(s.seen);
    }
    report_->line(encode(stats));
  }

  const PodConfig& config_;
  std::shared_ptr<PodState> state_;
  std::shared_ptr<ReportPipe> report_;
  std::shared_ptr<redis::Client> client_;
  Cache<User> cache_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
  std::unique_ptr<Stopper> phase_stopper_;
  std::vector<std::thread> phase_threads_;
  std::atomic<std::uint64_t> edits_{0};
};

}  // namespace

int run_pod(const PodConfig& config) {
  auto report = std::make_shared<ReportPipe>(config.report_fd);
  try {
    auto client = std::make_shared<redis::Client>(config.redis);
    const SteadyClock::time_point deadline = SteadyClock::now() + kRedisWait;
    redis::Result<void> up = client->ping();
    while (!up.ok() && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(50));
      up = client->ping();
    }
    if (!up.ok()) throw std::runtime_error("Redis: " + up.error().to_string());
    auto state = std::make_shared<PodState>(config);
    {
      Pod pod(config, state, client, report);
      report->line("R");
      pod.serve_commands();
      pod.finish();
    }
    return 0;
  } catch (const std::exception& e) {
    report->line("X pod " + std::to_string(config.index) + ": " + e.what());
    return 1;
  }
}

}  // namespace tiercache::cli::demo
