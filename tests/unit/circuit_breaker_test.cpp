// CircuitBreaker: closed -> open after consecutive failures, one probe when half-open, and
// time from a ManualClock.

#include "tiercache/circuit_breaker.hpp"

#include <gtest/gtest.h>

namespace tiercache {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  CircuitBreaker breaker_{CircuitBreakerOptions{3, 2s}, clock_};

  void fail(int times) {
    for (int i = 0; i < times; ++i) {
      ASSERT_TRUE(breaker_.allow());
      breaker_.record_failure();
    }
  }
};

TEST_F(CircuitBreakerTest, StaysClosedBelowTheThreshold) {
  fail(2);
  EXPECT_EQ(breaker_.state(), State::kClosed);
  breaker_.record_success();  // a success resets the count
  fail(2);
  EXPECT_EQ(breaker_.state(), State::kClosed);
  EXPECT_EQ(breaker_.opened_count(), 0u);
}

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailuresAndRejectsCalls) {
  fail(3);
  EXPECT_EQ(breaker_.state(), State::kOpen);
  EXPECT_EQ(breaker_.opened_count(), 1u);
  EXPECT_FALSE(breaker_.allow());
  clock_->advance(1999ms);
  EXPECT_FALSE(breaker_.allow());
}

TEST_F(CircuitBreakerTest, LetsOneProbeThroughAfterTheOpenDuration) {
  fail(3);
  clock_->advance(2s);
  EXPECT_TRUE(breaker_.allow());
  EXPECT_EQ(breaker_.state(), State::kHalfOpen);
  EXPECT_FALSE(breaker_.allow()) << "only one probe at a time";
  breaker_.record_success();
  EXPECT_EQ(breaker_.state(), State::kClosed);
  EXPECT_TRUE(breaker_.allow());
}

TEST_F(CircuitBreakerTest, AFailedProbeOpensItAgain) {
  fail(3);
  clock_->advance(2s);
  ASSERT_TRUE(breaker_.allow());
  breaker_.record_failure();
  EXPECT_EQ(breaker_.state(), State::kOpen);
  EXPECT_EQ(breaker_.opened_count(), 2u);
  EXPECT_FALSE(breaker_.allow());
  clock_->advance(2s);
  EXPECT_TRUE(breaker_.allow());
}

TEST_F(CircuitBreakerTest, FailuresOfCallsStartedBeforeOpeningChangeNothing) {
  fail(3);
  breaker_.record_failure();
  breaker_.record_failure();
  EXPECT_EQ(breaker_.opened_count(), 1u);
  clock_->advance(2s);
  EXPECT_TRUE(breaker_.allow()) << "the open period was not extended";
}

TEST(CircuitBreakerNames, ToString) {
  EXPECT_STREQ(to_string(State::kClosed), "closed");
  EXPECT_STREQ(to_string(State::kOpen), "open");
  EXPECT_STREQ(to_string(State::kHalfOpen), "half_open");
}

}  // namespace
}  // namespace tiercache
