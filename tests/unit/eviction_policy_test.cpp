// detail::EvictionPolicy with a fixed tuning (no PolicyTuner), so that admission decisions
// can be stated exactly: LRU order, TinyLFU's frequency duel, the eviction credit, and the
// two orders of the window and protected queues -- exact LRU, or CLOCK when readers mark
// hits (`marking`, forced on or off here whatever the size).

#include "tiercache/detail/eviction_policy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
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
  PolicyUnderTest(PolicyKind kind, std::uint64_t bound, const PolicyTuning* tuning = nullptr,
                  std::optional<bool> marking = std::nullopt)
      : policy_(kind, bound, bound, kSeed, tuning, marking) {}
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

  // What a reader does on a hit it does not note (LocalCache::note_hit): flips the clock
  // from unreferenced to referenced. Returns whether it did.
  bool mark(int key) {
    std::uint8_t expected = NodeHeader::kUnreferenced;
    return nodes_.at(key)->clock.compare_exchange_strong(expected, NodeHeader::kReferenced);
  }
  EvictionPolicy::Queue queue(int key) const {
    return static_cast<EvictionPolicy::Queue>(nodes_.at(key)->queue);
  }
  std::uint8_t clock(int key) const { return nodes_.at(key)->clock.load(); }
  // The keys in `q`, ascending.
  std::vector<int> keys_in(EvictionPolicy::Queue q) const {
    std::vector<int> keys;
    for (const auto& [key, node] : nodes_) {
      if (node->queue == q) keys.push_back(key);
    }
    return keys;
  }
  // Takes `key` out (as an erase would) and frees its node.
  void remove(int key) {
    NodeHeader* node = nodes_.at(key).get();
    policy_.remove(node);
    keys_.erase(node);
    nodes_.erase(key);
  }
  // Replaces `key`'s node by a new one weighing `weight` (as a put of an existing key does:
  // substitute, then a use), frees the old node and evicts; returns the keys evicted.
  std::vector<int> replace(int key, std::uint32_t weight = 1) {
    auto fresh = std::make_unique<NodeHeader>();
    NodeHeader* old = nodes_.at(key).get();
    fresh->hash = old->hash;
    fresh->weight = weight;
    NodeHeader* raw = fresh.get();
    policy_.substitute(old, raw);
    keys_.erase(old);
    nodes_[key] = std::move(fresh);
    keys_[raw] = key;
    policy_.record_access(raw);
    return evict();
  }
  void set_tuning(const PolicyTuning& tuning) { policy_.set_tuning(tuning); }

  // The sum of the weights of the nodes the policy holds.
  std::uint64_t weight_of_nodes() const {
    std::uint64_t total = 0;
    for (const auto& [key, node] : nodes_) total += node->weight;
    return total;
  }
  // Nodes whose clock does not match their queue under marking: a probation node must be
  // kNotProtected (readers note its hits, which promote it); window and protected nodes must
  // not be (readers mark their hits).
  std::vector<int> keys_with_a_wrong_clock() const {
    std::vector<int> keys;
    for (const auto& [key, node] : nodes_) {
      const bool noted = node->clock.load() == NodeHeader::kNotProtected;
      if (noted != (node->queue == EvictionPolicy::kProbation)) keys.push_back(key);
    }
    return keys;
  }

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

// ---- marking: CLOCK in the window and the protected queue ----------------------------------

constexpr std::uint8_t kUnreferenced = NodeHeader::kUnreferenced;
constexpr std::uint8_t kReferenced = NodeHeader::kReferenced;
constexpr std::uint8_t kNotProtected = NodeHeader::kNotProtected;

// A bound of 10 with a 1% window: the window holds 1 entry, protected 7 (80% of the 9 of
// the main region), so nothing is evicted while probation holds 2 or fewer.
class ProtectedQueue : public ::testing::TestWithParam<bool> {
 protected:
  static constexpr std::uint64_t kBound = 10;
  static constexpr int kProtectedEntries = 7;

  bool marking() const { return GetParam(); }

