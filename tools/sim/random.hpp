// Small deterministic randomness shared by the simulator and the benchmarks: the same seed
// gives the same trace on every machine and every run.

#pragma once

#include <cstdint>

#include "tiercache/detail/mix.hpp"

namespace tiercache::sim {

// SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): a small, fast, well-mixed 64-bit generator.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return detail::splitmix64_next(state_); }
  // Uniform in [0, 1), 53 random bits.
  double next_double() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n) (modulo; the bias is < n / 2^64, irrelevant here).
  std::uint64_t next_below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t state_;
};

// murmur3's fmix64: a bijection on 64-bit integers (xor-shifts and odd multipliers are
// invertible), so distinct item numbers give distinct, well-spread keys. Deliberately not
// the splitmix64 finaliser LocalCache hashes with.
inline std::uint64_t fmix64(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

}  // namespace tiercache::sim
