// Which entries LocalCache keeps: adaptive W-TinyLFU, or plain LRU for comparison.
// Internal; operates on NodeHeader so it is compiled once for every <K, V>.
//
// W-TinyLFU (Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission
// Policy", ACM ToS 2017): new entries enter a small LRU *window*; an entry pushed out of
// the window becomes a *candidate* for the main region, a segmented LRU (Karedla et al.,
// 1994) of *probation* and *protected* queues. When the cache is over its bound, the
// candidate duels the probation queue's LRU *victim*: the one the frequency sketch says was
// used more recently-often stays. A hit in probation promotes to protected; protected
// overflow demotes back to probation. One-hit wonders and scans die in the window.
//
// Adaptivity: no single split between window and main, and no single sketch memory, is
// best for every workload (recency-biased traces want a big window, loops want a tiny one
// and a long sketch memory). A PolicyTuner (policy_tuner.hpp) replays a sample of the
// requests through a few *ghost* policies with fixed tunings and moves this policy to the
// tuning whose ghost hit most recently. Policies built with a fixed tuning do not adapt.
//
// Hash flooding: an attacker could make a hot victim unbeatable; as in Caffeine, a warm
// candidate that loses is still admitted with probability 1/128 (kRandomAdmission).
//
// Invariants (all under the writer lock):
//  - every live node is in exactly one queue, recorded in node->queue;
//  - weight() == sum of the weights of queued nodes == window + probation + protected;
//  - after evict() returns, weight() <= max_weight().
//
// Not thread-safe.

#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "tiercache/detail/frequency_sketch.hpp"
#include "tiercache/detail/node.hpp"

namespace tiercache::detail {

// A doubly-linked queue of nodes in access order, oldest first, with its total weight.
class AccessQueue {
 public:
  AccessQueue() { head_.prev = head_.next = &head_; }
  AccessQueue(const AccessQueue&) = delete;
  AccessQueue& operator=(const AccessQueue&) = delete;

  bool empty() const { return head_.next == &head_; }
  NodeHeader* oldest() const { return empty() ? nullptr : head_.next; }
  // The node after `n` towards the newest end, or nullptr.
  NodeHeader* newer(NodeHeader* n) const { return n->next == &head_ ? nullptr : n->next; }
  std::uint64_t weight() const { return weight_; }

  void push_newest(NodeHeader* n) {
    n->prev = head_.prev;
    n->next = &head_;
    head_.prev->next = n;
    head_.prev = n;
    weight_ += n->weight;
  }
  void unlink(NodeHeader* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
    weight_ -= n->weight;
  }
  void move_to_newest(NodeHeader* n) {
    if (head_.prev == n) return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = head_.prev;
    n->next = &head_;
    head_.prev->next = n;
    head_.prev = n;
  }
  // Links `n` just before `pos` (towards the oldest end).
  void insert_before(NodeHeader* pos, NodeHeader* n) {
    n->next = pos;
    n->prev = pos->prev;
    pos->prev->next = n;
    pos->prev = n;
    weight_ += n->weight;
  }
  // `fresh` takes `old`'s place (weights may differ).
  void substitute(NodeHeader* old, NodeHeader* fresh) {
    fresh->prev = old->prev;
    fresh->next = old->next;
    old->prev->next = fresh;
    old->next->prev = fresh;
    old->prev = old->next = nullptr;
    weight_ = weight_ - old->weight + fresh->weight;
  }

 private:
  NodeHeader head_;
  std::uint64_t weight_ = 0;
};

enum class PolicyKind : std::uint8_t { kAdaptiveTinyLfu, kLru };

// The knobs of W-TinyLFU.
struct PolicyTuning {
  double window_fraction;  // share of the bound given to the window, in (0, 1)
  double sketch_aging;     // sketch halving period, in multiples of the capacity
  // Count an eviction as this many more accesses in the sketch, so a key that keeps coming
  // back after being evicted wins admission sooner (helps long-reuse-distance traces).
  unsigned eviction_credit;
};

class PolicyTuner;

class EvictionPolicy {
 public:
  enum Queue : std::uint8_t { kWindow = 0, kProbation = 1, kProtected = 2 };

