// hiredis_bench: the baseline of `tiercache redis-bench --mode sync --clients 1`, with hiredis
// (Debian's libhiredis-dev, 0.14): one blocking connection, one GET at a time, for S seconds.
//
//   tiercache_hiredis_bench [--host H] [--port P] [--seconds S] [--keys N] [--value-size B]
//                           [--key-prefix PREFIX]
//
// Same workload as redis-bench: N keys <prefix>0 .. <prefix>N-1 SET to B-byte values first
// (pipelined), then GETs round-robin; each GET's latency (steady_clock around redisCommand)
// goes into the same LatencyHistogram (tools/redis/latency_histogram.hpp). A reply that is not
// the B-byte value is an error. Output: '#' lines, then the last line
//   client=hiredis mode=sync clients=1 ops_per_s=X p50_us=A p99_us=B errors=E
// Exit status: 0 ok, 1 errors or a lost connection, 2 usage.

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "redis/latency_histogram.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// SETs per pipeline while loading the keys.
constexpr std::size_t kPreloadBatch = 256;

struct Arguments {
  std::string host = "127.0.0.1";
  int port = 6379;
  double seconds = 5;
  std::size_t keys = 1000;
  std::size_t value_size = 100;
  std::string key_prefix = "tiercache-bench:";
};

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

int usage(const char* message) {
  std::fprintf(stderr,
               "hiredis_bench: %s\nusage: hiredis_bench [--host H] [--port P] [--seconds S] "
               "[--keys N] [--value-size B] [--key-prefix PREFIX]\n",
               message);
  return 2;
}

template <class T>
bool parse_number(std::string_view text, T& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return !text.empty() && ec == std::errc() && ptr == end;
}

// Parses argv into args; returns an error message, or nullptr.
const char* parse_arguments(int argc, char** argv, Arguments& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view name = argv[i];
    if (i + 1 == argc) return "every option takes a value";
    const std::string_view value = argv[++i];
    if (name == "--host") {
      args.host = std::string(value);
    } else if (name == "--port") {
      if (!parse_number(value, args.port) || args.port < 1 || args.port > 65535) {
        return "--port: a TCP port";
      }
    } else if (name == "--seconds") {
      if (!parse_number(value, args.seconds) || !(args.seconds > 0)) {
        return "--seconds: a duration > 0";
      }
    } else if (name == "--keys") {
      if (!parse_number(value, args.keys) || args.keys == 0) return "--keys: a count > 0";
    } else if (name == "--value-size") {
      if (!parse_number(value, args.value_size)) return "--value-size: a number of bytes";
    } else if (name == "--key-prefix") {
      args.key_prefix = std::string(value);
    } else {
      return "unknown option";
    }
  }
  return nullptr;
}

// SETs every key; false (with a message on stderr) if that failed.
bool preload(redisContext* context, const std::vector<std::string>& keys, std::size_t value_size) {
  const std::string value(value_size, 'v');
  for (std::size_t first = 0; first < keys.size(); first += kPreloadBatch) {
    const std::size_t last = std::min(keys.size(), first + kPreloadBatch);
    for (std::size_t i = first; i < last; ++i) {
      redisAppendCommand(context, "SET %b %b", keys[i].data(), keys[i].size(), value.data(),
                         value.size());
    }
    for (std::size_t i = first; i < last; ++i) {
      void* raw = nullptr;
      if (redisGetReply(context, &raw) != REDIS_OK) {
        std::fprintf(stderr, "hiredis_bench: SET failed: %s\n", context->errstr);
        return false;
      }
      const ReplyPtr reply(static_cast<redisReply*>(raw));
      if (reply->type == REDIS_REPLY_ERROR) {
        std::fprintf(stderr, "hiredis_bench: SET failed: %s\n", reply->str);
        return false;
      }
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Arguments args;
  if (const char* error = parse_arguments(argc, argv, args)) return usage(error);

  const std::unique_ptr<redisContext, ContextDeleter> context(
      redisConnect(args.host.c_str(), args.port));
  if (!context || context->err) {
    std::fprintf(stderr, "hiredis_bench: cannot connect to %s:%d: %s\n", args.host.c_str(),
                 args.port, context ? context->errstr : "out of memory");
    return 1;
  }
  std::vector<std::string> keys;
  keys.reserve(args.keys);
  for (std::size_t i = 0; i < args.keys; ++i) keys.push_back(args.key_prefix + std::to_string(i));

  std::printf("# hiredis_bench: hiredis %d.%d.%d, %s:%d, GET of %zu keys of %zu B, %g s\n",
              HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, args.host.c_str(), args.port, args.keys,
              args.value_size, args.seconds);
  if (!preload(context.get(), keys, args.value_size)) return 1;

  tiercache::cli::LatencyHistogram latency;
  std::uint64_t operations = 0;
  std::uint64_t errors = 0;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(args.seconds));
  Clock::time_point now = start;
  for (std::size_t key = 0; now < end;) {
    const std::string& name = keys[key];
    const ReplyPtr reply(
        static_cast<redisReply*>(redisCommand(context.get(), "GET %b", name.data(), name.size())));
    const Clock::time_point done = Clock::now();
    if (!reply) {
      std::fprintf(stderr, "hiredis_bench: GET failed: %s\n", context->errstr);
      return 1;  // the context is unusable after an I/O error
    }
    if (reply->type == REDIS_REPLY_STRING && reply->len == args.value_size) {
      ++operations;
      latency.record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(done - now).count()));
    } else {
      ++errors;
    }
    now = done;
    if (++key == keys.size()) key = 0;
  }

  const double elapsed = std::chrono::duration<double>(now - start).count();
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::printf(
      "# %llu GETs in %.3f s; latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
      static_cast<unsigned long long>(operations), elapsed, us(latency.value_at_percentile(50)),
      us(latency.value_at_percentile(99)), us(latency.value_at_percentile(99.9)),
      us(latency.max()));
  std::printf(
      "client=hiredis mode=sync clients=1 ops_per_s=%lld p50_us=%.1f p99_us=%.1f errors=%llu\n",
      std::llround(static_cast<double>(operations) / elapsed), us(latency.value_at_percentile(50)),
      us(latency.value_at_percentile(99)), static_cast<unsigned long long>(errors));
  return errors == 0 ? 0 : 1;
}