  // Protected holds 1..7 (entered in that order, unreferenced); window holds 8.
  void SetUp() override {
    for (int key = 1; key <= kProtectedEntries + 1; ++key) policy_.put(key);
    for (int key = 1; key <= kProtectedEntries; ++key) policy_.use(key);  // probation hits
    ASSERT_EQ(policy_.keys_in(EvictionPolicy::kProtected), (std::vector<int>{1, 2, 3, 4, 5, 6, 7}));
    ASSERT_EQ(policy_.queue(8), EvictionPolicy::kWindow);
  }

  // Puts `next`, which pushes the window's resident `key` into probation, then uses `key`,
  // which promotes it and overflows protected by one. Returns the keys demoted.
  std::vector<int> promote(int key, int next) {
    const std::vector<int> before = policy_.keys_in(EvictionPolicy::kProbation);
    EXPECT_TRUE(policy_.put(next).empty());
    EXPECT_EQ(policy_.queue(key), EvictionPolicy::kProbation);
    policy_.use(key);
    EXPECT_EQ(policy_.queue(key), EvictionPolicy::kProtected);
    std::vector<int> demoted;
    for (int k : policy_.keys_in(EvictionPolicy::kProbation)) {
      if (std::find(before.begin(), before.end(), k) == before.end()) demoted.push_back(k);
    }
    return demoted;
  }

  // Keeps probation empty, so that no eviction interferes.
  void forget(const std::vector<int>& keys) {
    for (int k : keys) policy_.remove(k);
  }

  void expect_consistent() {
    EXPECT_EQ(policy_.weight(), policy_.weight_of_nodes());
    EXPECT_LE(policy_.weight(), kBound);
    if (marking()) {
      EXPECT_THAT(policy_.keys_with_a_wrong_clock(), ::testing::IsEmpty());
    }
  }

  const PolicyTuning tuning_ = fixed_tuning();
  PolicyUnderTest policy_{PolicyKind::kAdaptiveTinyLfu, kBound, &tuning_, marking()};
};

class ClockProtectedQueue : public ProtectedQueue {};

TEST_P(ClockProtectedQueue, AReferencedEntrySurvivesTheNextDemotionAndLosesItsMark) {
  ASSERT_TRUE(policy_.mark(1));

  EXPECT_THAT(promote(8, 9), ElementsAre(2)) << "1 is the oldest but was referenced";
  EXPECT_EQ(policy_.queue(1), EvictionPolicy::kProtected);
  EXPECT_EQ(policy_.clock(1), kUnreferenced) << "the hand cleared the mark";
  EXPECT_EQ(policy_.clock(2), kNotProtected) << "in probation, hits are noted again";
  expect_consistent();
}

TEST_P(ClockProtectedQueue, TheFirstUnreferencedEntryUnderTheHandIsDemoted) {
  for (int key : {1, 2, 3, 5, 6, 7}) ASSERT_TRUE(policy_.mark(key));

  EXPECT_THAT(promote(8, 9), ElementsAre(4));
  for (int key : {1, 2, 3}) EXPECT_EQ(policy_.clock(key), kUnreferenced) << "passed: " << key;
  for (int key : {5, 6, 7}) EXPECT_EQ(policy_.clock(key), kReferenced) << "not reached: " << key;
  EXPECT_EQ(policy_.clock(8), kUnreferenced) << "a newcomer starts unreferenced";
  expect_consistent();
}

TEST_P(ClockProtectedQueue, AMarkedEntryIsNotMarkedAgain) {
  ASSERT_TRUE(policy_.mark(3));
  EXPECT_FALSE(policy_.mark(3));
  EXPECT_EQ(policy_.clock(3), kReferenced);
}

TEST_P(ClockProtectedQueue, TheHandResumesWhereItStopped) {
  ASSERT_TRUE(policy_.mark(1));
  ASSERT_THAT(promote(8, 9), ElementsAre(2));  // the hand stops past 2, at 3
  forget({2});

  EXPECT_THAT(promote(9, 10), ElementsAre(3)) << "not 1, the oldest: the hand is at 3";
  forget({3});
  EXPECT_THAT(promote(10, 11), ElementsAre(4));
  expect_consistent();
}

