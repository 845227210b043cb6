// Backoff: exponential growth, the cap, jitter bounds, determinism, reset.

#include "tiercache/backoff.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace tiercache {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, DoublesFromTheMinimumUpToTheCapWithoutJitter) {
  Backoff backoff(50ms, 1s, 0.0, 1);
  EXPECT_EQ(backoff.next(), 50ms);
  EXPECT_EQ(backoff.next(), 100ms);
  EXPECT_EQ(backoff.next(), 200ms);
  EXPECT_EQ(backoff.next(), 400ms);
  EXPECT_EQ(backoff.next(), 800ms);
  EXPECT_EQ(backoff.next(), 1s);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(backoff.next(), 1s);  // no overflow, ever
  EXPECT_EQ(backoff.attempts(), 106u);
}

TEST(Backoff, JitterStaysWithinItsFractionAndUnderTheMaximum) {
  Backoff backoff(100ms, 12s, 0.2, 7);
  Duration base = 100ms;
  for (int i = 0; i < 40; ++i) {
    const Duration d = backoff.next();
    EXPECT_GE(d, base * 8 / 10) << i;
    EXPECT_LE(d, base * 12 / 10) << i;
    EXPECT_LE(d, 12s) << i;
    base = std::min<Duration>(base * 2, 10s);  // the cap: 12 s / 1.2
  }
}

TEST(Backoff, JitterActuallySpreadsClientsThatFailedTogether) {
  Backoff a(100ms, 10s, 0.2, 1);
  Backoff b(100ms, 10s, 0.2, 2);
  int different = 0;
  for (int i = 0; i < 30; ++i) different += a.next() != b.next() ? 1 : 0;  // also at the cap
  EXPECT_EQ(different, 30);
}

TEST(Backoff, TheSameSeedGivesTheSameDelays) {
  Backoff a(10ms, 1s, 0.5, 42);
  Backoff b(10ms, 1s, 0.5, 42);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.next(), b.next());
}

TEST(Backoff, ResetStartsOverFromTheMinimum) {
  Backoff backoff(50ms, 1s, 0.0, 1);
  for (int i = 0; i < 5; ++i) backoff.next();
  backoff.reset();
  EXPECT_EQ(backoff.attempts(), 0u);
  EXPECT_EQ(backoff.next(), 50ms);
}

}  // namespace
}  // namespace tiercache
