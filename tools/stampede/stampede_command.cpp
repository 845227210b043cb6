// `tiercache stampede`: the thundering herd on cold keys, measured in database loads.
//
//   tiercache stampede [--url URL ...connection options of `tiercache redis`...]
//                      --procs P --callers C --keys K --db-latency-ms L
//                      [--mode tiercache|naive] [--lock-ttl-ms T] [--seed S]
//
// What it measures: P processes with C threads each (P x C callers) all ask, at the same
// moment, for the same K keys that nobody has cached yet. Each caller reads every key once,
// caller i starting at key i % K so that all keys are asked for at once. A read that misses
// everywhere calls the "database": a loader that counts the call (INCR <run id>:db_loads, in
// Redis, so the count is exact across processes) and then sleeps L ms. The result is that
// count: with stampede protection it is K whatever P, C and L; without it, it grows with the
// number of callers that arrive while the first load runs.
//
// How (the pipes and the process set are in processes.hpp):
//   1. The parent forks the P processes before it creates any client or thread (a forked
//      child has only the forking thread; locks and sockets of others would be lost).
//   2. Each process builds its own Redis clients and its read path:
//        tiercache  a tiercache::Cache<std::string> named after the run (a unique run id,
//                   "stampede-<pid>-<unix ms>", so runs never see each other's keys): its own
//                   L1 on the shared Redis, like P pods of one service.
//        naive      NaiveReadPath (naive_read_path.hpp): the copied L1 map + singleflight +
//                   SETNX lock read path.
//      Its C threads wait at a start line; the process reports "ready" on a pipe.
//   3. When all P are ready (and, in tiercache mode, all P caches listen on the cache's bus, so
//      the first fill reaches everyone), the parent closes the write end of the "go" pipe: every
//      process, blocked reading it, wakes at once and releases its threads.
//   4. Each process sends one fixed-size report (its reads, errors -- an error result or a
//      value that is not the key's -- and the loads it ran) on a results pipe. wall_ms runs
//      from "go" to the last report. Processes still running after max(60 s, 10 x L) are
//      killed (their reads count as errors).
//   5. The parent reads db_loads, deletes the run's keys, prints '#' lines for people and then
//      exactly one machine-readable line, the last:
//        procs=P callers=C keys=K db_latency_ms=L db_loads=N errors=E wall_ms=W
//      with " mode=naive" appended in naive mode (the tiercache line is the exactly).
//
// Exit status: 0 no errors; 1 errors, or a process that crashed or was killed; 2 usage;
// 3 connection or timeout, 4 auth, 5 TLS (the first process that could not set up).

