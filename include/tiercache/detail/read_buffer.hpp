// Where readers leave a note of what they hit, so the eviction policy learns about hits
// without readers taking its lock. Internal.
//
// One small ring per reader stripe (see thread_stripe()), written by the stripe's reader
// with plain stores and drained by whoever holds the cache's writer lock. The ring is
// *lossy*: when it is full the reader drops its note (and asks for a drain), exactly as
// Caffeine's read buffers do -- a policy that sees most hits is as good as one that sees
// all, and a reader never waits. Two threads sharing a stripe may overwrite each other's
// note; that too only loses a note.
//
// Safety of the node pointers kept in slots: a slot may hold a node that has since been
// removed. Removed nodes are not freed before a grace period has passed *and* sweep() has
// cleared every slot (LocalCache::reclaim), so a drain never touches freed memory; the
// drain skips nodes whose state is not kLive.
//
// The per-stripe hit/miss counters live here too: they are written by the same thread on
// the same cache lines, so statistics cost readers no shared writes.

#pragma once

#include <atomic>
#include <cstdint>

#include "tiercache/detail/epoch.hpp"
#include "tiercache/detail/node.hpp"

namespace tiercache::detail {

class ReadBuffer {
 public:
  static constexpr std::uint32_t kSlots = 16;  // per stripe; a power of two

  // Leaves a note that `node` was hit. Returns false if the ring was full (note dropped):
  // the caller should try to drain.
  bool record(std::size_t stripe, NodeHeader* node) noexcept {
    Stripe& s = stripes_[stripe];
    // Marked before the first store, so sweep() never misses a slot that was written.
    if (!s.used.load(std::memory_order_relaxed)) mark_used(stripe);
    const std::uint32_t tail = s.tail.load(std::memory_order_relaxed);
    if (tail - s.head.load(std::memory_order_acquire) >= kSlots) return false;
    s.slots[tail & (kSlots - 1)].store(node, std::memory_order_relaxed);
    s.tail.store(tail + 1, std::memory_order_release);
    return true;
  }

  // Number of notes waiting in `stripe`.
  std::uint32_t pending(std::size_t stripe) const noexcept {
    const Stripe& s = stripes_[stripe];
    return s.tail.load(std::memory_order_relaxed) - s.head.load(std::memory_order_relaxed);
  }

  // Hands every waiting note to f(node) and empties the rings. REQUIRES: writer lock.
  template <class F>
  void drain(F&& f) {
    for_each_used([&](Stripe& s) {
      const std::uint32_t tail = s.tail.load(std::memory_order_acquire);
      std::uint32_t head = s.head.load(std::memory_order_relaxed);
      if (tail - head > kSlots) head = tail - kSlots;  // a racing writer moved tail oddly
      for (; head != tail; ++head) {
        NodeHeader* n = s.slots[head & (kSlots - 1)].exchange(nullptr, std::memory_order_acquire);
        if (n != nullptr && n->state == NodeHeader::kLive) f(n);
      }
      s.head.store(tail, std::memory_order_release);
    });
  }

  // Drains, then clears every slot, whatever head and tail say. After a grace period this
  // guarantees no slot refers to a node removed before it. REQUIRES: writer lock.
  template <class F>
  void sweep(F&& f) {
    drain(f);
    for_each_used([&](Stripe& s) {
      for (auto& slot : s.slots) {
        NodeHeader* n = slot.exchange(nullptr, std::memory_order_acquire);
        if (n != nullptr && n->state == NodeHeader::kLive) f(n);
      }
    });
  }

  void count_hit(std::size_t stripe) noexcept { bump(stripes_[stripe].hits); }
  void count_negative_hit(std::size_t stripe) noexcept { bump(stripes_[stripe].negative_hits); }
  void count_miss(std::size_t stripe) noexcept { bump(stripes_[stripe].misses); }

  struct Counts {
    std::uint64_t hits = 0, negative_hits = 0, misses = 0;
  };
  Counts counts() const noexcept {
    Counts c;
    for (const Stripe& s : stripes_) {
      c.hits += s.hits.load(std::memory_order_relaxed);
      c.negative_hits += s.negative_hits.load(std::memory_order_relaxed);
      c.misses += s.misses.load(std::memory_order_relaxed);
    }
    return c;
  }

 private:
  struct alignas(kCacheLine) Stripe {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> negative_hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint32_t> tail{0};
    std::atomic<std::uint32_t> head{0};
    std::atomic<bool> used{false};
    std::atomic<NodeHeader*> slots[kSlots] = {};
  };

  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  void mark_used(std::size_t stripe) noexcept {
    used_mask_.fetch_or(std::uint64_t{1} << stripe, std::memory_order_seq_cst);
    stripes_[stripe].used.store(true, std::memory_order_relaxed);
  }
  template <class F>
  void for_each_used(F&& f) {
    std::uint64_t mask = used_mask_.load(std::memory_order_acquire);
    while (mask != 0) {
      const int i = __builtin_ctzll(mask);
      mask &= mask - 1;
      f(stripes_[static_cast<std::size_t>(i)]);
    }
  }

  static_assert(kReaderStripes <= 64, "used_mask_ has one bit per stripe");
  alignas(kCacheLine) std::atomic<std::uint64_t> used_mask_{0};
  Stripe stripes_[kReaderStripes];
};

}  // namespace tiercache::detail
