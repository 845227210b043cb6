// Tests of the engine of `tiercache sim` (tools/sim): trace parsing, the Zipf generator,
// Belady's MIN, the MutexLru baseline and the Simulator that replays traces through them.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sim/mutex_lru.hpp"
#include "sim/optimal.hpp"
#include "sim/replay.hpp"
#include "sim/trace.hpp"
#include "sim/zipf.hpp"

namespace tiercache::sim {
namespace {

using Keys = std::vector<std::uint64_t>;

// ---- helpers -----------------------------------------------------------------------------

std::uint64_t Hits(const Keys& trace, Policy policy, std::size_t capacity) {
  Simulator simulator(trace);
  return simulator.replay(policy, capacity).hits;
}

std::uint64_t OptimalHits(const Keys& trace, std::size_t capacity) {
  return BeladyOracle(trace).hits(capacity);
}

// Belady's MIN with bypass the slow, obvious way: scan forward for every next use.
std::uint64_t NaiveOptimalHits(const Keys& trace, std::size_t capacity) {
  const auto next_use = [&](std::size_t from, std::uint64_t key) {
    for (std::size_t j = from + 1; j < trace.size(); ++j) {
      if (trace[j] == key) return j;
    }
    return trace.size();  // never again: ties among these do not change the hit count
  };
  std::vector<std::uint64_t> resident;
  std::uint64_t hits = 0;
  for (std::size_t i = 0; i < trace.size(); ++i) {
    if (std::find(resident.begin(), resident.end(), trace[i]) != resident.end()) {
      ++hits;
    } else if (resident.size() < capacity) {
      resident.push_back(trace[i]);
    } else {
      auto farthest = resident.begin();
      for (auto it = resident.begin(); it != resident.end(); ++it) {
        if (next_use(i, *it) > next_use(i, *farthest)) farthest = it;
      }
      if (next_use(i, trace[i]) < next_use(i, *farthest)) *farthest = trace[i];
    }
  }
  return hits;
}

// LRU the slow, obvious way: a list, most recent first.
std::uint64_t NaiveLruHits(const Keys& trace, std::size_t capacity) {
  std::list<std::uint64_t> recency;
  std::uint64_t hits = 0;
  for (const std::uint64_t key : trace) {
    const auto it = std::find(recency.begin(), recency.end(), key);
    if (it != recency.end()) {
      ++hits;
      recency.erase(it);
    } else if (recency.size() == capacity) {
      recency.pop_back();
    }
    recency.push_front(key);
  }
  return hits;
}

Keys RandomTrace(std::uint64_t seed, std::size_t length, std::uint64_t distinct) {
  std::mt19937_64 rng(seed);
  Keys trace(length);
  for (std::uint64_t& key : trace) key = rng() % distinct;
  return trace;
}

std::map<std::uint64_t, std::uint64_t> Frequencies(const Keys& trace) {
  std::map<std::uint64_t, std::uint64_t> counts;
  for (const std::uint64_t key : trace) ++counts[key];
  return counts;
}

// H(n, alpha) = sum over r in 1..n of r^-alpha.
double GeneralizedHarmonic(std::uint64_t n, double alpha) {
  double sum = 0;
  for (std::uint64_t r = n; r >= 1; --r) sum += std::pow(static_cast<double>(r), -alpha);
  return sum;
}

ZipfSpec Spec(double alpha, std::uint64_t keys, std::uint64_t requests, std::uint64_t seed) {
  ZipfSpec spec;
  spec.alpha = alpha;
  spec.keys = keys;
  spec.requests = requests;
  spec.seed = seed;
  return spec;
}

// ---- trace files -------------------------------------------------------------------------

TEST(TraceText, OneKeyPerLineBlankLinesAndSurroundingSpacesIgnored) {
  const TraceResult trace = parse_trace_text("1\n\n  2\t\r\n\r\n18446744073709551615\n0");
  ASSERT_TRUE(trace.ok()) << trace.error;
  EXPECT_EQ(trace.keys, (Keys{1, 2, 18446744073709551615ULL, 0}));
}

TEST(TraceText, EmptyTextIsAnEmptyTrace) {
  const TraceResult trace = parse_trace_text("");
  EXPECT_TRUE(trace.ok());
  EXPECT_TRUE(trace.keys.empty());
}

TEST(TraceText, BadLineIsAnErrorNamingItsLine) {
  const TraceResult trace = parse_trace_text("1\n2\nabc\n4\n");
  EXPECT_FALSE(trace.ok());
  EXPECT_EQ(trace.error_line, 3u);
  EXPECT_NE(trace.error.find("line 3"), std::string::npos) << trace.error;
  EXPECT_NE(trace.error.find("abc"), std::string::npos) << trace.error;
  EXPECT_TRUE(trace.keys.empty());
}

TEST(TraceText, RejectsSignsSeveralNumbersHexAndOverflow) {
  for (const char* line : {"-1", "+1", "1 2", "0x10", "1.5", "18446744073709551616", "١"}) {
    const TraceResult trace = parse_trace_text(std::string("7\n") + line + "\n");
    EXPECT_FALSE(trace.ok()) << "accepted '" << line << "'";
    EXPECT_EQ(trace.error_line, 2u) << line;
  }
}

TEST(TraceFile, LoadsAFileAndNamesItInErrors) {
  const std::string good = "trace_file_test_good.keys";
  const std::string bad = "trace_file_test_bad.keys";
  for (const auto& [path, text] : {std::pair{good, "5\n6\n5\n"}, std::pair{bad, "5\n\nx\n"}}) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
  }
  const TraceResult loaded = load_trace(good);
  ASSERT_TRUE(loaded.ok()) << loaded.error;
  EXPECT_EQ(loaded.keys, (Keys{5, 6, 5}));

