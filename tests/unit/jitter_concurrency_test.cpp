// TtlJitter from many threads at once: lock-free, and still exactly its seeded sequence.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <latch>
#include <thread>
#include <vector>

#include "tiercache/jitter.hpp"

namespace tiercache {
namespace {

using namespace std::chrono_literals;

// Its generator is a counter: however calls interleave, N calls draw the first N values of
// the sequence, each exactly once.
TEST(TtlJitterConcurrency, ConcurrentCallersDrawTheSeededSequenceExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kDrawsPerThread = 5'000;
  TtlJitter shared(0.2, /*seed=*/123);
  std::vector<std::vector<Duration>> drawn(kThreads);
  std::latch start(kThreads);

  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        for (int i = 0; i < kDrawsPerThread; ++i) drawn[t].push_back(shared(Duration(1h)));
      });
    }
  }

  TtlJitter sequential(0.2, /*seed=*/123);
  std::vector<Duration> expected;
  for (int i = 0; i < kThreads * kDrawsPerThread; ++i) expected.push_back(sequential(1h));
  std::vector<Duration> all;
  for (const auto& d : drawn) all.insert(all.end(), d.begin(), d.end());
  std::sort(all.begin(), all.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(all, expected);
}

}  // namespace
}  // namespace tiercache
