// Expiry of LocalCache entries in O(1) per entry, without scanning. Internal.
//
// A hierarchical timing wheel (Varghese & Lauck, "Hashed and Hierarchical Timing Wheels",
// SOSP 1987), with Caffeine's power-of-two spans so bucket selection is shifts and masks:
//   wheel 0: 64 buckets of 2^30 ns (~1.07 s)   -> covers ~68.7 s
//   wheel 1: 64 buckets of 2^36 ns (~68.7 s)   -> covers ~73 min
//   wheel 2: 32 buckets of 2^42 ns (~73 min)   -> covers ~39 h
//   wheel 3:  4 buckets of 2^47 ns (~39 h)     -> covers ~6.5 days
//   wheel 4:  1 bucket  (everything later; rescheduled as time passes)
// An entry sits in the bucket of the finest wheel that covers its remaining lifetime.
// advance(now) visits only the buckets whose time slot has passed: entries due are
// reported expired, the others cascade to a finer wheel. An entry is therefore reclaimed
// at most ~1 s (one wheel-0 slot) after it expired, at the next maintenance; readers never
// see it expired in the meantime because every read checks the entry's own deadline.
//
// Invariants (under the writer lock): every scheduled node is in exactly one bucket; a
// node in wheel w, bucket b has (expires_at >> shift[w]) & (buckets[w] - 1) == b unless w
// is the overflow wheel.
//
// Not thread-safe.

#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "tiercache/detail/node.hpp"

namespace tiercache::detail {

class TimerWheel {
 public:
  explicit TimerWheel(std::int64_t now_ns);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Adds a timed node (timer_links(node)->expires_at_ns set). REQUIRES: not scheduled.
  void schedule(NodeHeader* node);
  // Removes a scheduled node.
  void deschedule(NodeHeader* node);
  // Moves time to `now_ns` and appends to `expired` (descheduled) every node of the slots
  // that time has passed: each node is reported once, never before its deadline, and at
  // most one wheel-0 slot (~1.07 s) after it. Time never goes backwards (an earlier now_ns
  // is ignored).
  void advance(std::int64_t now_ns, std::vector<NodeHeader*>& expired);
  // Forgets every node (the caller frees them).
  void clear();

  std::int64_t now_ns() const { return now_ns_; }

 private:
  static constexpr std::size_t kWheels = 5;
  static constexpr std::array<unsigned, kWheels> kShift = {30, 36, 42, 47, 49};
  static constexpr std::array<std::size_t, kWheels> kBuckets = {64, 64, 32, 4, 1};

  // A bucket's sentinel: TimerLinks directly followed by a NodeHeader, like a real node.
  struct Sentinel {
    TimerLinks links;
    NodeHeader header;
  };

  NodeHeader* bucket_for(std::int64_t expires_at_ns);
  void link(NodeHeader* bucket, NodeHeader* node);
  static void unlink(NodeHeader* node);

  std::int64_t now_ns_;
  std::unique_ptr<Sentinel[]> buckets_;  // all wheels, wheel w starting at wheel_base_[w]
  std::size_t bucket_total_ = 0;
  std::array<std::size_t, kWheels> wheel_base_{};
};

}  // namespace tiercache::detail
