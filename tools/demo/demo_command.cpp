// `tiercache demo`: the user service of the seed scenario, end to end, with its numbers.
//
//   tiercache demo [--redis URL] [--pods P] [--users N] [--seconds S] [--report DIR]
//                  [--db-latency-us U] [--seed X] [--rate R]
//
// What runs (decisions, and why):
//  - The system of record is a SQLite database of N users (default 100000; user_db.hpp),
//    created by the coordinator in a temporary directory, in WAL mode, BEFORE any thread or pod
//    exists. Queries are real; --db-latency-us (default 200) adds a sleep per query, the round
//    trip to a database server an in-process SQLite does not have, so the DB is visibly slower
//    than the cache. Every query is counted, per pod.
//  - Redis: without --redis, the demo starts its own redis-server on a free 127.0.0.1 port in
//    the temporary directory (redis_server.hpp: --save '' --appendonly no), so that the outage
//    phase really stops and restarts it; it is always stopped at the end, on failure and on
//    Ctrl-C too. With --redis URL (a server of yours) nothing is stopped: the outage is
//    simulated with CLIENT PAUSE <ms> ALL (said on screen), and the run's keys are deleted at
//    the end.
//  - P pods (default 4) are processes forked by the coordinator (pod.hpp). Each has its own
//    Redis client, its own Cache<User> named "demo-<run id>" (JSON codec through
//    to_json/from_json; each loaded user tagged "team:<team>"), its own SQLite connection, and
//    kWorkersPerPod threads reading GetUser(id) for Zipf(0.99)-distributed ids, with 1.5%
//    write-throughs (SQL UPDATE of the name, then the cache) and 4% ids that do not exist
//    (negative caching). The reads are paced at --rate reads/s in all (default 20000; 0: as
//    fast as the machine goes), so that latencies measure the cache, not a saturated CPU.
//  - Pods and coordinator talk through pipes (pod_channels.hpp): the coordinator sends phase
//    commands and, every 250 ms, "tick"; each pod answers with a stats line of cumulative
//    counts and latency histograms (stats.hpp). Asking, rather than letting each pod report on
//    its own clock, puts every pod's numbers in the same 250 ms row. At the end each pod sends
//    its cache's Prometheus text; the coordinator merges them (label pod="I") with its own
//    tiercache_demo_* metrics into metrics.prom.
//  - The phases (phases.hpp), each announced with a one-line explanation and closed with its
//    result: warm-up; steady state; the hot key's TTL expiring under load (pod 0 re-stores it
//    with a short TTL; the loads of that key are counted: one across all pods); a user's update
//    propagating to every pod (p50/p99 from the DB commit to each other pod's first read of the
//    new name); a tag invalidation of a whole team refreshed as read under
//    max_concurrent_loads (4 per pod, below the 6 workers, so the limit can bind: the peak of
//    loads in flight is shown); the database down (fail-safe serves stale values; reads for
//    which L2 held no value cannot be served and are counted apart, as "unavailable") and back;
//    Redis down (circuit open, errors 0) and back (circuit closed, L2 hits return). The
//    database outage comes before Redis's because a private Redis restarts empty (phases.hpp).
//    60 s of load by default; --seconds scales every phase, the cache TTL (S/2) and the hot
//    key's short TTL, with a minimum per phase.
//  - Errors: any read that fails counts, except "unavailable" ones; the exit status is 1 if
//    there was one. The hot key's load count is shown, not enforced (tests/tools does).
//  - A progress line (rewritten in place on a terminal, else one line per second): phase,
//    reads/s, L1 and L2 hit ratio, DB queries/s, p50/p99, stale serves, errors, circuits open.
//  - The end: a table per tier (L1, L2, DB: requests, hit ratio, p50/p99), DB reads vs reads
//    (offload), the stampede's loads, stale serves, propagation p50/p99, a table per phase, and
//    exactly one machine-readable line, the last:
//      reads=R l1_hit_ratio=A l2_hit_ratio=B db_reads=D offload_pct=O p99_us=L stale_serves=S
//    (l1_hit_ratio: fresh L1 answers / reads; l2_hit_ratio: fresh L2 answers / reads that
//    missed L1; db_reads: SELECTs; offload_pct: 100 x (1 - db_reads / reads); p99_us: of every
//    read; stale_serves: reads answered stale by fail-safe).
//  - --report DIR writes metrics.prom, timeline.csv and report.html (report.hpp).
//
// Exit status: 0 ok; 1 a read failed where a value should have been served (errors > 0), a pod
// failed, or anything unexpected; 2 usage; 130 interrupted (SIGINT/SIGTERM: everything the
// demo started is stopped and its temporary directory removed).

