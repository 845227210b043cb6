// Deterministic workload generation for tiercache's benchmarks: a Zipf sampler, a 64-bit
// PRNG, a rank -> key scrambler and precomputed key streams.
//
// Everything here is reproducible bit for bit across runs and machines (no std::
// distributions, whose output is implementation-defined): same seed, same keys.

#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "sim/random.hpp"

namespace tiercache::bench {

using sim::SplitMix64;

// Item number -> key: a bijection (sim::fmix64), so distinct item numbers give distinct
// keys, and popular items are spread over the whole key space and over every hash bucket
// (std::hash<uint64_t> is the identity: MutexLru's unordered_map would otherwise get a
// perfectly dense, unrealistically collision-free key set).
inline std::uint64_t scramble_key(std::uint64_t item) { return sim::fmix64(item); }

// Zipf distribution over ranks 0 .. n-1: P(rank r) proportional to 1 / (r + 1)^theta.
// Exact inverse-CDF sampling: a table of n doubles, and a guide table (Chen & Asau) that
// maps the uniform draw's 1/n-th slice to the few candidate ranks, so a draw costs O(1) on
// average and returns exactly what a binary search over the whole table would.
class ZipfDistribution {
 public:
  ZipfDistribution(std::uint64_t n, double theta) : cdf_(n), guide_(n + 1) {
    if (n == 0) throw std::invalid_argument("ZipfDistribution: n must be > 0");
    double sum = 0;
    for (std::uint64_t r = 0; r < n; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r + 1), theta);
      cdf_[r] = sum;
    }
    for (double& c : cdf_) c /= sum;
    cdf_.back() = 1.0;
    // guide_[j]: the first rank whose cdf exceeds j / n.
    std::uint64_t r = 0;
    for (std::uint64_t j = 0; j <= n; ++j) {
      const double t = static_cast<double>(j) / static_cast<double>(n);
      while (r < n - 1 && cdf_[r] <= t) ++r;
      guide_[j] = r;
    }
  }

  std::uint64_t size() const { return cdf_.size(); }

  // A rank drawn from the distribution: the first rank whose cdf exceeds a uniform u.
  std::uint64_t operator()(SplitMix64& rng) const {
    const double u = rng.next_double();
    const auto j = static_cast<std::size_t>(u * static_cast<double>(size()));
    // The answer lies in [guide_[j], guide_[j + 1]]: cdf[guide_[j + 1]] > (j + 1) / n > u.
    // (Up to floating-point rounding of u * n: checked, with the whole table as fallback.)
    auto first = cdf_.begin() + static_cast<std::ptrdiff_t>(guide_[j]);
    auto last = cdf_.begin() + static_cast<std::ptrdiff_t>(guide_[j + 1]) + 1;
    if ((first != cdf_.begin() && *(first - 1) > u) || *(last - 1) <= u) {
      first = cdf_.begin();
      last = cdf_.end();
    }
    return static_cast<std::uint64_t>(std::upper_bound(first, last, u) - cdf_.begin());
  }

  // Probability that a draw is one of the `k` most popular ranks (0 <= k <= n).
  double top_mass(std::uint64_t k) const {
    if (k == 0) return 0.0;
    return cdf_[std::min<std::uint64_t>(k, size()) - 1];
  }

 private:
  std::vector<double> cdf_;
  std::vector<std::uint64_t> guide_;
};

// `length` keys: scramble_key(item_base + rank) for ranks drawn from `zipf` with `seed`.
inline std::vector<std::uint64_t> zipf_key_stream(const ZipfDistribution& zipf, std::size_t length,
                                                  std::uint64_t seed, std::uint64_t item_base = 0) {
  SplitMix64 rng(seed);
  std::vector<std::uint64_t> keys(length);
  for (std::uint64_t& k : keys) k = scramble_key(item_base + zipf(rng));
  return keys;
}

// `length` keys: scramble_key(item_base + i) for i uniform in [0, n).
inline std::vector<std::uint64_t> uniform_key_stream(std::uint64_t n, std::size_t length,
                                                     std::uint64_t seed,
                                                     std::uint64_t item_base = 0) {
  SplitMix64 rng(seed);
  std::vector<std::uint64_t> keys(length);
  for (std::uint64_t& k : keys) k = scramble_key(item_base + rng.next_below(n));
  return keys;
}

// `length` distinct keys: scramble_key(item_base + i) for i = 0, 1, 2, ...
inline std::vector<std::uint64_t> sequential_key_stream(std::size_t length,
                                                        std::uint64_t item_base) {
  std::vector<std::uint64_t> keys(length);
  for (std::size_t i = 0; i < length; ++i) keys[i] = scramble_key(item_base + i);
  return keys;
}

}  // namespace tiercache::bench
