// `tiercache redis-bench`: the GET loop of tiercache's Redis client, timed.
//
//   tiercache redis-bench [--url URL ...connection options of `tiercache redis`...]
//                         --mode sync|async --clients C [--inflight K] --seconds S
//                         [--value-size B] [--keys N] [--key-prefix P] [--allow-errors]
//
// First N keys (<prefix>0 .. <prefix>N-1) are SET to B-byte values, in pipelines. Then, for S
// seconds, GETs of those keys, each key chosen round-robin (every client starts at its own
// offset):
//   sync   C threads, each calling client.command("GET", key) in a loop on ONE shared Client:
//          one request per thread in flight; the client pipelines them together.
//   async  one Client, C slots with K requests in flight each: every completion callback
//          records its request and issues the next, until the time is up; a latch waits for
//          the last one.
// A request's latency runs from just before submission to its completion (steady_clock) and
// goes into a LatencyHistogram (latency_histogram.hpp): no allocation per sample. A reply that
// is not the B-byte value counts as an error ("bad-reply"), like every failed request (by
// Errc); errors are printed, and make the exit status 1 unless --allow-errors.
//
// Output: '#' lines for people, then exactly one machine-readable line, the last:
//   mode=M clients=C inflight=K ops_per_s=X p50_us=A p99_us=B errors=E
// (inflight is 1 in sync mode). ops_per_s counts successful GETs over the time from the start
// to the last completion.

#include "redis/redis_bench_command.hpp"

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "redis/latency_histogram.hpp"
#include "redis/redis_command.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli {
namespace {

constexpr const char* kName = "redis-bench";
using Clock = std::chrono::steady_clock;

// User + system CPU time this process has used so far.
std::chrono::microseconds process_cpu_time() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto micros = [](const timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
  };
  return micros(usage.ru_utime) + micros(usage.ru_stime);
}

// Bounds of the options.
constexpr unsigned kMaxClients = 1024;
constexpr unsigned kMaxInflight = 4096;
constexpr std::size_t kMaxKeys = 10'000'000;
constexpr std::size_t kMaxValueSize = std::size_t{16} << 20;
constexpr double kMaxSeconds = 24 * 3600;
// The default deadline of each request (and of connecting).
constexpr std::chrono::milliseconds kDefaultRequestTimeout{2000};
// SETs per pipeline while loading the keys.
constexpr std::size_t kPreloadBatch = 256;
// Longest --spin-us accepted (ClientConfig::spin_wait).
constexpr unsigned kMaxSpinMicroseconds = 1'000'000;

struct BenchArguments {
  RedisConnectionArguments connection;
  std::string mode = "sync";
  unsigned clients = 1;
  unsigned inflight = 1;
  double seconds = 5;
  std::size_t value_size = 100;
  std::size_t keys = 1000;
  std::string key_prefix = "tiercache-bench:";
  unsigned spin_us = static_cast<unsigned>(redis::ClientConfig{}.spin_wait.count());
  bool allow_errors = false;
};

// Failed requests by cause: Errc values 1..9, and 0 for a reply that is not the value SET.
class ErrorCounts {
 public:
  static constexpr std::size_t kBadReply = 0;
  static constexpr std::size_t kSlots = 16;

  void add(const redis::Error& error) {
    const int value = error.code.category() == redis::redis_category() ? error.code.value() : 0;
    ++counts_[value > 0 && static_cast<std::size_t>(value) < kSlots
                  ? static_cast<std::size_t>(value)
                  : kSlots - 1];
  }
  void add_bad_reply() { ++counts_[kBadReply]; }
  void merge(const ErrorCounts& other) {
    for (std::size_t i = 0; i < kSlots; ++i) counts_[i] += other.counts_[i];
  }
  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (const std::uint64_t n : counts_) sum += n;
    return sum;
  }
  // "timeout=3 connection=1"-like text.
  std::string describe() const {
    std::string text;
    for (std::size_t i = 0; i < kSlots; ++i) {
      if (counts_[i] == 0) continue;
      if (!text.empty()) text += ' ';
      if (i == kBadReply) {
        text += "bad-reply";
      } else if (i == kSlots - 1) {
        text += "other";
      } else {
        text += error_kind(redis::make_error_code(static_cast<redis::Errc>(i)));
      }
      text += '=' + std::to_string(counts_[i]);
    }
    return text;
  }

 private:
  std::array<std::uint64_t, kSlots> counts_{};
};

// What one thread (sync) or the completion callbacks (async) measured. Cache-line aligned:
// the threads of the sync mode each write their own.
struct alignas(64) Measurement {
  LatencyHistogram latency;  // successful GETs only
  ErrorCounts errors;
  std::uint64_t operations = 0;       // successful GETs
  Clock::time_point last_completion;  // of any request

