// What LocalCache knows about its lock-free readers: where each reader thread announces
// that it is inside a lookup (epoch-based reclamation), leaves notes of what it hit (the
// read ring) and counts hits and misses. Internal.
//
// One ReaderRecord per reader thread and cache, owned by that thread alone: the thread's
// dense index (thread_index()) picks it, so a reader writes its record with plain stores,
// never a locked instruction, and no other thread writes the same cache line. Records are
// allocated lazily, 64 at a time, the first time a thread with an index in that chunk
// reads. Threads beyond kMaxOwnedReaders (more than 4,096 alive at once) share overflow
// records under a per-record spin lock -- correct, only slower.
//
// Epoch-based reclamation (Fraser, "Practical lock-freedom", 2004, ch. 5) with asymmetric
// fences (the technique of Linux's membarrier(2) and of liburcu): a reader announces the
// epoch it saw with a plain store and no fence; a writer that wants to advance the epoch
// first runs membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which puts a full fence into
// every running thread of the process, then scans the announcements. So either the writer
// sees a reader's announcement, or that reader's lookups start after everything the
// writer unlinked before the barrier. Where membarrier is unavailable the reader pays a
// full fence instead (chosen once per process).
//
// Invariants:
//  - A reader inside a lookup has announced = the epoch it read (non-zero); outside, 0.
//  - try_advance() moves the epoch from E to E + 1 only when no reader is announced with
//    an epoch below E. A node retired while the epoch was R is unreachable by any lookup
//    announced at R + 1 or later, so it may be reclaimed once epoch() >= R + 2.
//  - Writers (try_advance, drain, sweep) are serialised by the cache's writer lock.
//
// Read rings are *lossy*, as Caffeine's read buffers: a full ring drops the note (and asks
// for a drain); a reader never waits. A ring slot may name a node removed since; such a
// node is freed only after a grace period *and* a sweep() that cleared every slot.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tiercache/detail/lazy_chunks.hpp"
#include "tiercache/detail/node.hpp"

namespace tiercache::detail {

inline constexpr std::size_t kCacheLine = 64;

// Dense, unique index of the calling thread among live threads, assigned on first use and
// recycled when the thread exits.
std::size_t assign_thread_index();
inline std::size_t thread_index() {
  thread_local std::size_t index = SIZE_MAX;  // constant-initialised: no TLS guard
  if (index == SIZE_MAX) [[unlikely]]
    index = assign_thread_index();
  return index;
}

// A full memory fence. (GCC's TSan does not support std::atomic_thread_fence and warns; a
// locked read-modify-write on a local is a full fence on x86 and arm64 alike.)
inline void full_fence() {
#if defined(__SANITIZE_THREAD__)
  std::atomic<int> local{0};
  local.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// True when membarrier(2) private expedited is usable (then readers skip their fence).
bool asymmetric_fences_available();
// The writer side of the asymmetric fence: a full fence on every thread of the process.
void heavy_fence();

struct alignas(kCacheLine) ReaderRecord {
  static constexpr std::uint32_t kRingSlots = 16;  // a power of two

  std::atomic<std::uint64_t> announced{0};
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> negative_hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint32_t> tail{0};   // written by the owner
  std::atomic<std::uint32_t> head{0};   // written by the drainer
  std::atomic<bool> busy{false};        // overflow records only: the spin lock
  std::atomic<bool> registered{false};  // its bit is set in the chunk's `used` mask
  std::atomic<NodeHeader*> ring[kRingSlots] = {};

  // Owner only: +1 without a locked instruction.
  static void bump(std::atomic<std::uint64_t>& counter) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // Owner only: leaves a note that `node` was hit; false if the ring is full.
  bool record(NodeHeader* node) noexcept {
    const std::uint32_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) >= kRingSlots) return false;
    ring[t & (kRingSlots - 1)].store(node, std::memory_order_relaxed);
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
};

class Readers {
 public:
  static constexpr std::size_t kChunk = 64;
  static constexpr std::size_t kMaxOwnedReaders = 4096;
  static constexpr std::size_t kOverflowRecords = kChunk;

  Readers();
  Readers(const Readers&) = delete;
  Readers& operator=(const Readers&) = delete;