  // `max_weight`: the bound. `expected_entries`: sizes the sketch (the bound when counting
  // entries; an estimate when weighing). `seed`: randomises sketch hashing and admission.
  // An adaptive TinyLFU policy tunes itself (PolicyTuner) unless `fixed` is given.
  // `marking`: whether readers may mark window/protected hits instead of noting them
  // (default: for caches of kMarkingMinEntries or more).
  EvictionPolicy(PolicyKind kind, std::uint64_t max_weight, std::size_t expected_entries,
                 std::uint64_t seed, const PolicyTuning* fixed = nullptr,
                 std::optional<bool> marking = std::nullopt);
  bool marking() const { return marking_; }
  ~EvictionPolicy();
  EvictionPolicy(const EvictionPolicy&) = delete;
  EvictionPolicy& operator=(const EvictionPolicy&) = delete;

  // A new node enters. REQUIRES: node not queued.
  void add(NodeHeader* node);
  // A hit on a queued node.
  void record_access(NodeHeader* node);
  // The tuner, whose sampled() tells readers which hits must reach record_access()
  // (through a read note) even on a protected node; nullptr if none. Fixed at construction.
  const PolicyTuner* tuner() const { return tuner_.get(); }
  // Hints the CPU to fetch what record_access(node) will touch (batched drains).
  void prefetch(const NodeHeader* node) const {
    if (kind_ == PolicyKind::kAdaptiveTinyLfu) sketch_.prefetch(node->hash);
    __builtin_prefetch(node->prev, 1);
    __builtin_prefetch(node->next, 1);
  }
  // A queued node leaves (erase, expiry, eviction by the caller).
  void remove(NodeHeader* node);
  // `fresh` replaces queued `old` in place (same key, maybe another weight).
  void substitute(NodeHeader* old, NodeHeader* fresh);
  // Removes from the queues the nodes that must go to respect the bound and appends them to
  // `victims` (the caller unlinks and reclaims them).
  void evict(std::vector<NodeHeader*>& victims);

  // Forget all nodes (the caller frees them). Keeps the sketch and adaptation.
  void clear();

  std::uint64_t weight() const;
  std::uint64_t max_weight() const { return max_weight_; }
  std::uint64_t window_max_weight() const { return window_max_; }
  PolicyKind kind() const { return kind_; }
  const PolicyTuning& tuning() const { return tuning_; }
  // Moves to another tuning, shifting entries between window and main as needed.
  void set_tuning(const PolicyTuning& tuning);
  // Changes the bound (ghost policies shrink when their sample shrinks).
  void set_max_weight(std::uint64_t max_weight);

 private:
  bool admit(NodeHeader* candidate, NodeHeader* victim);
  void evict_lru(std::vector<NodeHeader*>& victims);
  void evict_tinylfu(std::vector<NodeHeader*>& victims);
  void demote_protected_overflow();
  void enter_protected(NodeHeader* node);
  // With marking: true if `node` was unreferenced (now kNotProtected, free to leave its
  // queue); false if it was referenced (mark cleared, the lap counted in the sketch).
  bool take_unreferenced(NodeHeader* node);
  // Takes the oldest window node out, unless it was referenced (then it goes round again
  // and this returns false).
  bool leave_window(NodeHeader* node);
  // Moves window overflow, oldest first, to the newest end of probation; returns the first
  // node moved (the oldest candidate), or nullptr.
  NodeHeader* spill_window();
  void advance_hand();
  void leave_protected(NodeHeader* node);
  void resize_window(std::uint64_t window_max);
  std::uint64_t window_target() const;
  void tune(const NodeHeader* node);
  AccessQueue& queue_of(const NodeHeader* node);

  PolicyKind kind_;
  std::uint64_t max_weight_;
  std::uint64_t window_max_;
  std::uint64_t protected_max_;
  FrequencySketch sketch_;
  std::uint64_t random_state_;

  AccessQueue window_;  // also the single queue of kLru
  AccessQueue probation_;
  AccessQueue protected_;
  NodeHeader* hand_ = nullptr;  // CLOCK hand over protected_ (nullptr: at the oldest)

  bool oversized_pending_ = false;  // a node heavier than the bound was queued
  const bool marking_;  // readers mark window/protected hits (CLOCK) instead of noting them
  PolicyTuning tuning_;
  std::unique_ptr<PolicyTuner> tuner_;  // null for LRU and fixed tunings
};

}  // namespace tiercache::detail
