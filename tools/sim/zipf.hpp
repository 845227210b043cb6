// Synthetic Zipf traces for `tiercache sim --trace zipf:ALPHA:KEYS:REQUESTS:SEED`.
//
// A trace is REQUESTS keys whose popularity ranks 1..KEYS are drawn with
// P(rank r) = r^-ALPHA / H(KEYS, ALPHA), then scrambled (rank -> zipf_key(rank), a bijection
// on 64-bit integers) so that hot keys are spread over the key space instead of being the
// integers 1, 2, 3... The output is a pure function of the four parameters, identical on
// every machine and run (own PRNG and sampler; no std:: distributions, whose output is
// implementation-defined).

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache::sim {

// Limits of the spec's numbers: KEYS stays exact as a double; REQUESTS keys take 8 bytes each.
inline constexpr double kMaxZipfAlpha = 2.0;
inline constexpr std::uint64_t kMaxZipfKeys = 1'000'000'000'000;  // 10^12
inline constexpr std::uint64_t kMaxZipfRequests = 1'000'000'000;  // 8 GB of trace

struct ZipfSpec {
  double alpha = 1.0;          // skew, in (0, kMaxZipfAlpha]
  std::uint64_t keys = 0;      // distinct keys (ranks), in [1, kMaxZipfKeys]
  std::uint64_t requests = 0;  // trace length, in [1, kMaxZipfRequests]
  std::uint64_t seed = 0;      // any value
};

// Either a spec or the reason the text is not one.
struct ZipfSpecResult {
  ZipfSpec spec;
  std::string error;  // empty on success
  bool ok() const { return error.empty(); }
};

// Parses "zipf:ALPHA:KEYS:REQUESTS:SEED" (decimal numbers; ALPHA may be "1", "0.8", "1e0").
ZipfSpecResult parse_zipf_spec(std::string_view text);

// The key of popularity rank `rank` (1 = the most popular). Distinct ranks give distinct keys.
std::uint64_t zipf_key(std::uint64_t rank);

// The trace described by `spec`. REQUIRES: spec within the limits above.
std::vector<std::uint64_t> generate_zipf_trace(const ZipfSpec& spec);

// Draws ranks 1..n with P(r) proportional to r^-alpha in O(1) time and memory per draw:
// rejection-inversion sampling, W. Hormann & G. Derflinger, "Rejection-inversion to generate
// variates from monotone discrete distributions", ACM TOMACS 6(3), 1996 (the formulation of
// Apache Commons RNG's RejectionInversionZipfSampler, valid for every alpha > 0, alpha = 1
// included, through the expm1/log1p helpers).
class ZipfRankSampler {
 public:
  // REQUIRES: n >= 1, alpha > 0.
  ZipfRankSampler(std::uint64_t n, double alpha);

  // A rank in [1, n]; `uniform01` must return doubles uniform in [0, 1).
  template <class Uniform01>
  std::uint64_t operator()(Uniform01&& uniform01) const {
    for (;;) {
      const double u = h_integral_n_ + uniform01() * (h_integral_x1_ - h_integral_n_);
      const double x = h_integral_inverse(u);
      // The nearest rank; n_ <= kMaxZipfKeys is exact as a double.
      const double k = std::clamp(std::round(x), 1.0, static_cast<double>(n_));
      if (k - x <= s_ || u >= h_integral(k + 0.5) - h(k)) return static_cast<std::uint64_t>(k);
    }
  }

 private:
  double h(double x) const;           // x^-alpha
  double h_integral(double x) const;  // integral of h from 1 to x
  double h_integral_inverse(double x) const;

  std::uint64_t n_;
  double alpha_;
  double h_integral_x1_;
  double h_integral_n_;
  double s_;
};

}  // namespace tiercache::sim
