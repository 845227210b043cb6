// The index of LocalCache: a chained hash table with lock-free lookups. Internal.
//
// Readers call find() inside an EpochDomain guard and take no lock; every mutation
// (insert, replace, remove, grow) happens under the cache's writer lock. Nodes are linked
// at the tail of their bucket with a release store, so a reader that sees a node sees it
// fully built. An unlinked node keeps its `chain` pointer, so a reader standing on it still
// reaches the rest of the chain; it is freed only after a grace period (EpochDomain).
//
// Links carry two bits of the linked node's hash and whether its chain goes on (see the link
// format in detail/node.hpp): a lookup reads a node only if its tag matches or the chain goes
// on past it, so most misses read no node at all.
//
// Growing relinks nodes in place. While that happens (`resize_seq_` odd) or if it happened
// during a lookup, a reader that did not find its key reports a miss rather than waiting:
// a cache may always miss, and growth happens O(log n) times. A table sized for an entry
// bound at construction never grows.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tiercache/detail/node.hpp"

namespace tiercache::detail {

class HashTable {
 public:
  // A bucket array: `mask + 1` slots (a power of two).
  struct Buckets {
    std::size_t mask;
    std::unique_ptr<std::atomic<std::uintptr_t>[]> slots;  // Links
    std::atomic<std::uintptr_t>& slot(std::uint32_t hash) const { return slots[hash & mask]; }
  };

  explicit HashTable(std::size_t expected_entries);
  ~HashTable();
  HashTable(const HashTable&) = delete;
  HashTable& operator=(const HashTable&) = delete;

  // Lock-free lookup of the first node with `hash` for which match(node) holds.
  // REQUIRES: the caller is inside an EpochDomain guard.
  template <class Match>
  NodeHeader* find(std::uint32_t hash, Match&& match) const noexcept {
    const std::uint64_t seq = resize_seq_.load(std::memory_order_acquire);
    if ((seq & 1) != 0) return nullptr;
    const Buckets* buckets = buckets_.load(std::memory_order_acquire);
    return walk(buckets->slot(hash).load(std::memory_order_acquire), hash, match,
                std::memory_order_acquire);
  }

  // Lookup under the writer lock (exact: never a spurious miss).
  template <class Match>
  NodeHeader* find_locked(std::uint32_t hash, Match&& match) const noexcept {
    const Buckets* buckets = buckets_.load(std::memory_order_relaxed);
    return walk(buckets->slot(hash).load(std::memory_order_relaxed), hash, match,
                std::memory_order_relaxed);
  }

  // Links `node` (whose hash is set). May grow the table; the replaced bucket array is
  // returned for the caller to retire, else nullptr. REQUIRES: writer lock.
  std::unique_ptr<Buckets> insert(NodeHeader* node);
  // Puts `fresh` where `old` was. REQUIRES: writer lock, old linked, same hash.
  void replace(NodeHeader* old, NodeHeader* fresh) noexcept;
  // Unlinks `node`. REQUIRES: writer lock, node linked.
  void remove(NodeHeader* node) noexcept;

  // Calls f(node) for every linked node; f must not mutate the table. REQUIRES: writer lock.
  template <class F>
  void for_each(F&& f) const {
    const Buckets* buckets = buckets_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i <= buckets->mask; ++i) {
      for (NodeHeader* n = link_node(buckets->slots[i].load(std::memory_order_relaxed));
           n != nullptr;) {
        NodeHeader* next = link_node(n->chain.load(std::memory_order_relaxed));
        f(n);
        n = next;
      }
    }
  }

  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  std::size_t bucket_count() const noexcept {
    return buckets_.load(std::memory_order_relaxed)->mask + 1;
  }

 private:
  // The chain from `link` on: the first node with `hash` for which match(node) holds. Reads
  // a node only if its tag matches or the chain goes on past it (see Link in node.hpp).
  template <class Match>
  static NodeHeader* walk(std::uintptr_t link, std::uint32_t hash, Match& match,
                          std::memory_order order) noexcept {
    const std::uintptr_t tag = link_tag(hash);
    while (link != 0) {
      NodeHeader* n = link_node(link);
      if ((link & kLinkTagMask) == tag) {
        if (n->hash == hash && match(n)) return n;
      } else if ((link & kLinkMore) == 0) {
        return nullptr;  // the last node, and not ours: never read
      }
      link = n->chain.load(order);
    }
    return nullptr;
  }

  static std::unique_ptr<Buckets> make_buckets(std::size_t count);
  // Links `node` (chain already 0) at the end of the chain that starts at `head`.
  static void append(std::atomic<std::uintptr_t>& head, NodeHeader* node,
                     std::memory_order order) noexcept;
  // The link to the node whose `chain` is `next_of`, in the chain of `hash`; nullptr if
  // next_of is the bucket's head slot (no node owns it).
  std::atomic<std::uintptr_t>* link_to_owner_of(std::atomic<std::uintptr_t>* next_of,
                                                std::uint32_t hash) const noexcept;
  std::atomic<std::uintptr_t>* predecessor_slot(NodeHeader* node) const noexcept;

  std::atomic<Buckets*> buckets_;
  std::atomic<std::uint64_t> resize_seq_{0};
  // Written by every insert and removal: kept off the line lookups read.
  alignas(64) std::atomic<std::size_t> size_{0};
};

}  // namespace tiercache::detail
