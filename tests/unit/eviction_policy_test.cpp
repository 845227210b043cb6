// detail::EvictionPolicy with a fixed tuning (no PolicyTuner), so that admission decisions
// can be stated exactly: LRU order, TinyLFU's frequency duel, and the eviction credit.

#include "tiercache/detail/eviction_policy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "tiercache/detail/frequency_sketch.hpp"
#include "tiercache/detail/node.hpp"

namespace tiercache::detail {
namespace {

using ::testing::ElementsAre;

constexpr std::uint64_t kSeed = 0x7e57;

// A window of 1% and the classic aging period; each eviction counts as `eviction_credit`
// extra accesses of the evicted key.
PolicyTuning fixed_tuning(unsigned eviction_credit = 0) {
  return PolicyTuning{
      .window_fraction = 0.01, .sketch_aging = 10, .eviction_credit = eviction_credit};
}

// A policy and the nodes it manages, by key, used the way LocalCache uses it: put() adds a
// node and evicts; evicted nodes are forgotten.
class PolicyUnderTest {
 public:
  PolicyUnderTest(PolicyKind kind, std::uint64_t bound, const PolicyTuning* tuning = nullptr)
      : policy_(kind, bound, bound, kSeed, tuning) {}
  ~PolicyUnderTest() { policy_.clear(); }

  // Adds `key` (weighing `weight`); returns the keys evicted to respect the bound.
  std::vector<int> put(int key, std::uint32_t weight = 1) {
    auto node = std::make_unique<NodeHeader>();
    node->hash = static_cast<std::uint32_t>(mix64(static_cast<std::uint64_t>(key)));
    node->weight = weight;
    NodeHeader* raw = node.get();
    nodes_[key] = std::move(node);
    keys_[raw] = key;
    policy_.add(raw);
    return evict();
  }
  void use(int key) { policy_.record_access(nodes_.at(key).get()); }
  bool contains(int key) const { return nodes_.count(key) != 0; }
  std::uint64_t weight() const { return policy_.weight(); }

 private:
  std::vector<int> evict() {
    std::vector<NodeHeader*> victims;
    policy_.evict(victims);
    std::vector<int> keys;
    for (NodeHeader* v : victims) {
      const int key = keys_.at(v);
      keys.push_back(key);
      keys_.erase(v);
      nodes_.erase(key);
    }
    return keys;
  }

  EvictionPolicy policy_;
  std::map<int, std::unique_ptr<NodeHeader>> nodes_;
  std::map<NodeHeader*, int> keys_;
};

TEST(LruPolicy, EvictsTheLeastRecentlyUsed) {
  PolicyUnderTest lru(PolicyKind::kLru, 3);
  lru.put(1);
  lru.put(2);
  lru.put(3);
  lru.use(1);

  EXPECT_THAT(lru.put(4), ElementsAre(2));
  EXPECT_THAT(lru.put(5), ElementsAre(3));
  EXPECT_THAT(lru.put(6), ElementsAre(1));
}

// A cache of 1000 whose residents were each used 3 times (a put and two hits), and a
// newcomer put again and again, each time pushed out of the 10-entry window by 10 others.
// Returns the put at which the newcomer was first admitted (0 if never).
int put_at_which_a_newcomer_is_admitted(unsigned eviction_credit) {
  constexpr int kBound = 1000;
  constexpr int kWindow = 10;
  const PolicyTuning tuning = fixed_tuning(eviction_credit);
  PolicyUnderTest tinylfu(PolicyKind::kAdaptiveTinyLfu, kBound, &tuning);
  for (int key = 0; key < kBound; ++key) tinylfu.put(key);
  for (int key = 0; key < kBound; ++key) {
    tinylfu.use(key);
    tinylfu.use(key);
  }

  constexpr int kNewcomer = 1'000'000;
  int filler = 2'000'000;
  for (int put = 1; put <= 8; ++put) {
    tinylfu.put(kNewcomer);
    for (int i = 0; i < kWindow; ++i) tinylfu.put(filler++);
    if (tinylfu.contains(kNewcomer)) return put;
  }
  return 0;
}

TEST(TinyLfuPolicy, ANewcomerIsAdmittedOnlyWhenUsedMoreOftenThanTheResidents) {
  EXPECT_EQ(put_at_which_a_newcomer_is_admitted(/*eviction_credit=*/0), 4)
      << "3 uses tie with the residents and lose; the 4th wins";
}

TEST(TinyLfuPolicy, AnEvictionCreditCountsEachRejectionAsExtraUses) {
  // Credit 1: put 1 (1), rejected (2); put 2 ties (3), rejected (4); put 3 wins (5 > 3).
  EXPECT_EQ(put_at_which_a_newcomer_is_admitted(/*eviction_credit=*/1), 3);
  // Credit 2: put 1 (1), rejected (3); put 2 wins (4 > 3).
  EXPECT_EQ(put_at_which_a_newcomer_is_admitted(/*eviction_credit=*/2), 2);
}

TEST(TinyLfuPolicy, OneHitWondersDoNotDisplaceUsedEntries) {
  const PolicyTuning tuning = fixed_tuning();
  PolicyUnderTest tinylfu(PolicyKind::kAdaptiveTinyLfu, 100, &tuning);
  for (int key = 0; key < 100; ++key) tinylfu.put(key);
  for (int key = 0; key < 100; ++key) tinylfu.use(key);

  for (int key = 1000; key < 1100; ++key) tinylfu.put(key);  // as many as the bound

  int residents_left = 0;
  for (int key = 0; key < 100; ++key) residents_left += tinylfu.contains(key) ? 1 : 0;
  EXPECT_GE(residents_left, 98) << "only the window's slot turns over";
}

TEST(TinyLfuPolicy, KeepsTheWeightWithinTheBound) {
  for (const unsigned eviction_credit : {0u, 1u, 3u}) {
    const PolicyTuning tuning = fixed_tuning(eviction_credit);
    PolicyUnderTest tinylfu(PolicyKind::kAdaptiveTinyLfu, 100, &tuning);
    std::mt19937 rng(4);
    for (int i = 0; i < 5000; ++i) {
      const int key = static_cast<int>(rng() % 300);
      if (tinylfu.contains(key)) {
        tinylfu.use(key);
      } else {
        tinylfu.put(key, 1 + rng() % 9);
      }
      ASSERT_LE(tinylfu.weight(), 100u) << "after request " << i;
    }
  }
}

TEST(TinyLfuPolicy, ACandidateHeavierThanTheBoundIsDroppedAlone) {
  const PolicyTuning tuning = fixed_tuning();
  PolicyUnderTest tinylfu(PolicyKind::kAdaptiveTinyLfu, 100, &tuning);
  tinylfu.put(1, 10);
  tinylfu.put(2, 10);

  EXPECT_THAT(tinylfu.put(3, 101), ElementsAre(3));
  EXPECT_TRUE(tinylfu.contains(1));
  EXPECT_TRUE(tinylfu.contains(2));
}

}  // namespace
}  // namespace tiercache::detail