  void merge(const Measurement& other) {
    latency.merge(other.latency);
    errors.merge(other.errors);
    operations += other.operations;
    last_completion = std::max(last_completion, other.last_completion);
  }
};

// Records the outcome of one GET that took [submitted, completed].
void record(Measurement& m, const redis::Result<redis::Reply>& reply, std::size_t value_size,
            Clock::time_point submitted, Clock::time_point completed) {
  m.last_completion = completed;
  if (!reply.ok()) {
    m.errors.add(reply.error());
    return;
  }
  if (reply->type != redis::ReplyType::kBulkString || reply->string.size() != value_size) {
    m.errors.add_bad_reply();
    return;
  }
  ++m.operations;
  m.latency.record(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(completed - submitted).count()));
}

// SETs every key to a value of value_size bytes, kPreloadBatch per pipeline.
redis::Result<void> preload(redis::Client& client, const std::vector<std::string>& keys,
                            std::size_t value_size) {
  const std::string value(value_size, 'v');
  redis::Request request;
  for (std::size_t first = 0; first < keys.size(); first += kPreloadBatch) {
    request.clear();
    const std::size_t last = std::min(keys.size(), first + kPreloadBatch);
    for (std::size_t i = first; i < last; ++i) request.push("SET", keys[i], value);
    redis::Result<std::vector<redis::Reply>> replies = client.exec(request);
    if (!replies.ok()) return std::move(replies).error();
    for (const redis::Reply& reply : *replies) {
      if (reply.is_error()) return redis::make_error(redis::Errc::kServerError, reply.string);
    }
  }
  return {};
}

// ---- sync: C threads on one Client ----------------------------------------------------------