  const TraceResult broken = load_trace(bad);
  EXPECT_FALSE(broken.ok());
  EXPECT_EQ(broken.error_line, 3u);
  EXPECT_EQ(broken.error.rfind(bad + ": line 3:", 0), 0u) << broken.error;

  const TraceResult missing = load_trace("no_such_trace_file.keys");
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.error.find("no_such_trace_file.keys"), std::string::npos);
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

TEST(TraceFile, AnEmptyTraceIsAnError) {
  const std::string path = "trace_file_test_empty.keys";
  std::fclose(std::fopen(path.c_str(), "wb"));
  EXPECT_FALSE(load_trace(path).ok());
  std::remove(path.c_str());
}

TEST(Trace, CountsDistinctKeys) {
  EXPECT_EQ(count_distinct_keys(Keys{}), 0u);
  EXPECT_EQ(count_distinct_keys(Keys{3, 1, 3, 2, 1}), 3u);
}

// ---- Zipf traces -------------------------------------------------------------------------

TEST(ZipfSpecText, ParsesTheFourFields) {
  const ZipfSpecResult r = parse_zipf_spec("zipf:0.9:1000:50000:7");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.spec.alpha, 0.9);
  EXPECT_EQ(r.spec.keys, 1000u);
  EXPECT_EQ(r.spec.requests, 50000u);
  EXPECT_EQ(r.spec.seed, 7u);
  EXPECT_TRUE(parse_zipf_spec("zipf:1:1:1:0").ok());
  EXPECT_TRUE(parse_zipf_spec("zipf:2:10:10:18446744073709551615").ok());
}

TEST(ZipfSpecText, RejectsOutOfRangeAndMalformedSpecs) {
  for (const char* text :
       {"zipf:0:10:10:1", "zipf:2.01:10:10:1", "zipf:-1:10:10:1", "zipf:nan:10:10:1",
        "zipf:inf:10:10:1", "zipf:1:0:10:1", "zipf:1:10:0:1", "zipf:1:10:10", "zipf:1:10:10:1:2",
        "zipf:1:10:10:-1", "zipf:a:10:10:1", "zipf::10:10:1", "zipf:1:10:10:1 ", "zip:1:10:10:1",
        "zipf:1:10:1000000001:1"}) {
    const ZipfSpecResult r = parse_zipf_spec(text);
    EXPECT_FALSE(r.ok()) << "accepted " << text;
  }
}

TEST(ZipfTrace, SameSeedSameTraceOtherSeedOtherTrace) {
  const Keys a = generate_zipf_trace(Spec(0.9, 1000, 20000, 1));
  EXPECT_EQ(a, generate_zipf_trace(Spec(0.9, 1000, 20000, 1)));
  EXPECT_NE(a, generate_zipf_trace(Spec(0.9, 1000, 20000, 2)));
  // Through the trace loader too.
  const TraceResult loaded = load_trace("zipf:0.9:1000:20000:1");
  ASSERT_TRUE(loaded.ok()) << loaded.error;
  EXPECT_EQ(loaded.keys, a);
}

