#include "tiercache/detail/policy_tuner.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <utility>
#include <vector>

namespace tiercache::detail {

namespace {
// The tunings the ghosts try. Chosen from a grid search over the reference traces
// (docs/local-cache.md): each is the best, or within 0.3 points of it, on some traces.
// clang-format off
constexpr PolicyTuning kTunings[] = {
    // window, sketch aging, eviction credit
    {0.01, 25, 0},  // frequency-biased: small window
    {0.01, 60, 0},  // loops: small window, long sketch memory
    {0.01, 25, 1},  // long reuse distances
    {0.05, 10, 0},
    {0.20, 25, 0},  // mixed (OLTP, web)
    {0.50, 10, 0},
    {0.80, 10, 0},  // recency-biased: nearly LRU
    {0.01, 25, 4},  // very long reuse distances (block I/O); the start
};
// clang-format on
constexpr std::size_t kStartTuning = 7;
// Entries a ghost holds, about (the sampling rate is chosen for this).
constexpr double kGhostEntries = 1024;
// A period lasts this many sampled requests per ghost entry.
constexpr double kPeriodFactor = 2.0;
// Weight of the past in the score: score = kScoreDecay * score + hits in the last period.
constexpr double kScoreDecay = 0.95;

// A ghost's index, hash -> node: open addressing with linear probing, so that a lookup is one
// probe into a flat array rather than std::unordered_map's bucket-then-node chase (a ghost
// lookup runs 8 times per sampled request). Deletion shifts the following entries back
// (no tombstones). Keys are the nodes' own hashes; a null node marks a free slot.
class GhostIndex {
 public:
  GhostIndex() { slots_.resize(kInitialSlots); }

  // Hints the CPU to fetch the first slot `hash` probes.
  void prefetch(std::uint32_t hash) const { __builtin_prefetch(&slots_[home(hash)]); }
  // The node of `hash`, or nullptr.
  NodeHeader* find(std::uint32_t hash) const {
    for (std::size_t i = home(hash);; i = (i + 1) & mask()) {
      const Slot& slot = slots_[i];
      if (slot.node == nullptr) return nullptr;
      if (slot.hash == hash) return slot.node;
    }
  }
  // REQUIRES: `hash` is not present.
  void insert(std::uint32_t hash, NodeHeader* node) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    place(hash, node);
    ++count_;
  }
  // REQUIRES: `hash` is present.
  void erase(std::uint32_t hash) {
    std::size_t hole = home(hash);
    while (slots_[hole].hash != hash || slots_[hole].node == nullptr) hole = (hole + 1) & mask();
    // Shift back every following entry whose probe sequence passes through the hole.
    for (std::size_t i = (hole + 1) & mask(); slots_[i].node != nullptr; i = (i + 1) & mask()) {
      const std::size_t want = home(slots_[i].hash);
      const bool reachable = ((i - want) & mask()) >= ((i - hole) & mask());
      if (reachable) {
        slots_[hole] = slots_[i];
        hole = i;
      }
    }
    slots_[hole] = Slot{};
    --count_;
  }
  std::size_t size() const { return count_; }
  // Calls f(hash, node) for every entry. f must not change the index.
  template <class F>
  void for_each(F&& f) const {
    for (const Slot& slot : slots_) {
      if (slot.node != nullptr) f(slot.hash, slot.node);
    }
  }

 private:
  struct Slot {
    std::uint32_t hash = 0;
    NodeHeader* node = nullptr;
  };
  static constexpr std::size_t kInitialSlots = 1024;

  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint32_t hash) const {
    return static_cast<std::size_t>((hash * 0x9E3779B1u) >> 7) & mask();
  }
  void place(std::uint32_t hash, NodeHeader* node) {
    std::size_t i = home(hash);
    while (slots_[i].node != nullptr) i = (i + 1) & mask();
    slots_[i] = Slot{hash, node};
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& slot : old) {
      if (slot.node != nullptr) place(slot.hash, slot.node);
    }
  }

  std::vector<Slot> slots_;
  std::size_t count_ = 0;
};
}  // namespace

// A W-TinyLFU policy over hashes only.
class PolicyTuner::Ghost {
 public:
  Ghost(const PolicyTuning& tuning, std::uint64_t max_weight, std::size_t entries,
        std::uint64_t seed, bool marking)
      : policy_(PolicyKind::kAdaptiveTinyLfu, max_weight, entries, seed, &tuning, marking) {}
  ~Ghost() {
    index_.for_each([](std::uint32_t, NodeHeader* node) { delete node; });
  }

