// LocalCache implementation. Included by local_cache.hpp only.
//
// Concurrency design
// ------------------
// Readers never lock. get() announces itself in its own ReaderRecord (detail/readers.hpp:
// a plain store, no fence, thanks to membarrier), walks the hash table, checks the
// entry's own deadline, pins the node in one of its thread's hazard slots (detail/hazards.hpp),
// tells the policy about the hit (a CLOCK mark or a note in its record's read ring) and
// clears its announcement. Everything a reader reads of a node (hash,
// key, value, flags, deadline) is written before the node is published and never changes
// afterwards: a replacement value is a new node swapped into the chain, never an in-place write.
//
// Writers serialise on writer_mutex_, which guards the eviction policy, the timer wheel,
// the hash table's structure and the retired lists. Every write also runs maintenance:
// drain the read notes into the policy (so eviction sees every recorded hit), expire what
// the timer wheel says is due, evict down to the bound, and reclaim retired nodes.
// A reader whose ring is full tries the mutex and, if free, runs the same maintenance;
// otherwise it drops its note -- it never waits.
//
// Node lifecycle: kNew (built, unpublished) -> kLive (in table, policy, maybe timer wheel)
// -> kRemoved (unlinked from all three, in retired_nodes_ with the epoch of removal) ->
// the cache's reference is dropped once the epoch has advanced twice and every read ring
// has been swept (Readers::sweep) -> freed when the last Cached<V> goes.
//
// Invariants (writer lock held, between calls):
//  - a node is in the table iff it is kLive iff it is queued in the policy;
//  - a kLive node with kTimed is scheduled in timers_ (timed_entries_ counts them);
//  - weight_ == policy_.weight() <= max_weight_.

#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>

#include "tiercache/detail/policy_tuner.hpp"

