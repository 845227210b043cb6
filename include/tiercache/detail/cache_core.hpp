// CacheCore: everything of Cache<V> that does not depend on V -- the L2 protocol (keys,
// envelopes, the stampede lock and its scripts), the invalidation bus, tag timestamps, the
// namespace version, the circuit breaker, the loader pool, metrics and logging. Cache<V>
// (detail/cache_impl.hpp) adds L1, single-flight and the codec on top.
//
// Redis layout of a cache named N (docs/FORMAT.md, "Keys"):
//   N:<version>:{<key>}   the value's envelope; PX = logical TTL + stale window
//   N:lock:<version>:{<key>}  the stampede lock: a random token; PX = lock_ttl, renewed by the
//                         holder for at most max_load_time
//   N:tag:{<tag>}         when the tag was last invalidated (unix ms)
//   N:version             the namespace version; clear() increments it
//   N:bus                 pub/sub channel: invalidations, tag and version changes, fills
// The value and the lock of one key share a hash tag, so they live in one Cluster slot and one
// script can touch both. Every read notes the namespace version it read (ReadStart): a load
// stores under the version its read began with, so a clear() during the load never lets the
// pre-clear row into the new namespace.
//
// Invalidations from every source -- this process's writes, the bus, clear(), a version seen
// changed, a bus gap -- are numbered by `epochs()` (invalidation_epochs.hpp): CacheCore bumps
// them once the change is visible to new reads, and before the typed layer drops L1 copies.
//
// Thread-safety: all members may be called from any number of threads. Owned by a
// std::shared_ptr: background work (loads, lock renewals, the bus) holds references.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "tiercache/circuit_breaker.hpp"
#include "tiercache/detail/invalidation_epochs.hpp"
#include "tiercache/envelope.hpp"
#include "tiercache/jitter.hpp"
#include "tiercache/local_cache.hpp"
#include "tiercache/metrics.hpp"
#include "tiercache/options.hpp"
#include "tiercache/redis/client.hpp"
#include "tiercache/redis/subscriber.hpp"

namespace tiercache::detail {

// A fixed set of threads, started on demand, running queued tasks. Tasks still running at
// shutdown are abandoned after a grace period (a hung loader must not hang the destructor):
// their threads are detached and keep what they reference alive.
class TaskPool {
 public:
  TaskPool(std::string name, std::uint32_t max_threads);
  ~TaskPool();
  // Queues `task`. Returns false after shutdown() (the task is not run).
  bool submit(std::function<void()> task);
  // Stops accepting tasks, drops queued ones, waits up to `grace` for running ones.
  void shutdown(std::chrono::milliseconds grace);

  struct State;  // shared with the pool's threads (src/cache/task_pool.cpp)