  // The index lookup of access(), split off so that the tuner can overlap the 8 ghosts'
  // cache misses: prefetch every ghost's slot, then find every node (and prefetch it), then
  // access.
  void prefetch(std::uint32_t hash) const { index_.prefetch(hash); }
  NodeHeader* find(std::uint32_t hash) const {
    NodeHeader* node = index_.find(hash);
    if (node != nullptr) __builtin_prefetch(node, 1);
    return node;
  }

  // `present`: find(hash), looked up just before.
  void access(std::uint32_t hash, std::uint32_t weight, NodeHeader* present) {
    if (present != nullptr) {
      ++hits_;
      policy_.record_access(present);
      return;
    }
    auto* node = new NodeHeader();
    node->hash = hash;
    node->weight = weight;
    index_.insert(hash, node);
    policy_.add(node);
    victims_.clear();
    policy_.evict(victims_);
    for (NodeHeader* v : victims_) {
      index_.erase(v->hash);
      delete v;
    }
  }

  // Drops the keys `keep` rejects and shrinks to `max_weight`.
  template <class Keep>
  void shrink(Keep&& keep, std::uint64_t max_weight) {
    std::vector<NodeHeader*> dropped;
    index_.for_each([&](std::uint32_t hash, NodeHeader* node) {
      if (!keep(hash)) dropped.push_back(node);
    });
    for (NodeHeader* node : dropped) {
      policy_.remove(node);
      index_.erase(node->hash);
      delete node;
    }
    policy_.set_max_weight(max_weight);
    victims_.clear();
    policy_.evict(victims_);
    for (NodeHeader* v : victims_) {
      index_.erase(v->hash);
      delete v;
    }
  }

  std::size_t entries() const { return index_.size(); }
  std::uint64_t take_hits() { return std::exchange(hits_, 0); }
  double score = 0;

 private:
  EvictionPolicy policy_;
  GhostIndex index_;
  std::vector<NodeHeader*> victims_;
  std::uint64_t hits_ = 0;
};

PolicyTuner::PolicyTuner(std::uint64_t max_weight, std::size_t expected_entries, std::uint64_t seed,
                         bool marking)
    : sampling_{mix64(seed ^ 0x7e57ab1eULL)} {
  const auto rate = std::bit_floor(std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(static_cast<double>(expected_entries) / kGhostEntries)));
  sampling_.mask.store(rate - 1, std::memory_order_relaxed);
  ghost_max_weight_ = std::max<std::uint64_t>(1, max_weight / rate);
  const std::size_t ghost_entries = std::max<std::size_t>(1, expected_entries / rate);
  period_ = std::max<std::uint64_t>(
      64, static_cast<std::uint64_t>(kPeriodFactor * static_cast<double>(ghost_entries)));
  std::uint64_t ghost_seed = seed;
  for (const PolicyTuning& t : kTunings) {
    ghosts_.push_back(std::make_unique<Ghost>(t, ghost_max_weight_, ghost_entries,
                                              ghost_seed = mix64(ghost_seed), marking));
  }
  current_ = kStartTuning;
}

PolicyTuner::~PolicyTuner() = default;

const PolicyTuning& PolicyTuner::initial() const { return kTunings[kStartTuning]; }

const PolicyTuning* PolicyTuner::record(std::uint32_t hash, std::uint32_t weight) {
  if (!sampled(hash)) return nullptr;
  std::array<NodeHeader*, std::size(kTunings)> present{};
  for (auto& g : ghosts_) g->prefetch(hash);
  for (std::size_t i = 0; i < ghosts_.size(); ++i) present[i] = ghosts_[i]->find(hash);
  for (std::size_t i = 0; i < ghosts_.size(); ++i) ghosts_[i]->access(hash, weight, present[i]);
  if (ghosts_.front()->entries() > static_cast<std::size_t>(4 * kGhostEntries)) halve_sample();
  if (++requests_in_period_ < period_) return nullptr;
  return end_period();
}

void PolicyTuner::halve_sample() {
  sampling_.mask.store((sampling_.mask.load(std::memory_order_relaxed) << 1) | 1,
                       std::memory_order_relaxed);
  ghost_max_weight_ = std::max<std::uint64_t>(1, ghost_max_weight_ / 2);
  for (auto& g : ghosts_) {
    g->shrink([this](std::uint32_t h) { return sampled(h); }, ghost_max_weight_);
  }
}

const PolicyTuning* PolicyTuner::end_period() {
  requests_in_period_ = 0;
  std::size_t best = current_;
  for (auto& g : ghosts_) g->score = kScoreDecay * g->score + static_cast<double>(g->take_hits());
  for (std::size_t i = 0; i < ghosts_.size(); ++i) {
    if (ghosts_[i]->score > ghosts_[best]->score) best = i;
  }
  if (best == current_) return nullptr;
  current_ = best;
  return &kTunings[best];
}

}  // namespace tiercache::detail
