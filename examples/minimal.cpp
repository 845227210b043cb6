// minimal.cpp -- the smallest useful tiercache program: an in-process cache (L1) in front of
// Redis (L2) in front of a "database" (here, a lambda). Run it twice: the second run's first
// read comes from Redis, filled by the first run.
//
//   minimal [REDIS_URL [CACHE_NAME]]      (REDIS_URL default: $TIERCACHE_REDIS_URL, then
//                                          redis://127.0.0.1:6379)
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <tiercache/cache.hpp>

int main(int argc, char** argv) {
  const char* env_url = std::getenv("TIERCACHE_REDIS_URL");
  const std::string url = argc > 1 ? argv[1] : env_url ? env_url : "redis://127.0.0.1:6379";
  auto config = tiercache::redis::parse_url(url);
  if (!config) return std::fprintf(stderr, "%s\n", config.error().to_string().c_str()), 2;
  // One client (one multiplexed connection) per Redis, shared by every cache of the process.
  auto redis = std::make_shared<tiercache::redis::Client>(config.value());

  tiercache::CacheOptions options;  // safe defaults: TTL 5 min, L1 bounded, fail-safe, ...
  options.name = argc > 2 ? argv[2] : "minimal";  // the Redis key prefix and metrics label
  tiercache::Cache<std::string> greetings(options, redis);

  for (int i = 0; i < 2; ++i) {
    // The loader runs only if neither L1 nor Redis has the key (and, across every process
    // sharing the cache's name, only once). If Redis is down, it is called anyway.
    tiercache::CacheResult<std::string> greeting = greetings.get_or_load(
        "greeting:en",
        [](std::string_view key) { return "hello, world (" + std::string(key) + ")"; });
    if (!greeting.ok()) return std::fprintf(stderr, "%s\n", greeting.error()->message.c_str()), 1;
    std::printf("read %d: \"%s\" from %s\n", i + 1, greeting->c_str(),
                tiercache::to_string(greeting.source()));  // "loader", "l2" (Redis) or "l1"
  }
  return 0;
}