#include "demo/demo_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "demo/phases.hpp"
#include "demo/pod.hpp"
#include "demo/pod_channels.hpp"
#include "demo/progress.hpp"
#include "demo/redis_server.hpp"
#include "demo/report.hpp"
#include "demo/timeline.hpp"
#include "demo/user_db.hpp"
#include "run_support.hpp"
#include "stampede/processes.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli {
namespace {

using demo::kPhaseCount;
using demo::kPhases;
using demo::PhaseId;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kName = "demo";

// Defaults and bounds of the options.
constexpr unsigned kDefaultPods = 4;
constexpr unsigned kMaxPods = 64;
constexpr std::int64_t kDefaultUsers = 100'000;
constexpr std::int64_t kMaxUsers = 100'000'000;
constexpr unsigned kDefaultDbLatencyUs = 200;
constexpr unsigned kMaxDbLatencyUs = 1'000'000;
constexpr double kMaxSeconds = 3600;
constexpr unsigned kDefaultRate = 20'000;
constexpr unsigned kMaxRate = 100'000'000;
constexpr std::uint64_t kDefaultSeed = 1;

// The service.
constexpr unsigned kWorkersPerPod = 6;
constexpr unsigned kMaxConcurrentLoads = 4;  // per pod: below the workers, so it can bind
constexpr std::int64_t kL1Fraction = 10;     // L1 holds N / kL1Fraction users per pod ...
constexpr std::size_t kMinL1Entries = 1000;  // ... and at least this many
// The pods' Redis clients: a restarted server should be found again quickly.
constexpr milliseconds kReconnectMaxDelay{500};
constexpr milliseconds kConnectTimeout{1000};

// The coordinator's rhythm.
constexpr milliseconds kTick{250};
constexpr milliseconds kSetupTimeout{30'000};
constexpr milliseconds kBusTimeout{5'000};
constexpr milliseconds kTickAnswerTimeout{1'000};
constexpr milliseconds kFinishTimeout{20'000};

struct DemoArguments {
  std::string redis_url;  // empty: a private redis-server
  unsigned pods = kDefaultPods;
  std::int64_t users = kDefaultUsers;
  double seconds = demo::kDefaultSeconds;
  std::string report_dir;
  unsigned db_latency_us = kDefaultDbLatencyUs;
  std::uint64_t seed = kDefaultSeed;
  bool seed_given = false;
  unsigned rate = kDefaultRate;
};

std::int64_t unix_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Waits until `pods` caches listen on the run's invalidation bus ("<name>:bus").
bool wait_for_bus(redis::Client& client, const std::string& cache_name, unsigned pods) {
  const Clock::time_point deadline = Clock::now() + kBusTimeout;
  while (Clock::now() < deadline && !interrupted()) {
    redis::Result<redis::Reply> r = client.command("PUBSUB", "NUMSUB", cache_name + ":bus");
    if (r.ok() && r->elements.size() == 2 && r->elements[1].integer >= pods) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

int fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "\ntiercache %s: error: %s\n", kName, message.c_str());
  return kExitFailure;
}

int run_demo(const DemoArguments& args) {
  const demo::Plan plan = demo::make_plan(args.seconds);
  const std::string run_id = std::to_string(::getpid()) + "-" + std::to_string(unix_ms());
  demo::RunInfo info;
  info.run_id = run_id;
  info.cache_name = "demo-" + run_id;
  info.pods = args.pods;
  info.workers = kWorkersPerPod;
  info.users = args.users;
  info.reads_per_second = args.rate;
  info.db_latency = std::chrono::microseconds(args.db_latency_us);
  info.max_concurrent_loads = kMaxConcurrentLoads;
  info.l1_entries =
      std::max<std::size_t>(kMinL1Entries, static_cast<std::size_t>(args.users / kL1Fraction));
  info.seed = args.seed;
  info.plan = plan;
  info.private_redis = args.redis_url.empty();

  redis::ClientConfig config;
  if (!info.private_redis) {
    redis::Result<redis::ClientConfig> parsed = redis::parse_url(args.redis_url);
    if (!parsed.ok()) return usage_error(kName, "--redis: " + parsed.error().message);
    config = *parsed;
    info.redis = redis::redact_url(args.redis_url) + " (yours: the outage is a CLIENT PAUSE)";
  }
  if (!args.report_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(args.report_dir, ec);
    if (ec) return usage_error(kName, "--report: " + args.report_dir + ": " + ec.message());
  }

  InterruptGuard signals;
  RunDir temp("tiercache-demo");
  demo::Progress progress;

  // 1. The database, before any thread or process exists.
  const std::string db_path = temp.path() + "/users.db";
  const Clock::time_point db_start = Clock::now();
  demo::UserDb::create(db_path, args.users, args.seed);
  const double db_ms = std::chrono::duration<double, std::milli>(Clock::now() - db_start).count();

  // 2. Redis.
  std::optional<demo::PrivateRedis> private_redis;
  if (info.private_redis) {
    private_redis.emplace(temp.path() + "/redis");
    config = *redis::parse_url(private_redis->url());
    info.redis = "private redis-server on 127.0.0.1:" + std::to_string(private_redis->port());
  }
  config.reconnect_max_delay = kReconnectMaxDelay;
  config.connect_timeout = kConnectTimeout;

  std::printf(
      "# tiercache demo: %u pods x %u workers, %lld users in SQLite (+%u us per query), Redis: "
      "%s; %.0f s of load in %zu phases; run %s\n",
      args.pods, kWorkersPerPod, static_cast<long long>(args.users), args.db_latency_us,
      info.redis.c_str(), plan.total_seconds(), kPhaseCount, run_id.c_str());
  std::printf(
      "# database: %lld users written in %.0f ms (%s, WAL); cache \"%s\": L1 %zu entries per "
      "pod, TTL %.1f s, max_concurrent_loads %u; reads paced at %s/s in all\n",
      static_cast<long long>(args.users), db_ms, db_path.c_str(), info.cache_name.c_str(),
      info.l1_entries, plan.ttl.count() / 1000.0, kMaxConcurrentLoads,
      args.rate > 0 ? demo::si(args.rate).c_str() : "unpaced");
  std::fflush(stdout);  // forked pods must not inherit unwritten output
  std::fflush(stderr);

  // 3. The pods. Each gets its two pipes, and closes the coordinator's ends of every pipe it
  // inherited (else a pod would keep another pod's pipes open, hiding EOFs).
  stampede::Processes processes;
  std::vector<demo::PodChannel> channels;
  std::vector<int> coordinator_fds;
  for (unsigned p = 0; p < args.pods; ++p) {
    const stampede::Pipe commands = stampede::make_pipe();
    const stampede::Pipe reports = stampede::make_pipe();
    coordinator_fds.push_back(commands.write);
    coordinator_fds.push_back(reports.read);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return fail(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      for (int fd : coordinator_fds) ::close(fd);
      ::signal(SIGINT, SIG_IGN);   // Ctrl-C is the coordinator's to handle
      ::signal(SIGTERM, SIG_DFL);  // not the coordinator's handler
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(kExitFailure);
      demo::PodConfig pod;
      pod.index = p;
      pod.pods = args.pods;
      pod.users = args.users;
      pod.db_path = db_path;
      pod.redis = config;
      pod.cache_name = info.cache_name;
      pod.db_latency = info.db_latency;
      pod.workers = kWorkersPerPod;
      pod.reads_per_second = static_cast<double>(args.rate) / args.pods;
      pod.max_concurrent_loads = kMaxConcurrentLoads;
      pod.l1_entries = info.l1_entries;
      pod.plan = plan;
      if (args.seed_given) pod.cache_seed = args.seed * 1000 + p;
      pod.workload_seed = args.seed * 1000 + p;
      pod.command_fd = commands.read;
      pod.report_fd = reports.write;
      int code = kExitFailure;
      try {
        code = demo::run_pod(pod);
      } catch (...) {
      }
      // Nothing of the parent's runs here: no atexit handlers, no static destructors, no
      // ~Processes (it would kill this pod's siblings), no ~RunDir.
      ::_exit(code);
    }
    processes.add(pid);
    int child_read = commands.read;
    int child_write = reports.write;
    stampede::close_fd(child_read);
    stampede::close_fd(child_write);
    demo::PodChannel channel;
    channel.command_fd = commands.write;
    channel.report_fd = reports.read;
    channels.push_back(std::move(channel));
  }
  demo::PodChannels pods(std::move(channels));
  demo::Timeline timeline(args.pods);
  const auto stop = [] { return interrupted(); };
  const auto interrupted_exit = [&] {
    progress.line("# interrupted: stopping the pods" +
                  std::string(info.private_redis ? " and redis-server" : "") + "...");
    processes.kill_all();
    return 130;
  };

  if (!pods.pump(
          timeline, Clock::now() + kSetupTimeout,
          [&] { return pods.all(&demo::PodChannel::ready) || !pods.failure().empty(); }, stop) ||
      !pods.failure().empty()) {
    if (interrupted()) return interrupted_exit();
    const std::string why = pods.failure();
    processes.kill_all();
    return fail(why.empty() ? "the pods did not get ready within 30 s" : why);
  }
  redis::Client client(config);  // the coordinator's own, now that the pods are forked
  if (!wait_for_bus(client, info.cache_name, args.pods)) {
    progress.line("# warning: not every pod listens on the invalidation bus yet; going on");
  }

  // 4. The phases.
  const Clock::time_point load_start = Clock::now();
  const auto since_start = [&] {
    return std::chrono::duration<double>(Clock::now() - load_start).count();
  };
  std::vector<std::string> results(kPhaseCount);
  std::uint64_t ticks = 0;
  Clock::time_point next_tick = load_start + kTick;
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    const PhaseId id = kPhases[i].id;
    const double seconds = plan.seconds[i];
    char heading[128];
    std::snprintf(heading, sizeof heading, "# == %zu/%zu %s (%.1f s): ", i + 1, kPhaseCount,
                  std::string(kPhases[i].name).c_str(), seconds);
    progress.line(heading + demo::phase_explanation(i, info));
    if (id == PhaseId::kRedisBack && private_redis) {
      try {
        private_redis->restart();
      } catch (const std::exception& e) {
        processes.kill_all();
        return fail(e.what());
      }
    }
    timeline.begin_phase(i, since_start());
    pods.send_all("phase " + std::to_string(i));
    if (id == PhaseId::kRedisDown) {
      if (private_redis) {
        private_redis->stop();
      } else {
        const auto ms = static_cast<long long>(seconds * 1000);
        redis::Result<redis::Reply> paused = client.command("CLIENT", "PAUSE", ms, "ALL");
        if (!paused.ok() || paused->is_error()) {
          progress.line("# warning: CLIENT PAUSE failed; Redis stays up in this phase");
        }
      }
    }
    // The phase is a whole number of ticks, so that no row straddles two phases.
    const Clock::time_point phase_start = Clock::now();
    const auto phase_ticks = std::max<long>(1, std::lround(seconds * 1000 / kTick.count()));
    for (long k = 0; k < phase_ticks; ++k) {
      // Whatever the pods send meanwhile (log lines), then the tick.
      pods.pump(
          timeline, next_tick, [] { return false; }, stop);
      if (interrupted()) return interrupted_exit();
      if (!pods.failure().empty()) {
        processes.kill_all();
        return fail(pods.failure());
      }
      ++ticks;
      pods.send_all("tick");
      pods.pump(
          timeline, Clock::now() + kTickAnswerTimeout,
          [&] {
            return std::all_of(pods.pods().begin(), pods.pods().end(),
                               [&](const demo::PodChannel& p) { return p.stats_lines >= ticks; });
          },
          stop);
      timeline.sample(since_start());
      progress.row(timeline, std::chrono::duration<double>(Clock::now() - phase_start).count());
      next_tick += kTick;
      if (next_tick < Clock::now()) next_tick = Clock::now() + kTick;  // fell behind: skip
    }
    results[i] = demo::phase_result(i, timeline, info);
    progress.line("#    -> " + results[i]);
  }

  // 5. Stop the pods: their final stats and Prometheus text.
  pods.send_all("stop");
  pods.pump(
      timeline, Clock::now() + kFinishTimeout,
      [&] {
        return std::all_of(pods.pods().begin(), pods.pods().end(),
                           [](const demo::PodChannel& p) { return p.finished || p.closed; });
      },
      stop);
  if (interrupted()) return interrupted_exit();
  const unsigned abnormal = processes.reap(Clock::now() + kFinishTimeout);
  std::string pod_failure = pods.failure();
  if (pod_failure.empty() && !pods.all(&demo::PodChannel::finished)) {
    pod_failure = "a pod did not send its final report";
  }
  if (private_redis) {
    private_redis->stop();
  } else {
    delete_keys(client, info.cache_name + ":*");
  }

  // 6. Results.
  std::printf("#\n");
  for (const std::string& line : demo::result_lines(timeline, info)) {
    std::printf("# %s\n", line.c_str());
  }
  if (!pods.log_lines().empty()) {
    std::printf("# the library's log (its first messages of each level, per pod):\n");
    for (const std::string& line : pods.log_lines()) std::printf("#   %s\n", line.c_str());
  }
  if (!args.report_dir.empty()) {
    std::vector<std::string> texts;
    for (const demo::PodChannel& p : pods.pods()) texts.push_back(p.prometheus);
    try {
      const std::string dir = args.report_dir;
      demo::write_file(dir + "/metrics.prom", demo::merged_prometheus(texts, timeline, info));
      demo::write_timeline_csv(dir + "/timeline.csv", timeline, info);
      demo::write_report_html(dir + "/report.html", timeline, info, results);
      std::printf("# report: %s/report.html (and metrics.prom, timeline.csv)\n", dir.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tiercache %s: error: report: %s\n", kName, e.what());
      pod_failure = pod_failure.empty() ? std::string("could not write the report") : pod_failure;
    }
  }
  const demo::Counts totals = timeline.totals();
  if (!pod_failure.empty()) std::printf("# FAILED: %s\n", pod_failure.c_str());
  if (abnormal != 0) std::printf("# %u pod(s) did not exit cleanly\n", abnormal);
  std::printf("%s\n", demo::last_line(timeline).c_str());
  std::fflush(stdout);
  return totals[demo::kErrors] == 0 && pod_failure.empty() && abnormal == 0 ? kExitOk
                                                                            : kExitFailure;
}

}  // namespace

Subcommand add_demo_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand(
      kName, "The user service end to end: SQLite + Redis + pods with their own L1, in phases");
  app->footer(
      "Creates a SQLite database of N users (the system of record; --db-latency-us adds a\n"
      "sleep per query), starts a private redis-server on a free 127.0.0.1 port in a temporary\n"
      "directory (unless --redis URL: then the Redis outage is simulated with CLIENT PAUSE),\n"
      "and forks P pods, each with its own Cache<User> (own L1, shared L2) and SQLite\n"
      "connection, serving Zipf(0.99) GetUser reads, 1.5% write-throughs and 4% ids that do\n"
      "not exist, paced at --rate reads/s. Phases (60 s by default; --seconds scales them):\n"
      "  warm-up, steady, hot-key-expiry (one DB load across pods), update (propagation to\n"
      "  every pod), tag-refresh (a team invalidated, reloaded under max_concurrent_loads),\n"
      "  db-down (fail-safe serves stale values), db-back, redis-down (circuit opens, no\n"
      "  errors), redis-back (recovery).\n"
      "Prints a progress line, a table per tier and per phase, and last the line:\n"
      "  reads=R l1_hit_ratio=A l2_hit_ratio=B db_reads=D offload_pct=O p99_us=L "
      "stale_serves=S\n"
      "--report DIR also writes metrics.prom, timeline.csv and report.html (self-contained).\n"
      "Everything the demo started is stopped at the end, on failure and on Ctrl-C.\n"
      "Examples:\n"
      "  tiercache demo\n"
      "  tiercache demo --pods 2 --users 20000 --seconds 30 --report /tmp/demo-report\n"
      "  tiercache demo --redis redis://127.0.0.1:6379\n"
      "Exit status: 0 ok, 1 a read failed that fail-safe should have served, or a pod failed,\n"
      "2 usage, 130 interrupted.");
  auto args = std::make_shared<DemoArguments>();
  app->add_option("--redis", args->redis_url,
                  "URL of a running Redis to use (default: start a private redis-server)")
      ->type_name("URL");
  app->add_option("--pods", args->pods, "Pod processes, each with its own cache")
      ->capture_default_str()
      ->type_name("P")
      ->check(integer_in(1u, kMaxPods, "the number of pods", "P"));
  app->add_option("--users", args->users, "Users in the database")
      ->capture_default_str()
      ->type_name("N")
      ->check(integer_in<std::int64_t>(100, kMaxUsers, "the number of users", "N"));
  app->add_option("--seconds", args->seconds,
                  "Length of the load (all phases, scaled; each has a minimum)")
      ->capture_default_str()
      ->type_name("S")
      ->check(validator([](std::string& t) { return check_seconds(t, kMaxSeconds); }, "S"));
  app->add_option("--report", args->report_dir,
                  "Write metrics.prom, timeline.csv and report.html into DIR")
      ->type_name("DIR");
  app->add_option("--db-latency-us", args->db_latency_us,
                  "Artificial latency added to every database query (microseconds)")
      ->capture_default_str()
      ->type_name("U")
      ->check(integer_in(0u, kMaxDbLatencyUs, "the database latency (microseconds)", "U"));
  app->add_option("--rate", args->rate, "Reads per second, all pods together (0: unpaced)")
      ->capture_default_str()
      ->type_name("R")
      ->check(integer_in(0u, kMaxRate, "the read rate", "R"));
  app->add_option("--seed", args->seed,
                  "Seed of the data and the workload (pods use their own derived seeds)")
      ->capture_default_str()
      ->type_name("X")
      ->each([args](const std::string&) { args->seed_given = true; });
  return Subcommand{app, [args] { return run_demo(*args); }};
}

}  // namespace tiercache::cli