TEST(ZipfTrace, KeysAreScrambledRanks) {
  std::vector<std::uint64_t> keys;
  for (std::uint64_t rank = 1; rank <= 10000; ++rank) keys.push_back(zipf_key(rank));
  // Hot keys are not neighbours...
  EXPECT_GT(std::max(zipf_key(1), zipf_key(2)) - std::min(zipf_key(1), zipf_key(2)), 1000u);
  // ...and distinct ranks are distinct keys.
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
  // Every key of a trace is one of its KEYS ranks.
  for (const std::uint64_t key : generate_zipf_trace(Spec(0.5, 3, 1000, 9))) {
    EXPECT_TRUE(key == zipf_key(1) || key == zipf_key(2) || key == zipf_key(3)) << key;
  }
}

// The check: in zipf:1.0:1000:100000:1 the most frequent key is rank 1, asked for
// 1 / H(1000) = 13.36% of the time.
TEST(ZipfTrace, MostFrequentKeyHasOneOverHarmonicOfTheRequests) {
  const Keys trace = generate_zipf_trace(Spec(1.0, 1000, 100000, 1));
  const auto counts = Frequencies(trace);
  const auto top = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
    return a.second < b.second;
  });
  EXPECT_EQ(top->first, zipf_key(1));
  const double expected = 1.0 / GeneralizedHarmonic(1000, 1.0);  // 0.1336
  EXPECT_NEAR(expected, 0.1336, 0.0001);
  // Binomial standard deviation: sqrt(p (1 - p) / n) = 0.0011; allow ~5 of them.
  EXPECT_NEAR(static_cast<double>(top->second) / trace.size(), expected, 0.006);
}

// The first ranks' frequencies match r^-alpha / H(n, alpha) across the allowed range of
// alpha, 1 included (the sampler's special case) and 2 (its upper end).
TEST(ZipfTrace, FrequenciesFollowTheZipfLaw) {
  constexpr std::uint64_t kKeys = 500;
  constexpr std::uint64_t kRequests = 200000;
  for (const double alpha : {0.3, 0.7, 0.99, 1.0, 1.01, 1.5, 2.0}) {
    const auto counts = Frequencies(generate_zipf_trace(Spec(alpha, kKeys, kRequests, 42)));
    const double h = GeneralizedHarmonic(kKeys, alpha);
    for (std::uint64_t rank : {1, 2, 3, 10, 100}) {
      const double p = std::pow(static_cast<double>(rank), -alpha) / h;
      const auto it = counts.find(zipf_key(rank));
      const double observed =
          it == counts.end() ? 0.0 : static_cast<double>(it->second) / kRequests;
      const double sigma = std::sqrt(p * (1 - p) / kRequests);
      EXPECT_NEAR(observed, p, 5 * sigma + 1e-4) << "alpha " << alpha << " rank " << rank;
    }
  }
}

TEST(ZipfTrace, OneKeyAndHugeKeySpacesWork) {
  for (const std::uint64_t key : generate_zipf_trace(Spec(1.0, 1, 100, 3))) {
    EXPECT_EQ(key, zipf_key(1));
  }
  const Keys wide = generate_zipf_trace(Spec(0.5, kMaxZipfKeys, 1000, 3));
  EXPECT_GT(count_distinct_keys(wide), 990u);  // 10^12 keys, almost no repeats
}

// ---- Belady's MIN ------------------------------------------------------------------------

// Capacity 2, keys 1 2 3 cycling. MIN with bypass keeps {1, 2} and never admits 3, whose
// next use is always the farthest:
//   i: 0  1  2      3   4   5      6   7   8
//      1  2  3      1   2   3      1   2   3
//      m  m  m,byp  hit hit m,byp  hit hit m,byp  -> 4 hits
// (MIN that must insert every miss gets 3, LRU 0.)
TEST(Belady, HandCheckedCycleWithBypass) {
  const Keys trace{1, 2, 3, 1, 2, 3, 1, 2, 3};
  EXPECT_EQ(OptimalHits(trace, 2), 4u);
  EXPECT_EQ(Hits(trace, Policy::kLru, 2), 0u);
  EXPECT_EQ(OptimalHits(trace, 3), 6u);  // everything fits: all but the first uses hit
  EXPECT_EQ(OptimalHits(trace, 1), 2u);  // keeps 1, bypasses 2 and 3: hits at 3 and 6
  EXPECT_EQ(Hits(trace, Policy::kLru, 1), 0u);
}