 private:
  std::shared_ptr<State> state_;
};

// Every counter and histogram of one cache (rendered by CacheCore::collect()).
struct CacheMetrics {
  Counter l1_hits, l1_negative_hits, l1_stale, l1_misses, l1_distrusted;
  Counter l2_hits, l2_negative_hits, l2_stale, l2_misses, l2_corrupt, l2_errors, l2_skipped;
  Counter l2_writes, l2_writes_skipped;
  Counter loads_ok, loads_not_found, loads_error, loads_timeout;
  Counter coalesced_waits, lock_acquired, lock_contended, lock_taken_over;
  Counter stale_served, early_refreshes, invalidations_sent, invalidations_received, bus_gaps;
  Histogram l1_latency, l2_latency, load_latency;
};

// The outcome of reading a key from L2.
struct L2Read {
  enum class Kind : std::uint8_t {
    kValue,        // `envelope` holds the entry (fresh or stale: see envelope.meta)
    kMiss,         // no entry (or one that did not decode: counted as corrupt)
    kLocked,       // read_or_lock(): no entry, and we now hold the lock (`token`)
    kContended,    // read_or_lock(): no entry, someone else holds the lock
    kUnavailable,  // Redis unreachable, slow or refused, or the circuit is open
  };
  Kind kind = Kind::kUnavailable;
  DecodedEnvelope envelope;
  bool tag_invalidated = false;  // kValue: a tag was invalidated after the entry was created
  // kValue: the tag generation the tags were checked against (noted before the check).
  std::uint64_t tag_generation = 0;
  std::string token;  // kLocked
  // kLocked after read_or_lock(key, ignore_value = true): `envelope` holds the value found
  // when the lock was taken (it may have become fresh since the caller saw it stale).
  bool locked_value = false;
  Duration lock_remaining{};  // kContended: the lock's remaining time to live
};

// What a read of the source notes before it begins (the L2 GET, the loader's query): the
// invalidation epoch and wall time (the creation time of what it produces), and the namespace
// version it reads and stores under (nullopt: L2 cannot be used).
struct ReadStart {
  InvalidationEpochs::Epoch epoch = 0;
  std::int64_t wall_ms = 0;
  std::optional<std::uint64_t> version;
};

enum class StoreResult : std::uint8_t {
  kStored,
  kLockLost,  // the lock was no longer ours (a write or invalidation came): not stored
  kFailed,    // Redis unreachable or the circuit open: not stored
};

class CacheCore : public std::enable_shared_from_this<CacheCore> {
 public:
  // Hooks into the typed layer: called under an invalidation epoch bump (invalidation_epochs.hpp,
  // the exclusive gate held), from any thread. They must only drop L1 copies.
  struct Hooks {
    std::function<void(std::string_view key)> drop_key;  // another process changed `key`
    std::function<void()> drop_all;                      // clear() elsewhere, or a bus gap
  };

  // `client` may be null: L1-only mode (no L2, no lock, no bus).
  CacheCore(CacheOptions options, std::shared_ptr<redis::Client> client);
  ~CacheCore();
  // Starts the bus subscription. Separate from the constructor so hooks are set first.
  void start(Hooks hooks);
  // Marks the core closed (later L2 calls, loads and bus messages are skipped) and wakes
  // waiters. shutdown() also stops background work.
  void close();
  void shutdown();