TEST_P(ClockProtectedQueue, TheHandPassesOverReferencedEntriesAndWraps) {
  ASSERT_TRUE(policy_.mark(1));
  ASSERT_THAT(promote(8, 9), ElementsAre(2));  // protected 1 3 4 5 6 7 8, hand at 3
  forget({2});
  for (int key = 3; key <= 8; ++key) ASSERT_TRUE(policy_.mark(key));

  // 9 enters just behind the hand (between 1 and 3); the hand clears 3..8, wraps to 1.
  EXPECT_THAT(promote(9, 10), ElementsAre(1));
  for (int key = 3; key <= 8; ++key) EXPECT_EQ(policy_.clock(key), kUnreferenced) << key;
  EXPECT_EQ(policy_.queue(9), EvictionPolicy::kProtected) << "a newcomer gets a full turn";
  forget({1});

  // The hand moved on from 1 to 9, the newcomer, which has had its turn now.
  EXPECT_THAT(promote(10, 11), ElementsAre(9));
  expect_consistent();
}

// The same uses, in exact LRU order (marking off) and in CLOCK order (marking on): LRU
// demotes in order of last use; CLOCK in queue order, a mark buying one lap.
TEST_P(ProtectedQueue, DemotesInLruOrderOrInClockOrder) {
  for (int key : {4, 2, 6}) {
    if (marking()) {
      ASSERT_TRUE(policy_.mark(key));  // a reader's hit
    } else {
      policy_.use(key);  // a noted hit: moves to the newest end
    }
  }

  std::vector<int> demoted;
  for (int key = 8; key <= 14; ++key) {
    const std::vector<int> d = promote(key, key + 1);
    demoted.insert(demoted.end(), d.begin(), d.end());
    forget(d);
  }

  if (marking()) {
    EXPECT_THAT(demoted, ElementsAre(1, 3, 5, 7, 8, 9, 2));
  } else {
    EXPECT_THAT(demoted, ElementsAre(1, 3, 5, 7, 4, 2, 6));
  }
  expect_consistent();
}

TEST_P(ProtectedQueue, ANotedHitOnAProtectedEntryCountsAsAUse) {
  policy_.use(1);  // a sampled hit, or one noted before the entry was promoted

  EXPECT_THAT(promote(8, 9), ElementsAre(2));
  if (marking()) {
    EXPECT_EQ(policy_.clock(1), kUnreferenced) << "the note became a mark, cleared by the hand";
  } else {
    EXPECT_EQ(policy_.clock(1), kNotProtected) << "without marking, readers always note";
  }
  expect_consistent();
}

TEST_P(ClockProtectedQueue, RemovingTheEntryUnderTheHandMovesTheHandOn) {
  ASSERT_TRUE(policy_.mark(1));
  ASSERT_THAT(promote(8, 9), ElementsAre(2));  // hand at 3
  forget({2});

  policy_.remove(3);  // freed: a hand left on it would touch freed memory
  expect_consistent();
  ASSERT_THAT(promote(9, 10), ::testing::IsEmpty()) << "protected was one short";
  EXPECT_THAT(promote(10, 11), ElementsAre(4));
  expect_consistent();
}

TEST_P(ClockProtectedQueue, RemovingTheNewestEntryUnderTheHandWrapsTheHand) {
  for (int key = 1; key <= 6; ++key) ASSERT_TRUE(policy_.mark(key));
  ASSERT_THAT(promote(8, 9), ElementsAre(7));  // protected 1..6 8, hand at 8, the newest
  forget({7});

  policy_.remove(8);
  ASSERT_THAT(promote(9, 10), ::testing::IsEmpty());
  EXPECT_THAT(promote(10, 11), ElementsAre(1)) << "the hand went back to the oldest";
  expect_consistent();
}

TEST_P(ClockProtectedQueue, RemovingEveryProtectedEntryResetsTheHand) {
  ASSERT_TRUE(policy_.mark(1));
  ASSERT_THAT(promote(8, 9), ElementsAre(2));
  forget({2});
  for (int key : {3, 4, 5, 6, 7, 8, 1}) policy_.remove(key);  // the hand's, then the rest
  ASSERT_THAT(policy_.keys_in(EvictionPolicy::kProtected), ::testing::IsEmpty());

  for (int key = 9; key <= 15; ++key) ASSERT_THAT(promote(key, key + 1), ::testing::IsEmpty());
  EXPECT_THAT(promote(16, 17), ElementsAre(9)) << "a new lap starts at the oldest";
  expect_consistent();
}

