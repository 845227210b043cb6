// The oracle of `tiercache chaos` (tools/chaos/oracle.hpp) on synthetic runs: every rule must
// catch the wrong read it is about -- an oracle that cannot fail proves nothing -- and let the
// right ones through. Also the event log's lines (tools/chaos/event_log.hpp): round trips, and
// a torn last line (a worker SIGKILLed mid-write) that is ignored.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "chaos/event_log.hpp"
#include "chaos/oracle.hpp"

namespace tiercache::cli::chaos {
namespace {

constexpr Micros kMs = 1000;
constexpr Micros kS = 1000 * kMs;

const ProcessId kWriter{0, 0};
const ProcessId kReader{1, 0};

OracleConfig config() {
  OracleConfig c;
  c.keys = 100;
  c.healthy_bound = 1 * kS;
  c.degraded_bound = 6 * kS;
  c.call_bound = 4 * kS;
  c.soft_timeout = 100 * kMs;
  c.stale_evidence = 2 * kS;
  c.settle = 10 * kS;
  return c;
}

// A write of row `key` to `version` by `process`, returning at `end`.
WriteRecord write(ProcessId process, std::int64_t key, std::int64_t version, Micros end,
                  bool l2_written = true) {
  WriteRecord w;
  w.process = process;
  w.key = key;
  w.version = version;
  w.start = end - 2 * kMs;
  w.end = end;
  w.l2_written = l2_written;
  return w;
}

// A tag invalidation makes entries stale, not gone: fail-safe may serve them, flagged.
WriteRecord tag_write(ProcessId process, std::int64_t key, std::int64_t version, Micros end) {
  WriteRecord w = write(process, key, version, end);
  w.kind = WriteKind::kTag;
  return w;
}

// A get_or_load of row `key` by `process`, started at `start`, that returned `version` of row
// `value_key` after 1 ms.
ReadRecord read(ProcessId process, std::int64_t key, std::int64_t version, Micros start,
                std::optional<std::int64_t> value_key = std::nullopt) {
  ReadRecord r;
  r.process = process;
  r.key = key;
  r.value_key = value_key.value_or(key);
  r.version = version;
  r.source = '1';
  r.start = start;
  r.end = start + 1 * kMs;
  return r;
}

FaultRecord bus_fault(Micros start, Micros end) {
  FaultRecord f;
  f.name = "proxy-freeze";
  f.start = start;
  f.end = end;
  f.affects_bus = true;
  f.slows_loads = true;
  return f;
}

// Judges everything and returns the rules of the wrong values found.
std::vector<std::string> rules(Oracle& oracle) {
  oracle.finish();
  std::vector<std::string> out;
  for (const WrongValue& w : oracle.wrong_values()) out.push_back(w.rule);
  return out;
}

using Rules = std::vector<std::string>;

// ---- rule 1: the value of another key, or no value where one exists -----------------------------

TEST(ChaosOracle, ReadsOfTheRightVersionsPass) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 2, 10 * kS));
  oracle.add(read(kWriter, 7, 2, 10 * kS + 1));          // the writer, right after
  oracle.add(read(kReader, 7, 1, 10 * kS + 500 * kMs));  // another process, within the bound
  oracle.add(read(kReader, 7, 2, 12 * kS));
  oracle.add(read(kReader, 8, 1, 12 * kS));  // never written
  EXPECT_EQ(rules(oracle), Rules{});
  EXPECT_EQ(oracle.totals().reads, 4u);
  EXPECT_EQ(oracle.totals().ops, 5u);
}

TEST(ChaosOracle, AnotherKeysValueIsCaught) {
  Oracle oracle(config());
  oracle.add(read(kReader, 7, 1, 1 * kS, /*value_key=*/8));
  EXPECT_EQ(rules(oracle), Rules{"other-key"});
}

TEST(ChaosOracle, ACorruptPayloadIsCaught) {
  Oracle oracle(config());
  oracle.add(read(kReader, 7, 1, 1 * kS, kCorruptValue));
  EXPECT_EQ(rules(oracle), Rules{"corrupt"});
}

