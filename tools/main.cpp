// The `tiercache` command-line program: a dispatcher over subcommands (see command.hpp).
//
//   tiercache sim ...           replay a trace through LocalCache / LRU / Belady's optimal
//   tiercache redis ...         run one Redis command, print the reply like redis-cli
//   tiercache redis-bench ...   GET throughput and latency of the Redis client
//   tiercache stampede ...      processes x callers asking for cold keys at once: DB loads
//   tiercache demo ...          the user service end to end (SQLite, Redis, pods), in phases
//   tiercache chaos ...         mixed load under random faults, checked by an oracle
//
// Exit codes: 0 ok, 1 unexpected failure, 2 bad command line or bad input; `redis`,
// `redis-bench` and `stampede` add 3 (connection or timeout), 4 (auth) and 5 (TLS); `demo`
// and `chaos` add 130 (interrupted).

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "chaos/chaos_command.hpp"
#include "command.hpp"
#include "demo/demo_command.hpp"
#include "redis/redis_bench_command.hpp"
#include "redis/redis_command.hpp"
#include "sim/sim_command.hpp"
#include "stampede/stampede_command.hpp"

int main(int argc, char** argv) {
  namespace cli = tiercache::cli;
  CLI::App program{"tiercache: an in-process L1 cache in front of Redis -- tools", "tiercache"};
  program.require_subcommand(1);
  program.failure_message([](const CLI::App* app, const CLI::Error& e) {
    std::string command = app->get_name();
    for (const CLI::App* subcommand : app->get_subcommands()) {
      command += " " + subcommand->get_name();
    }
    return command + ": error: " + e.what() + "\nRun '" + command +
           " --help' for more information.\n";
  });

  std::vector<cli::Subcommand> subcommands;
  subcommands.push_back(cli::add_sim_command(program));
  subcommands.push_back(cli::add_redis_command(program));
  subcommands.push_back(cli::add_redis_bench_command(program));
  subcommands.push_back(cli::add_stampede_command(program));
  subcommands.push_back(cli::add_demo_command(program));
  subcommands.push_back(cli::add_chaos_command(program));
  subcommands.push_back(cli::add_chaos_worker_command(program));  // hidden
  // After the subcommands: they would inherit it.
  program.footer("Run 'tiercache <subcommand> --help' for the options of a subcommand.");

  try {
    program.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = program.exit(e);  // prints help, or the error and a hint
    return code == 0 ? cli::kExitOk : cli::kExitUsage;
  }

  try {
    for (const cli::Subcommand& subcommand : subcommands) {
      if (subcommand.app->parsed()) return subcommand.run();
    }
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tiercache: error: out of memory\n");
    return cli::kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tiercache: error: %s\n", e.what());
    return cli::kExitFailure;
  }
  return cli::kExitUsage;  // unreachable: require_subcommand(1)
}