// 1 2 1 3 1 2 3 with capacity 2: 3 at i=3 is bypassed (its next use, 6, is the farthest),
// then 1 and 2 hit: 1(i=2), 1(i=4), 2(i=5) -> 3 hits; 3 at i=6 misses. LRU: 2 hits.
TEST(Belady, HandCheckedBypassOfAColdKey) {
  const Keys trace{1, 2, 1, 3, 1, 2, 3};
  EXPECT_EQ(OptimalHits(trace, 2), 3u);
  EXPECT_EQ(Hits(trace, Policy::kLru, 2), 2u);
}

TEST(Belady, AgreesWithTheNaiveAlgorithmOnRandomTraces) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    const Keys trace = RandomTrace(seed, 200, 5 + seed % 30);
    for (const std::size_t capacity : {1, 2, 3, 5, 8, 13}) {
      EXPECT_EQ(OptimalHits(trace, capacity), NaiveOptimalHits(trace, capacity))
          << "seed " << seed << " capacity " << capacity;
    }
  }
}

TEST(Belady, OneOracleServesEveryCapacity) {
  const Keys trace = RandomTrace(7, 2000, 100);
  const BeladyOracle oracle(trace);
  EXPECT_EQ(oracle.requests(), trace.size());
  std::uint64_t previous = 0;
  for (std::size_t capacity = 1; capacity <= 120; ++capacity) {
    const std::uint64_t hits = oracle.hits(capacity);
    EXPECT_GE(hits, previous) << capacity;  // MIN has no Belady anomaly
    previous = hits;
  }
  EXPECT_EQ(previous, trace.size() - count_distinct_keys(trace));  // only compulsory misses
}

TEST(Belady, IsAnUpperBoundForEveryPolicy) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const Keys trace = generate_zipf_trace(Spec(0.8, 2000, 20000, seed));
    for (const std::size_t capacity : {10, 100, 500}) {
      const std::uint64_t optimal = OptimalHits(trace, capacity);
      for (const Policy policy : {Policy::kTiercache, Policy::kTiercacheLru, Policy::kLru}) {
        EXPECT_LE(Hits(trace, policy, capacity), optimal)
            << policy_name(policy) << " capacity " << capacity;
      }
    }
  }
}

// ---- the MutexLru baseline ---------------------------------------------------------------

TEST(MutexLru, HitAndMiss) {
  MutexLru<std::uint64_t, std::string> cache(2);
  EXPECT_EQ(cache.get(1), nullptr);
  cache.put(1, "one");
  ASSERT_NE(cache.get(1), nullptr);
  EXPECT_EQ(*cache.get(1), "one");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.capacity(), 2u);
}

TEST(MutexLru, EvictsTheLeastRecentlyUsed) {
  MutexLru<std::uint64_t, std::uint64_t> cache(2);
  cache.put(1, 10);
  cache.put(2, 20);
  EXPECT_NE(cache.get(1), nullptr);  // 1 is now more recent than 2
  cache.put(3, 30);
  EXPECT_EQ(cache.get(2), nullptr);
  EXPECT_NE(cache.get(1), nullptr);
  EXPECT_NE(cache.get(3), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(MutexLru, PutReplacesAndRefreshes) {
  MutexLru<std::uint64_t, std::uint64_t> cache(2);
  cache.put(1, 10);
  cache.put(2, 20);
  cache.put(1, 11);  // replaces, and 1 becomes the most recent
  cache.put(3, 30);
  EXPECT_EQ(cache.get(2), nullptr);
  ASSERT_NE(cache.get(1), nullptr);
  EXPECT_EQ(*cache.get(1), 11u);
}

TEST(MutexLru, ValuesOutliveTheirEntries) {
  MutexLru<std::uint64_t, std::string> cache(1);
  cache.put(1, "kept by the caller");
  const std::shared_ptr<const std::string> held = cache.get(1);
  cache.put(2, "evicts 1");
  EXPECT_EQ(cache.get(1), nullptr);
  EXPECT_EQ(*held, "kept by the caller");
}

TEST(MutexLru, ZeroCapacityIsAProgrammingError) {
  EXPECT_THROW((MutexLru<std::uint64_t, std::uint64_t>(0)), std::invalid_argument);
}

TEST(MutexLru, AgreesWithTheNaiveLruOnRandomTraces) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const Keys trace = RandomTrace(seed, 2000, 10 + seed * 5);
    for (const std::size_t capacity : {1, 4, 16, 64}) {
      EXPECT_EQ(Hits(trace, Policy::kLru, capacity), NaiveLruHits(trace, capacity))
          << "seed " << seed << " capacity " << capacity;
    }
  }
}