TEST(ChaosOracle, NotFoundForAnExistingRowIsCaught) {
  Oracle oracle(config());
  ReadRecord r = read(kReader, 7, -1, 1 * kS);
  r.outcome = Outcome::kNegative;
  oracle.add(r);
  ReadRecord absent = read(kReader, 150, -1, 1 * kS);  // above keys: "not found" is right
  absent.outcome = Outcome::kNegative;
  oracle.add(absent);
  EXPECT_EQ(rules(oracle), Rules{"not-found"});
}

TEST(ChaosOracle, AValueForARowThatDoesNotExistIsCaught) {
  Oracle oracle(config());
  oracle.add(read(kReader, 150, 1, 1 * kS));
  EXPECT_EQ(rules(oracle), Rules{"phantom"});
}

TEST(ChaosOracle, AMissIsWrongOnlyFromGetOrLoad) {
  Oracle oracle(config());
  ReadRecord from_get = read(kReader, 7, -1, 1 * kS);
  from_get.op = ReadOp::kGet;
  from_get.outcome = Outcome::kMiss;
  oracle.add(from_get);
  ReadRecord from_load = from_get;
  from_load.op = ReadOp::kGetOrLoad;
  oracle.add(from_load);
  EXPECT_EQ(rules(oracle), Rules{"miss"});
}

TEST(ChaosOracle, ErrorsAreCountedNotWrong) {
  Oracle oracle(config());
  ReadRecord r = read(kReader, 7, -1, 1 * kS);
  r.outcome = Outcome::kError;
  r.error = "loader_timeout";
  oracle.add(r);
  EXPECT_EQ(rules(oracle), Rules{});
  EXPECT_EQ(oracle.totals().errors, 1u);
  EXPECT_EQ(oracle.totals().errors_by_code.at("loader_timeout"), 1u);
}

// ---- rule 2: read-your-writes -------------------------------------------------------------------

TEST(ChaosOracle, AnOlderValueAfterTheSameProcessWroteIsCaught) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kWriter, 7, 4, 10 * kS + 1));  // 1 us after its own write returned
  EXPECT_EQ(rules(oracle), Rules{"read-your-writes"});
  ASSERT_TRUE(oracle.wrong_values()[0].write.has_value());
  EXPECT_EQ(oracle.wrong_values()[0].write->version, 5);
}

TEST(ChaosOracle, AReadThatBeganBeforeTheWriteReturnedMaySeeTheOldValue) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kWriter, 7, 4, 10 * kS - 1));
  oracle.add(read(kWriter, 7, 4, 10 * kS));  // began the very microsecond it returned
  EXPECT_EQ(rules(oracle), Rules{});
}

TEST(ChaosOracle, ARestartedProcessIsAnotherProcess) {
  Oracle oracle(config());
  oracle.add(write(ProcessId{0, 0}, 7, 5, 10 * kS));
  oracle.add(read(ProcessId{0, 1}, 7, 4, 10 * kS + 500 * kMs));  // within the bus bound
  EXPECT_EQ(rules(oracle), Rules{});
}

// ---- rule 3: cross-process staleness ------------------------------------------------------------

TEST(ChaosOracle, AnOlderValueLongAfterAnotherProcessWroteIsCaught) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kReader, 7, 4, 11 * kS + 1));  // 1 us past the 1 s bound
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
  EXPECT_EQ(oracle.wrong_values()[0].bound, 1 * kS);
}

TEST(ChaosOracle, TheNewestRequiredWriteIsTheOneReported) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(write(kWriter, 7, 6, 20 * kS));
  oracle.add(read(kReader, 7, 4, 30 * kS));
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
  EXPECT_EQ(oracle.wrong_values()[0].write->version, 6);
}

