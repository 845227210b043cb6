// LocalCache<K, V>: the in-process tier (L1). A bounded, concurrent map from keys to
// immutable values that forgets what is least likely to be asked for again.
//
// Contract:
//  - Thread-safety: every member function may be called from any number of threads at
//    once. Lookups (get) take no lock that other threads share: they never wait for a
//    writer or for each other. Writers (put, erase, ...) serialise on one mutex.
//  - Bound: the total weight of the entries never exceeds the bound once a write call
//    returns; inside a put, the new entry is added and then the excess evicted in the same
//    critical section, so the slack is one entry, visible to nobody but size() readers.
//    The weight of an entry is 1 (bound = max_entries) unless a weigher is given (bound =
//    max_weight, e.g. bytes). An entry heavier than the whole bound is not kept.
//  - Values are shared, never copied: get() returns Cached<V>, a counted reference that
//    stays valid after the entry is evicted or the cache destroyed.
//  - Expiry: each entry may have its own time-to-live (expire after write); an expired
//    entry is never returned, and is reclaimed in O(1) by a timer wheel, not by scanning.
//  - Negative entries ("known absent", with their own TTL) are returned as
//    Cached<V>::is_negative(), distinct from values and from misses.
//  - Time comes from the injected Clock; the cache has no global state and starts no thread.
//  - Callbacks (weigher, removal listener) run on the calling thread. The removal listener
//    runs after the cache's lock is released; if it throws, the exception is caught and
//    counted (Stats::listener_failures) and the cache is unaffected.
//  - Eviction is adaptive W-TinyLFU (scan-resistant, frequency-aware) or plain LRU; see
//    detail/eviction_policy.hpp for the algorithm and docs/local-cache.md for measurements.
//
// REQUIRES: K and V destructible without throwing; Hash and Eq callable concurrently; no
// call of this cache from inside its own weigher or erase_if predicate.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tiercache/cached.hpp"
#include "tiercache/clock.hpp"
#include "tiercache/detail/eviction_policy.hpp"
#include "tiercache/detail/hash_table.hpp"
#include "tiercache/detail/node.hpp"
#include "tiercache/detail/readers.hpp"
#include "tiercache/detail/timer_wheel.hpp"

namespace tiercache {

enum class EvictionPolicy : std::uint8_t {
  kAdaptiveTinyLfu,  // the default: W-TinyLFU with a hill-climbed window
  kLru,              // least recently used; for comparison
};

// Why an entry left the cache (removal listener argument).
enum class RemovalCause : std::uint8_t {
  kSize,      // evicted to respect the bound
  kExpired,   // its time-to-live passed
  kExplicit,  // erase, erase_if or clear
  kReplaced,  // a put for the same key replaced it
};

struct LocalCacheOptions {
  // Bound by number of entries (used when max_weight == 0). REQUIRES: > 0.
  std::size_t max_entries = 10'000;
  // Bound by total weight, as measured by the weigher given to the constructor. 0 = count
  // entries instead. Non-zero REQUIRES a weigher.
  std::uint64_t max_weight = 0;
  EvictionPolicy policy = EvictionPolicy::kAdaptiveTinyLfu;
  // Time-to-live of values put without one. Duration::max(): never expire.
  Duration default_ttl = Duration::max();
  // Time-to-live of negative entries put without one.
  Duration default_negative_ttl = std::chrono::seconds(30);
  // Time source; nullptr means default_clock().
  std::shared_ptr<const Clock> clock = nullptr;
  // Seeds hashing and admission randomness; unset: drawn from std::random_device. Fix it
  // only for reproducible experiments: a known seed helps hash-flooding attackers.
  std::optional<std::uint64_t> seed = std::nullopt;
};

struct LocalCacheStats {
  std::uint64_t hits = 0;           // lookups that returned a value
  std::uint64_t negative_hits = 0;  // lookups that returned a negative entry
  std::uint64_t misses = 0;         // lookups that found nothing (or only an expired entry)
  std::uint64_t puts = 0;           // entries written (values and negative entries)
  std::uint64_t evictions_size = 0;
  std::uint64_t evictions_expired = 0;
  std::uint64_t removals_explicit = 0;
  std::uint64_t replacements = 0;
  std::uint64_t listener_failures = 0;  // removal-listener calls that threw

