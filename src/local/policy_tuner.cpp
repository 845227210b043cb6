#include "tiercache/detail/policy_tuner.hpp"

#include <algorithm>
#include <bit>
#include <unordered_map>
#include <utility>

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
}  // namespace

// A W-TinyLFU policy over hashes only.
class PolicyTuner::Ghost {
 public:
  Ghost(const PolicyTuning& tuning, std::uint64_t max_weight, std::size_t entries,
        std::uint64_t seed, bool marking)
      : policy_(PolicyKind::kAdaptiveTinyLfu, max_weight, entries, seed, &tuning, marking) {}
  ~Ghost() {
    for (auto& [hash, node] : index_) delete node;
  }

  void access(std::uint32_t hash, std::uint32_t weight) {
    auto [it, inserted] = index_.try_emplace(hash, nullptr);
    if (!inserted) {
      ++hits_;
      policy_.record_access(it->second);
      return;
    }
    auto* node = new NodeHeader();
    node->hash = hash;
    node->weight = weight;
    it->second = node;
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
    for (auto it = index_.begin(); it != index_.end();) {
      if (keep(it->first)) {
        ++it;
      } else {
        policy_.remove(it->second);
        delete it->second;
        it = index_.erase(it);
      }
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
  std::unordered_map<std::uint32_t, NodeHeader*> index_;
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
  for (auto& g : ghosts_) g->access(hash, weight);
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