Measurement run_sync(redis::Client& client, const std::vector<std::string>& keys,
                     const BenchArguments& args, Clock::time_point start, Clock::time_point end) {
  std::vector<Measurement> measured(args.clients);
  std::vector<std::thread> threads;
  threads.reserve(args.clients);
  for (unsigned t = 0; t < args.clients; ++t) {
    threads.emplace_back([&, t] {
      Measurement& m = measured[t];
      std::size_t key = keys.size() * t / args.clients;
      std::this_thread::sleep_until(start);
      for (Clock::time_point now = Clock::now(); now < end;) {
        const redis::Result<redis::Reply> reply = client.command("GET", keys[key]);
        const Clock::time_point done = Clock::now();
        record(m, reply, args.value_size, now, done);
        now = done;
        if (++key == keys.size()) key = 0;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  Measurement total;
  for (const Measurement& m : measured) total.merge(m);
  return total;
}

// ---- async: C x K chains of callbacks on one Client ------------------------------------------

// Every chain is one request in flight: its completion records it and issues the next. The
// callbacks run on the client's executor, one at a time (its single I/O thread), so they share
// `measured` without a lock; the thread that issues the first requests touches only its
// chains' own fields before their first submission.
class AsyncBench {
 public:
  AsyncBench(redis::Client& client, const std::vector<std::string>& keys,
             const BenchArguments& args, Clock::time_point end)
      : client_(client),
        keys_(keys),
        value_size_(args.value_size),
        end_(end),
        chains_(static_cast<std::size_t>(args.clients) * args.inflight),
        finished_(static_cast<std::ptrdiff_t>(chains_.size())) {
    for (std::size_t i = 0; i < chains_.size(); ++i) {
      chains_[i].bench = this;
      chains_[i].next_key = keys.size() * i / chains_.size();
    }
  }

  Measurement run(Clock::time_point start) {
    std::this_thread::sleep_until(start);
    for (Chain& chain : chains_) issue(chain);
    finished_.wait();  // every request completes by its deadline
    return measured_;
  }

 private:
  struct Chain {
    AsyncBench* bench = nullptr;
    redis::Request request;
    std::size_t next_key = 0;
    Clock::time_point submitted;
  };

  void issue(Chain& chain) {
    chain.request.clear();
    chain.request.push("GET", keys_[chain.next_key]);
    if (++chain.next_key == keys_.size()) chain.next_key = 0;
    chain.submitted = Clock::now();
    client_.async_exec_one(chain.request, [&chain](const redis::Result<redis::Reply>& reply) {
      chain.bench->on_reply(chain, reply);
    });
  }

  void on_reply(Chain& chain, const redis::Result<redis::Reply>& reply) {
    const Clock::time_point now = Clock::now();
    record(measured_, reply, value_size_, chain.submitted, now);
    if (now >= end_ || (!reply.ok() && reply.error().code == redis::Errc::kClosed)) {
      finished_.count_down();
      return;
    }
    if (reply.ok()) {
      issue(chain);
    } else {
      // A refused request may complete inside async_exec_one: post, so that a run of errors
      // does not recurse.
      asio::post(client_.executor(), [&chain] { chain.bench->issue(chain); });
    }
  }

  redis::Client& client_;
  const std::vector<std::string>& keys_;
  const std::size_t value_size_;
  const Clock::time_point end_;
  std::vector<Chain> chains_;
  std::latch finished_;
  Measurement measured_;
};

// ---- the command ---------------------------------------------------------------------------

double microseconds(std::uint64_t nanoseconds) { return static_cast<double>(nanoseconds) / 1000.0; }

int run_bench(const BenchArguments& args) {
  const bool async = args.mode == "async";
  if (!async && args.inflight != 1) {
    return usage_error(kName,
                       "--inflight is for --mode async (sync clients have one request "
                       "in flight each)");
  }
  redis::Result<redis::ClientConfig> config =
      make_client_config(args.connection, kDefaultRequestTimeout);
  if (!config.ok()) return usage_error(kName, config.error().message);
  const std::size_t in_flight = static_cast<std::size_t>(args.clients) * args.inflight;
  config->max_pending_requests = std::max(config->max_pending_requests, 2 * in_flight);
  config->spin_wait = std::chrono::microseconds(args.spin_us);
  const std::string password = config->password;
  const std::string where = redis::redact_url(args.connection.url);

  std::vector<std::string> keys;
  keys.reserve(args.keys);
  for (std::size_t i = 0; i < args.keys; ++i) keys.push_back(args.key_prefix + std::to_string(i));

  std::printf(
      "# tiercache redis-bench: %s, mode %s, %u client%s x %u in flight, GET of %zu keys of "
      "%zu B, %g s\n",
      where.c_str(), args.mode.c_str(), args.clients, args.clients == 1 ? "" : "s", args.inflight,
      args.keys, args.value_size, args.seconds);
  std::fflush(stdout);

  // Declared before the client, so destroyed after it: the client's destructor waits for its
  // I/O thread, the last user of the bench's chains and latch.
  std::unique_ptr<AsyncBench> bench;
  redis::Client client(std::move(config).value());
  const Clock::time_point load_start = Clock::now();
  if (redis::Result<void> loaded = preload(client, keys, args.value_size); !loaded.ok()) {
    std::fprintf(stderr, "tiercache %s: could not SET the keys\n", kName);
    return report_failure(kName, loaded.error(), password);
  }
  std::printf("# SET %zu keys in %.3f s\n", keys.size(),
              std::chrono::duration<double>(Clock::now() - load_start).count());
  const redis::ClientStats before = client.stats();
  const std::chrono::microseconds cpu_before = process_cpu_time();

  // A short pause lets every thread reach the start line.
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(20);
  const Clock::time_point end = start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(args.seconds));
  Measurement result;
  if (async) {
    bench = std::make_unique<AsyncBench>(client, keys, args, end);
    result = bench->run(start);
  } else {
    result = run_sync(client, keys, args, start, end);
  }
  const redis::ClientStats after = client.stats();
  const std::chrono::microseconds cpu_used = process_cpu_time() - cpu_before;

  const double elapsed =
      std::chrono::duration<double>(std::max(result.last_completion, end) - start).count();
  const double ops_per_second = static_cast<double>(result.operations) / elapsed;
  const std::uint64_t commands = after.commands - before.commands;
  const std::uint64_t writes = after.writes - before.writes;
  std::printf(
      "# %llu GETs in %.3f s; latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
      static_cast<unsigned long long>(result.operations), elapsed,
      microseconds(result.latency.value_at_percentile(50)),
      microseconds(result.latency.value_at_percentile(99)),
      microseconds(result.latency.value_at_percentile(99.9)), microseconds(result.latency.max()));
  std::printf("# client: %llu commands in %llu socket writes (%.2f commands per write)\n",
              static_cast<unsigned long long>(commands), static_cast<unsigned long long>(writes),
              writes == 0 ? 0.0 : static_cast<double>(commands) / static_cast<double>(writes));
  std::printf("# cpu: %.2f s of this process (user + system) over the run, %.2f us per GET\n",
              static_cast<double>(cpu_used.count()) / 1e6,
              result.operations == 0
                  ? 0.0
                  : static_cast<double>(cpu_used.count()) / static_cast<double>(result.operations));
  const std::uint64_t spins = after.spin_waits - before.spin_waits;
  std::printf(
      "# fast path: %llu of %llu waits spun (up to %u us), %llu of them got the reply "
      "without sleeping\n",
      static_cast<unsigned long long>(spins), static_cast<unsigned long long>(commands),
      args.spin_us, static_cast<unsigned long long>(after.spin_hits - before.spin_hits));
  const std::uint64_t errors = result.errors.total();
  if (errors != 0) {
    std::printf("# errors: %s%s\n", result.errors.describe().c_str(),
                args.allow_errors ? " (allowed by --allow-errors)" : "");
  }
  std::printf("mode=%s clients=%u inflight=%u ops_per_s=%lld p50_us=%.1f p99_us=%.1f errors=%llu\n",
              args.mode.c_str(), args.clients, args.inflight,
              static_cast<long long>(std::llround(ops_per_second)),
              microseconds(result.latency.value_at_percentile(50)),
              microseconds(result.latency.value_at_percentile(99)),
              static_cast<unsigned long long>(errors));
  std::fflush(stdout);
  if (errors != 0 && !args.allow_errors) {
    std::fprintf(stderr, "tiercache %s: error: %llu requests failed (%s)\n", kName,
                 static_cast<unsigned long long>(errors), result.errors.describe().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

Subcommand add_redis_bench_command(CLI::App& program) {
  CLI::App* app = program.add_subcommand(
      kName, "GET throughput and latency of tiercache's Redis client (sync threads or async)");
  app->footer(
      "SETs --keys keys of --value-size bytes, then GETs them round-robin for --seconds.\n"
      "  sync:  --clients threads call client.command(\"GET\", key) on one shared Client\n"
      "  async: one Client, --clients x --inflight requests kept in flight by callbacks\n"
      "Prints '#' lines, then one line:\n"
      "  mode=M clients=C inflight=K ops_per_s=X p50_us=A p99_us=B errors=E\n"
      "Examples:\n"
      "  tiercache redis-bench --url redis://127.0.0.1:6379 --mode sync --clients 32 "
      "--seconds 5\n"
      "  tiercache redis-bench --mode async --clients 1 --inflight 64 --seconds 5\n"
      "Exit status: 0 ok, 1 some requests failed (unless --allow-errors), 2 usage,\n"
      "3 connection or timeout, 4 auth, 5 TLS (while loading the keys).");
  auto args = std::make_shared<BenchArguments>();
  add_redis_connection_options(*app, args->connection,
                               "Deadline of each request, and of connecting (default " +
                                   std::to_string(kDefaultRequestTimeout.count()) + ")");
  app->add_option("--mode", args->mode,
                  "sync: threads calling the blocking API; async: callbacks re-issuing")
      ->capture_default_str()
      ->check(CLI::IsMember({"sync", "async"}));
  app->add_option("--clients", args->clients, "sync: threads; async: slots of --inflight each")
      ->capture_default_str()
      ->type_name("C")
      ->check(integer_in(1u, kMaxClients, "the number of clients", "C"));
  app->add_option("--inflight", args->inflight, "async: requests in flight per slot")
      ->capture_default_str()
      ->type_name("K")
      ->check(integer_in(1u, kMaxInflight, "the requests in flight per client", "K"));
  app->add_option("--seconds", args->seconds, "How long to GET")
      ->capture_default_str()
      ->type_name("S")
      ->check(validator([](std::string& text) { return check_seconds(text, kMaxSeconds); }, "S"));
  app->add_option("--value-size", args->value_size, "Bytes per value")
      ->capture_default_str()
      ->type_name("B")
      ->check(integer_in(std::size_t{0}, kMaxValueSize, "the value size (bytes)", "B"));
  app->add_option("--keys", args->keys, "Keys to SET and GET")
      ->capture_default_str()
      ->type_name("N")
      ->check(integer_in(std::size_t{1}, kMaxKeys, "the number of keys", "N"));
  app->add_option("--key-prefix", args->key_prefix, "Keys are <prefix>0 .. <prefix>N-1")
      ->capture_default_str();
  app->add_option("--spin-us", args->spin_us,
                  "Blocking calls poll for their reply this long before sleeping, when that "
                  "is faster (ClientConfig::spin_wait); 0 never spins")
      ->capture_default_str()
      ->type_name("US")
      ->check(integer_in(0u, kMaxSpinMicroseconds, "the spin budget (microseconds)", "US"));
  app->add_flag("--allow-errors", args->allow_errors, "Exit 0 even if some requests failed");
  return Subcommand{app, [args] { return run_bench(*args); }};
}

}  // namespace tiercache::cli