#include "stampede/stampede_command.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "redis/redis_command.hpp"
#include "run_support.hpp"
#include "stampede/naive_read_path.hpp"
#include "stampede/processes.hpp"
#include "tiercache/cache.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli {
namespace {

using stampede::close_fd;
using stampede::make_pipe;
using stampede::Pipe;
using stampede::Processes;
using stampede::read_until;
using stampede::write_all;

constexpr const char* kName = "stampede";
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Bounds of the options.
constexpr unsigned kMaxProcesses = 256;
constexpr unsigned kMaxCallers = 4096;
constexpr unsigned kMaxKeys = 100'000;
constexpr unsigned kMaxLatencyMs = 600'000;
constexpr unsigned kMaxLockTtlMs = 3'600'000;
// The default deadline of each Redis request (and of connecting).
constexpr milliseconds kDefaultRequestTimeout{2000};
// The stampede lock's time to live (both modes; the reference's `EX 5`).
constexpr unsigned kDefaultLockTtlMs = 5000;
// How long the processes may take to connect and get ready.
constexpr milliseconds kSetupTimeout{30'000};
// How long the parent waits for the caches to listen on their bus before starting anyway.
constexpr milliseconds kBusTimeout{5000};
// A run is stopped after max(kMinRunTimeout, kRunTimeoutLatencies x L).
constexpr milliseconds kMinRunTimeout{60'000};
constexpr unsigned kRunTimeoutLatencies = 10;
// Cache<V>'s hard timeout is max(kMinHardTimeout, kHardTimeoutLatencies x L): a caller never
// gives up on a load that is merely slow.
constexpr milliseconds kMinHardTimeout{30'000};
constexpr unsigned kHardTimeoutLatencies = 5;
// How long a process may take to exit after its report.
constexpr milliseconds kExitGrace{10'000};

struct StampedeArguments {
  RedisConnectionArguments connection;
  unsigned processes = 0;
  unsigned callers = 0;
  unsigned keys = 0;
  unsigned db_latency_ms = 0;
  std::string mode = "tiercache";
  unsigned lock_ttl_ms = kDefaultLockTtlMs;
  std::optional<std::uint64_t> seed;
};

// What a process tells the parent when its callers are done (or when it could not start). One
// write() of less than PIPE_BUF bytes: atomic, so the P processes share one pipe.
struct Report {
  std::uint32_t process = 0;
  std::int32_t exit_code = kExitOk;  // not ok: the process could not set up (`message` says why)
  std::uint64_t reads = 0;           // reads that returned (with a value or not)
  std::uint64_t errors = 0;          // of which: an error, or not the key's value
  std::uint64_t loads = 0;           // database loads run by this process
  std::int64_t elapsed_us = 0;       // from "go" to its last caller's return
  char message[200] = {};            // the first error, for people
};
static_assert(sizeof(Report) < PIPE_BUF, "a report must be written atomically");

void set_message(Report& report, std::string_view text) {
  const std::size_t n = std::min(text.size(), sizeof report.message - 1);
  std::memcpy(report.message, text.data(), n);
  report.message[n] = '\0';
}

std::string key_name(std::size_t index) { return "user:" + std::to_string(index); }
// What the database holds for `key`: callers check they got exactly this.
std::string value_for(std::string_view key) { return "value of " + std::string(key); }

// ---- the database --------------------------------------------------------------------------

// The stand-in for the system of record: every load is counted in Redis (exact across the
// processes) and in this process, then takes the configured latency.
class SlowDatabase {
 public:
  SlowDatabase(std::shared_ptr<redis::Client> counter, std::string counter_key,
               milliseconds latency)
      : counter_(std::move(counter)), counter_key_(std::move(counter_key)), latency_(latency) {}

  // Throws if the load cannot be counted: an uncounted load would falsify db_loads, so the
  // read fails instead.
  std::string load(std::string_view key) {
    const redis::Result<redis::Reply> counted = counter_->command("INCR", counter_key_);
    if (!counted.ok()) throw std::runtime_error("INCR db_loads: " + counted.error().to_string());
    loads_.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(latency_);
    return value_for(key);
  }
  std::uint64_t loads() const { return loads_.load(std::memory_order_relaxed); }

 private:
  const std::shared_ptr<redis::Client> counter_;
  const std::string counter_key_;
  const milliseconds latency_;
  std::atomic<std::uint64_t> loads_{0};
};

// ---- one process ---------------------------------------------------------------------------

// Reads key number `index` once: "" if the key's value came back, else what went wrong.
using Reader = std::function<std::string(std::size_t index)>;

struct ChildSetup {
  const StampedeArguments& args;
  const redis::ClientConfig& config;
  const std::string& run_id;
  unsigned process = 0;
  int ready_fd = -1;    // write one byte when ready, then close
  int go_fd = -1;       // read until EOF, then start
  int results_fd = -1;  // write the Report
};

// Runs the process's callers once the parent says go; fills `report`.
void run_callers(const ChildSetup& setup, const Reader& read, Report& report) {
  const StampedeArguments& args = setup.args;
  std::latch threads_ready(args.callers);
  std::latch go(1);
  std::atomic<std::uint64_t> reads{0};
  std::atomic<std::uint64_t> errors{0};
  std::mutex first_error_mutex;
  std::string first_error;
  std::vector<std::thread> threads;
  threads.reserve(args.callers);
  for (unsigned t = 0; t < args.callers; ++t) {
    threads.emplace_back([&, t] {
      const std::size_t caller = static_cast<std::size_t>(setup.process) * args.callers + t;
      threads_ready.count_down();
      go.wait();
      for (std::size_t i = 0; i < args.keys; ++i) {
        const std::string error = read((caller + i) % args.keys);
        reads.fetch_add(1, std::memory_order_relaxed);
        if (error.empty()) continue;
        errors.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock(first_error_mutex);
        if (first_error.empty()) first_error = error;
      }
    });
  }
  threads_ready.wait();
  char ready = 'r';
  write_all(setup.ready_fd, &ready, 1);
  int ready_fd = setup.ready_fd;
  close_fd(ready_fd);
  char ignored;
  while (::read(setup.go_fd, &ignored, 1) < 0 && errno == EINTR) {
  }
  const Clock::time_point start = Clock::now();
  go.count_down();
  for (std::thread& thread : threads) thread.join();
  report.elapsed_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  report.reads = reads.load();
  report.errors = errors.load();
  set_message(report, first_error);
}

// A setup failure: sends the report first, then closes the ready pipe without the ready byte,
// so the parent finds the report when it sees fewer processes ready. Returns the exit status.
int fail_setup(const ChildSetup& setup, Report& report, const redis::Error& error,
               std::string_view what) {
  report.exit_code = exit_code_for(error);
  set_message(report, std::string(what) + ": " + std::string(error_kind(error.code)) + ": " +
                          error.message);
  write_all(setup.results_fd, &report, sizeof report);
  int ready_fd = setup.ready_fd;
  close_fd(ready_fd);
  return report.exit_code;
}

// The body of process `setup.process`: builds its clients and read path, runs the callers,
// sends its report. Returns the process's exit status.
int child_main(const ChildSetup& setup) {
  const StampedeArguments& args = setup.args;
  Report report;
  report.process = setup.process;
  const auto send = [&] {
    write_all(setup.results_fd, &report, sizeof report);
    return report.exit_code;
  };

  // One client for the read path, one for the database's counter: the count must not wait
  // behind the read path's requests (and is not part of what is measured).
  auto data_client = std::make_shared<redis::Client>(setup.config);
  auto counter_client = std::make_shared<redis::Client>(setup.config);
  for (redis::Client* client : {data_client.get(), counter_client.get()}) {
    if (redis::Result<void> up = client->ping(); !up.ok()) {
      return fail_setup(setup, report, up.error(), "PING");
    }
  }
  auto database = std::make_shared<SlowDatabase>(counter_client, setup.run_id + ":db_loads",
                                                 milliseconds(args.db_latency_ms));

  if (args.mode == "naive") {
    NaiveReadPath path(
        data_client, [database](const std::string& key) { return database->load(key); },
        milliseconds(args.lock_ttl_ms));
    const Reader read = [&](std::size_t index) -> std::string {
      const std::string key = setup.run_id + ":" + key_name(index);
      NaiveReadPath::Outcome outcome = path.get(key);
      if (!outcome.value) return outcome.error;
      if (*outcome.value != value_for(key)) return "wrong value for " + key;
      return {};
    };
    run_callers(setup, read, report);
  } else {
    CacheOptions options;
    options.name = setup.run_id;
    options.lock_ttl = milliseconds(args.lock_ttl_ms);
    options.hard_timeout = std::max<Duration>(
        kMinHardTimeout, milliseconds(std::uint64_t{kHardTimeoutLatencies} * args.db_latency_ms));
    // Each process its own seed: caches with the same seed draw the same lock tokens and bus
    // origin id, and would take each other's invalidations for their own.
    if (args.seed) options.seed = *args.seed + setup.process;
    Cache<std::string> cache(options, data_client);
    // Captures by value: a load may outlive the call that started it (cache.hpp).
    const auto loader = [database](std::string_view key) { return database->load(key); };
    const Reader read = [&](std::size_t index) -> std::string {
      const std::string key = key_name(index);
      const CacheResult<std::string> result = cache.get_or_load(key, loader);
      if (const CacheError* error = result.error()) {
        return std::string(to_string(error->code)) + ": " + error->message;
      }
      if (!result.has_value()) return "not found: " + key;
      if (*result != value_for(key)) return "wrong value for " + key;
      return {};
    };
    run_callers(setup, read, report);
  }
  report.loads = database->loads();
  return send();  // before the clients and the cache are torn down: not part of wall_ms
}

// ---- the parent ----------------------------------------------------------------------------

// Waits (up to kBusTimeout) until `processes` caches listen on the run's invalidation bus
// (CacheCore's channel "<name>:bus", detail/cache_core.hpp). False at the timeout.
bool wait_for_bus(redis::Client& client, const std::string& run_id, unsigned processes) {
  const Clock::time_point deadline = Clock::now() + kBusTimeout;
  while (Clock::now() < deadline) {
    redis::Result<redis::Reply> r = client.command("PUBSUB", "NUMSUB", run_id + ":bus");
    if (r.ok() && r->elements.size() == 2 && r->elements[1].integer >= processes) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return false;
}

// "1 key", "2 keys"; "1 process", "2 processes".
std::string plural(std::uint64_t n, std::string_view word) {
  const bool es = word.ends_with('s');
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : es ? "es" : "s");
}

int run_stampede(const StampedeArguments& args) {
  redis::Result<redis::ClientConfig> config =
      make_client_config(args.connection, kDefaultRequestTimeout);
  if (!config.ok()) return usage_error(kName, config.error().message);
  const bool naive = args.mode == "naive";
  const std::string run_id = "stampede-" + std::to_string(::getpid()) + "-" +
                             std::to_string(std::chrono::duration_cast<milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());

  std::printf(
      "# tiercache stampede: %s, mode %s: %s x %s, %s, database latency %u ms, lock ttl "
      "%u ms, run id %s\n",
      redis::redact_url(args.connection.url).c_str(), args.mode.c_str(),
      plural(args.processes, "process").c_str(), plural(args.callers, "caller").c_str(),
      plural(args.keys, "cold key").c_str(), args.db_latency_ms, args.lock_ttl_ms, run_id.c_str());
  std::fflush(stdout);  // forked children must not inherit unwritten output
  std::fflush(stderr);

  // 1. Fork first: no client, no thread exists yet in this process.
  Pipe ready = make_pipe();
  Pipe go = make_pipe();
  Pipe results = make_pipe();
  Processes processes;
  for (unsigned p = 0; p < args.processes; ++p) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::fprintf(stderr, "tiercache %s: error: fork: %s\n", kName, std::strerror(errno));
      return kExitFailure;  // ~Processes kills those already started
    }
    if (pid == 0) {
      close_fd(ready.read);
      close_fd(go.write);
      close_fd(results.read);
      const ChildSetup setup{args, *config, run_id, p, ready.write, go.read, results.write};
      int code = kExitFailure;
      try {
        code = child_main(setup);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tiercache %s: process %u: error: %s\n", kName, p, e.what());
      }
      // Nothing of the parent's runs here: not atexit handlers or static destructors, nor
      // ~Processes (which would kill this process's siblings).
      ::_exit(code);
    }
    processes.add(pid);
  }
  close_fd(ready.write);
  close_fd(results.write);
  close_fd(go.read);

  // 2. Wait until every process is ready (EOF early: one could not set up).
  std::vector<char> ready_bytes(args.processes);
  const std::size_t ready_count =
      read_until(ready.read, ready_bytes.data(), ready_bytes.size(), Clock::now() + kSetupTimeout);
  if (ready_count < args.processes) {
    Report failure;
    const std::size_t got =
        read_until(results.read, &failure, sizeof failure, Clock::now() + milliseconds(1000));
    processes.kill_all();
    if (got == sizeof failure && failure.exit_code != kExitOk) {
      std::fprintf(stderr, "tiercache %s: error: process %u: %s\n", kName, failure.process,
                   failure.message);
      return failure.exit_code;
    }
    std::fprintf(stderr, "tiercache %s: error: only %zu of %u processes got ready within %lld s\n",
                 kName, ready_count, args.processes,
                 static_cast<long long>(kSetupTimeout.count() / 1000));
    return kExitFailure;
  }
  redis::Client client(*config);  // the parent's own, now that the processes are forked
  if (!naive && !wait_for_bus(client, run_id, args.processes)) {
    std::printf("# warning: not every cache listens on its bus after %lld ms; starting anyway\n",
                static_cast<long long>(kBusTimeout.count()));
  }

  // 3. Go: every process is blocked reading the pipe, and wakes at its EOF.
  const Clock::time_point start = Clock::now();
  close_fd(go.write);

  // 4. One report per process, until the run's deadline (or until no process is left to send
  // one: EOF).
  const milliseconds run_timeout = std::max<milliseconds>(
      kMinRunTimeout, milliseconds(std::uint64_t{kRunTimeoutLatencies} * args.db_latency_ms));
  const Clock::time_point deadline = start + run_timeout;
  std::vector<std::optional<Report>> reports(args.processes);  // by process
  std::size_t reported = 0;
  Clock::time_point last_report = start;
  for (; reported < args.processes; ++reported) {
    Report report;
    if (read_until(results.read, &report, sizeof report, deadline) != sizeof report) break;
    last_report = Clock::now();
    if (report.process < args.processes) reports[report.process] = report;
  }
  const bool missing = reported < args.processes;
  const bool past_deadline = Clock::now() >= deadline;
  const unsigned abnormal = processes.reap(missing ? Clock::now() : Clock::now() + kExitGrace);
  close_fd(ready.read);
  close_fd(results.read);
  const std::int64_t wall_ms =
      std::chrono::duration_cast<milliseconds>((missing ? Clock::now() : last_report) - start)
          .count();

  // 5. Count, clean up, print.
  redis::Result<redis::Reply> counted = client.command("GET", run_id + ":db_loads");
  if (!counted.ok()) {
    std::fprintf(stderr, "tiercache %s: could not read the load count\n", kName);
    return report_failure(kName, counted.error(), config->password);
  }
  const std::uint64_t db_loads =
      counted->is_null() ? 0 : std::strtoull(counted->string.c_str(), nullptr, 10);
  delete_keys(client, run_id + ":*");
  if (naive) delete_keys(client, "lock:" + run_id + ":*");

  std::uint64_t reads = 0;
  std::uint64_t errors = 0;
  std::int64_t slowest_us = 0;
  std::string loads_by_process;  // "-" for a process that did not report
  std::string first_error;
  for (const std::optional<Report>& r : reports) {
    loads_by_process += r ? " " + std::to_string(r->loads) : " -";
    if (!r) continue;
    reads += r->reads;
    errors += r->errors;
    slowest_us = std::max(slowest_us, r->elapsed_us);
    if (first_error.empty()) first_error = r->message;
  }
  // The reads of a process that did not report count as errors.
  const std::uint64_t expected_reads = std::uint64_t{args.processes} * args.callers * args.keys;
  errors += expected_reads - reads;

  std::printf("# %llu of %llu reads returned (%s x %s x %s), started together\n",
              static_cast<unsigned long long>(reads),
              static_cast<unsigned long long>(expected_reads),
              plural(args.processes, "process").c_str(), plural(args.callers, "caller").c_str(),
              plural(args.keys, "key").c_str());
  std::printf("# database loads: %llu (1 per key would be %u); by process:%s\n",
              static_cast<unsigned long long>(db_loads), args.keys, loads_by_process.c_str());
  std::printf("# slowest process: %.1f ms from go to its last read\n",
              static_cast<double>(slowest_us) / 1000.0);
  if (errors != 0) {
    std::printf("# errors: %llu%s%s\n", static_cast<unsigned long long>(errors),
                first_error.empty() ? "" : "; first: ", first_error.c_str());
  }
  if (missing) {
    const std::string why =
        past_deadline
            ? "still running after " + std::to_string(run_timeout.count() / 1000) + " s, killed"
            : "ended without one (crashed or killed)";
    std::printf("# %zu of %u processes did not report: %s\n", args.processes - reported,
                args.processes, why.c_str());
  } else if (abnormal != 0) {
    std::printf("# %u processes did not exit cleanly after reporting\n", abnormal);
  }
  std::printf(
      "procs=%u callers=%u keys=%u db_latency_ms=%u db_loads=%llu errors=%llu wall_ms=%lld%s\n",
      args.processes, args.callers, args.keys, args.db_latency_ms,
      static_cast<unsigned long long>(db_loads), static_cast<unsigned long long>(errors),
      static_cast<long long>(wall_ms), naive ? " mode=naive" : "");
  std::fflush(stdout);
  return errors == 0 && abnormal == 0 ? kExitOk : kExitFailure;
}

}  // namespace

Subcommand add_stampede_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand(
      kName, "Many processes x many callers asking for the same cold keys at once: DB loads");
  app->footer(
      "Forks --procs processes of --callers threads; when all are ready, every caller reads\n"
      "each of the --keys cold keys once (caller i starting at key i % K). A read that misses\n"
      "everywhere calls a database that sleeps --db-latency-ms and counts its calls in Redis.\n"
      "  tiercache: each process has a tiercache::Cache<std::string> (its own L1, Redis as L2)\n"
      "  naive:     L1 map + singleflight + SET lock:<key> 1 NX; losers sleep 100 ms, look in\n"
      "             their own L1, then load anyway (the read path copied from blog posts)\n"
      "Prints '#' lines, then one line:\n"
      "  procs=P callers=C keys=K db_latency_ms=L db_loads=N errors=E wall_ms=W\n"
      "with ' mode=naive' appended in naive mode. Keys are deleted at the end.\n"
      "Examples:\n"
      "  tiercache stampede --url redis://127.0.0.1:6379 --procs 8 --callers 64 --keys 1 "
      "--db-latency-ms 200\n"
      "  tiercache stampede --procs 8 --callers 64 --keys 1 --db-latency-ms 200 --mode naive\n"
      "Exit status: 0 ok, 1 errors or a process failed, 2 usage, 3 connection or timeout,\n"
      "4 auth, 5 TLS.");
  auto args = std::make_shared<StampedeArguments>();
  add_redis_connection_options(*app, args->connection,
                               "Deadline of each Redis request, and of connecting (default " +
                                   std::to_string(kDefaultRequestTimeout.count()) + ")");
  app->add_option("--procs", args->processes, "Processes (each its own clients and L1)")
      ->required()
      ->type_name("P")
      ->check(integer_in(1u, kMaxProcesses, "the number of processes", "P"));
  app->add_option("--callers", args->callers, "Threads per process, each reading every key")
      ->required()
      ->type_name("C")
      ->check(integer_in(1u, kMaxCallers, "the number of callers", "C"));
  app->add_option("--keys", args->keys, "Cold keys everyone asks for")
      ->required()
      ->type_name("K")
      ->check(integer_in(1u, kMaxKeys, "the number of keys", "K"));
  app->add_option("--db-latency-ms", args->db_latency_ms, "How long one database load takes")
      ->required()
      ->type_name("L")
      ->check(integer_in(0u, kMaxLatencyMs, "the database latency (milliseconds)", "L"));
  app->add_option("--mode", args->mode, "tiercache: Cache<V>; naive: the copied read path")
      ->capture_default_str()
      ->check(CLI::IsMember({"tiercache", "naive"}));
  app->add_option("--lock-ttl-ms", args->lock_ttl_ms,
                  "Stampede lock time to live (Cache<V> renews it while loading; naive: PX)")
      ->capture_default_str()
      ->type_name("T")
      ->check(integer_in(1u, kMaxLockTtlMs, "the lock time to live (milliseconds)", "T"));
  app->add_option("--seed", args->seed,
                  "Seed of the caches' randomness (process i uses S + i); default: random")
      ->type_name("S");
  return Subcommand{app, [args] { return run_stampede(*args); }};
}

}  // namespace tiercache::cli
