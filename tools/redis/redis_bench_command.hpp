// `tiercache redis-bench`: GET throughput and latency of tiercache's Redis client, blocking
// (many threads on one shared Client: auto-pipelining) or asynchronous (callbacks keeping
// requests in flight), to set against redis-benchmark and hiredis (bench/redis/run.sh).
// See the help text in redis_bench_command.cpp.

#pragma once

#include "command.hpp"

namespace tiercache::cli {

Subcommand add_redis_bench_command(CLI::App& program);

}  // namespace tiercache::cli