TEST_P(ClockProtectedQueue, ReplacingTheEntryUnderTheHandKeepsItsPlaceAndItsMark) {
  ASSERT_TRUE(policy_.mark(1));
  ASSERT_THAT(promote(8, 9), ElementsAre(2));  // hand at 3
  forget({2});

  // A put of key 3: the new node takes the old one's place (old freed), and the put is a
  // use: referenced.
  ASSERT_THAT(policy_.replace(3), ::testing::IsEmpty());
  EXPECT_EQ(policy_.queue(3), EvictionPolicy::kProtected);
  EXPECT_EQ(policy_.clock(3), kReferenced);

  EXPECT_THAT(promote(9, 10), ElementsAre(4)) << "the hand was on 3's place: cleared, moved on";
  EXPECT_EQ(policy_.clock(3), kUnreferenced);
  expect_consistent();
}

TEST_P(ClockProtectedQueue, ReplacingWithAHeavierValueKeepsTheWeightExactAndTheBound) {
  ASSERT_TRUE(policy_.mark(1));
  ASSERT_THAT(promote(8, 9), ElementsAre(2));  // hand at 3
  // Weights 1 each: window 9, probation 2, protected 1 3..8; total 9 of 10.

  policy_.replace(3, 3);  // +2: over the bound by one

  EXPECT_EQ(policy_.weight(), policy_.weight_of_nodes());
  EXPECT_LE(policy_.weight(), kBound);
  EXPECT_TRUE(policy_.contains(3));
  expect_consistent();
}

INSTANTIATE_TEST_SUITE_P(Marking, ClockProtectedQueue, ::testing::Values(true),
                         [](const auto&) { return std::string("Clock"); });
INSTANTIATE_TEST_SUITE_P(BothOrders, ProtectedQueue, ::testing::Bool(), [](const auto& info) {
  return std::string(info.param ? "Clock" : "Lru");
});

// A bound of 10 with a 30% window: the window holds 3.
class MarkedWindow : public ::testing::TestWithParam<bool> {
 protected:
  bool marking() const { return GetParam(); }
  const PolicyTuning tuning_{.window_fraction = 0.3, .sketch_aging = 10, .eviction_credit = 0};
  PolicyUnderTest policy_{PolicyKind::kAdaptiveTinyLfu, 10, &tuning_, marking()};
};

TEST_P(MarkedWindow, AReferencedOldestEntryGoesRoundOnceInsteadOfLeaving) {
  for (int key = 1; key <= 3; ++key) policy_.put(key);
  if (marking()) {
    ASSERT_TRUE(policy_.mark(1));  // a reader's hit
  } else {
    policy_.use(1);  // a noted hit: 1 becomes the newest
  }

  policy_.put(4);

  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation), ElementsAre(2));
  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kWindow), ElementsAre(1, 3, 4));
  if (marking()) {
    EXPECT_EQ(policy_.clock(1), kUnreferenced) << "the lap cleared the mark";
  }

  policy_.put(5);
  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation), ElementsAre(2, 3));
  // Marking: the window is 4 1 5 (1 went round behind 4); LRU: 1 4 5.
  policy_.put(6);
  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation),
              marking() ? ElementsAre(2, 3, 4) : ElementsAre(1, 2, 3));
  policy_.put(7);  // marking: 1, unreferenced now, leaves; LRU: 4 leaves
  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(policy_.clock(1), kNotProtected) << "in probation hits are noted";
}

TEST_P(MarkedWindow, WhenEveryEntryIsReferencedTheyAllGoRoundOnce) {
  for (int key = 1; key <= 3; ++key) policy_.put(key);
  for (int key = 1; key <= 3; ++key) {
    if (marking()) {
      ASSERT_TRUE(policy_.mark(key));
    } else {
      policy_.use(key);
    }
  }

  policy_.put(4);

  if (marking()) {
    // 1 2 3 go round behind 4 (marks cleared): 4, never hit, is the one to leave.
    EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation), ElementsAre(4));
    for (int key = 1; key <= 3; ++key) EXPECT_EQ(policy_.clock(key), kUnreferenced) << key;
  } else {
    EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation), ElementsAre(1));
  }
  EXPECT_EQ(policy_.weight(), 4u);
}

