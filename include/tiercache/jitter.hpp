// TTL jitter: spreads the expiry of entries written together so they do not all expire,
// and all reload from the database, at the same instant.
//
// jitter_ttl(ttl, f, rng) is uniform in [ttl * (1 - f), ttl * (1 + f)], so the mean TTL is
// unchanged. The random source is injected: pass any UniformRandomBitGenerator (tests pass
// a seeded or scripted one). TtlJitter is a thread-safe, lock-free convenience holding its
// own seeded generator.
//
// REQUIRES: 0 <= fraction <= 1; ttl >= 0. A ttl of Duration::max() ("never expires") is
// returned unchanged, as is any result that would overflow.

#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <random>

#include "tiercache/clock.hpp"
#include "tiercache/detail/mix.hpp"

namespace tiercache {

template <class UniformRandomBitGenerator>
Duration jitter_ttl(Duration ttl, double fraction, UniformRandomBitGenerator& rng) {
  if (fraction <= 0 || ttl <= Duration::zero() || ttl == Duration::max()) return ttl;
  std::uniform_real_distribution<double> spread(-fraction, fraction);
  const double scaled = static_cast<double>(ttl.count()) * (1.0 + spread(rng));
  if (scaled >= static_cast<double>(std::numeric_limits<Duration::rep>::max())) return ttl;
  return Duration(static_cast<Duration::rep>(scaled));
}

// A thread-safe jitter source: a counter-based generator (splitmix64 over an atomic
// counter), so concurrent callers never contend on a lock.
class TtlJitter {
 public:
  // `fraction`: the ± spread (0.1 = ±10%). `seed`: fixes the sequence (tests).
  TtlJitter(double fraction, std::uint64_t seed) : fraction_(fraction), counter_(seed) {}
  explicit TtlJitter(double fraction) : TtlJitter(fraction, std::random_device{}()) {}

  Duration operator()(Duration ttl) {
    Generator g{this};
    return jitter_ttl(ttl, fraction_, g);
  }
  double fraction() const { return fraction_; }

 private:
  struct Generator {
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
    result_type operator()() { return detail::splitmix64_next(owner->counter_); }
    TtlJitter* owner;
  };

  double fraction_;
  std::atomic<std::uint64_t> counter_;
};

}  // namespace tiercache
