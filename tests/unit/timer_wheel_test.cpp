// detail::TimerWheel: O(1) expiry of timed nodes in a hierarchy of wheels.
//
// The contract checked here, whatever the deadlines and however time moves:
//  - never early: advance(now) reports only nodes whose deadline is <= now;
//  - at most one finest-wheel slot late: once now >= deadline + kSlot, the node has been
//    reported (the class comment: "reclaimed at most ~1 s (one wheel-0 slot) after");
//  - exactly once, and never after it was descheduled.

#include "tiercache/detail/timer_wheel.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tiercache/detail/node.hpp"

namespace tiercache::detail {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::int64_t kSlot = std::int64_t{1} << 30;  // the finest wheel's resolution
constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kDay = 86'400 * kSecond;
// The wheels' spans: 2^36 (~68.7 s), 2^42 (~73 min), 2^47 (~39 h), 2^49 (~6.5 days).
constexpr std::int64_t kLevelSpans[] = {std::int64_t{1} << 36, std::int64_t{1} << 42,
                                        std::int64_t{1} << 47, std::int64_t{1} << 49};

// A timed node as LocalCache lays it out: TimerLinks directly before the header.
struct TimedNode {
  TimerLinks links;
  NodeHeader header;
};
static_assert(offsetof(TimedNode, header) == TimerLinks::kOffset);

// A wheel with the nodes it was given, each identified by its index, that checks the
// contract at every step.
class WheelUnderTest {
 public:
  explicit WheelUnderTest(std::int64_t start) : wheel_(start), now_(start) {}

  // Schedules a node expiring at `deadline`; returns its id.
  std::size_t schedule_at(std::int64_t deadline) {
    auto node = std::make_unique<TimedNode>();
    node->links.expires_at_ns = deadline;
    node->header.hash = static_cast<std::uint32_t>(nodes_.size());
    node->header.flags = NodeHeader::kTimed;
    wheel_.schedule(&node->header);
    nodes_.push_back(std::move(node));
    pending_.emplace(deadline, nodes_.size() - 1);
    return nodes_.size() - 1;
  }
  std::size_t schedule_in(std::int64_t delay) { return schedule_at(now_ + delay); }

  void deschedule(std::size_t id) {
    wheel_.deschedule(&nodes_[id]->header);
    pending_.erase({deadline_of(id), id});
  }

  // Advances to `now`; returns the ids reported, in order.
  std::vector<std::size_t> advance_to(std::int64_t now) {
    std::vector<NodeHeader*> expired;
    wheel_.advance(now, expired);
    now_ = std::max(now_, now);
    std::vector<std::size_t> ids;
    for (NodeHeader* n : expired) {
      const std::size_t id = n->hash;
      ids.push_back(id);
      if (pending_.erase({deadline_of(id), id}) == 0) {
        note(describe(id) + " reported twice, or after it was descheduled");
      } else if (deadline_of(id) > now) {
        note(describe(id) + " reported early");
      }
    }
    if (!pending_.empty() && pending_.begin()->first <= now_ - kSlot) {
      note(describe(pending_.begin()->second) + " not reported one slot after its deadline");
    }
    return ids;
  }
  std::vector<std::size_t> advance_by(std::int64_t delta) { return advance_to(now_ + delta); }

  // The first breach of the contract seen so far, or "".
  const std::string& violation() const { return violation_; }
  std::int64_t now() const { return now_; }
  TimerWheel& wheel() { return wheel_; }

 private:
  std::int64_t deadline_of(std::size_t id) const { return nodes_[id]->links.expires_at_ns; }
  std::string describe(std::size_t id) const {
    return "node " + std::to_string(id) + " (deadline " + std::to_string(deadline_of(id)) +
           ", now " + std::to_string(now_) + ")";
  }
  void note(const std::string& problem) {
    if (violation_.empty()) violation_ = problem;
  }