  const CacheOptions& options() const { return options_; }
  const Clock& clock() const { return *clock_; }
  bool has_l2() const { return client_ != nullptr; }
  CacheMetrics& metrics() { return metrics_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Unix milliseconds by the injected clock (its offset from the wall clock is fixed at
  // construction, so a ManualClock moves it too).
  std::int64_t wall_ms() const;
  std::int64_t to_wall_ms(TimePoint t) const;
  TimePoint from_wall_ms(std::int64_t ms) const;
  Duration jitter(Duration ttl);
  // A uniform random number in (0, 1], for early refresh.
  double uniform();

  // False until the server confirmed the bus subscription, and while its connection is down:
  // L1 copies may then be missing invalidations.
  bool bus_connected() const;

  // ---- the one invalidation rule (invalidation_epochs.hpp) -----------------------------------
  InvalidationEpochs& epochs() { return epochs_; }
  // Notes the epoch, then the namespace version (fetched once; re-read while the bus is down,
  // and a change seen then counts as a clear()), then the wall time. `want_l2`: false for a read
  // that will not touch L2 (no version is fetched).
  ReadStart begin_read(bool want_l2 = true);
  // Bumped whenever a tag invalidation arrives or tag knowledge is dropped.
  std::uint64_t tag_generation() const { return tag_generation_.load(std::memory_order_acquire); }
  // Whether an entry created at `created_ms` with `tags` was invalidated by a tag since.
  // May ask Redis for tags it has not seen (one MGET). Redis unreachable: false.
  bool tags_invalidated(const std::vector<std::string>& tags, std::int64_t created_ms);

  // The envelope of an entry of `key`; signed (when envelope.hmac_key is set) together with
  // the cache's name and the key, so a signed value copied to another key does not verify.
  std::string encode(const EnvelopeMeta& meta, std::string_view payload,
                     std::string_view key) const;

  // ---- L2 operations (all bounded by l2_timeout, all guarded by the circuit breaker) --------
  // Each reads and writes under the namespace version `version` (from begin_read()).
  L2Read read(std::string_view key, std::uint64_t version);
  // One round trip: the entry if there is one (unless `ignore_value`); else tries the lock. A
  // call that timed out releases the lock it may have taken.
  L2Read read_or_lock(std::string_view key, bool ignore_value, std::uint64_t version);
  // read_or_lock() of several keys in one pipelined round trip: one L2Read per key (kValue;
  // kMiss for an entry that does not decode; kLocked; kContended; kUnavailable).
  std::vector<L2Read> read_or_lock_many(const std::vector<std::string>& keys, bool ignore_values,
                                        std::uint64_t version);
  // Stores `bytes` for `key` if the lock `token` is still ours, releases the lock, and wakes
  // waiters everywhere. kLockLost: an invalidation or write during the load deleted the lock
  // (so an older value never overwrites a newer one), or the hold passed max_load_time.
  // REQUIRES: `token` is a lock token of read_or_lock() (never empty).
  StoreResult store(std::string_view key, const std::string& bytes, Duration redis_ttl,
                    const std::string& token, std::uint64_t version);
  // store() of several keys in one pipelined round trip.
  struct StoreItem {
    std::string key;
    std::string bytes;
    Duration redis_ttl;
    std::string token;
  };
  std::vector<StoreResult> store_many(const std::vector<StoreItem>& items, std::uint64_t version);
  // Releases the lock (if still ours) without storing; wakes waiters. No token: nothing.
  void release(std::string_view key, const std::string& token, std::uint64_t version);
  // Keeps renewing the lock every lock_ttl/3 until the returned handle is destroyed, or until
  // max_load_time has passed: then the lock is released (by token) and renewed no more.
  std::shared_ptr<void> keep_lock(std::string_view key, const std::string& token,
                                  std::uint64_t version);
  // The writes. Each makes its change visible in L2, then bumps its invalidation epoch (so
  // reads that began before it store nothing), then returns; the caller drops its L1 copies
  // after. Each returns whether Redis took the change (L1-only: true).
  //
  // set/write_through: stores unconditionally (no bytes: L1 only, nothing sent), deletes any
  // lock, tells everyone. `also` runs under the epoch's gate with the new epoch (to put the
  // new value in L1 atomically with the bump).
  bool write(std::string_view key, const std::string& bytes, Duration redis_ttl,
             const InvalidationEpochs::Also& also);
  // Deletes the entry and any lock; tells every process to drop its copy (this one's too).
  bool invalidate(std::string_view key);
  bool invalidate_tag(std::string_view tag);
  // A new namespace version; every process drops its L1 (this one's too).
  bool clear();

  // Waits for the lock of `key` to be released (a fill, an invalidation) or `deadline`.
  class FillWait;
  std::unique_ptr<FillWait> watch_fills(std::string_view key);

  // ---- loads --------------------------------------------------------------------------------
  bool submit_load(std::function<void()> task) { return loads_.submit(std::move(task)); }
  bool submit_background(std::function<void()> task) { return background_.submit(std::move(task)); }

  // ---- observability ------------------------------------------------------------------------
  void log(LogLevel level, const std::string& message) const;
  CircuitBreaker::State circuit_state() const { return breaker_.state(); }
  // Adds this cache's metrics to `text`; `l1` is the L1's own statistics.
  void collect(PrometheusText& text, const LocalCacheStats& l1, std::size_t l1_entries) const;

 private:
  struct Scripts;
  struct FillSignals;
  struct Renewals;

  std::string data_key(std::string_view key, std::uint64_t version) const;
  std::string signed_identity(std::string_view key) const;
  std::string lock_key(std::string_view key, std::uint64_t version) const;
  std::string tag_key(std::string_view tag) const;
  // The namespace version, fetched from Redis the first time (and after a bus gap), and again
  // every version_recheck while the bus is down: a change then seen counts as a clear().
  std::optional<std::uint64_t> version();
  // Runs a write or invalidation script on `key` (KEYS: its data key and lock key; ARGV:
  // `args`) under the namespace version, reading the version in the same round trip; if it had
  // moved (a clear() not heard yet), adopts it and runs the script again there.
  bool change_key(std::string_view key, const redis::Script& script,
                  const std::vector<std::string>& args, std::string_view what);
  // Another namespace version became known (bus, clear(), a re-read): everything is invalidated.
  void version_changed(std::uint64_t version);
  void wake_fills(std::string_view key);
  void wake_all_fills();
  // The typed layer's hooks; called only under an epoch bump.
  void drop_key(std::string_view key);
  void drop_all();
  // Records a tag's invalidation time if newer than the one known.
  void learn_tag_time(const std::string& tag, std::int64_t ms);
  // Releases, without waiting, a lock a timed-out read_or_lock may have taken.
  void release_in_background(std::string_view key, const std::string& token, std::uint64_t version);
  // The circuit breaker's bookkeeping around one L2 call.
  bool l2_allowed();
  void l2_outcome(bool ok, const redis::Error* error, std::string_view what);
  redis::CallOptions call_options() const;
  std::string new_token();
  // Runs a pipeline of EVALSHA `script` commands, loading the script once on NOSCRIPT.
  redis::Result<std::vector<redis::Reply>> exec_scripts(const redis::Request& request,
                                                        const redis::Script& script);
  // Interprets READ_OR_LOCK's reply (well-formed: an array starting with an integer).
  void read_lock_reply(std::string_view key, const redis::Reply& reply, std::string token,
                       L2Read& out);
  // Decodes a GET reply into `out` (kValue or kMiss; corrupt counted and logged).
  void decode_into(std::string_view key, const redis::Reply& reply, L2Read& out,
                   bool report_corrupt = true);
  std::string bus_message(char kind, std::string_view data) const;
  void renew_locks();  // the renewal thread
  void on_bus_message(redis::PubSubMessage&& message);
  void on_bus_event(redis::PubSubEvent&& event);

  const CacheOptions options_;
  const std::shared_ptr<const Clock> clock_;
  const std::shared_ptr<redis::Client> client_;
  const std::int64_t wall_offset_ms_;
  const std::string origin_;  // random id of this process's cache, to ignore its own messages
  const std::string channel_;
  TtlJitter jitter_;
  std::atomic<std::uint64_t> random_state_;  // early refresh draws (seeded)
  std::atomic<std::uint64_t> token_state_;   // lock tokens (never seeded)
  CircuitBreaker breaker_;
  CacheMetrics metrics_;
  std::unique_ptr<Scripts> scripts_;
  std::unique_ptr<FillSignals> fills_;
  std::unique_ptr<Renewals> renewals_;
  Hooks hooks_;
  std::unique_ptr<redis::Subscriber> bus_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> subscribed_{false};  // the server confirmed SUBSCRIBE to channel_ once
  std::mutex subscribed_mutex_;          // with subscribed_cv_: start() waits for the confirmation
  std::condition_variable subscribed_cv_;
  InvalidationEpochs epochs_;
  // Steady-clock ns of the last version read while the bus was down (version recheck).
  std::atomic<std::int64_t> version_checked_ns_{0};

  // 0 = unknown (fetch before use); else version + 1.
  std::atomic<std::uint64_t> version_plus_one_{0};
  std::atomic<std::uint64_t> tag_generation_{1};
  // When each tag was last invalidated (unix ms), as far as this process knows. Bounded; an
  // entry that falls out is asked from Redis again. Written under tag_times_mutex_ (a time
  // only ever grows), read without it.
  LocalCache<std::string, std::int64_t> tag_times_;
  std::mutex tag_times_mutex_;

  TaskPool loads_;
  TaskPool background_;
};

class CacheCore::FillWait {
 public:
  virtual ~FillWait() = default;
  // True when woken by a fill or an invalidation of the key; false at the deadline.
  virtual bool wait_until(std::chrono::steady_clock::time_point deadline) = 0;
};

}  // namespace tiercache::detail