TEST_P(MarkedWindow, ShrinkingTheWindowGivesReferencedEntriesTheirLapToo) {
  for (int key = 1; key <= 3; ++key) policy_.put(key);
  if (marking()) {
    ASSERT_TRUE(policy_.mark(1));
  } else {
    policy_.use(1);
  }

  policy_.set_tuning(fixed_tuning());  // a 1% window: 1 entry

  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kProbation), ElementsAre(2, 3));
  EXPECT_THAT(policy_.keys_in(EvictionPolicy::kWindow), ElementsAre(1));
  EXPECT_EQ(policy_.weight(), policy_.weight_of_nodes());
  if (marking()) {
    EXPECT_THAT(policy_.keys_with_a_wrong_clock(), ::testing::IsEmpty());
  }
}

INSTANTIATE_TEST_SUITE_P(BothOrders, MarkedWindow, ::testing::Bool(), [](const auto& info) {
  return std::string(info.param ? "Clock" : "Lru");
});

TEST(MarkingPolicy, IsChosenBySizeUnlessForced) {
  const PolicyTuning tuning = fixed_tuning();
  EXPECT_FALSE(EvictionPolicy(PolicyKind::kAdaptiveTinyLfu, 4095, 4095, kSeed, &tuning).marking());
  EXPECT_TRUE(EvictionPolicy(PolicyKind::kAdaptiveTinyLfu, 4096, 4096, kSeed, &tuning).marking());
  EXPECT_TRUE(EvictionPolicy(PolicyKind::kAdaptiveTinyLfu, 10, 10, kSeed, &tuning, true).marking());
  EXPECT_FALSE(
      EvictionPolicy(PolicyKind::kAdaptiveTinyLfu, 8192, 8192, kSeed, &tuning, false).marking());
  EXPECT_FALSE(EvictionPolicy(PolicyKind::kLru, 8192, 8192, kSeed, nullptr, true).marking())
      << "LRU has no protected queue to mark";
}

// Random puts, hits (marks and notes), removals, replacements with other weights and
// tuning changes, with marking on: after every step the weight is the sum of the nodes'
// weights, within the bound after each eviction, and every clock matches its queue.
TEST(MarkingPolicy, RandomOperationsKeepTheQueuesConsistent) {
  constexpr std::uint64_t kBound = 60;
  const PolicyTuning tunings[] = {
      fixed_tuning(),
      fixed_tuning(1),
      {.window_fraction = 0.2, .sketch_aging = 10, .eviction_credit = 0},
      {.window_fraction = 0.5, .sketch_aging = 25, .eviction_credit = 0}};
  PolicyUnderTest tinylfu(PolicyKind::kAdaptiveTinyLfu, kBound, &tunings[0], /*marking=*/true);
  std::mt19937 rng(11);
  std::vector<int> keys;  // candidates for hits; may hold evicted keys
  int next_key = 0;
  for (int step = 0; step < 30'000; ++step) {
    const unsigned op = rng() % 100;
    const int some = keys.empty() ? -1 : keys[rng() % keys.size()];
    const bool present = some >= 0 && tinylfu.contains(some);
    if (op < 30 || !present) {
      tinylfu.put(next_key, 1 + rng() % 4);
      keys.push_back(next_key++);
      if (keys.size() > 200) keys.erase(keys.begin(), keys.begin() + 100);
      ASSERT_LE(tinylfu.weight(), kBound) << "after put at step " << step;
    } else if (op < 60) {
      tinylfu.mark(some);
    } else if (op < 80) {
      tinylfu.use(some);
    } else if (op < 88) {
      tinylfu.remove(some);
    } else if (op < 98) {
      tinylfu.replace(some, 1 + rng() % 6);
      ASSERT_LE(tinylfu.weight(), kBound) << "after replace at step " << step;
    } else {
      tinylfu.set_tuning(tunings[rng() % 4]);
    }
    ASSERT_EQ(tinylfu.weight(), tinylfu.weight_of_nodes()) << "at step " << step;
    ASSERT_THAT(tinylfu.keys_with_a_wrong_clock(), ::testing::IsEmpty()) << "at step " << step;
  }
}

}  // namespace
}  // namespace tiercache::detail
