#include "tiercache/detail/eviction_policy.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdlib>

#include "tiercache/detail/policy_tuner.hpp"

namespace tiercache::detail {

namespace {
// Share of the main region reserved for the protected queue (SLRU split, as in Caffeine).
constexpr double kProtectedFraction = 0.80;
// Tuning of LRU policies and the fallback; adaptive policies start where the tuner says.
constexpr PolicyTuning kDefaultTuning = {0.01, 10, 0};
// Caches this large (in expected entries) let readers mark window and protected hits
// instead of leaving notes (CLOCK, see demote_protected_overflow); smaller ones keep exact
// LRU order in those queues, which costs little when the whole policy fits in cache and
// measured 0.1-0.5 points of hit ratio better on small caches (docs/local-cache.md).
constexpr std::size_t kMarkingMinEntries = 4096;
// A candidate this frequent or more that loses its duel is admitted with 1/128 odds.
constexpr std::uint32_t kWarmCandidateFrequency = 6;
constexpr std::uint64_t kRandomAdmissionMask = 127;

}  // namespace

EvictionPolicy::EvictionPolicy(PolicyKind kind, std::uint64_t max_weight,
                               std::size_t expected_entries, std::uint64_t seed,
                               const PolicyTuning* fixed, std::optional<bool> marking)
    : kind_(kind),
      max_weight_(max_weight),
      window_max_(0),
      protected_max_(0),
      sketch_(mix64(seed ^ 0x5ca1ab1eULL)),
      random_state_(seed),
      marking_(kind == PolicyKind::kAdaptiveTinyLfu &&
               marking.value_or(expected_entries >= kMarkingMinEntries)),
      tuning_(fixed != nullptr ? *fixed : kDefaultTuning) {
  if (kind_ != PolicyKind::kAdaptiveTinyLfu) return;
  sketch_.ensure_capacity(expected_entries);
  if (fixed == nullptr) {
    // The ghosts model this policy, marking included.
    tuner_ = std::make_unique<PolicyTuner>(max_weight, expected_entries, mix64(seed), marking_);
    tuning_ = tuner_->initial();
  }
  sketch_.set_sample_factor(tuning_.sketch_aging);
  resize_window(window_target());
}

EvictionPolicy::~EvictionPolicy() = default;

std::uint64_t EvictionPolicy::window_target() const {
  return std::clamp<std::uint64_t>(
      static_cast<std::uint64_t>(tuning_.window_fraction * static_cast<double>(max_weight_)), 1,
      max_weight_);
}

void EvictionPolicy::set_tuning(const PolicyTuning& tuning) {
  tuning_ = tuning;
  sketch_.set_sample_factor(tuning_.sketch_aging);
  resize_window(window_target());
}

void EvictionPolicy::set_max_weight(std::uint64_t max_weight) {
  max_weight_ = max_weight;
  resize_window(window_target());
}

std::uint64_t EvictionPolicy::weight() const {
  return window_.weight() + probation_.weight() + protected_.weight();
}

AccessQueue& EvictionPolicy::queue_of(const NodeHeader* node) {
  switch (node->queue) {
    case kProbation:
      return probation_;
    case kProtected:
      return protected_;
    default:
      return window_;
  }
}

void EvictionPolicy::add(NodeHeader* node) {
  node->queue = kWindow;
  if (marking_) node->clock.store(NodeHeader::kUnreferenced, std::memory_order_relaxed);
  window_.push_newest(node);
  if (node->weight > max_weight_) oversized_pending_ = true;
  if (kind_ == PolicyKind::kAdaptiveTinyLfu) {
    sketch_.increment(node->hash);
    tune(node);
  }
}

void EvictionPolicy::tune(const NodeHeader* node) {
  if (tuner_ == nullptr) return;
  if (const PolicyTuning* next = tuner_->record(node->hash, node->weight)) set_tuning(*next);
}

void EvictionPolicy::record_access(NodeHeader* node) {
  if (kind_ == PolicyKind::kLru) {
    window_.move_to_newest(node);
    return;
  }
  switch (node->queue) {
    case kWindow:
      if (marking_) {
        // A sampled note (or one from before the node entered the window): a reference.
        node->clock.store(NodeHeader::kReferenced, std::memory_order_relaxed);
      } else {
        sketch_.increment(node->hash);
        window_.move_to_newest(node);
      }
      break;
    case kProbation:
      sketch_.increment(node->hash);
      probation_.unlink(node);
      enter_protected(node);
      demote_protected_overflow();
      break;
    case kProtected:
      if (marking_) {
        // A sampled note, or one written just before the node was promoted: a reference.
        node->clock.store(NodeHeader::kReferenced, std::memory_order_relaxed);
      } else {
        sketch_.increment(node->hash);
        protected_.move_to_newest(node);
      }
      break;
    default:
      assert(false);
  }
  tune(node);
}

bool EvictionPolicy::take_unreferenced(NodeHeader* node) {
  // A compare-exchange, so a reader's concurrent mark is never lost.
  std::uint8_t expected = NodeHeader::kUnreferenced;
  if (node->clock.compare_exchange_strong(expected, NodeHeader::kNotProtected,
                                          std::memory_order_relaxed)) {
    return true;
  }
  // Referenced since its last turn: clear the mark and count the lap as one access.
  node->clock.store(NodeHeader::kUnreferenced, std::memory_order_relaxed);
  sketch_.increment(node->hash);
  return false;
}

bool EvictionPolicy::leave_window(NodeHeader* node) {
  // With marking the window is a CLOCK too (second-chance FIFO): hits only mark nodes; the
  // oldest node, if marked, goes round again.
  if (marking_ && !take_unreferenced(node)) {
    window_.move_to_newest(node);
    return false;
  }
  window_.unlink(node);
  return true;
}

NodeHeader* EvictionPolicy::spill_window() {
  NodeHeader* first = nullptr;
  while (window_.weight() > window_max_ && !window_.empty()) {
    NodeHeader* n = window_.oldest();
    if (!leave_window(n)) continue;  // referenced: second chance
    n->queue = kProbation;
    probation_.push_newest(n);
    if (first == nullptr) first = n;
  }
  return first;
}

void EvictionPolicy::enter_protected(NodeHeader* node) {
  node->queue = kProtected;
  if (!marking_) {
    protected_.push_newest(node);
    return;
  }
  node->clock.store(NodeHeader::kUnreferenced, std::memory_order_relaxed);
  // Just behind the hand: the newcomer gets a full turn before its first inspection.
  if (hand_ == nullptr) {
    protected_.push_newest(node);
  } else {
    protected_.insert_before(hand_, node);
  }
}

void EvictionPolicy::leave_protected(NodeHeader* node) {
  if (hand_ == node) advance_hand();
  if (hand_ == node) hand_ = nullptr;  // it was the only node
  protected_.unlink(node);
  node->clock.store(NodeHeader::kNotProtected, std::memory_order_relaxed);
}

void EvictionPolicy::advance_hand() {
  NodeHeader* next = protected_.newer(hand_);
  hand_ = next != nullptr ? next : protected_.oldest();
}

void EvictionPolicy::demote_protected_overflow() {
  // With marking, CLOCK over the protected queue (Corbato 1968): hits on protected nodes
  // only mark them referenced, without a note or a lock, and nodes never move; the hand
  // sweeps the queue and demotes the first unreferenced node it meets, clearing marks on
  // the way. A referenced node costs one write per lap. Without marking: exact LRU order,
  // the oldest is demoted.
  while (protected_.weight() > protected_max_ && !protected_.empty()) {
    NodeHeader* n = protected_.oldest();
    if (marking_) {
      if (hand_ == nullptr) hand_ = n;
      n = hand_;
      if (!take_unreferenced(n)) {
        advance_hand();
        continue;
      }
    }
    leave_protected(n);
    n->queue = kProbation;
    probation_.push_newest(n);
  }
}

void EvictionPolicy::remove(NodeHeader* node) {
  if (node->queue == kProtected) {
    leave_protected(node);
  } else {
    queue_of(node).unlink(node);
    node->clock.store(NodeHeader::kNotProtected, std::memory_order_relaxed);
  }
}

void EvictionPolicy::substitute(NodeHeader* old, NodeHeader* fresh) {
  if (hand_ == old) hand_ = fresh;
  fresh->queue = old->queue;
  fresh->clock.store(old->clock.load(std::memory_order_relaxed), std::memory_order_relaxed);
  queue_of(old).substitute(old, fresh);
  if (fresh->weight > max_weight_) oversized_pending_ = true;
}

void EvictionPolicy::clear() {
  hand_ = nullptr;
  for (AccessQueue* q : {&window_, &probation_, &protected_}) {
    while (!q->empty()) q->unlink(q->oldest());
  }
}

void EvictionPolicy::evict(std::vector<NodeHeader*>& victims) {
  if (oversized_pending_) {
    // An entry heavier than the whole bound can never stay; it goes alone, displacing
    // nothing. Rare, so a scan of the queues is fine.
    oversized_pending_ = false;
    for (AccessQueue* q : {&window_, &probation_, &protected_}) {
      for (NodeHeader* n = q->oldest(); n != nullptr;) {
        NodeHeader* next = q->newer(n);
        if (n->weight > max_weight_) {
          remove(n);
          victims.push_back(n);
        }
        n = next;
      }
    }
  }
  if (kind_ == PolicyKind::kLru) {
    evict_lru(victims);
  } else {
    evict_tinylfu(victims);
  }
}

void EvictionPolicy::evict_lru(std::vector<NodeHeader*>& victims) {
  while (window_.weight() > max_weight_) {
    NodeHeader* n = window_.oldest();
    window_.unlink(n);
    victims.push_back(n);
  }
}

bool EvictionPolicy::admit(NodeHeader* candidate, NodeHeader* victim) {
  const std::uint32_t candidate_freq = sketch_.frequency(candidate->hash);
  const std::uint32_t victim_freq = sketch_.frequency(victim->hash);
  if (candidate_freq > victim_freq) return true;
  if (candidate_freq < kWarmCandidateFrequency) return false;
  return (splitmix64_next(random_state_) & kRandomAdmissionMask) == 0;
}

void EvictionPolicy::evict_tinylfu(std::vector<NodeHeader*>& victims) {
  // Window overflow becomes candidates at the newest end of probation.
  NodeHeader* candidate = spill_window();

  // Duel candidates (oldest first) against probation's oldest until within bound.
  NodeHeader* victim = probation_.oldest();
  auto drop = [&](NodeHeader* n) {
    for (unsigned i = 0; i < tuning_.eviction_credit; ++i) sketch_.increment(n->hash);
    remove(n);
    victims.push_back(n);
  };
  while (weight() > max_weight_) {
    if (candidate == nullptr && victim == nullptr) {
      // Nothing left to duel: take the oldest of probation, then protected, then window.
      NodeHeader* n = !probation_.empty()   ? probation_.oldest()
                      : !protected_.empty() ? protected_.oldest()
                                            : window_.oldest();
      if (n == nullptr) break;
      drop(n);
      continue;
    }
    if (candidate == nullptr) {
      NodeHeader* next = probation_.newer(victim);
      drop(victim);
      victim = next;
      continue;
    }
    if (victim == nullptr || victim == candidate || candidate->weight > max_weight_) {
      // No victim left outside the candidates (or the candidate can never fit): the oldest
      // candidate goes.
      NodeHeader* next = probation_.newer(candidate);
      if (victim == candidate) victim = next;
      drop(candidate);
      candidate = next;
      continue;
    }
    if (admit(candidate, victim)) {
      NodeHeader* next = probation_.newer(victim);
      drop(victim);
      victim = next;
      candidate = probation_.newer(candidate);
    } else {
      NodeHeader* next = probation_.newer(candidate);
      drop(candidate);
      candidate = next;
    }
  }
}

void EvictionPolicy::resize_window(std::uint64_t window_max) {
  window_max_ = window_max;
  protected_max_ = static_cast<std::uint64_t>(kProtectedFraction *
                                              static_cast<double>(max_weight_ - window_max_));
  // A smaller window sends its oldest entries to probation (as candidates at the next
  // eviction); a larger one fills from new arrivals. Protected overflow is demoted.
  spill_window();
  demote_protected_overflow();
}

}  // namespace tiercache::detail
