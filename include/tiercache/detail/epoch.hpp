// Epoch-based reclamation for LocalCache's lock-free readers. Internal.
//
// Readers walk the hash table without locks. A writer that unlinks a node (or replaces a
// bucket array) must not free it while a reader may still be looking at it, so it
// *retires* it with the current epoch and frees it only once the epoch has advanced twice
// (Fraser, "Practical lock-freedom", 2004, ch. 5; the two-parity counter variant of
// McKenney's QSBR keeps the reader side to one atomic add on a per-thread line).
//
// Invariants:
//  - A reader inside a Guard is counted in stripe_[s].active[e & 1] for the epoch e it
//    observed after incrementing (it re-checks and retries if the epoch moved).
//  - try_advance() moves the epoch from e to e + 1 only when no reader is counted in the
//    parity of e - 1, so when the epoch reads E, no reader that entered before E - 1 began
//    is still inside. Something retired while the epoch was R is unreachable by readers
//    that entered at R + 1 or later, hence free to reclaim once epoch() >= R + 2.
//  - Writers (retire, try_advance) are serialised by the cache's writer lock.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tiercache::detail {

inline constexpr std::size_t kCacheLine = 64;

// Number of reader stripes. Threads are spread over stripes round-robin; two threads on
// one stripe stay correct, they only share a cache line.
inline constexpr std::size_t kReaderStripes = 64;

// This thread's stripe in [0, kReaderStripes): assigned round-robin on first use.
std::size_t thread_stripe() noexcept;

class EpochDomain {
 public:
  class Guard {
   public:
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { counter_->fetch_sub(1, std::memory_order_release); }

   private:
    friend class EpochDomain;
    explicit Guard(std::atomic<std::uint64_t>* counter) : counter_(counter) {}
    std::atomic<std::uint64_t>* counter_;
  };

  // Enters a read-side critical section for the calling thread (on stripe `stripe`).
  Guard enter(std::size_t stripe) noexcept {
    Stripe& s = stripes_[stripe];
    for (;;) {
      const std::uint64_t e = epoch_.load(std::memory_order_seq_cst);
      std::atomic<std::uint64_t>& counter = s.active[e & 1];
      counter.fetch_add(1, std::memory_order_seq_cst);
      if (epoch_.load(std::memory_order_seq_cst) == e) return Guard(&counter);
      counter.fetch_sub(1, std::memory_order_release);
    }
  }

  std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }

  // Advances the epoch if every reader of the previous epoch has left. Returns whether it
  // did. REQUIRES: the caller holds the writer lock.
  bool try_advance() noexcept;

 private:
  struct alignas(kCacheLine) Stripe {
    std::atomic<std::uint64_t> active[2] = {0, 0};
  };
  alignas(kCacheLine) std::atomic<std::uint64_t> epoch_{2};
  Stripe stripes_[kReaderStripes];
};

}  // namespace tiercache::detail
