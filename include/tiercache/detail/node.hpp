// The header every LocalCache entry starts with. Internal: not part of the public API.
//
// An entry is one heap block: [TimerLinks (only if the entry has a TTL)] NodeHeader K V.
// The header holds what the type-erased parts of the cache (hash table, eviction policy,
// timer wheel, epoch reclamation) need, so those are compiled once, not per <K, V>.
//
// Field ownership:
//   refs            atomic; readers pin a node by incrementing it (see Cached<V>)
//   clock           atomic; readers mark protected nodes referenced (see below)
//   hash, flags     written before the node is published, immutable afterwards
//   chain           atomic; next node in the hash bucket (a Link), written under the writer lock
//   everything else policy state, read and written only under the writer lock

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tiercache::detail {

struct NodeHeader {
  // Layout: what only the policy touches first; what every lookup reads last, right before
  // the key and value that follow the header, so a lookup's bytes are contiguous (hash to
  // value: 32 bytes for 8-byte keys and values) and usually share one cache line.

  // Links of the policy queue the node is in (window, probation, protected or LRU).
  NodeHeader* prev = nullptr;
  NodeHeader* next = nullptr;
  // Counted references: one held by the cache from insertion until the node is reclaimed
  // (a grace period after removal), plus one per counted Cached<V> handle.
  std::atomic<std::uint32_t> refs{1};
  // Weight charged against the cache's bound (1 when bounded by entry count).
  std::uint32_t weight = 1;
  // Seeded hash of the key (see LocalCache::hash_of).
  std::uint32_t hash = 0;
  // Which policy queue the node is in (Queue below).
  std::uint8_t queue = 0;
  // Lifecycle (State below).
  std::uint8_t state = 0;
  // Immutable flags (kNegative, kTimed, kSampled).
  std::uint8_t flags = 0;
  // CLOCK reference state of the protected queue, the one policy field readers write:
  // kNotProtected -> readers leave a note in their read ring; kUnreferenced -> the first
  // reader to hit it flips it to kReferenced (and leaves no note); kReferenced -> readers
  // do nothing. The policy gives referenced nodes a second chance instead of demoting them.
  std::atomic<std::uint8_t> clock{0};
  // Next node in the same hash bucket, as a Link (below).
  std::atomic<std::uintptr_t> chain{0};

  static constexpr std::uint8_t kNegative = 1;  // a "known absent" entry, no value stored
  static constexpr std::uint8_t kTimed = 2;     // preceded in memory by TimerLinks
  static constexpr std::uint8_t kSampled = 4;   // in the policy tuner's sample when created

  enum State : std::uint8_t { kNew = 0, kLive = 1, kRemoved = 2 };
  enum Clock : std::uint8_t { kNotProtected = 0, kUnreferenced = 1, kReferenced = 2 };

  bool negative() const { return (flags & kNegative) != 0; }
  bool timed() const { return (flags & kTimed) != 0; }
};

// A hash-table link: a node's address, with two facts about that node in the low bits its
// alignment leaves free, so that a lookup can often decide without touching the node (on a
// large cache every node touched is a cache miss):
//   bits 0-1  the node's tag: the top bits of its hash. A node whose tag differs cannot hold
//             the key looked up: its key is not compared.
//   bit 2     kLinkMore: the node has a successor in its chain. A node that neither matches
//             the tag nor has a successor ends the lookup unread.
// 0 is the null link.
inline constexpr unsigned kLinkTagBits = 2;
inline constexpr std::uintptr_t kLinkTagMask = (std::uintptr_t{1} << kLinkTagBits) - 1;
inline constexpr std::uintptr_t kLinkMore = std::uintptr_t{1} << kLinkTagBits;
inline constexpr std::uintptr_t kLinkFlags = kLinkTagMask | kLinkMore;
static_assert(alignof(NodeHeader) > kLinkFlags, "the link's flags need the low address bits");

// The tag of a hash: its top bits (the bucket index uses the low ones).
inline constexpr std::uintptr_t link_tag(std::uint32_t hash) { return hash >> (32 - kLinkTagBits); }
// The link to `node` (its tag; kLinkMore if its chain goes on). Null for nullptr.
inline std::uintptr_t make_link(NodeHeader* node) {
  if (node == nullptr) return 0;
  const bool more = node->chain.load(std::memory_order_relaxed) != 0;
  return reinterpret_cast<std::uintptr_t>(node) | link_tag(node->hash) | (more ? kLinkMore : 0);
}
inline NodeHeader* link_node(std::uintptr_t link) {
  // A tagged pointer: the integer round trip is the point.
  return reinterpret_cast<NodeHeader*>(link & ~kLinkFlags);  // NOLINT(performance-no-int-to-ptr)
}

// Present in front of the header of entries that expire. Offset from the header is
// TimerLinks::kOffset for every node type (LocalCache checks alignment statically).
struct TimerLinks {
  // Absolute expiry instant, nanoseconds since the clock's epoch.
  std::int64_t expires_at_ns = 0;
  NodeHeader* prev = nullptr;
  NodeHeader* next = nullptr;

  static constexpr std::size_t kOffset = 24;
};
static_assert(sizeof(TimerLinks) == TimerLinks::kOffset);
static_assert(sizeof(NodeHeader) == 40);

inline TimerLinks* timer_links(NodeHeader* node) {
  return reinterpret_cast<TimerLinks*>(reinterpret_cast<char*>(node) - TimerLinks::kOffset);
}
inline const TimerLinks* timer_links(const NodeHeader* node) {
  return reinterpret_cast<const TimerLinks*>(reinterpret_cast<const char*>(node) -
                                             TimerLinks::kOffset);
}

// Type-erased destruction of a node whose last reference was dropped.
using NodeDestroyer = void (*)(NodeHeader*) noexcept;

// Drops one reference; destroys the node when it was the last.
inline void release_node(NodeHeader* node, NodeDestroyer destroy) noexcept {
  if (node->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(node);
}

}  // namespace tiercache::detail
