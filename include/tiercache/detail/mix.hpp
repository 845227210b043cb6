// splitmix64 (Steele, Lea & Flood, "Fast Splittable Pseudorandom Number Generators",
// OOPSLA 2014): its finaliser, the hash mix every part of tiercache uses, and its generator
// step. Internal.

#pragma once

#include <atomic>
#include <cstdint>

namespace tiercache::detail {

// splitmix64's increment: the generator's state advances by it at every step.
inline constexpr std::uint64_t kSplitMixGamma = 0x9e3779b97f4a7c15ULL;

// Mixes a 64-bit value (splitmix64's finaliser).
inline constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// One step of the splitmix64 generator: advances `state` and returns the next output.
inline constexpr std::uint64_t splitmix64_next(std::uint64_t& state) noexcept {
  return mix64(state += kSplitMixGamma);
}

// The same step on a generator shared by threads: each caller gets a distinct output, with no
// lock (the state is a counter advanced by kSplitMixGamma).
inline std::uint64_t splitmix64_next(std::atomic<std::uint64_t>& state) noexcept {
  return mix64(state.fetch_add(kSplitMixGamma, std::memory_order_relaxed) + kSplitMixGamma);
}

}  // namespace tiercache::detail