TEST(ChaosOracle, MaxStalenessIsTheLargestGapToANewerAcknowledgedWrite) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kReader, 7, 4, 10 * kS + 300 * kMs));
  oracle.add(read(kReader, 7, 4, 10 * kS + 700 * kMs));
  oracle.add(read(kReader, 7, 5, 10 * kS + 900 * kMs));
  EXPECT_EQ(rules(oracle), Rules{});
  EXPECT_EQ(oracle.totals().max_staleness, 700 * kMs);
}

TEST(ChaosOracle, ABusFaultAroundTheWriteWidensTheBound) {
  Oracle oracle(config());
  oracle.start_fault(bus_fault(9 * kS, 10 * kS + 500 * kMs));
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kReader, 7, 4, 13 * kS));      // past the healthy bound, within the degraded one
  oracle.add(read(kReader, 7, 4, 16 * kS + 1));  // past the degraded one too
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
  EXPECT_EQ(oracle.wrong_values()[0].bound, 6 * kS);
  ASSERT_EQ(oracle.wrong_values()[0].faults.size(), 1u);
  EXPECT_EQ(oracle.wrong_values()[0].faults[0].name, "proxy-freeze");
}

TEST(ChaosOracle, AFaultLongBeforeTheWriteDoesNotWidenTheBound) {
  Oracle oracle(config());
  oracle.start_fault(bus_fault(1 * kS, 2 * kS));
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kReader, 7, 4, 13 * kS));
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
}

TEST(ChaosOracle, AWriteThatDidNotReachRedisIsNotRequiredButCounted) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS, /*l2_written=*/false));
  oracle.add(read(kReader, 7, 4, 30 * kS));
  oracle.add(read(kWriter, 7, 4, 30 * kS));
  EXPECT_EQ(rules(oracle), Rules{});
  EXPECT_EQ(oracle.totals().unacknowledged_older, 2u);
}

// ---- stale values (fail-safe) -------------------------------------------------------------------

TEST(ChaosOracle, AnOldStaleValueWithoutAFailingLoadIsCaught) {
  Oracle oracle(config());
  oracle.add(tag_write(kWriter, 7, 5, 10 * kS));
  ReadRecord r = read(kReader, 7, 4, 20 * kS);
  r.stale = true;
  oracle.add(r);
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
  EXPECT_EQ(oracle.totals().stale_served, 1u);
}

TEST(ChaosOracle, AnOldStaleValueIsExcusedByAFailingLoadOfTheKey) {
  Oracle oracle(config());
  oracle.add(tag_write(kWriter, 7, 5, 10 * kS));
  oracle.add(TroubleRecord{kWriter, 7, 19 * kS, 19 * kS + 1 * kMs, 'f'});
  ReadRecord r = read(kReader, 7, 4, 20 * kS);  // within stale_evidence of the failure
  r.stale = true;
  oracle.add(r);
  EXPECT_EQ(rules(oracle), Rules{});
  EXPECT_EQ(oracle.totals().stale_excused, 1u);
}

TEST(ChaosOracle, AValueAWriteRemovedIsNeverServedEvenStale) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));  // write_through: the old value is gone
  oracle.add(tag_write(kWriter, 7, 6, 11 * kS));
  oracle.add(TroubleRecord{kWriter, 7, 19 * kS, 19 * kS + 1 * kMs, 'f'});
  ReadRecord r = read(kReader, 7, 4, 20 * kS);
  r.stale = true;
  r.end = r.start + 200 * kMs;  // waited the soft timeout too: still no excuse
  oracle.add(r);
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
  EXPECT_EQ(oracle.wrong_values()[0].write->version, 6);  // the newest one it missed
}

TEST(ChaosOracle, AFailingLoadOfAnotherKeyExcusesNothing) {
  Oracle oracle(config());
  oracle.add(tag_write(kWriter, 7, 5, 10 * kS));
  oracle.add(TroubleRecord{kWriter, 8, 19 * kS, 19 * kS + 1 * kMs, 'f'});
  ReadRecord r = read(kReader, 7, 4, 20 * kS);
  r.stale = true;
  oracle.add(r);
  EXPECT_EQ(rules(oracle), Rules{"cross-process"});
}

