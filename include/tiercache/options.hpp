// Options of Cache<V>: what a cache keeps, for how long, and how it behaves when the
// database or Redis misbehaves. Every field has a default that is safe for a service that
// has never been tuned; docs/configuration.md says when to change each.
//
// Durations are tiercache::Duration (nanoseconds); write them with std::chrono literals
// (`std::chrono::minutes(5)`). "Logical" expiry is when a value stops being *fresh*; a value
// past it may still be served, flagged stale, by fail-safe (see stale_window) until the
// Redis key itself expires.

#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/circuit_breaker.hpp"
#include "tiercache/clock.hpp"
#include "tiercache/envelope.hpp"
#include "tiercache/local_cache.hpp"

namespace tiercache {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning, kError };
const char* to_string(LogLevel level);

// Where the cache writes what it has to say. Messages name key *patterns* (key_pattern() in
// metrics.hpp), never raw keys or values. Called from any thread; must not call the cache.
using Logger = std::function<void(LogLevel, std::string_view message)>;

struct CacheOptions {
  // The cache's name: the first segment of its Redis keys ("<name>:...") and the `cache` label
  // of its metrics. Two caches with the same name on the same Redis share their L2 entries,
  // invalidations and locks (that is how several processes share one cache).
  std::string name = "cache";

  // ---- L1 (in process) ----------------------------------------------------------------------
  // Bound and policy of the in-process tier. l1.default_ttl is ignored: L1 copies live until
  // the value's logical expiry, and at most l1_max_ttl.
  LocalCacheOptions l1 = {};
  // Upper bound on how long a process keeps a value in L1 without asking L2 again. Bounds how
  // stale a copy can get if an invalidation message is lost.
  Duration l1_max_ttl = std::chrono::minutes(1);
  // While the invalidation bus is disconnected, invalidations may be missed: L1 copies older
  // than this are then not served (they are reloaded; counted as l1_distrusted).
  Duration disconnected_l1_ttl = std::chrono::seconds(5);

  // ---- expiry -------------------------------------------------------------------------------
  // How long a loaded value is fresh (default; a loader may choose per entry).
  Duration ttl = std::chrono::minutes(5);
  // How long "not found" is remembered.
  Duration negative_ttl = std::chrono::seconds(30);
  // TTLs are spread uniformly by ±jitter (0.1 = ±10%) so keys written together do not expire
  // together. REQUIRES: 0 <= jitter < 1.
  double jitter = 0.1;
  // How long past its logical expiry a value is kept in Redis for fail-safe. 0: no fail-safe.
  Duration stale_window = std::chrono::hours(1);
  // After fail-safe served a stale value, it is kept in L1 this long before the loader is
  // tried again (so a failing database is not hammered).
  Duration fail_safe_throttle = std::chrono::seconds(1);

  // ---- loading ------------------------------------------------------------------------------
  // When a stale value exists, a caller waits at most this long for the loader before being
  // served the stale value (the load goes on in the background).
  Duration soft_timeout = std::chrono::milliseconds(100);
  // A caller waits at most this long, counted from its call, for a load (or another process's
  // load); then it gets a stale value if one exists, else CacheErrc::kLoaderTimeout. A load
  // still running goes on, and its result is stored when it comes (up to max_load_time).
  Duration hard_timeout = std::chrono::seconds(30);
  // A load running longer than this is abandoned: its stampede lock is released (another
  // process may load), it leaves this process's single-flight map (the next caller here loads
  // again), and its result, if it ever comes, is stored nowhere (callers still waiting get it).
  // A hung loader thus blocks a key for at most this long, anywhere. REQUIRES: > 0.
  Duration max_load_time = std::chrono::seconds(60);
  // Loads running at once in this process, across all keys: protects the database. Further
  // loads queue (their callers' timeouts still apply).
  std::uint32_t max_concurrent_loads = 16;
  // Asynchronous reads (async_get_or_load, async_get) that missed L1 and are in progress (queued
  // for a thread of the cache's pool, or running); beyond, a new one completes at once with
  // CacheErrc::kOverloaded.
  std::uint32_t max_queued_async_reads = 1024;
  // Probabilistic early refresh (XFetch, Vattani et al., VLDB 2015): a hit refreshes the value
  // in the background when now - load_time * beta * ln(rand()) >= expiry. 0 disables. Larger
  // values refresh earlier.
  double early_refresh_beta = 1.0;

  // ---- L2 (Redis) ---------------------------------------------------------------------------
  // Deadline of each L2 operation (a slow Redis costs at most this, then the call goes on
  // without L2).
  Duration l2_timeout = std::chrono::milliseconds(250);
  // The cross-process stampede lock: how long it lives without renewal. The holder renews it
  // while its load runs, so a load may take longer; a holder that dies frees it after this.
  Duration lock_ttl = std::chrono::seconds(5);
  // Opens after repeated L2 failures; L2 is then skipped until a probe succeeds.
  CircuitBreakerOptions circuit_breaker = {};
  // Compression and signing of L2 values (envelope.hpp). Set envelope.hmac_key so that values
  // written to Redis by anyone without the key are rejected.
  EnvelopeOptions envelope = {};

  // ---- plumbing -----------------------------------------------------------------------------
  std::shared_ptr<const Clock> clock = nullptr;      // nullptr: default_clock()
  Logger logger = nullptr;                           // nullptr: warnings and errors to stderr
  std::optional<std::uint64_t> seed = std::nullopt;  // jitter and early-refresh randomness
  // For tests only: called at named points of the read path with the key, so a test can hold
  // a read there and force an interleaving (docs/invalidation.md lists the points). Empty in
  // production.
  std::function<void(std::string_view point, std::string_view key)> test_hook = nullptr;
};

// What a loader may say about the entry it returns, through the LoadContext it is given.
class LoadContext {
 public:
  explicit LoadContext(std::string_view key) : key_(key) {}
  // The key being loaded.
  std::string_view key() const { return key_; }
  // This entry's freshness (instead of CacheOptions::ttl / negative_ttl). Jitter still applies.
  void set_ttl(Duration ttl) { ttl_ = ttl; }
  // Tags of this entry: invalidate_tag(tag) makes it stale everywhere.
  void add_tag(std::string tag) { tags_.push_back(std::move(tag)); }

  const std::optional<Duration>& ttl() const { return ttl_; }
  const std::vector<std::string>& tags() const { return tags_; }
  std::vector<std::string>& mutable_tags() { return tags_; }

 private:
  std::string_view key_;
  std::optional<Duration> ttl_;
  std::vector<std::string> tags_;
};

// Per-call overrides. Unset fields take the cache's options.
struct ReadOptions {
  std::optional<Duration> soft_timeout;
  std::optional<Duration> hard_timeout;
  bool skip_l2 = false;  // neither read nor write L2 (nor take the lock) in this call
};

struct WriteOptions {
  std::optional<Duration> ttl;
  // The new entry's tags. Empty (and keep_tags): the tags of the entry it replaces -- this
  // process's L1 copy, else the L2 entry (one more round trip) -- so that a write never
  // detaches an entry from its tags (invalidate_tag still reaches it).
  std::vector<std::string> tags;
  // False: an empty `tags` means "no tags".
  bool keep_tags = true;
  bool skip_l2 = false;  // store in L1 only (and tell no one)
};

}  // namespace tiercache