  TimerWheel wheel_;
  std::int64_t now_;
  std::vector<std::unique_ptr<TimedNode>> nodes_;
  std::set<std::pair<std::int64_t, std::size_t>> pending_;  // scheduled, not yet reported
  std::string violation_;
};

constexpr std::int64_t kStart = 365 * kDay;  // like ManualClock: not at zero

TEST(TimerWheel, NothingIsReportedBeforeItsDeadline) {
  WheelUnderTest wheel(kStart);
  wheel.schedule_in(10 * kSecond);

  EXPECT_THAT(wheel.advance_by(10 * kSecond - 1), IsEmpty());
}

TEST(TimerWheel, ANodeIsReportedWithinOneSlotOfItsDeadline) {
  WheelUnderTest wheel(kStart);
  const std::size_t id = wheel.schedule_in(10 * kSecond);

  EXPECT_THAT(wheel.advance_by(10 * kSecond + kSlot), ElementsAre(id));
  EXPECT_THAT(wheel.advance_by(kDay), IsEmpty()) << "and only once";
}

TEST(TimerWheel, ADescheduledNodeIsNeverReported) {
  WheelUnderTest wheel(kStart);
  const std::size_t kept = wheel.schedule_in(5 * kSecond);
  const std::size_t cancelled = wheel.schedule_in(5 * kSecond);

  wheel.deschedule(cancelled);

  EXPECT_THAT(wheel.advance_by(kDay), ElementsAre(kept));
}

TEST(TimerWheel, TimeNeverGoesBackwards) {
  WheelUnderTest wheel(kStart);
  wheel.schedule_in(kSecond);

  EXPECT_THAT(wheel.advance_to(kStart - kDay), IsEmpty());
  EXPECT_EQ(wheel.wheel().now_ns(), kStart);
}

TEST(TimerWheel, ClearForgetsEveryNode) {
  WheelUnderTest wheel(kStart);
  for (int i = 1; i <= 10; ++i) wheel.schedule_in(i * kDay);

  wheel.wheel().clear();

  EXPECT_THAT(wheel.advance_by(100 * kDay), IsEmpty());
}

TEST(TimerWheel, ANodeAtTheEndOfTimeIsNotReportedEarly) {
  WheelUnderTest wheel(kStart);
  wheel.schedule_at(std::numeric_limits<std::int64_t>::max());

  EXPECT_THAT(wheel.advance_to(std::numeric_limits<std::int64_t>::max() - kDay), IsEmpty());
}

TEST(TimerWheel, NodesAtEveryLevelBoundaryExpireOnTime) {
  WheelUnderTest wheel(kStart);
  std::vector<std::int64_t> deadlines;
  for (std::int64_t d : {std::int64_t{1}, kSlot - 1, kSlot, kSlot + 1})
    deadlines.push_back(kStart + d);
  for (std::int64_t span : kLevelSpans) {
    for (std::int64_t d : {span - 1, span, span + 1, 3 * span + 17})
      deadlines.push_back(kStart + d);
  }
  for (std::int64_t d : deadlines) wheel.schedule_at(d);

  // Visit every deadline closely: just before, at, and up to one slot after it.
  std::vector<std::int64_t> instants;
  for (std::int64_t d : deadlines) {
    for (std::int64_t at : {d - 1, d, d + kSlot / 2, d + kSlot}) instants.push_back(at);
  }
  std::sort(instants.begin(), instants.end());
  for (std::int64_t at : instants) {
    wheel.advance_to(at);
    ASSERT_EQ(wheel.violation(), "");
  }
}

// Time moving in equal steps of `step`, for up to 20,000 steps, with deadlines spread over
// that horizon (and some exactly on slot boundaries).
struct Stepping {
  const char* name;
  std::int64_t start;
  std::int64_t step;
};

class TimerWheelStepping : public ::testing::TestWithParam<Stepping> {};

TEST_P(TimerWheelStepping, ReportsExactlyTheDueNodes) {
  const std::int64_t start = GetParam().start;
  const std::int64_t step = GetParam().step;
  constexpr std::int64_t kLongest = 40 * kDay;
  const std::int64_t horizon = step >= kLongest / 20'000 ? kLongest : step * 20'000;
  WheelUnderTest wheel(start);
  std::mt19937_64 rng(static_cast<std::uint64_t>(step));
  std::uniform_int_distribution<std::int64_t> delay(0, horizon);
  for (int i = 0; i < 2000; ++i) wheel.schedule_in(delay(rng));
  for (int i = 0; i < 200; ++i) wheel.schedule_in((delay(rng) / kSlot) * kSlot);

  while (wheel.now() < start + horizon + 2 * kSlot) {
    wheel.advance_by(step);
    ASSERT_EQ(wheel.violation(), "");
  }
}

INSTANTIATE_TEST_SUITE_P(
    VariousSteps, TimerWheelStepping,
    ::testing::Values(Stepping{"OneMillisecond", kStart, 1'000'000},
                      Stepping{"LessThanASlot", kStart, 700'000'000},
                      Stepping{"ExactlyOneSlot", kStart, kSlot},
                      Stepping{"SeveralSlots", kStart, 13 * kSecond},
                      Stepping{"ATurnOfTheFinestWheel", kStart, kLevelSpans[0] + 1},
                      Stepping{"OneHour", kStart, 3600 * kSecond}, Stepping{"OneDay", kStart, kDay},
                      Stepping{"MoreThanEveryWheel", kStart, 7 * kDay},
                      Stepping{"StartingAtZero", 0, 13 * kSecond},
                      Stepping{"SecondsAcrossAnOverflowTurn", kLevelSpans[3] - 1, kSecond},
                      Stepping{"HoursAcrossAnOverflowTurn", kLevelSpans[3] - 1, 3600 * kSecond}),
    [](const auto& info) { return std::string(info.param.name); });

// Irregular time: steps from a nanosecond to days, with nodes scheduled along the way (so at
// instants not aligned to any slot), and some descheduled.
TEST(TimerWheel, ReportsExactlyTheDueNodesWhenTimeMovesIrregularly) {
  WheelUnderTest wheel(kStart + 12'345);
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int> magnitude(0, 50);
  std::uniform_int_distribution<std::int64_t> delay(0, 20 * kDay);
  std::vector<std::size_t> scheduled;

  for (int i = 0; i < 5000; ++i) {
    for (int j = 0; j < 3; ++j) {
      scheduled.push_back(wheel.schedule_in(delay(rng) >> magnitude(rng) % 40));
    }
    if (i % 7 == 0) wheel.deschedule(scheduled[rng() % scheduled.size()]);
    const std::int64_t step = (std::int64_t{1} << magnitude(rng)) >> 4;
    wheel.advance_by(std::min<std::int64_t>(step + static_cast<std::int64_t>(rng() % 1000), kDay));
    ASSERT_EQ(wheel.violation(), "") << "at step " << i;
  }
}

}  // namespace
}  // namespace tiercache::detail
