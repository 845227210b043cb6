// SpinPolicy: a zero budget never spins; both choices are measured first; the faster one is
// used (spinning only with a margin) and the other tried from time to time (spinning less and
// less often while it keeps losing); a change of conditions flips the choice within a few
// samples; one stalled reply does not.

#include "tiercache/redis/detail/spin_policy.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace tiercache::redis::detail {
namespace {

using namespace std::chrono_literals;

// Runs `calls` waits: each spun wait takes `spin`, each slept one `sleep`. Returns how many
// of them spun.
int drive(SpinPolicy& policy, int calls, std::chrono::nanoseconds spin,
          std::chrono::nanoseconds sleep) {
  int spun = 0;
  for (int i = 0; i < calls; ++i) {
    const bool s = policy.spin_next();
    spun += s ? 1 : 0;
    policy.record(s, s ? spin : sleep);
  }
  return spun;
}

TEST(SpinPolicy, AZeroOrNegativeBudgetNeverSpins) {
  for (const auto budget : {std::chrono::nanoseconds::zero(), std::chrono::nanoseconds(-5)}) {
    SpinPolicy policy(budget);
    EXPECT_EQ(policy.budget(), 0ns);
    EXPECT_EQ(drive(policy, 100, 1us, 100us), 0);
    EXPECT_FALSE(policy.prefers_spinning());
  }
}

TEST(SpinPolicy, MeasuresSpinningThenSleepingBeforeChoosing) {
  SpinPolicy policy(50us);
  EXPECT_TRUE(policy.spin_next());
  policy.record(true, 20us);
  EXPECT_FALSE(policy.spin_next());
  policy.record(false, 70us);
  EXPECT_TRUE(policy.prefers_spinning());
}

TEST(SpinPolicy, SpinsWhenFasterAndStillTriesSleepingOneCallInSixteen) {
  // The VM of docs/redis-client.md: 22 us with a spin, 70 us with a wake-up.
  SpinPolicy policy(50us);
  drive(policy, 2, 22us, 70us);
  const int calls = 16 * SpinPolicy::kExploreEvery;
  EXPECT_EQ(drive(policy, calls, 22us, 70us), calls - calls / int{SpinPolicy::kExploreEvery});
  EXPECT_TRUE(policy.prefers_spinning());
}

TEST(SpinPolicy, SleepsWhenSpinningIsNotClearlyFasterAndTriesItLessAndLessOften) {
  // A server far away: the reply comes after the budget either way.
  SpinPolicy far(50us);
  drive(far, 2, 400us, 400us);
  const int calls = 16 * SpinPolicy::kExploreEvery;
  const int first_spins = drive(far, calls, 400us, 400us);
  EXPECT_GE(first_spins, 1);
  EXPECT_LT(first_spins, calls / int{SpinPolicy::kExploreEvery});
  EXPECT_FALSE(far.prefers_spinning());
  // Each losing try halves the rate, down to one call in kMaxExploreEvery.
  drive(far, 10'000, 400us, 400us);
  EXPECT_EQ(far.spin_explore_every(), SpinPolicy::kMaxExploreEvery);
  const int later = 8 * SpinPolicy::kMaxExploreEvery;
  EXPECT_EQ(drive(far, later, 400us, 400us), later / int{SpinPolicy::kMaxExploreEvery});
  // Within the margin is not enough: spinning burns a core.
  SpinPolicy close(50us);
  drive(close, 2 + calls, 95us, 100us);
  EXPECT_FALSE(close.prefers_spinning());
}

TEST(SpinPolicy, FollowsAChangeOfConditionsWithinAFewSamples) {
  SpinPolicy policy(50us);
  drive(policy, 200, 22us, 70us);
  ASSERT_TRUE(policy.prefers_spinning());
  // The server moves to the caller's core: spinning now delays it.
  drive(policy, 60, 120us, 8us);
  EXPECT_FALSE(policy.prefers_spinning());
  // And back. Spinning is now tried at most one call in kMaxExploreEvery, and its average
  // needs a few tries to come down.
  drive(policy, 10 * SpinPolicy::kMaxExploreEvery, 22us, 70us);
  EXPECT_TRUE(policy.prefers_spinning());
  EXPECT_EQ(policy.spin_explore_every(), SpinPolicy::kExploreEvery);
}

TEST(SpinPolicy, OneStalledReplyDoesNotFlipTheChoice) {
  SpinPolicy policy(50us);
  drive(policy, 200, 22us, 70us);
  ASSERT_TRUE(policy.prefers_spinning());
  policy.record(true, 50ms);  // a slow command, a preempted server
  EXPECT_TRUE(policy.prefers_spinning());
  EXPECT_EQ(drive(policy, 15, 22us, 70us) >= 13, true);
}

}  // namespace
}  // namespace tiercache::redis::detail