// ---- the Simulator -----------------------------------------------------------------------

TEST(Policies, NamesRoundTrip) {
  for (const std::string_view name : kPolicyNames) {
    const std::optional<Policy> policy = parse_policy(name);
    ASSERT_TRUE(policy.has_value()) << name;
    EXPECT_EQ(policy_name(*policy), name);
  }
  EXPECT_FALSE(parse_policy("fifo").has_value());
  EXPECT_FALSE(parse_policy("").has_value());
}

TEST(Simulator, TiercacheReplayIsReproducibleWithASeed) {
  const Keys trace = generate_zipf_trace(Spec(0.9, 5000, 50000, 3));
  Simulator a(trace, 7);
  Simulator b(trace, 7);
  for (const Policy policy : {Policy::kTiercache, Policy::kTiercacheLru}) {
    EXPECT_EQ(a.replay(policy, 300).hits, b.replay(policy, 300).hits) << policy_name(policy);
  }
}

TEST(Simulator, ACacheThatHoldsEveryKeyOnlyMissesEachKeyOnce) {
  const Keys trace = RandomTrace(3, 5000, 200);
  Simulator simulator(trace);
  EXPECT_EQ(simulator.distinct_keys(), 200u);
  EXPECT_EQ(simulator.cache_entries(1'000'000'000'000), 200u);  // not sized to the capacity
  EXPECT_EQ(simulator.cache_entries(50), 50u);
  for (const Policy policy :
       {Policy::kTiercache, Policy::kTiercacheLru, Policy::kLru, Policy::kOptimal}) {
    const HitCount count = simulator.replay(policy, 1'000'000'000'000);
    EXPECT_EQ(count.requests, 5000u);
    EXPECT_EQ(count.hits, 5000u - 200u) << policy_name(policy);
  }
}

// 16 distinct keys, capacity 16: the first 8 are preloaded, then each reader does whole
// batches of kReadsPerStopCheck gets (a multiple of 16, so whole passes over the trace): the
// hit ratio is exactly 1/2. A zero duration still runs one batch per reader -- no sleeping.
TEST(Simulator, ReadThroughputPreloadsHalfTheCapacity) {
  static_assert(kReadsPerStopCheck % 16 == 0);
  Keys trace;
  for (std::uint64_t key = 100; key < 116; ++key) trace.push_back(key);
  Simulator simulator(trace);
  for (const Policy policy : {Policy::kTiercache, Policy::kTiercacheLru, Policy::kLru}) {
    const ThroughputResult result =
        simulator.measure_reads(policy, 16, 2, std::chrono::nanoseconds(0));
    EXPECT_EQ(result.preloaded_keys, 8u) << policy_name(policy);
    EXPECT_GE(result.operations, 2 * kReadsPerStopCheck);
    EXPECT_EQ(result.operations % kReadsPerStopCheck, 0u);
    EXPECT_EQ(result.hits * 2, result.operations) << policy_name(policy);
    EXPECT_EQ(result.hit_ratio(), 0.5);
    EXPECT_GT(result.checksum, 0u);
  }
}

TEST(Simulator, OptimalHasNoThroughput) {
  const Keys trace{1, 2, 3};
  Simulator simulator(trace);
  EXPECT_THROW(simulator.measure_reads(Policy::kOptimal, 2, 1, std::chrono::nanoseconds(0)),
               std::invalid_argument);
  EXPECT_THROW(simulator.replay(Policy::kLru, 0), std::invalid_argument);
}

}  // namespace
}  // namespace tiercache::sim
