#include "tiercache/detail/hash_table.hpp"

#include <algorithm>
#include <bit>
#include <cassert>

namespace tiercache::detail {

namespace {
// Load factor (entries per bucket) past which the table doubles.
constexpr std::size_t kMaxLoadFactor = 1;
constexpr std::size_t kMinBuckets = 16;
}  // namespace

std::unique_ptr<HashTable::Buckets> HashTable::make_buckets(std::size_t count) {
  auto b = std::make_unique<Buckets>();
  b->mask = count - 1;
  b->slots = std::make_unique<std::atomic<std::uintptr_t>[]>(count);
  for (std::size_t i = 0; i < count; ++i) b->slots[i].store(0, std::memory_order_relaxed);
  return b;
}

HashTable::HashTable(std::size_t expected_entries) {
  // +1: a full cache briefly holds one entry more inside a put (before eviction).
  const std::size_t count = std::bit_ceil(std::max(expected_entries + 1, kMinBuckets));
  buckets_.store(make_buckets(count).release(), std::memory_order_release);
}

HashTable::~HashTable() { delete buckets_.load(std::memory_order_relaxed); }

// New nodes go to the end of their chain: entries that have stayed longer (under Zipf-like
// traffic, the popular ones, which miss first) stay ahead of newcomers, so the hottest
// lookups read the fewest nodes. The link to the previous last node gains kLinkMore after the
// new node is reachable: until then a reader may stop before it, a miss of the key being
// inserted. REQUIRES: writer lock; node->chain == 0.
void HashTable::append(std::atomic<std::uintptr_t>& head, NodeHeader* node,
                       std::memory_order order) noexcept {
  std::atomic<std::uintptr_t>* to_last = nullptr;  // the link to the current last node
  std::atomic<std::uintptr_t>* end = &head;        // the null link after it
  for (std::uintptr_t l = end->load(std::memory_order_relaxed); l != 0;
       l = end->load(std::memory_order_relaxed)) {
    to_last = end;
    end = &link_node(l)->chain;
  }
  end->store(make_link(node), order);
  if (to_last != nullptr) {
    to_last->store(to_last->load(std::memory_order_relaxed) | kLinkMore, order);
  }
}

std::atomic<std::uintptr_t>* HashTable::link_to_owner_of(std::atomic<std::uintptr_t>* next_of,
                                                         std::uint32_t hash) const noexcept {
  const Buckets* buckets = buckets_.load(std::memory_order_relaxed);
  std::atomic<std::uintptr_t>* link = &buckets->slot(hash);
  if (link == next_of) return nullptr;
  for (;;) {
    NodeHeader* n = link_node(link->load(std::memory_order_relaxed));
    assert(n != nullptr && "not a link of this chain");
    if (&n->chain == next_of) return link;
    link = &n->chain;
  }
}

std::atomic<std::uintptr_t>* HashTable::predecessor_slot(NodeHeader* node) const noexcept {
  const Buckets* buckets = buckets_.load(std::memory_order_relaxed);
  std::atomic<std::uintptr_t>* link = &buckets->slot(node->hash);
  for (NodeHeader* n = link_node(link->load(std::memory_order_relaxed)); n != node;
       n = link_node(link->load(std::memory_order_relaxed))) {
    assert(n != nullptr && "node not linked");
    link = &n->chain;
  }
  return link;
}

std::unique_ptr<HashTable::Buckets> HashTable::insert(NodeHeader* node) {
  Buckets* buckets = buckets_.load(std::memory_order_relaxed);
  std::unique_ptr<Buckets> retired;
  const std::size_t count = size_.load(std::memory_order_relaxed) + 1;
  if (count > (buckets->mask + 1) * kMaxLoadFactor) {
    // Grow: relink every node into a table twice as large, under the resize sequence.
    std::unique_ptr<Buckets> grown = make_buckets((buckets->mask + 1) * 2);
    resize_seq_.fetch_add(1, std::memory_order_acq_rel);
    for (std::size_t i = 0; i <= buckets->mask; ++i) {
      NodeHeader* n = link_node(buckets->slots[i].load(std::memory_order_relaxed));
      while (n != nullptr) {
        NodeHeader* next = link_node(n->chain.load(std::memory_order_relaxed));
        n->chain.store(0, std::memory_order_relaxed);
        append(grown->slot(n->hash), n, std::memory_order_relaxed);
        n = next;
      }
    }
    buckets_.store(grown.release(), std::memory_order_release);
    resize_seq_.fetch_add(1, std::memory_order_release);
    retired.reset(buckets);
    buckets = buckets_.load(std::memory_order_relaxed);
  }
  node->chain.store(0, std::memory_order_relaxed);
  append(buckets->slot(node->hash), node, std::memory_order_release);
  size_.store(count, std::memory_order_relaxed);
  return retired;
}

void HashTable::replace(NodeHeader* old, NodeHeader* fresh) noexcept {
  assert(old->hash == fresh->hash);
  std::atomic<std::uintptr_t>* link = predecessor_slot(old);
  fresh->chain.store(old->chain.load(std::memory_order_relaxed), std::memory_order_relaxed);
  link->store(make_link(fresh), std::memory_order_release);
}

void HashTable::remove(NodeHeader* node) noexcept {
  std::atomic<std::uintptr_t>* link = predecessor_slot(node);
  const std::uintptr_t next = node->chain.load(std::memory_order_relaxed);
  link->store(next, std::memory_order_release);
  if (next == 0) {
    // `node` was the last: its predecessor, if any, is the last now.
    if (std::atomic<std::uintptr_t>* to_previous = link_to_owner_of(link, node->hash)) {
      to_previous->store(to_previous->load(std::memory_order_relaxed) & ~kLinkMore,
                         std::memory_order_release);
    }
  }
  size_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace tiercache::detail
