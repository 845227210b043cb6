// LatencyHistogram: request latencies in nanoseconds, counted in log-linear buckets, for the
// p50/p99 lines of `tiercache redis-bench` and bench/redis/hiredis_bench.cpp.
//
// The bucketing is HdrHistogram's (Gil Tene, "HdrHistogram: a high dynamic range histogram"):
// values below 128 ns have a bucket each; above, every power of two [2^k, 2^(k+1)) is cut into
// kSubBuckets equal sub-buckets, so a value is known to within 1/64 (1.6%) of itself over the
// whole 64-bit range. record() is two shifts and an increment: no allocation, no branch on the
// value's size beyond one comparison, so it can run once per request in a benchmark loop.
// The counts are a fixed array (about 30 KiB).
//
// Not thread-safe: give each thread its own histogram and merge() them at the end.

#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tiercache::cli {

class LatencyHistogram {
 public:
  // Sub-buckets per power of two (2^kSubBucketBits): the resolution, 1/64 of the value.
  static constexpr unsigned kSubBucketBits = 6;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;
  // Values below this have a bucket of their own.
  static constexpr std::uint64_t kExactLimit = 2 * kSubBuckets;
  static constexpr std::size_t kBucketCount = kExactLimit + (64 - kSubBucketBits - 1) * kSubBuckets;

  void record(std::uint64_t nanoseconds) noexcept {
    ++counts_[index_of(nanoseconds)];
    ++total_;
    max_ = std::max(max_, nanoseconds);
  }

  void merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max() const noexcept { return max_; }

  // The smallest recorded value v such that at least `percentile`% of the values are <= v,
  // rounded up to the top of its bucket (as HdrHistogram's valueAtPercentile does), and never
  // above the largest value recorded. 0 when empty. REQUIRES: 0 < percentile <= 100.
  std::uint64_t value_at_percentile(double percentile) const noexcept {
    if (total_ == 0) return 0;
    const auto wanted =
        static_cast<std::uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(total_)));
    const std::uint64_t target = std::clamp<std::uint64_t>(wanted, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBucketCount; ++i) {
      seen += counts_[i];
      if (seen >= target) return std::min(highest_in_bucket(i), max_);
    }
    return max_;
  }

 private:
  static std::size_t index_of(std::uint64_t value) noexcept {
    if (value < kExactLimit) return static_cast<std::size_t>(value);
    // value has its top bit at `top` >= kSubBucketBits + 1; keep the kSubBucketBits + 1 bits
    // from there down: a sub-bucket number in [kSubBuckets, 2 * kSubBuckets).
    const unsigned top = 63u - static_cast<unsigned>(std::countl_zero(value));
    const unsigned shift = top - kSubBucketBits;
    const std::uint64_t sub = (value >> shift) - kSubBuckets;
    return static_cast<std::size_t>(kExactLimit + (shift - 1) * kSubBuckets + sub);
  }

  static std::uint64_t highest_in_bucket(std::size_t index) noexcept {
    if (index < kExactLimit) return index;
    const std::uint64_t shift = (index - kExactLimit) / kSubBuckets + 1;
    const std::uint64_t sub = (index - kExactLimit) % kSubBuckets + kSubBuckets;
    return ((sub + 1) << shift) - 1;
  }

  std::array<std::uint64_t, kBucketCount> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace tiercache::cli