namespace tiercache {

namespace detail {
inline std::uint64_t draw_seed(const std::optional<std::uint64_t>& seed) {
  if (seed) return *seed;
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}
inline std::uint64_t checked_bound(const LocalCacheOptions& o, bool has_weigher) {
  if (o.max_weight != 0) {
    if (!has_weigher) throw std::invalid_argument("LocalCache: max_weight needs a weigher");
    return o.max_weight;
  }
  if (o.max_entries == 0) throw std::invalid_argument("LocalCache: max_entries must be > 0");
  return o.max_entries;
}
// Entries to size the table and sketch for: the bound when counting, else a guess that
// grows with use (the table grows; the sketch is sized for this guess).
inline std::size_t expected_entries(const LocalCacheOptions& o) {
  constexpr std::size_t kWeightedInitialEntries = 1024;
  return o.max_weight != 0 ? kWeightedInitialEntries : o.max_entries;
}
}  // namespace detail

template <class K, class V, class Hash, class Eq>
LocalCache<K, V, Hash, Eq>::LocalCache(LocalCacheOptions options, Weigher weigher,
                                       RemovalListener listener, Hash hash, Eq eq)
    : options_(std::move(options)),
      max_weight_(detail::checked_bound(options_, static_cast<bool>(weigher))),
      seed_(detail::draw_seed(options_.seed)),
      clock_(options_.clock ? options_.clock : default_clock()),
      weigher_(options_.max_weight != 0 ? std::move(weigher) : Weigher()),
      listener_(std::move(listener)),
      hash_(std::move(hash)),
      eq_(std::move(eq)),
      table_(detail::expected_entries(options_)),
      policy_(options_.policy == EvictionPolicy::kLru ? detail::PolicyKind::kLru
                                                      : detail::PolicyKind::kAdaptiveTinyLfu,
              max_weight_, detail::expected_entries(options_), seed_),
      timers_(now_ns()) {
  tuner_ = policy_.tuner();
}

template <class K, class V, class Hash, class Eq>
LocalCache<K, V, Hash, Eq>::~LocalCache() {
  // No reader may be inside the cache any more (a destructor runs alone), so every node
  // can lose the cache's reference at once.
  std::vector<detail::NodeHeader*> nodes;
  table_.for_each([&](detail::NodeHeader* n) { nodes.push_back(n); });
  for (auto& [node, epoch] : retired_nodes_) nodes.push_back(node);
  release_nodes(nodes.begin(), nodes.end(), [](detail::NodeHeader* n) { return n; });
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::destroy(detail::NodeHeader* h) noexcept {
  Node* n = node_of(h);
  if (!h->negative()) n->value()->~V();
  const bool timed = h->timed();
  n->~Node();
  if (timed) {
    detail::TimerLinks* links = detail::timer_links(h);
    links->~TimerLinks();
    ::operator delete(static_cast<void*>(links));
  } else {
    ::operator delete(static_cast<void*>(n));
  }
}

template <class K, class V, class Hash, class Eq>
Cached<V> LocalCache<K, V, Hash, Eq>::pin(detail::NodeHeader* h) {
  const V* value = h->negative() ? nullptr : node_of(h)->value();
  if (std::atomic<detail::NodeHeader*>* slot = detail::acquire_hazard(h)) {
    return Cached<V>(h, value, &destroy, slot);
  }
  h->refs.fetch_add(1, std::memory_order_relaxed);  // every hazard slot is taken
  return Cached<V>(h, value, &destroy);
}

template <class K, class V, class Hash, class Eq>
detail::NodeHeader* LocalCache<K, V, Hash, Eq>::make_node(std::uint32_t hash, const K& key,
                                                          V* value, Duration ttl) {
  const bool timed = ttl != Duration::max();
  void* memory = ::operator new(timed ? detail::TimerLinks::kOffset + sizeof(Node) : sizeof(Node));
  Node* n = nullptr;
  if (timed) {
    auto* links = new (memory) detail::TimerLinks();
    const std::int64_t now = now_ns();
    links->expires_at_ns = ttl.count() > std::numeric_limits<std::int64_t>::max() - now
                               ? std::numeric_limits<std::int64_t>::max()
                               : now + ttl.count();
    n = static_cast<Node*>(
        static_cast<void*>(static_cast<char*>(memory) + detail::TimerLinks::kOffset));
  } else {
    n = static_cast<Node*>(memory);
  }
  try {
    new (n) Node(key);
    if (value != nullptr) {
      try {
        new (n->storage) V(std::move(*value));
      } catch (...) {
        n->~Node();
        throw;
      }
    }
  } catch (...) {
    ::operator delete(memory);
    throw;
  }
  detail::NodeHeader& h = n->header;
  h.hash = hash;
  // kSampled: in the tuner's sample now. The sample only ever shrinks (a halving keeps a
  // subset), so the flag may outlive the key's membership, never miss it; the tuner checks
  // again, and readers skip the hash mix on every hit.
  const bool sampled = tuner_ != nullptr && tuner_->sampled(hash);
  h.flags = static_cast<std::uint8_t>((value == nullptr ? detail::NodeHeader::kNegative : 0) |
                                      (timed ? detail::NodeHeader::kTimed : 0) |
                                      (sampled ? detail::NodeHeader::kSampled : 0));
  return &h;
}

template <class K, class V, class Hash, class Eq>
bool LocalCache<K, V, Hash, Eq>::note_hit(detail::ReaderRecord& me, detail::NodeHeader* n) {
  using detail::NodeHeader;
  std::uint8_t clock = n->clock.load(std::memory_order_relaxed);
  if (clock == NodeHeader::kNotProtected || (n->flags & NodeHeader::kSampled) != 0) {
    return me.record(n);
  }
  // A failed exchange leaves the current state in `clock`: marked by another reader (done)
  // or just left the marked queues (then a note after all).
  if (clock == NodeHeader::kUnreferenced) {
    n->clock.compare_exchange_strong(clock, NodeHeader::kReferenced, std::memory_order_relaxed);
  }
  return clock != NodeHeader::kNotProtected || me.record(n);
}

template <class K, class V, class Hash, class Eq>
Cached<V> LocalCache<K, V, Hash, Eq>::get(const K& key) {
  const std::uint32_t hash = hash_of(key);
  Cached<V> result;
  bool ring_full = false;
  {
    const detail::Readers::Lookup lookup = readers_.begin();
    detail::ReaderRecord& me = lookup.record();
    detail::NodeHeader* n =
        table_.find(hash, [&](detail::NodeHeader* h) { return eq_(node_of(h)->key, key); });
    if (n == nullptr || (n->timed() && detail::timer_links(n)->expires_at_ns <= now_ns())) {
      detail::ReaderRecord::bump(me.misses);
      return result;
    }
    result = pin(n);
    detail::ReaderRecord::bump(result.has_value() ? me.hits : me.negative_hits);
    ring_full = !note_hit(me, n);
  }
  if (ring_full && writer_mutex_.try_lock()) {
    // Our note did not fit: drain the rings and apply it directly. (If the lock is busy,
    // the note is dropped: a reader never waits.)
    std::vector<Removal> removals;
    {
      std::lock_guard lock(writer_mutex_, std::adopt_lock);
      drain_reads();
      if (result.node_->state == detail::NodeHeader::kLive) policy_.record_access(result.node_);
      maintain();
      removals.swap(pending_);
    }
    notify(removals);
  }
  return result;
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::put(const K& key, V value, std::optional<Duration> ttl) {
  write(key, &value, ttl, Write::kAlways);
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::put_negative(const K& key, std::optional<Duration> ttl) {
  write(key, nullptr, ttl ? ttl : std::optional<Duration>(options_.default_negative_ttl),
        Write::kAlways);
}

template <class K, class V, class Hash, class Eq>
bool LocalCache<K, V, Hash, Eq>::put_if_absent(const K& key, V value, std::optional<Duration> ttl) {
  return write(key, &value, ttl, Write::kIfAbsent);
}

template <class K, class V, class Hash, class Eq>
Cached<V> LocalCache<K, V, Hash, Eq>::insert(const K& key, V value, std::optional<Duration> ttl) {
  Cached<V> handle;
  write(key, &value, ttl, Write::kAlways, &handle);
  return handle;
}

template <class K, class V, class Hash, class Eq>
Cached<V> LocalCache<K, V, Hash, Eq>::wrap(const K& key, V value) {
  detail::NodeHeader* lone = make_node(hash_of(key), key, &value, Duration::max());
  return Cached<V>(lone, node_of(lone)->value(), &destroy);
}

template <class K, class V, class Hash, class Eq>
bool LocalCache<K, V, Hash, Eq>::write(const K& key, V* value, std::optional<Duration> ttl,
                                       Write mode, Cached<V>* handle) {
  const Duration lifetime = ttl.value_or(options_.default_ttl);
  if (lifetime <= Duration::zero()) {
    // Nothing to keep; a stale entry must not survive a write either.
    if (mode == Write::kAlways) erase(key);
    if (handle != nullptr) {
      // A node that is never linked: the handle adopts its only reference.
      detail::NodeHeader* lone = make_node(hash_of(key), key, value, Duration::max());
      *handle = Cached<V>(lone, value == nullptr ? nullptr : node_of(lone)->value(), &destroy);
    }
    return false;
  }
  const std::uint32_t hash = hash_of(key);
  const std::uint32_t weight = (weigher_ && value != nullptr) ? weigher_(key, *value) : 1;
  detail::NodeHeader* fresh = make_node(hash, key, value, lifetime);
  fresh->weight = weight;
  if (handle != nullptr) {
    // Taken before the node is published: eviction may release the cache's reference at once.
    fresh->refs.fetch_add(1, std::memory_order_relaxed);
    *handle = Cached<V>(fresh, value == nullptr ? nullptr : node_of(fresh)->value(), &destroy);
  }

  std::vector<Removal> removals;
  bool inserted = true;
  {
    std::lock_guard lock(writer_mutex_);
    drain_reads();
    detail::NodeHeader* old =
        table_.find_locked(hash, [&](detail::NodeHeader* h) { return eq_(node_of(h)->key, key); });
    if (old != nullptr && mode == Write::kIfAbsent && !old->negative() &&
        !(old->timed() && detail::timer_links(old)->expires_at_ns <= now_ns())) {
      inserted = false;
    } else {
      if (old != nullptr) {
        // An entry that had already expired leaves as expired, not as replaced.
        const RemovalCause cause =
            old->timed() && detail::timer_links(old)->expires_at_ns <= now_ns()
                ? RemovalCause::kExpired
                : RemovalCause::kReplaced;
        table_.replace(old, fresh);
        policy_.substitute(old, fresh);
        if (old->timed()) {
          timers_.deschedule(old);
          --timed_entries_;
        }
        retire(old, cause);
        fresh->state = detail::NodeHeader::kLive;
        policy_.record_access(fresh);
      } else {
        if (auto buckets = table_.insert(fresh)) {
          retired_buckets_.emplace_back(std::move(buckets), readers_.epoch());
        }
        fresh->state = detail::NodeHeader::kLive;
        policy_.add(fresh);
      }
      if (fresh->timed()) {
        timers_.schedule(fresh);
        ++timed_entries_;
      }
      puts_.fetch_add(1, std::memory_order_relaxed);
    }
    maintain();
    removals.swap(pending_);
  }
  if (!inserted) destroy(fresh);
  notify(removals);
  return inserted;
}

template <class K, class V, class Hash, class Eq>
bool LocalCache<K, V, Hash, Eq>::erase(const K& key) {
  const std::uint32_t hash = hash_of(key);
  std::vector<Removal> removals;
  bool found = false;
  {
    std::lock_guard lock(writer_mutex_);
    drain_reads();
    detail::NodeHeader* n =
        table_.find_locked(hash, [&](detail::NodeHeader* h) { return eq_(node_of(h)->key, key); });
    if (n != nullptr) {
      found = true;
      unlink(n, RemovalCause::kExplicit);
    }
    maintain();
    removals.swap(pending_);
  }
  notify(removals);
  return found;
}

template <class K, class V, class Hash, class Eq>
std::size_t LocalCache<K, V, Hash, Eq>::erase_if(
    const std::function<bool(const K&, const V*)>& pred) {
  std::vector<Removal> removals;
  std::size_t count = 0;
  {
    std::lock_guard lock(writer_mutex_);
    drain_reads();
    scratch_.clear();
    table_.for_each([&](detail::NodeHeader* h) {
      if (pred(node_of(h)->key, h->negative() ? nullptr : node_of(h)->value())) {
        scratch_.push_back(h);
      }
    });
    for (detail::NodeHeader* h : scratch_) unlink(h, RemovalCause::kExplicit);
    count = scratch_.size();
    maintain();
    removals.swap(pending_);
  }
  notify(removals);
  return count;
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::clear() {
  erase_if([](const K&, const V*) { return true; });
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::cleanup() {
  std::vector<Removal> removals;
  {
    std::lock_guard lock(writer_mutex_);
    maintain(/*force_reclaim=*/true);
    removals.swap(pending_);
  }
  notify(removals);
}

template <class K, class V, class Hash, class Eq>
LocalCacheStats LocalCache<K, V, Hash, Eq>::stats() const {
  const detail::Readers::Counts reads = readers_.counts();
  LocalCacheStats s;
  s.hits = reads.hits;
  s.negative_hits = reads.negative_hits;
  s.misses = reads.misses;
  s.puts = puts_.load(std::memory_order_relaxed);
  s.evictions_size = evictions_size_.load(std::memory_order_relaxed);
  s.evictions_expired = evictions_expired_.load(std::memory_order_relaxed);
  s.removals_explicit = removals_explicit_.load(std::memory_order_relaxed);
  s.replacements = replacements_.load(std::memory_order_relaxed);
  s.listener_failures = listener_failures_.load(std::memory_order_relaxed);
  return s;
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::count_removal(RemovalCause cause) {
  switch (cause) {
    case RemovalCause::kSize:
      evictions_size_.fetch_add(1, std::memory_order_relaxed);
      break;
    case RemovalCause::kExpired:
      evictions_expired_.fetch_add(1, std::memory_order_relaxed);
      break;
    case RemovalCause::kExplicit:
      removals_explicit_.fetch_add(1, std::memory_order_relaxed);
      break;
    case RemovalCause::kReplaced:
      replacements_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::unlink(detail::NodeHeader* node, RemovalCause cause,
                                        Dequeued already) {
  assert(node->state == detail::NodeHeader::kLive);
  table_.remove(node);
  if (already != Dequeued::kByPolicy) policy_.remove(node);
  if (node->timed()) {
    if (already != Dequeued::kByTimers) timers_.deschedule(node);
    --timed_entries_;
  }
  retire(node, cause);
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::retire(detail::NodeHeader* node, RemovalCause cause) {
  node->state = detail::NodeHeader::kRemoved;
  retired_nodes_.emplace_back(node, readers_.epoch());
  count_removal(cause);
  if (listener_) {
    node->refs.fetch_add(1, std::memory_order_relaxed);
    pending_.push_back({node, cause});
  }
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::drain_reads() {
  // Two passes so the cache misses of a batch overlap: first ask for every node and its
  // sketch line, then apply the hits in order.
  drained_.clear();
  readers_.drain([this](detail::NodeHeader* n) {
    __builtin_prefetch(n, 1);
    drained_.push_back(n);
  });
  for (detail::NodeHeader* n : drained_) policy_.prefetch(n);
  for (detail::NodeHeader* n : drained_) policy_.record_access(n);
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::maintain(bool force_reclaim) {
  drain_reads();
  if (timed_entries_ > 0) {
    scratch_.clear();
    timers_.advance(now_ns(), scratch_);
    for (detail::NodeHeader* n : scratch_) unlink(n, RemovalCause::kExpired, Dequeued::kByTimers);
  }
  scratch_.clear();
  policy_.evict(scratch_);
  for (detail::NodeHeader* n : scratch_) unlink(n, RemovalCause::kSize, Dequeued::kByPolicy);
  weight_.store(policy_.weight(), std::memory_order_relaxed);
  reclaim(force_reclaim);
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::reclaim(bool force) {
  if (retired_nodes_.empty() && retired_buckets_.empty()) return;
  // Batch reclamation: sweeping the rings costs a pass over every used stripe.
  // (Each attempt costs a membarrier system call: a few microseconds.)
  constexpr std::size_t kReclaimBatch = 256;
  if (!force && retired_nodes_.size() < kReclaimBatch && retired_buckets_.empty()) return;
  readers_.try_advance(2);
  const std::uint64_t safe_before = readers_.epoch() - 1;  // retired at epoch < E - 1
  auto node_end = std::find_if(retired_nodes_.begin(), retired_nodes_.end(),
                               [&](const auto& r) { return r.second >= safe_before; });
  auto bucket_end = std::find_if(retired_buckets_.begin(), retired_buckets_.end(),
                                 [&](const auto& r) { return r.second >= safe_before; });
  if (node_end == retired_nodes_.begin() && bucket_end == retired_buckets_.begin()) return;
  // Every reader that could have seen these nodes has left; its notes are in the rings.
  readers_.sweep([this](detail::NodeHeader* n) { policy_.record_access(n); });
  release_nodes(retired_nodes_.begin(), node_end, [](const auto& r) { return r.first; });
  retired_nodes_.erase(retired_nodes_.begin(), node_end);
  retired_buckets_.erase(retired_buckets_.begin(), bucket_end);
}

template <class K, class V, class Hash, class Eq>
template <class It, class NodeOf>
void LocalCache<K, V, Hash, Eq>::release_nodes(It begin, It end, NodeOf node_of_item) {
  // Handles that hold a node through a hazard slot get a counted reference first (the
  // slots cannot gain these nodes any more: they are unreachable since a grace period).
  std::vector<detail::NodeHeader*> parked;
  detail::hazard_snapshot(parked);
  std::sort(parked.begin(), parked.end());
  for (It it = begin; it != end; ++it) {
    detail::NodeHeader* n = node_of_item(*it);
    if (std::binary_search(parked.begin(), parked.end(), n)) detail::convert_hazards(n);
    detail::release_node(n, &destroy);
  }
}

template <class K, class V, class Hash, class Eq>
void LocalCache<K, V, Hash, Eq>::notify(std::vector<Removal>& removals) {
  for (Removal& r : removals) {
    Cached<V> departing(r.node, r.node->negative() ? nullptr : node_of(r.node)->value(), &destroy);
    try {
      listener_(node_of(r.node)->key, departing, r.cause);
    } catch (...) {
      listener_failures_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  removals.clear();
}

}  // namespace tiercache