  // A lookup in progress: the calling thread's record, announced at the current epoch.
  class Lookup {
   public:
    Lookup(const Lookup&) = delete;
    Lookup& operator=(const Lookup&) = delete;
    ~Lookup() {
      record_->announced.store(0, std::memory_order_release);
      if (shared_) record_->busy.store(false, std::memory_order_release);
    }
    ReaderRecord& record() const { return *record_; }

   private:
    friend class Readers;
    Lookup(ReaderRecord* record, bool shared) : record_(record), shared_(shared) {}
    ReaderRecord* record_;
    bool shared_;
  };

  // Starts a lookup on the calling thread (announces the epoch).
  Lookup begin() {
    const std::size_t index = thread_index();
    ReaderRecord* r = nullptr;
    bool shared = false;
    Chunk* c = nullptr;
    if (index < kMaxOwnedReaders) [[likely]] {
      c = &chunks_.at(index / kChunk);
      r = &c->records[index % kChunk];
    } else {
      c = overflow_.get();
      r = &c->records[index % kOverflowRecords];
      shared = true;
      while (r->busy.exchange(true, std::memory_order_acquire)) {
      }
    }
    if (!r->registered.load(std::memory_order_relaxed)) [[unlikely]] {
      // Before the first note: drains and sweeps visit only registered records.
      c->used.fetch_or(std::uint64_t{1} << (index % kChunk), std::memory_order_seq_cst);
      r->registered.store(true, std::memory_order_relaxed);
    }
    // Release (a plain store on x86): a writer that reads this announcement also sees the
    // end of this thread's previous lookup (and TSan can tell).
    r->announced.store(epoch_.load(std::memory_order_relaxed), std::memory_order_release);
    if (fence_in_readers_) {
      full_fence();
    } else {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    }
    return Lookup(r, shared);
  }

  std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }

  // Advances the epoch, up to `steps` times, while no lookup announced before the current
  // epoch is still running; returns how many steps it took. One heavy fence serves all
  // steps: a lookup whose announcement the scan misses started after that fence, so it
  // cannot reach anything unlinked before this call. REQUIRES: writer lock.
  int try_advance(int steps = 1);

  // Hands every note waiting in the rings to f(node) (live nodes only) and empties them.
  // REQUIRES: writer lock.
  template <class F>
  void drain(F&& f) {
    for_each_record([&](ReaderRecord& r) {
      const std::uint32_t t = r.tail.load(std::memory_order_acquire);
      std::uint32_t h = r.head.load(std::memory_order_relaxed);
      if (t - h > ReaderRecord::kRingSlots) h = t - ReaderRecord::kRingSlots;
      for (; h != t; ++h) {
        NodeHeader* n =
            r.ring[h & (ReaderRecord::kRingSlots - 1)].exchange(nullptr, std::memory_order_acquire);
        if (n != nullptr && n->state == NodeHeader::kLive) f(n);
      }
      r.head.store(t, std::memory_order_release);
    });
  }

  // Drains, then clears every slot whatever head and tail say: after a grace period, no
  // slot names a node removed before it. REQUIRES: writer lock.
  template <class F>
  void sweep(F&& f) {
    drain(f);
    for_each_record([&](ReaderRecord& r) {
      for (auto& slot : r.ring) {
        NodeHeader* n = slot.exchange(nullptr, std::memory_order_acquire);
        if (n != nullptr && n->state == NodeHeader::kLive) f(n);
      }
    });
  }

  struct Counts {
    std::uint64_t hits = 0, negative_hits = 0, misses = 0;
  };
  Counts counts() const;

 private:
  struct Chunk {
    ReaderRecord records[kChunk];
    std::atomic<std::uint64_t> used{0};  // bit i: records[i] has been used
  };
  static constexpr std::size_t kChunks = kMaxOwnedReaders / kChunk;

  // Visits every record ever used, in every allocated chunk and the overflow chunk.
  template <class F>
  void for_each_record(F&& f) const {
    auto visit = [&](Chunk& chunk) {
      std::uint64_t used = chunk.used.load(std::memory_order_acquire);
      while (used != 0) {
        f(chunk.records[static_cast<std::size_t>(__builtin_ctzll(used))]);
        used &= used - 1;
      }
    };
    chunks_.for_each(visit);
    visit(*overflow_);
  }

  const bool fence_in_readers_;
  alignas(kCacheLine) std::atomic<std::uint64_t> epoch_{2};
  LazyChunks<Chunk, kChunks> chunks_;
  std::unique_ptr<Chunk> overflow_;
};

}  // namespace tiercache::detail
