// The Lua scripts of CacheCore's L2 protocol, and the small text helpers its two source files
// share (cache_core.cpp: reads, locks, stores; invalidation_sources.cpp: writes, tags,
// versions, the bus). Internal to src/cache/.
//
// Every script touches the keys of one hash tag only (a key's value and lock; one tag; the
// version), so each runs on one Redis Cluster slot.

#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "tiercache/clock.hpp"
#include "tiercache/detail/cache_core.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::detail {

using redis::Reply;

// Length of a bus message's origin prefix (a process's random id, hex).
inline constexpr std::size_t kOriginLength = 16;

inline std::int64_t to_ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// A TTL as Redis takes it (PX, PEXPIRE): whole milliseconds, at least 1.
inline std::string px(Duration d) { return std::to_string(std::max<std::int64_t>(1, to_ms(d))); }

inline std::string hex64(std::uint64_t v) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016" PRIx64, v);
  return std::string(buffer, 16);
}

inline std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

namespace scripts {

inline constexpr const char* kReadOrLock = R"lua(
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] == '1' then
    local v = redis.call('GET', KEYS[1])
    if v then return {2, v} end
  end
  return {2}
end
return {3, redis.call('PTTL', KEYS[2])}
)lua";

inline constexpr const char* kStore = R"lua(
local owned = redis.call('GET', KEYS[2]) == ARGV[3]
if owned then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
if owned then return 1 end
return 0
)lua";

inline constexpr const char* kRelease = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
)lua";

inline constexpr const char* kRenew = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
)lua";

inline constexpr const char* kWrite = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
)lua";

inline constexpr const char* kInvalidate = R"lua(
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
)lua";

inline constexpr const char* kInvalidateTag = R"lua(
local t = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current and t <= current then t = current + 1 end
redis.call('SET', KEYS[1], t, 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. t .. '|' .. ARGV[5])
return t
)lua";

inline constexpr const char* kClear = R"lua(
local v = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. v)
return v
)lua";

}  // namespace scripts

struct CacheCore::Scripts {
  redis::Script read_or_lock{scripts::kReadOrLock};
  redis::Script store{scripts::kStore};
  redis::Script release{scripts::kRelease};
  redis::Script renew{scripts::kRenew};
  redis::Script write{scripts::kWrite};
  redis::Script invalidate{scripts::kInvalidate};
  redis::Script invalidate_tag{scripts::kInvalidateTag};
  redis::Script clear{scripts::kClear};
};

}  // namespace tiercache::detail
