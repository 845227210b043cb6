// jitter_ttl and TtlJitter: TTLs spread uniformly within +-fraction, mean unchanged.

#include "tiercache/jitter.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace tiercache {
namespace {

using namespace std::chrono_literals;

// The interval jitter_ttl may return, widened by 1 ns for the rounding of a double.
bool within(Duration jittered, Duration ttl, double fraction) {
  const double low = static_cast<double>(ttl.count()) * (1 - fraction) - 1;
  const double high = static_cast<double>(ttl.count()) * (1 + fraction) + 1;
  const auto value = static_cast<double>(jittered.count());
  return low <= value && value <= high;
}

TEST(JitterTtl, StaysWithinTheFraction) {
  std::mt19937_64 rng(1);
  for (const double fraction : {0.01, 0.1, 0.5, 1.0}) {
    for (int i = 0; i < 10'000; ++i) {
      const Duration jittered = jitter_ttl(Duration(60s), fraction, rng);
      ASSERT_TRUE(within(jittered, 60s, fraction))
          << "fraction " << fraction << ": " << jittered.count() << " ns";
      ASSERT_GE(jittered, Duration::zero());
    }
  }
}

TEST(JitterTtl, SpreadsOverTheWholeInterval) {
  std::mt19937_64 rng(2);
  Duration lowest = Duration::max();
  Duration highest = Duration::min();
  for (int i = 0; i < 10'000; ++i) {
    const Duration jittered = jitter_ttl(Duration(100s), 0.2, rng);
    lowest = std::min(lowest, jittered);
    highest = std::max(highest, jittered);
  }

  EXPECT_LT(lowest, Duration(81s));
  EXPECT_GT(highest, Duration(119s));
}

TEST(JitterTtl, KeepsTheMeanTtl) {
  std::mt19937_64 rng(3);
  constexpr int kDraws = 100'000;
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    sum += static_cast<double>(jitter_ttl(Duration(10s), 0.3, rng).count());
  }

  // The mean of 100,000 uniform draws of spread +-30% is within 0.5% (~14 sigma).
  EXPECT_NEAR(sum / kDraws, static_cast<double>(Duration(10s).count()),
              0.005 * static_cast<double>(Duration(10s).count()));
}

TEST(JitterTtl, IsDeterministicWithASeededEngine) {
  std::mt19937_64 a(42);
  std::mt19937_64 b(42);

  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(jitter_ttl(Duration(1min), 0.1, a), jitter_ttl(Duration(1min), 0.1, b));
  }
}

TEST(JitterTtl, LeavesNeverExpiringTtlsUnchanged) {
  std::mt19937_64 rng(4);

  EXPECT_EQ(jitter_ttl(Duration::max(), 0.5, rng), Duration::max());
}

TEST(JitterTtl, LeavesZeroAndNegativeTtlsUnchanged) {
  std::mt19937_64 rng(5);

  EXPECT_EQ(jitter_ttl(Duration::zero(), 0.5, rng), Duration::zero());
  EXPECT_EQ(jitter_ttl(Duration(-5s), 0.5, rng), Duration(-5s));
}

TEST(JitterTtl, AZeroFractionChangesNothing) {
  std::mt19937_64 rng(6);

  EXPECT_EQ(jitter_ttl(Duration(30s), 0.0, rng), Duration(30s));
}

TEST(JitterTtl, NeverOverflowsNearTheLargestTtl) {
  std::mt19937_64 rng(7);
  const Duration huge = Duration::max() - 1ns;

  for (int i = 0; i < 1000; ++i) {
    const Duration jittered = jitter_ttl(huge, 0.5, rng);
    ASSERT_GT(jittered, Duration::zero());
    ASSERT_TRUE(jittered == huge || within(jittered, huge, 0.5)) << jittered.count();
  }
}

TEST(TtlJitter, StaysWithinItsFraction) {
  TtlJitter jitter(0.25, /*seed=*/9);

  for (int i = 0; i < 10'000; ++i) ASSERT_TRUE(within(jitter(Duration(1h)), 1h, 0.25));
  EXPECT_EQ(jitter.fraction(), 0.25);
}

TEST(TtlJitter, TheSameSeedGivesTheSameSequence) {
  TtlJitter a(0.1, 77);
  TtlJitter b(0.1, 77);
  TtlJitter other(0.1, 78);

  int differences_from_other = 0;
  for (int i = 0; i < 100; ++i) {
    const Duration next = a(Duration(1min));
    ASSERT_EQ(next, b(Duration(1min)));
    differences_from_other += next != other(Duration(1min)) ? 1 : 0;
  }
  EXPECT_GT(differences_from_other, 90);
}

TEST(TtlJitter, LeavesNeverExpiringTtlsUnchanged) {
  TtlJitter jitter(0.5, 1);

  EXPECT_EQ(jitter(Duration::max()), Duration::max());
}

}  // namespace
}  // namespace tiercache