TEST(ChaosOracle, AStaleValueAfterWaitingTheSoftTimeoutIsExcused) {
  Oracle oracle(config());
  oracle.add(tag_write(kWriter, 7, 5, 10 * kS));
  ReadRecord r = read(kReader, 7, 4, 20 * kS);
  r.stale = true;
  r.end = r.start + 100 * kMs;
  oracle.add(r);
  EXPECT_EQ(rules(oracle), Rules{});
}

// ---- hangs and lost writes ----------------------------------------------------------------------

TEST(ChaosOracle, AHangSeenByTheWatchdogAndByItsRecordCountsOnce) {
  Oracle oracle(config());
  oracle.add(HangRecord{kReader, 2, "get_or_load", 10 * kS});
  ReadRecord r = read(kReader, 7, 1, 10 * kS);
  r.thread = 2;
  r.end = r.start + 5 * kS;
  oracle.add(r);
  ReadRecord quick = read(kReader, 7, 1, 20 * kS);
  quick.end = quick.start + 3 * kS;  // within the 4 s bound
  oracle.add(quick);
  EXPECT_EQ(oracle.totals().hangs, 1u);
  ASSERT_EQ(oracle.hangs().size(), 1u);
  EXPECT_EQ(oracle.hangs()[0].took, 5 * kS);
}

TEST(ChaosOracle, AWriteTheDatabaseDoesNotHoldIsLost) {
  Oracle oracle(config());
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(write(kWriter, 8, 3, 10 * kS));
  const auto lost = oracle.lost_writes([](std::int64_t key) -> std::optional<std::int64_t> {
    return key == 7 ? 5 : 2;  // row 8 is behind its logged write
  });
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(std::get<0>(lost[0]), 8);
  EXPECT_EQ(std::get<1>(lost[0]), 3);
}

TEST(ChaosOracle, OnlyAFailedDatabaseWriterMeansNothingWasWritten) {
  Oracle oracle(config());
  WriteRecord failed = write(kWriter, 7, 5, 10 * kS, false);
  failed.error = "writer_failed";
  oracle.add(failed);
  WriteRecord unreachable = write(kWriter, 8, 5, 10 * kS, false);
  unreachable.error = "l2_unreachable";
  oracle.add(unreachable);
  EXPECT_EQ(oracle.totals().errors, 2u);
  EXPECT_EQ(oracle.totals().writes, 1u);
  const auto lost = oracle.lost_writes([](std::int64_t) -> std::optional<std::int64_t> {
    return 4;  // neither write is in the database
  });
  ASSERT_EQ(lost.size(), 1u);  // the l2_unreachable one was a completed write
  EXPECT_EQ(std::get<0>(lost[0]), 8);
}

TEST(ChaosOracle, ATagInvalidationCountsAsOneCall) {
  Oracle oracle(config());
  WriteRecord a = write(kWriter, 7, 5, 10 * kS);
  a.kind = WriteKind::kTag;
  WriteRecord b = a;
  b.key = 15;
  oracle.add(a);
  oracle.add(b);
  EXPECT_EQ(oracle.totals().ops, 1u);
  EXPECT_EQ(oracle.totals().writes, 2u);
}

// ---- incremental judging ------------------------------------------------------------------------

TEST(ChaosOracle, ReadsAreJudgedOnlyAfterTheSettleTime) {
  Oracle oracle(config());
  oracle.add(read(kReader, 7, 3, 20 * kS));
  oracle.check(25 * kS);
  EXPECT_EQ(oracle.pending(), 1u);
  // A write that returned before the read began, logged late: still taken into account.
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.check(31 * kS);
  EXPECT_EQ(oracle.pending(), 0u);
  EXPECT_EQ(oracle.totals().wrong_values, 1u);
}