  double hit_ratio() const {
    const std::uint64_t lookups = hits + negative_hits + misses;
    return lookups == 0 ? 0.0 : static_cast<double>(hits + negative_hits) / lookups;
  }
};

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class LocalCache {
 public:
  using Weigher = std::function<std::uint32_t(const K&, const V&)>;
  // Called with the key, the departing value (or a negative Cached) and why it left.
  using RemovalListener = std::function<void(const K&, const Cached<V>&, RemovalCause)>;

  explicit LocalCache(LocalCacheOptions options, Weigher weigher = {},
                      RemovalListener listener = {}, Hash hash = Hash(), Eq eq = Eq());
  ~LocalCache();
  LocalCache(const LocalCache&) = delete;
  LocalCache& operator=(const LocalCache&) = delete;

  // The entry for `key`: a value, a negative entry, or a miss. Never blocks.
  Cached<V> get(const K& key);

  // Inserts or replaces the value for `key`, expiring after `ttl` (default_ttl if unset;
  // a ttl <= 0 removes the key instead of storing).
  void put(const K& key, V value, std::optional<Duration> ttl = std::nullopt);
  // Stores a "known absent" entry for `key` (default_negative_ttl if unset).
  void put_negative(const K& key, std::optional<Duration> ttl = std::nullopt);
  // Inserts only if the key holds no live value (a miss, an expired or a negative entry).
  // Returns whether it inserted (true also for a value heavier than the whole bound, which
  // is then evicted at once, as RemovalCause::kSize).
  bool put_if_absent(const K& key, V value, std::optional<Duration> ttl = std::nullopt);
  // Like put(), and returns a reference to the value it stored. The reference is valid even
  // when the entry is evicted at once (too heavy, or not admitted) or when ttl <= 0 (then
  // nothing is stored and the reference is the only holder of the value).
  Cached<V> insert(const K& key, V value, std::optional<Duration> ttl = std::nullopt);
  // A reference to `value` that is not stored in the cache (the reference is its only holder).
  // For callers that hand out Cached<V> for values they decided not to keep.
  Cached<V> wrap(const K& key, V value);

  // Removes `key`. Returns whether an entry (expired or not) was there.
  bool erase(const K& key);
  // Removes every entry for which pred(key, value) holds; value is nullptr for negative
  // entries. Visits every entry (O(n)). Returns the number removed.
  std::size_t erase_if(const std::function<bool(const K&, const V*)>& pred);
  // Removes every entry.
  void clear();

  // Applies pending bookkeeping now: hit notes, expiries, reclamation. Never required for
  // correctness; useful before reading stats in tests, or in an idle process.
  void cleanup();

  // Number of entries, expired-but-not-yet-reclaimed ones included.
  std::size_t size() const { return table_.size(); }
  // Total weight of the entries (== size() when counting entries).
  std::uint64_t weight() const { return weight_.load(std::memory_order_relaxed); }
  // The bound, in weight units.
  std::uint64_t max_weight() const { return max_weight_; }
  LocalCacheStats stats() const;

 private:
  struct Node {
    explicit Node(const K& k) : key(k) {}
    detail::NodeHeader header;
    K key;
    alignas(V) unsigned char storage[sizeof(V)];

    V* value() { return std::launder(reinterpret_cast<V*>(storage)); }
  };
  static_assert(offsetof(Node, header) == 0);
  static_assert(alignof(Node) <= alignof(detail::TimerLinks),
                "over-aligned keys or values: store them behind a pointer");

  enum class Write { kAlways, kIfAbsent };
  struct Removal {
    detail::NodeHeader* node;  // holds a reference for the listener
    RemovalCause cause;
  };

  static Node* node_of(detail::NodeHeader* h) { return reinterpret_cast<Node*>(h); }
  static void destroy(detail::NodeHeader* h) noexcept;
  // A handle on `h`: through a hazard slot of the calling thread, else a counted reference.
  // REQUIRES: inside a lookup that found `h`.
  static Cached<V> pin(detail::NodeHeader* h);

  std::uint32_t hash_of(const K& key) const {
    return static_cast<std::uint32_t>(detail::mix64(hash_(key) ^ seed_));
  }
  std::int64_t now_ns() const { return clock_->now().time_since_epoch().count(); }
  // Tells the policy about a hit: marks a protected node referenced, else leaves a note in
  // the reader's ring. Returns false if the ring was full.
  bool note_hit(detail::ReaderRecord& me, detail::NodeHeader* n);
  detail::NodeHeader* make_node(std::uint32_t hash, const K& key, V* value, Duration ttl);
  bool write(const K& key, V* value, std::optional<Duration> ttl, Write mode,
             Cached<V>* handle = nullptr);

  // All below: REQUIRES writer_mutex_ held.
  enum class Dequeued { kNo, kByPolicy, kByTimers };
  // Takes a live node out of the table, the policy and the timer wheel (minus the one that
  // already let go of it) and retires it.
  void unlink(detail::NodeHeader* node, RemovalCause cause, Dequeued already = Dequeued::kNo);
  // Marks an unlinked node removed, queues it for reclamation and for the listener.
  void retire(detail::NodeHeader* node, RemovalCause cause);
  void maintain(bool force_reclaim = false);
  void drain_reads();
  void reclaim(bool force);
  void count_removal(RemovalCause cause);

  // Drops the cache's reference to each node of [begin, end) (node_of_item maps an item to
  // its node), first converting hazard slots that still hold one.
  template <class It, class NodeOf>
  void release_nodes(It begin, It end, NodeOf node_of_item);

  // Runs the removal listener on the notifications taken from pending_. Lock NOT held.
  void notify(std::vector<Removal>& removals);

  const LocalCacheOptions options_;
  const std::uint64_t max_weight_;
  const std::uint64_t seed_;
  const std::shared_ptr<const Clock> clock_;
  Weigher weigher_;
  RemovalListener listener_;
  Hash hash_;
  Eq eq_;

  // Read by every lookup; set at construction. (The tuner's sampling is on its own line.)
  const detail::PolicyTuner* tuner_ = nullptr;
  detail::Readers readers_;
  detail::HashTable table_;

  // Below: written under writer_mutex_, on other cache lines than what lookups read.

  alignas(detail::kCacheLine) std::mutex writer_mutex_;
  detail::EvictionPolicy policy_;
  detail::TimerWheel timers_;
  std::size_t timed_entries_ = 0;
  std::vector<detail::NodeHeader*> scratch_;
  std::vector<detail::NodeHeader*> drained_;
  std::vector<Removal> pending_;
  std::vector<std::pair<detail::NodeHeader*, std::uint64_t>> retired_nodes_;
  std::vector<std::pair<std::unique_ptr<detail::HashTable::Buckets>, std::uint64_t>>
      retired_buckets_;

  std::atomic<std::uint64_t> weight_{0};
  std::atomic<std::uint64_t> puts_{0};
  std::atomic<std::uint64_t> evictions_size_{0};
  std::atomic<std::uint64_t> evictions_expired_{0};
  std::atomic<std::uint64_t> removals_explicit_{0};
  std::atomic<std::uint64_t> replacements_{0};
  std::atomic<std::uint64_t> listener_failures_{0};
};

}  // namespace tiercache

#include "tiercache/detail/local_cache_impl.hpp"
