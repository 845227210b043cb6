// A program built against an installed tiercache (see CMakeLists.txt next to it): the headers
// a service includes, and a check that each part links and works.
//
//   consumer [REDIS_URL]    with a URL, Cache<V> uses that Redis as its L2; without, the same
//                           code runs L1-only. Exits 1 if anything is not as expected.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <tiercache/cache.hpp>
#include <tiercache/local_cache.hpp>

namespace {

struct Profile {  // stored as JSON (the default codec): nlohmann's to_json/from_json
  long long id = 0;
  std::string name;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Profile, id, name)

struct Point {  // stored as MessagePack: msgpack-cxx's MSGPACK_DEFINE
  int x = 0;
  int y = 0;
  MSGPACK_DEFINE(x, y);
};

int failures = 0;
void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

}  // namespace

int main(int argc, char** argv) {
  // The in-process cache on its own.
  tiercache::LocalCache<int, int> local(tiercache::LocalCacheOptions{.max_entries = 16});
  local.put(1, 2);
  const tiercache::Cached<int> two = local.get(1);
  check(two && *two == 2, "LocalCache: put, get");

  // The two-tier cache: on Redis if a URL is given, else L1-only.
  std::shared_ptr<tiercache::redis::Client> redis;
  if (argc > 1) {
    auto config = tiercache::redis::parse_url(argv[1]);
    if (!config) return std::fprintf(stderr, "%s\n", config.error().to_string().c_str()), 2;
    redis = std::make_shared<tiercache::redis::Client>(config.value());
  }
  tiercache::CacheOptions options;
  options.name = "consumer-" + std::to_string(::getpid()) + "-" +
                 std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  tiercache::Cache<Profile> profiles(options, redis);
  auto ada = profiles.get_or_load("profile:1", [](std::string_view) { return Profile{1, "Ada"}; });
  check(ada && ada->name == "Ada" && ada.source() == tiercache::Source::kLoader,
        "Cache<Profile> (JSON): loaded");
  check(profiles.get("profile:1").source() == tiercache::Source::kL1, "Cache<Profile>: L1 hit");
  if (redis) {
    // Another Cache of the same name stands for another process: it reads Redis.
    tiercache::Cache<Profile> other(options, redis);
    check(other.get("profile:1").source() == tiercache::Source::kL2, "Cache<Profile>: L2 hit");
  }

  options.name += "-points";
  tiercache::Cache<Point, tiercache::MsgpackCodec> points(options, redis);
  points.set("point:1", Point{3, 4});
  const auto p = points.get("point:1");
  check(p && p->x == 3 && p->y == 4, "Cache<Point, MsgpackCodec>: set, get");
  check(profiles.render_prometheus().find("tiercache_lookups_total") != std::string::npos,
        "render_prometheus()");

  std::printf("%s (%s)\n", failures == 0 ? "consumer: all checks passed" : "consumer: FAILED",
              redis ? "L1 + Redis" : "L1 only");
  return failures == 0 ? 0 : 1;
}
