// The coordinator of `tiercache chaos` (coordinator.hpp).

#include "chaos/coordinator.hpp"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "chaos/faults.hpp"
#include "chaos/oracle.hpp"
#include "chaos/row_db.hpp"
#include "chaos/settings.hpp"
#include "chaos/worker_pool.hpp"
#include "command.hpp"
#include "demo/progress.hpp"
#include "demo/redis_server.hpp"
#include "fault_proxy.hpp"
#include "run_support.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli::chaos {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kName = "chaos";
// The rhythm of the run.
constexpr milliseconds kTick{1'000};
constexpr milliseconds kHealthyStart{2'000};  // no fault in the first ...
constexpr milliseconds kQuietEnd{3'000};      // ... nor starting in the last
constexpr milliseconds kSetupTimeout{30'000};
constexpr milliseconds kStopTimeout{30'000};
// Wrong values and hangs printed in full on screen (all of them go to findings.txt).
constexpr std::size_t kShownFindings = 20;

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string seconds_since(Micros t, Micros origin) {
  char text[32];
  std::snprintf(text, sizeof text, "%+.1f s", static_cast<double>(t - origin) / 1e6);
  return text;
}

// The URL the workers use: `config`'s credentials and database, the proxy's address.
std::string worker_url(const redis::ClientConfig& config, std::uint16_t proxy_port) {
  std::string url = "redis://";
  if (!config.password.empty()) url += config.username + ":" + config.password + "@";
  return url + "127.0.0.1:" + std::to_string(proxy_port) + "/" + std::to_string(config.database);
}

// Moves every new line of the workers' event logs into the oracle, then closes the logs of
// incarnations that are gone (read to their end just now).
void ingest(WorkerPool& workers, Oracle& oracle) {
  for (LogTail& tail : workers.tails()) {
    oracle.add_bad_lines(
        tail.read_new([&](Event&& e) { std::visit([&](auto& r) { oracle.add(r); }, e); }));
  }
  workers.drop_retired_tails();
}

std::string progress_line(const Oracle& oracle, Micros now, Micros origin,
                          std::uint64_t ops_before) {
  const OracleTotals& t = oracle.totals();
  std::string active;
  for (const FaultRecord* f : oracle.active_faults()) active += " [" + f->name + "]";
  char text[256];
  std::snprintf(text, sizeof text,
                "# %s  ops %s (+%s)  wrong %llu  hangs %llu  errors %llu  stale %llu  faults %zu",
                seconds_since(now, origin).c_str(), demo::si(static_cast<double>(t.ops)).c_str(),
                demo::si(static_cast<double>(t.ops - ops_before)).c_str(),
                static_cast<unsigned long long>(t.wrong_values),
                static_cast<unsigned long long>(t.hangs), static_cast<unsigned long long>(t.errors),
                static_cast<unsigned long long>(t.stale_served), oracle.faults().size());
  return text + active;
}

// The run itself, once everything is set up: faults and checks until the deadline.
class Run {
 public:
  Run(const ChaosArguments& args, WorkerPool& workers, FaultInjector& injector, Oracle& oracle,
      demo::Progress& progress, FaultSchedule schedule)
      : args_(args),
        workers_(workers),
        injector_(injector),
        oracle_(oracle),
        progress_(progress),
        schedule_(std::move(schedule)) {}

  Micros origin() const { return origin_; }
  unsigned crashes() const { return crashes_; }

  // False if interrupted.
  bool go() {
    origin_ = now_us();
    progress_.line("# times are seconds from CLOCK_MONOTONIC " + std::to_string(origin_) +
                   " us (the event logs hold raw microseconds)");
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline = start + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(args_.seconds));
    Clock::time_point next_tick = start + kTick;
    Clock::time_point next_fault = start + kHealthyStart;
    std::optional<FaultPlan> plan = schedule_.next();
    while (true) {
      if (interrupted()) return false;
      const Clock::time_point now = Clock::now();
      if (active_) {
        if (now >= fault_end_) end_fault();
      } else if (now >= deadline) {
        break;
      } else if (now >= next_fault && plan && now + plan->duration + kQuietEnd < deadline) {
        begin_fault(*plan);
        plan = schedule_.next();
      }
      if (now >= next_tick) {
        tick();
        next_tick += kTick;
        if (next_tick < Clock::now()) next_tick = Clock::now() + kTick;
      }
      Clock::time_point wake = std::min(next_tick, active_ ? fault_end_ : deadline);
      if (!active_ && next_fault > now) wake = std::min(wake, next_fault);
      workers_.pump(wake);  // waits on the workers' pipes until then
      restart_crashed();
      if (!active_ && fault_ended_) {
        fault_ended_ = false;
        next_fault = Clock::now() + schedule_.next_gap();
      }
    }
    return true;
  }

 private:
  void tick() {
    ingest(workers_, oracle_);
    const Micros now = now_us();
    oracle_.check(now);
    progress_.line(progress_line(oracle_, now, origin_, ops_at_last_tick_));
    ops_at_last_tick_ = oracle_.totals().ops;
  }

  void begin_fault(const FaultPlan& plan) {
    FaultRecord record = injector_.begin(plan);
    const bool instantaneous = record.end != kNever;
    const std::string name = record.name;
    const Micros start = record.start;
    fault_id_ = oracle_.start_fault(std::move(record));
    progress_.line("# " + seconds_since(start, origin_) + " fault #" + std::to_string(fault_id_) +
                   ": " + name);
    plan_ = plan;
    if (instantaneous) {
      fault_ended_ = true;
      return;
    }
    active_ = true;
    fault_end_ = Clock::now() + plan.duration;
  }

  void end_fault() {
    const std::string note = injector_.end(plan_);
    const Micros end = now_us();
    oracle_.end_fault(fault_id_, end);
    active_ = false;
    fault_ended_ = true;
    progress_.line("# " + seconds_since(end, origin_) + " fault #" + std::to_string(fault_id_) +
                   " ends" + (note.empty() ? "" : ": " + note));
  }

  // A worker that died without being told to is a finding: say so, and start it again.
  void restart_crashed() {
    for (const std::string& line : workers_.take_unexpected_exits()) {
      ++crashes_;
      progress_.line("# " + seconds_since(now_us(), origin_) +
                     " WORKER DIED UNEXPECTEDLY: " + line + " (started again)");
    }
    for (unsigned i = 0; i < workers_.size(); ++i) {
      if (workers_.running(i) ||
          (active_ && plan_.kind == FaultKind::kWorkerKill && plan_.worker == i)) {
        continue;
      }
      workers_.start(i);
      workers_.wait_ready(Clock::now() + kSetupTimeout);
    }
  }

  const ChaosArguments& args_;
  WorkerPool& workers_;
  FaultInjector& injector_;
  Oracle& oracle_;
  demo::Progress& progress_;
  FaultSchedule schedule_;
  Micros origin_ = 0;
  bool active_ = false;
  bool fault_ended_ = false;
  FaultPlan plan_;
  unsigned fault_id_ = 0;
  Clock::time_point fault_end_;
  std::uint64_t ops_at_last_tick_ = 0;
  unsigned crashes_ = 0;
};

// The report: findings in detail, totals, and the machine-readable last line. Returns whether
// the run was clean.
bool report(const Oracle& oracle, Micros origin, std::size_t lost,
            const std::vector<std::string>& lost_lines, const std::vector<std::string>& problems,
            unsigned crashes, const std::string& dir, unsigned incarnations) {
  const OracleTotals& t = oracle.totals();
  std::ofstream findings(dir + "/findings.txt");
  std::size_t shown = 0;
  for (const WrongValue& w : oracle.wrong_values()) {
    const std::string text = oracle.describe(w, origin);
    findings << text << "\n";
    if (shown++ < kShownFindings) std::printf("# %s\n", text.c_str());
  }
  for (const HangFinding& h : oracle.hangs()) {
    const std::string text = Oracle::describe(h, origin);
    findings << text << "\n";
    if (shown++ < kShownFindings) std::printf("# %s\n", text.c_str());
  }
  for (const std::string& line : lost_lines) {
    findings << line << "\n";
    if (shown++ < kShownFindings) std::printf("# %s\n", line.c_str());
  }
  if (shown > kShownFindings) {
    std::printf("# ... %zu more findings in %s/findings.txt\n", shown - kShownFindings,
                dir.c_str());
  }
  std::map<std::string, unsigned> kinds;
  for (const FaultRecord& f : oracle.faults()) ++kinds[f.kind];
  std::string kind_text;
  for (const auto& [kind, n] : kinds) kind_text += " " + kind + " x" + std::to_string(n);
  std::printf("# faults:%s\n", kind_text.empty() ? " none" : kind_text.c_str());
  std::printf(
      "# calls: %llu (reads %llu, written rows %llu, clears %llu) by %u worker incarnations\n",
      static_cast<unsigned long long>(t.ops), static_cast<unsigned long long>(t.reads),
      static_cast<unsigned long long>(t.writes), static_cast<unsigned long long>(t.clears),
      incarnations);
  std::printf(
      "# stale served: %llu, of which %llu older than a completed write (excused: a slow or "
      "failing load around them)\n",
      static_cast<unsigned long long>(t.stale_served),
      static_cast<unsigned long long>(t.stale_excused));
  std::printf(
      "# reads older than a write that did not reach Redis (l2_written=false; not promised, "
      "docs/write-through.md): %llu\n",
      static_cast<unsigned long long>(t.unacknowledged_older));
  std::string codes;
  for (const auto& [code, n] : t.errors_by_code) codes += " " + code + " " + std::to_string(n);
  std::printf("# errors returned to callers (allowed, counted):%s\n",
              codes.empty() ? " none" : codes.c_str());
  std::printf(
      "# max staleness observed (a read older than an acknowledged write, unflagged): "
      "%.1f ms\n",
      static_cast<double>(t.max_staleness) / 1e3);
  if (t.bad_lines > 0) {
    std::printf("# event log lines that did not parse: %llu\n",
                static_cast<unsigned long long>(t.bad_lines));
  }
  for (const std::string& p : problems) std::printf("# worker problem: %s\n", p.c_str());
  if (crashes > 0) std::printf("# workers that died unexpectedly: %u\n", crashes);
  const bool clean = t.wrong_values == 0 && t.hangs == 0 && lost == 0 && crashes == 0;
  std::printf("# %s\n", clean ? "CLEAN" : "NOT CLEAN");
  if (!clean) {
    std::printf("# kept for inspection: %s (findings.txt, events-*.log, rows.db, redis/)\n",
                dir.c_str());
  }
  std::printf(
      "ops=%llu wrong_values=%llu hangs=%llu lost_writes=%zu max_staleness_ms=%lld "
      "errors=%llu faults=%zu\n",
      static_cast<unsigned long long>(t.ops), static_cast<unsigned long long>(t.wrong_values),
      static_cast<unsigned long long>(t.hangs), lost,
      static_cast<long long>(t.max_staleness / 1000), static_cast<unsigned long long>(t.errors),
      oracle.faults().size());
  std::fflush(stdout);
  return clean;
}

}  // namespace

int run_chaos(const ChaosArguments& args) {
  redis::ClientConfig direct;
  const bool private_redis = args.url.empty();
  std::vector<FaultKind> only;
  for (std::size_t start = 0; start < args.faults.size();) {
    std::size_t comma = args.faults.find(',', start);
    if (comma == std::string::npos) comma = args.faults.size();
    const std::string name = args.faults.substr(start, comma - start);
    start = comma + 1;
    if (name.empty()) continue;
    const std::optional<FaultKind> kind = fault_kind(name);
    if (!kind) {
      std::string known;
      for (std::size_t k = 0; k < kFaultKinds; ++k) {
        known += std::string(k == 0 ? "" : ", ") + to_string(static_cast<FaultKind>(k));
      }
      return usage_error(kName, "--faults: '" + name + "' is not a fault (" + known + ")");
    }
    only.push_back(*kind);
  }
  FaultSchedule schedule(args.seed, private_redis, args.processes, only);
  if (schedule.kinds().empty()) {
    return usage_error(kName, "--faults: only redis-* faults, which need a private redis-server");
  }
  if (!private_redis) {
    redis::Result<redis::ClientConfig> parsed = redis::parse_url(args.url);
    if (!parsed.ok()) return usage_error(kName, "--url: " + parsed.error().message);
    if (parsed->use_tls) {
      return usage_error(kName, "--url: TLS (rediss://) does not go through the fault proxy");
    }
    direct = *parsed;
  }
  InterruptGuard signals;
  RunDir dir("tiercache-chaos");
  demo::Progress progress;
  const std::string run_id = std::to_string(::getpid()) + "-" + std::to_string(unix_ms());
  const std::string cache_name = "chaos-" + run_id;
  const std::string db_path = dir.path() + "/rows.db";
  RowDb::create(db_path, args.keys);  // before any thread or process exists

  std::optional<demo::PrivateRedis> redis;
  if (private_redis) {
    redis.emplace(dir.path() + "/redis");
    direct = *redis::parse_url(redis->url());
  }
  tune_client(direct);
  testing::FaultProxy proxy(direct.host, direct.port);
  redis::Client admin(direct);

  WorkerLaunch launch;
  launch.processes = args.processes;
  launch.keys = args.keys;
  launch.redis_url = worker_url(direct, proxy.port());
  launch.db_path = db_path;
  launch.cache_name = cache_name;
  launch.log_dir = dir.path();
  launch.seed = args.seed;
  launch.batch_all_rows = args.batch_all_rows;
  WorkerPool workers(launch);

  const OracleConfig config = oracle_config(args.keys);
  std::printf(
      "# tiercache chaos: %u workers, %lld rows in SQLite, %.0f s, seed %llu; Redis: %s; every "
      "worker through the fault proxy on 127.0.0.1:%u; run %s\n",
      args.processes, static_cast<long long>(args.keys), args.seconds,
      static_cast<unsigned long long>(args.seed),
      private_redis ? ("private redis-server on 127.0.0.1:" + std::to_string(redis->port())).c_str()
                    : (redis::redact_url(args.url) + " (yours)").c_str(),
      proxy.port(), run_id.c_str());
  std::printf(
      "# oracle: bus bound %.1f s healthy, %.1f s around a bus fault; hang bound %.1f s; reads "
      "judged %.0f s after they end; directory %s\n",
      config.healthy_bound / 1e6, config.degraded_bound / 1e6, config.call_bound / 1e6,
      config.settle / 1e6, dir.path().c_str());
  if (!private_redis) {
    std::printf("# not your server's process: redis-sigstop and redis-kill are left out\n");
  }
  std::fflush(stdout);

  for (unsigned i = 0; i < args.processes; ++i) workers.start(i);
  if (!workers.wait_ready(Clock::now() + kSetupTimeout)) {
    dir.keep();
    std::fprintf(stderr, "tiercache chaos: error: the workers did not get ready within %lld s\n",
                 static_cast<long long>(kSetupTimeout.count() / 1000));
    for (const std::string& line : workers.take_unexpected_exits()) {
      std::fprintf(stderr, "tiercache chaos:   %s\n", line.c_str());
    }
    return kExitFailure;
  }

  Oracle oracle(config);
  FaultInjector injector(proxy, redis ? &*redis : nullptr, admin, workers, cache_name);
  Run run(args, workers, injector, oracle, progress, std::move(schedule));
  const bool completed = run.go();
  injector.heal_all();
  if (!completed) {
    progress.line("# interrupted: stopping the workers" +
                  std::string(private_redis ? " and redis-server" : "") + "...");
    return 130;
  }

  // The end: stop the workers, judge every remaining read, compare the database.
  progress.line("# " + seconds_since(now_us(), run.origin()) + " stopping the workers");
  const std::vector<std::string> problems = workers.stop_all(Clock::now() + kStopTimeout);
  ingest(workers, oracle);
  oracle.finish();
  std::map<std::int64_t, std::int64_t> versions;
  for (const auto& [key, version] : RowDb(db_path).all_versions()) versions[key] = version;
  std::vector<std::string> lost_lines;
  const auto lost = oracle.lost_writes([&](std::int64_t key) -> std::optional<std::int64_t> {
    auto it = versions.find(key);
    if (it == versions.end()) return std::nullopt;
    return it->second;
  });
  for (const auto& [key, logged, in_db] : lost) {
    lost_lines.push_back("LOST WRITE: row:" + std::to_string(key) + " logged at version " +
                         std::to_string(logged) + ", the database holds " + std::to_string(in_db));
  }
  if (!private_redis) delete_keys(admin, cache_name + ":*");
  if (redis) redis->stop();

  const std::vector<std::string> library_log = workers.log_lines();
  if (!library_log.empty()) {
    std::printf("# the library's log (its first messages of each level, per worker slot):\n");
    for (const std::string& line : library_log) std::printf("#   %s\n", line.c_str());
  }
  unsigned incarnations = 0;
  for (unsigned i = 0; i < workers.size(); ++i) incarnations += workers.process(i).incarnation + 1;
  const bool clean = report(oracle, run.origin(), lost.size(), lost_lines, problems, run.crashes(),
                            dir.path(), incarnations);
  if (!clean) dir.keep();
  return clean ? kExitOk : kExitFailure;
}

}  // namespace tiercache::cli::chaos
