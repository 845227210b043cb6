// `tiercache sim`: the command line around replay.hpp.
//
//   tiercache sim --trace FILE|zipf:ALPHA:KEYS:REQUESTS:SEED --capacity N[,N...]
//                 --policy tiercache|tiercache-lru|lru|optimal [--seed S]
//                 [--threads T --seconds S]
//
// Output: '#' lines for people, then one `key=value` line per capacity for scripts:
//   policy=P capacity=N requests=R hits=H hit_ratio=0.xxxx              (hit ratio)
//   policy=P threads=T ops_per_s=X hit_ratio=0.xxxx capacity=N          (--threads)

#include "sim/sim_command.hpp"

#include <CLI/CLI.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/replay.hpp"
#include "sim/trace.hpp"
#include "sim/zipf.hpp"

namespace tiercache::cli {
namespace {

constexpr const char* kName = "sim";
// Bounds of --threads and --seconds.
constexpr unsigned kMaxThreads = 1024;
constexpr double kMaxSeconds = 24 * 3600;

struct SimArguments {
  std::string trace;
  std::vector<std::size_t> capacities;
  std::string policy;
  std::uint64_t seed = sim::kDefaultCacheSeed;
  unsigned threads = 0;  // 0: hit-ratio mode
  double seconds = 0;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- validators (CLI11 reports "--option: <message>") ----------------------------------------

std::string check_capacity(const std::string& text) {
  const std::optional<std::size_t> value = parse_number<std::size_t>(text);
  if (!value) {
    return single_quoted(text) + " is not a capacity (a number of entries > 0; several: 100,1000)";
  }
  if (*value == 0) return "capacity must be > 0";
  return {};
}

std::string check_trace(const std::string& text) {
  if (text.empty()) return "empty trace: give a file or zipf:ALPHA:KEYS:REQUESTS:SEED";
  if (!text.starts_with("zipf:")) return {};  // a file: opened and checked when run
  return sim::parse_zipf_spec(text).error;
}

std::string check_threads(const std::string& text) {
  return check_integer(text, 1u, kMaxThreads, "the number of reader threads");
}

std::string describe(sim::Policy policy, std::uint64_t seed) {
  switch (policy) {
    case sim::Policy::kTiercache:
      return "LocalCache, adaptive W-TinyLFU, seed " + std::to_string(seed);
    case sim::Policy::kTiercacheLru:
      return "LocalCache, LRU mode, seed " + std::to_string(seed);
    case sim::Policy::kLru:
      return "MutexLru baseline: std::mutex + std::list + std::unordered_map";
    case sim::Policy::kOptimal:
      return "Belady's MIN with bypass, the clairvoyant bound";
  }
  return {};
}

bool is_local_cache(sim::Policy policy) {
  return policy == sim::Policy::kTiercache || policy == sim::Policy::kTiercacheLru;
}

// ---- running -----------------------------------------------------------------------------

void note_cache_sizing(const sim::Simulator& simulator, sim::Policy policy, std::size_t capacity) {
  const std::size_t entries = simulator.cache_entries(capacity);
  if (is_local_cache(policy) && entries != capacity) {
    std::printf(
        "# capacity %zu >= the %zu distinct keys: LocalCache built with %zu entries "
        "(never full either way, same hits)\n",
        capacity, simulator.distinct_keys(), entries);
  }
}

int run_hit_ratio(sim::Simulator& simulator, sim::Policy policy, const SimArguments& args) {
  std::printf("# policy %s (%s): %s\n", std::string(sim::policy_name(policy)).c_str(),
              describe(policy, args.seed).c_str(),
              policy == sim::Policy::kOptimal
                  ? "on a miss, evict the key used farthest in the future, or bypass"
                  : "get each key, put it on a miss");
  for (const std::size_t capacity : args.capacities) {
    note_cache_sizing(simulator, policy, capacity);
    const Clock::time_point start = Clock::now();
    const sim::HitCount count = simulator.replay(policy, capacity);
    std::printf("# capacity %zu: replayed in %.3f s\n", capacity, seconds_since(start));
    std::printf("policy=%s capacity=%zu requests=%llu hits=%llu hit_ratio=%.4f\n",
                std::string(sim::policy_name(policy)).c_str(), capacity,
                static_cast<unsigned long long>(count.requests),
                static_cast<unsigned long long>(count.hits), count.hit_ratio());
    std::fflush(stdout);
  }
  return kExitOk;
}

int run_throughput(sim::Simulator& simulator, sim::Policy policy, const SimArguments& args) {
  const auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(args.seconds));
  std::printf(
      "# policy %s (%s): preload the first capacity/2 distinct keys, then %u threads "
      "get for %g s each\n",
      std::string(sim::policy_name(policy)).c_str(), describe(policy, args.seed).c_str(),
      args.threads, args.seconds);
  std::fflush(stdout);
  for (const std::size_t capacity : args.capacities) {
    note_cache_sizing(simulator, policy, capacity);
    const sim::ThroughputResult result =
        simulator.measure_reads(policy, capacity, args.threads, duration);
    std::printf("# capacity %zu: %zu keys preloaded; %llu gets in %.3f s (checksum %016llx)\n",
                capacity, result.preloaded_keys, static_cast<unsigned long long>(result.operations),
                result.seconds, static_cast<unsigned long long>(result.checksum));
    std::printf("policy=%s threads=%u ops_per_s=%llu hit_ratio=%.4f capacity=%zu\n",
                std::string(sim::policy_name(policy)).c_str(), args.threads,
                static_cast<unsigned long long>(std::llround(result.ops_per_second())),
                result.hit_ratio(), capacity);
    std::fflush(stdout);
  }
  return kExitOk;
}

int run_sim(const SimArguments& args) {
  const std::optional<sim::Policy> policy = sim::parse_policy(args.policy);
  if (!policy) return usage_error(kName, "unknown policy '" + args.policy + "'");
  const bool throughput = args.threads > 0;
  if (throughput && *policy == sim::Policy::kOptimal) {
    return usage_error(kName,
                       "--policy optimal is an offline bound computed from the whole trace; it "
                       "has no throughput to measure: drop --threads/--seconds or pick another "
                       "policy");
  }

  const Clock::time_point start = Clock::now();
  const sim::TraceResult trace = sim::load_trace(args.trace);
  if (!trace.ok()) return usage_error(kName, trace.error);
  const double load_seconds = seconds_since(start);

  sim::Simulator simulator(trace.keys, args.seed);
  std::printf("# tiercache sim: trace %s: %zu requests, %zu distinct keys (loaded in %.3f s)\n",
              args.trace.c_str(), simulator.requests(), simulator.distinct_keys(), load_seconds);
  return throughput ? run_throughput(simulator, *policy, args)
                    : run_hit_ratio(simulator, *policy, args);
}

}  // namespace

Subcommand add_sim_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand(
      kName, "Replay a trace through LocalCache / LRU / optimal: hit ratio, or read throughput");
  app->footer(
      "Prints '#' lines for people, then per capacity one machine-readable line:\n"
      "  policy=P capacity=N requests=R hits=H hit_ratio=0.xxxx\n"
      "  policy=P threads=T ops_per_s=X hit_ratio=0.xxxx capacity=N   (with --threads)\n"
      "Examples:\n"
      "  tiercache sim --trace arc_OLTP.keys --capacity 1000,10000 --policy tiercache\n"
      "  tiercache sim --trace zipf:0.9:100000:1000000:1 --capacity 1000 --policy optimal\n"
      "  tiercache sim --trace zipf:0.9:100000:1000000:1 --capacity 10000 --policy lru "
      "--threads 2 --seconds 3\n"
      "Exit status: 0 ok, 2 bad options or bad trace.");
  auto args = std::make_shared<SimArguments>();

