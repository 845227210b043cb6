// HashTable: the chains and their links (tag bits, the "chain goes on" bit) through inserts,
// removals from every position, replacements and growth -- every present key found, every
// absent one not, and every link's flags telling the truth about the node it points to.

#include "tiercache/detail/hash_table.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>
#include <set>
#include <vector>

namespace tiercache::detail {
namespace {

// Nodes whose identity is their hash (tests choose colliding hashes on purpose).
class Chains {
 public:
  explicit Chains(std::size_t expected) : table_(expected) {}

  NodeHeader* insert(std::uint32_t hash) {
    NodeHeader& node = nodes_.emplace_back();
    node.hash = hash;
    EXPECT_EQ(table_.insert(&node), nullptr);  // sized for it: never grows here
    present_.insert(&node);
    return &node;
  }
  void remove(NodeHeader* node) {
    table_.remove(node);
    present_.erase(node);
  }
  NodeHeader* replace(NodeHeader* old) {
    NodeHeader& fresh = nodes_.emplace_back();
    fresh.hash = old->hash;
    table_.replace(old, &fresh);
    present_.erase(old);
    present_.insert(&fresh);
    return &fresh;
  }
  NodeHeader* find(const NodeHeader* node) const {
    return table_.find(node->hash, [&](const NodeHeader* n) { return n == node; });
  }

  // Every present node is found; none that was removed; every link's flags are right.
  void check() const {
    for (const NodeHeader* n : present_) EXPECT_EQ(find(n), n) << "hash " << n->hash;
    for (const NodeHeader& n : nodes_) {
      if (!present_.contains(&n)) {
        EXPECT_EQ(find(&n), nullptr) << "hash " << n.hash;
      }
    }
    std::size_t linked = 0;
    table_.for_each([&](const NodeHeader* n) {
      ++linked;
      const std::uintptr_t next = n->chain.load();
      if (next != 0) {
        const NodeHeader* successor = link_node(next);
        EXPECT_EQ(next & kLinkTagMask, link_tag(successor->hash));
        EXPECT_EQ((next & kLinkMore) != 0, successor->chain.load() != 0);
      }
    });
    EXPECT_EQ(linked, present_.size());
    EXPECT_EQ(table_.size(), present_.size());
  }

 private:
  HashTable table_;
  std::deque<NodeHeader> nodes_;  // stable addresses
  std::set<const NodeHeader*> present_;
};

// Hashes that share a bucket (same low bits) but differ in their tag (top bits) or not.
std::uint32_t colliding(std::uint32_t tag, std::uint32_t n) { return (tag << 30) | (n << 12) | 5; }

TEST(HashTable, FindsEveryNodeOfALongChainWhateverItsTag) {
  Chains chains(64);
  for (std::uint32_t i = 0; i < 12; ++i) chains.insert(colliding(i % 4, i));
  chains.check();
}

TEST(HashTable, RemovingTheFirstMiddleOrLastNodeKeepsTheRestReachable) {
  for (int victim = 0; victim < 5; ++victim) {
    Chains chains(64);
    std::vector<NodeHeader*> nodes;
    for (std::uint32_t i = 0; i < 5; ++i) nodes.push_back(chains.insert(colliding(i % 2, i)));
    chains.remove(nodes[victim]);
    chains.check();
    chains.remove(nodes[(victim + 2) % 5]);
    chains.check();
  }
}

TEST(HashTable, AChainEmptiedAndRefilledWorks) {
  Chains chains(64);
  NodeHeader* a = chains.insert(colliding(1, 1));
  NodeHeader* b = chains.insert(colliding(2, 2));
  chains.remove(b);  // the last: a is last again
  chains.check();
  chains.remove(a);
  chains.check();
  chains.insert(colliding(2, 3));
  chains.insert(colliding(1, 4));
  chains.check();
}

TEST(HashTable, AReplacementTakesItsPredecessorsPlace) {
  Chains chains(64);
  std::vector<NodeHeader*> nodes;
  for (std::uint32_t i = 0; i < 4; ++i) nodes.push_back(chains.insert(colliding(3, i)));
  nodes[0] = chains.replace(nodes[0]);
  nodes[3] = chains.replace(nodes[3]);
  nodes[1] = chains.replace(nodes[1]);
  chains.check();
}

TEST(HashTable, RandomInsertsRemovesAndReplacementsKeepEveryLinkTrue) {
  std::mt19937 random(7);
  Chains chains(256);
  std::vector<NodeHeader*> live;
  for (int step = 0; step < 3000; ++step) {
    const int action = static_cast<int>(random() % 3);
    if (action == 0 || live.empty()) {
      if (live.size() < 200) live.push_back(chains.insert(colliding(random() % 4, random() % 8)));
    } else if (action == 1) {
      const std::size_t i = random() % live.size();
      chains.remove(live[i]);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      const std::size_t i = random() % live.size();
      live[i] = chains.replace(live[i]);
    }
    if (step % 100 == 0) chains.check();
  }
  chains.check();
}

TEST(HashTable, GrowingKeepsEveryChainAndLinkTrue) {
  HashTable table(16);
  std::deque<NodeHeader> nodes;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    NodeHeader& node = nodes.emplace_back();
    node.hash = i * 2654435761u;
    table.insert(&node);  // grows several times; the retired arrays are freed here
  }
  for (const NodeHeader& node : nodes) {
    EXPECT_EQ(table.find(node.hash, [&](const NodeHeader* n) { return n == &node; }), &node);
  }
  table.for_each([&](const NodeHeader* n) {
    const std::uintptr_t next = n->chain.load();
    if (next != 0) {
      EXPECT_EQ((next & kLinkMore) != 0, link_node(next)->chain.load() != 0);
    }
  });
}

}  // namespace
}  // namespace tiercache::detail
