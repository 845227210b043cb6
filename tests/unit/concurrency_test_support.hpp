// Helpers shared by the multi-threaded LocalCache tests.
//
// Every value written encodes its key, its writer and a sequence number (stamp()), so a
// value returned for the wrong key, a torn or freed value, or a lost update is detected.
// Threads start together on a latch and are joined; nothing sleeps.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "local_cache_test_support.hpp"

namespace tiercache::test {

// The value written for `key` by `writer` as its `seq`-th write: "k<key>:w<writer>:s<seq>".
inline std::string stamp(int key, int writer, int seq) {
  return "k" + std::to_string(key) + ":w" + std::to_string(writer) + ":s" + std::to_string(seq);
}
inline bool belongs_to(const std::string& value, int key) {
  return value.rfind("k" + std::to_string(key) + ":", 0) == 0;
}
inline int writer_of(const std::string& value) {
  const std::size_t w = value.find(":w");
  return std::stoi(value.substr(w + 2));
}
inline int seq_of(const std::string& value) {
  const std::size_t s = value.find(":s");
  return std::stoi(value.substr(s + 2));
}

// Runs body(thread_index) on `threads` threads released together; returns once all are done.
template <class Body>
void run_together(int threads, Body body) {
  std::latch start(threads);
  std::vector<std::jthread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&start, &body, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
}

// A put returns with the cache within its bound, but another writer's put may be between
// its insertion and its eviction (the contract's one-entry slack, seen by size() readers).
inline constexpr std::size_t kOnePutInFlight = 1;

// Counts removals by cause. Thread-safe; cheap enough not to serialise the test.
struct RemovalCounter {
  std::atomic<std::uint64_t> by_cause[4] = {};

  void count(RemovalCause cause) {
    by_cause[static_cast<int>(cause)].fetch_add(1, std::memory_order_relaxed);
  }
  Cache::RemovalListener listener() {
    return [this](const int&, const Cached<std::string>&, RemovalCause cause) { count(cause); };
  }
  std::uint64_t of(RemovalCause cause) const {
    return by_cause[static_cast<int>(cause)].load(std::memory_order_relaxed);
  }
  std::uint64_t total() const {
    return of(RemovalCause::kSize) + of(RemovalCause::kExpired) + of(RemovalCause::kExplicit) +
           of(RemovalCause::kReplaced);
  }
};

// Entries whose value is not their key's, found by visiting every entry.
inline std::size_t misplaced_entries(Cache& cache) {
  std::size_t misplaced = 0;
  cache.erase_if([&](const int& key, const std::string* value) {
    if (value != nullptr && !belongs_to(*value, key)) ++misplaced;
    return false;
  });
  return misplaced;
}

}  // namespace tiercache::test
