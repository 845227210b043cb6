// The command lines of `tiercache chaos` and `tiercache chaos-worker` (chaos_command.hpp).

#include "chaos/chaos_command.hpp"

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "chaos/coordinator.hpp"
#include "chaos/worker.hpp"

namespace tiercache::cli {
namespace {

constexpr double kMaxSeconds = 7 * 24 * 3600;  // a week of soak
constexpr unsigned kMaxProcesses = 64;
constexpr std::int64_t kMinKeys = 16;
constexpr std::int64_t kMaxKeys = 10'000'000;

}  // namespace

Subcommand add_chaos_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand(
      "chaos", "Mixed load under random faults, checked by an oracle: wrong_values=0");
  app->footer(
      "Starts a private redis-server (unless --url), a fault proxy in front of it, a SQLite\n"
      "database of K versioned rows and P worker processes, each with its own Cache<Row>\n"
      "(same name: shared L2, locks and bus) reached through the proxy. The workers read\n"
      "(get_or_load, get, get_or_load_many, async), write (write_through, invalidate-on-write,\n"
      "invalidate_tag) and clear, logging every call; the coordinator injects one fault at a\n"
      "time (Redis SIGSTOP / kill -9, proxy cut / latency / bandwidth / half-open / freeze /\n"
      "refuse / reset, CLIENT KILL of the buses, hung or failing loaders, a worker killed in\n"
      "a load) and an oracle checks every read: no other key's value, read-your-writes, no\n"
      "value older than a write that returned more than the staleness bound ago, no hang, no\n"
      "lost write (docs/chaos.md). A line per second and per fault, every wrong value in\n"
      "detail, and last:\n"
      "  ops=N wrong_values=W hangs=H lost_writes=L max_staleness_ms=S errors=E faults=F\n"
      "Examples:\n"
      "  tiercache chaos --seconds 60\n"
      "  tiercache chaos --seconds 600 --seed 7 --processes 6\n"
      "  tiercache chaos --url redis://127.0.0.1:6379   (no redis-sigstop / redis-kill)\n"
      "  tiercache chaos --faults proxy-freeze,bus-kill --seed 3   (reproduce around a fault)\n"
      "Exit status: 0 clean, 1 a wrong value, hang, lost write or crashed worker (the run's\n"
      "directory is kept and named), 2 usage, 130 interrupted.");
  auto args = std::make_shared<chaos::ChaosArguments>();
  app->add_option("--seconds", args->seconds, "Length of the run")
      ->capture_default_str()
      ->type_name("S")
      ->check(validator([](std::string& t) { return check_seconds(t, kMaxSeconds); }, "S"));
  app->add_option("--url", args->url,
                  "A running Redis to use (default: start a private redis-server)")
      ->type_name("URL");
  app->add_option("--processes", args->processes, "Worker processes")
      ->capture_default_str()
      ->type_name("P")
      ->check(integer_in(1u, kMaxProcesses, "the number of processes", "P"));
  app->add_option("--seed", args->seed, "Seed of the fault schedule and the workload")
      ->capture_default_str()
      ->type_name("N");
  app->add_option("--keys", args->keys, "Rows in the database")
      ->capture_default_str()
      ->type_name("K")
      ->check(integer_in(kMinKeys, kMaxKeys, "the number of rows", "K"));
  app->add_option("--faults", args->faults,
                  "Only these fault kinds, comma-separated (default: all; see docs/chaos.md)")
      ->type_name("KIND,...");
  app->add_flag("--batch-all-rows", args->batch_all_rows,
                "get_or_load_many also reads rows that invalidate_tag invalidates (its batch "
                "loader cannot tag them: shows that gap)");
  return Subcommand{app, [args] { return chaos::run_chaos(*args); }};
}

Subcommand add_chaos_worker_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand("chaos-worker", "A worker process of `tiercache chaos`");
  app->group("");  // hidden: started by `tiercache chaos` only
  auto config = std::make_shared<chaos::WorkerConfig>();
  app->add_option("--index", config->process.index)->required();
  app->add_option("--incarnation", config->process.incarnation)->required();
  app->add_option("--processes", config->processes)->required();
  app->add_option("--keys", config->keys)->required();
  app->add_option("--url", config->redis_url)->required();
  app->add_option("--db", config->db_path)->required();
  app->add_option("--name", config->cache_name)->required();
  app->add_option("--log", config->log_path)->required();
  app->add_option("--seed", config->seed)->required();
  app->add_option("--command-fd", config->command_fd)->required();
  app->add_option("--report-fd", config->report_fd)->required();
  app->add_flag("--batch-all-rows", config->batch_all_rows);
  return Subcommand{app, [config] { return chaos::run_worker(*config); }};
}

}  // namespace tiercache::cli