TEST(ChaosOracle, ForgettingOldWritesKeepsTheOneEveryReadMustSee) {
  Oracle oracle(config());
  for (std::int64_t v = 2; v <= 10; ++v) oracle.add(write(kWriter, 7, v, v * kS));
  oracle.check(100 * kS);  // forgets writes 2..9
  oracle.add(read(kReader, 7, 9, 100 * kS));
  oracle.finish();
  ASSERT_EQ(oracle.totals().wrong_values, 1u);
  EXPECT_EQ(oracle.wrong_values()[0].write->version, 10);
}

TEST(ChaosOracle, DescriptionsNameTheKeyVersionsAndFaults) {
  Oracle oracle(config());
  oracle.start_fault(bus_fault(9 * kS, 10 * kS));
  oracle.add(write(kWriter, 7, 5, 10 * kS));
  oracle.add(read(kReader, 7, 4, 30 * kS));
  oracle.add(DiagnosticRecord{kReader, 7, 30 * kS + 2 * kMs, "L2 snapshot text"});
  oracle.add(DiagnosticRecord{kReader, 8, 30 * kS + 2 * kMs, "another row's"});
  oracle.finish();
  ASSERT_EQ(oracle.wrong_values().size(), 1u);
  const std::string text = oracle.describe(oracle.wrong_values()[0], 0);
  for (const char* part : {"cross-process", "row:7", "version 4", "version 5", "w0", "w1",
                           "proxy-freeze", "+30.000 s", "L2 snapshot text"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << " missing in:\n" << text;
  }
  EXPECT_EQ(text.find("another row's"), std::string::npos) << text;
}

// ---- the event log ------------------------------------------------------------------------------

TEST(ChaosEventLog, EveryRecordRoundTrips) {
  ReadRecord r = read(kReader, 7, 4, 123456789);
  r.op = ReadOp::kAsyncCallback;
  r.stale = true;
  r.source = '2';
  r.origin = "w3.1";
  r.origin_us = 123000000;
  ReadRecord e = read(kReader, 9, -1, 5);
  e.outcome = Outcome::kError;
  e.error = "loader_timeout";
  WriteRecord w = write(kWriter, 7, 5, 10 * kS, false);
  w.kind = WriteKind::kInvalidate;
  w.thread = 4;
  w.error = "l2_unreachable";
  const std::vector<Event> events = {w,
                                     r,
                                     e,
                                     TroubleRecord{kReader, 7, 1, 2, 'f'},
                                     HangRecord{kReader, 3, "get_or_load_many", 77},
                                     ClearRecord{kReader, 5, 10, 20, true},
                                     DiagnosticRecord{kReader, 7, 99, "L2 at x: a | b: c"}};
  for (const Event& event : events) {
    std::string line = format_event(event);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    const std::optional<Event> back = parse_event(line, kReader);
    ASSERT_TRUE(back.has_value()) << line;
    EXPECT_EQ(format_event(*back), format_event(event)) << line;
  }
  EXPECT_FALSE(parse_event("R 1 get_or_load 7", kReader).has_value());
  EXPECT_FALSE(parse_event("R 1 get_or_load 7 v 7 4 0 1 5 6 - -", kReader).has_value());
  EXPECT_FALSE(parse_event("Q 1", kReader).has_value());
}

TEST(ChaosEventLog, ATornLastLineIsNotRead) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("chaos-event-log-test-" + std::to_string(::getpid()) + ".log"))
                               .string();
  std::filesystem::remove(path);
  {
    EventLog log(path);
    log.append(write(kWriter, 7, 5, 10 * kS));
    log.append(read(kWriter, 7, 5, 11 * kS));
  }
  {
    std::ofstream torn(path, std::ios::app);
    torn << "W 0 wt 7 6 100";  // the worker died in the middle of this line
  }
  LogTail tail(path, kWriter);
  std::vector<Event> events;
  EXPECT_EQ(tail.read_new([&](Event&& e) { events.push_back(std::move(e)); }), 0u);
  EXPECT_EQ(events.size(), 2u);
  EXPECT_EQ(tail.read_new([&](Event&& e) { events.push_back(std::move(e)); }), 0u);
  EXPECT_EQ(events.size(), 2u);  // nothing new
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace tiercache::cli::chaos
