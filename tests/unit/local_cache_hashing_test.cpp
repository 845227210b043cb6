// LocalCache and hash flooding. The seed randomises the table's and the sketch's hashing (and
// admission), so an attacker cannot aim collisions; what it changes must never be visible
// as a wrong answer. Keys whose hashes all collide -- the worst an attacker can do to the
// table -- must still be told apart.

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "local_cache_test_support.hpp"

namespace tiercache::test {
namespace {

LocalCacheOptions seeded(std::size_t max_entries, std::optional<std::uint64_t> seed) {
  LocalCacheOptions options = bounded_to(max_entries);
  options.seed = seed;
  return options;
}

// Runs the same random operations on `cache` and on a std::map model; returns how many
// lookups disagreed. Only meaningful while the cache never evicts (bound >= keys).
int disagreements_with_a_model(Cache& cache, unsigned workload_seed) {
  std::map<int, std::string> model;
  std::mt19937 rng(workload_seed);
  std::uniform_int_distribution<int> key(0, 199);
  std::uniform_int_distribution<int> op(0, 9);
  int disagreements = 0;
  for (int i = 0; i < 5000; ++i) {
    const int k = key(rng);
    switch (op(rng)) {
      case 0:
        cache.erase(k);
        model.erase(k);
        break;
      case 1:
      case 2:
        cache.put(k, value_for(k) + "/" + std::to_string(i));
        model[k] = value_for(k) + "/" + std::to_string(i);
        break;
      default: {
        const auto it = model.find(k);
        const std::optional<std::string> expected =
            it == model.end() ? std::nullopt : std::optional<std::string>(it->second);
        if (lookup(cache, k) != expected) ++disagreements;
      }
    }
  }
  return disagreements;
}

TEST(LocalCacheSeed, DifferentSeedsGiveTheSameAnswers) {
  for (const std::optional<std::uint64_t> seed :
       {std::optional<std::uint64_t>(1), std::optional<std::uint64_t>(2),
        std::optional<std::uint64_t>(0xffff'ffff'ffff'ffffULL), std::optional<std::uint64_t>()}) {
    Cache cache(seeded(200, seed));

    EXPECT_EQ(disagreements_with_a_model(cache, 7), 0)
        << "seed " << (seed ? std::to_string(*seed) : "from random_device");
  }
}

TEST(LocalCacheSeed, EveryValueFoundUnderAnySeedIsTheRightOne) {
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    Cache cache(seeded(50, seed));  // evicts: which keys stay may depend on the seed
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> key(0, 499);

    int wrong = 0;
    for (int i = 0; i < 5000; ++i) {
      const int k = key(rng);
      if (const std::optional<std::string> found = lookup(cache, k)) {
        wrong += *found == value_for(k) ? 0 : 1;
      } else {
        put(cache, k);
      }
      ASSERT_LE(cache.size(), 50u);
    }

    EXPECT_EQ(wrong, 0) << "seed " << seed;
    EXPECT_EQ(cache.size(), 50u) << "seed " << seed;
  }
}

// A hash an attacker controls: every key collides.
struct CollidingHash {
  std::size_t operator()(int) const noexcept { return 42; }
};
using CollidingCache = LocalCache<int, std::string, CollidingHash>;

TEST(LocalCacheHashFlooding, CollidingKeysAreToldApart) {
  CollidingCache cache(bounded_to(1000));
  for (int key = 0; key < 300; ++key) cache.put(key, value_for(key));
  for (int key = 0; key < 300; key += 3) cache.erase(key);

  for (int key = 0; key < 300; ++key) {
    Cached<std::string> found = cache.get(key);
    if (key % 3 == 0) {
      EXPECT_FALSE(found.found()) << key;
    } else {
      ASSERT_TRUE(found) << key;
      EXPECT_EQ(*found, value_for(key));
    }
  }
  EXPECT_EQ(cache.size(), 200u);
}

TEST(LocalCacheHashFlooding, CollidingKeysStillRespectTheBound) {
  CollidingCache cache(bounded_to(20));

  for (int key = 0; key < 500; ++key) {
    cache.put(key, value_for(key));
    ASSERT_LE(cache.size(), 20u);
  }

  int found = 0;
  for (int key = 0; key < 500; ++key) {
    if (Cached<std::string> v = cache.get(key)) {
      ++found;
      EXPECT_EQ(*v, value_for(key));
    }
  }
  EXPECT_EQ(found, 20);
}

}  // namespace
}  // namespace tiercache::test