  app->add_option("--trace", args->trace,
                  "A file of keys (one decimal uint64 per line, blank lines ignored) or "
                  "zipf:ALPHA:KEYS:REQUESTS:SEED (ALPHA in (0, 2])")
      ->required()
      ->type_name("FILE|zipf:A:K:R:S")
      ->check(validator([](std::string& text) { return check_trace(text); }, "TRACE"));
  app->add_option("--capacity", args->capacities,
                  "Cache capacity in entries; several, comma-separated, are run in sequence")
      ->required()
      ->delimiter(',')
      ->type_name("N[,N...]")
      ->check(validator([](std::string& text) { return check_capacity(text); }, "CAPACITY"));
  app->add_option("--policy", args->policy,
                  "tiercache (LocalCache, adaptive W-TinyLFU), tiercache-lru (LocalCache, LRU "
                  "mode), lru (std::mutex + std::list + std::unordered_map baseline), optimal "
                  "(Belady's MIN with bypass; not with --threads)")
      ->required()
      ->check(CLI::IsMember(
          std::vector<std::string>(sim::kPolicyNames.begin(), sim::kPolicyNames.end())));
  app->add_option("--seed", args->seed, "Seed of LocalCache's hashing and admission randomness")
      ->capture_default_str();
  CLI::Option* threads =
      app->add_option("--threads", args->threads,
                      "Measure read throughput instead: T threads get from a cache preloaded "
                      "with the first capacity/2 distinct keys of the trace")
          ->type_name("T")
          ->check(validator([](std::string& text) { return check_threads(text); }, "THREADS"));
  CLI::Option* seconds =
      app->add_option("--seconds", args->seconds, "Duration of each throughput run")
          ->type_name("S")
          ->check(validator([](std::string& text) { return check_seconds(text, kMaxSeconds); },
                            "SECONDS"));
  threads->needs(seconds);
  seconds->needs(threads);

  return Subcommand{app, [args] { return run_sim(*args); }};
}

}  // namespace tiercache::cli
