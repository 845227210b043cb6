// Zipf traces: spec parsing, the rank sampler and the rank -> key scrambler.
//
// Sampler (Hormann & Derflinger 1996, see zipf.hpp): with h(x) = x^-alpha and H its integral,
// draw u uniformly in (H(1.5) - 1, H(n + 0.5)], invert x = H^-1(u), round to k; accept k if
// it is close enough to x (k - x <= s, a precomputed bound) or if u falls under the step of
// the histogram at k (u >= H(k + 0.5) - h(k)). The expected number of iterations is below
// 1.1 for every alpha. H and H^-1 are written with expm1/log1p "helpers" that stay exact
// near alpha = 1, where (x^(1-alpha) - 1) / (1 - alpha) tends to log(x).

#include "sim/zipf.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>

#include "quote.hpp"
#include "sim/random.hpp"

namespace tiercache::sim {
namespace {

using cli::single_quoted;

// log1p(x) / x, continuous at 0.
double helper1(double x) {
  if (std::abs(x) > 1e-8) return std::log1p(x) / x;
  return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

// expm1(x) / x, continuous at 0.
double helper2(double x) {
  if (std::abs(x) > 1e-8) return std::expm1(x) / x;
  return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

bool parse_double(std::string_view text, double& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

}  // namespace

ZipfSpecResult parse_zipf_spec(std::string_view text) {
  constexpr std::string_view kPrefix = "zipf:";
  constexpr const char* kForm =
      " (expected zipf:ALPHA:KEYS:REQUESTS:SEED, e.g. zipf:0.9:100000:1000000:1)";
  ZipfSpecResult result;
  const std::string shown = single_quoted(text);
  if (!text.starts_with(kPrefix)) {
    result.error = shown + " is not a zipf trace" + kForm;
    return result;
  }
  text.remove_prefix(kPrefix.size());
  std::string_view fields[4];
  for (int i = 0; i < 4; ++i) {
    const std::size_t colon = text.find(':');
    if ((colon == std::string_view::npos) != (i == 3)) {
      result.error = shown + ": expected 4 fields after 'zipf:'" + kForm;
      return result;
    }
    fields[i] = text.substr(0, colon);
    text = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  }
  ZipfSpec& spec = result.spec;
  if (!parse_double(fields[0], spec.alpha) || !(spec.alpha > 0.0) ||
      !(spec.alpha <= kMaxZipfAlpha)) {
    result.error =
        shown + ": ALPHA must be a number in (0, 2], got '" + std::string(fields[0]) + "'";
  } else if (!parse_u64(fields[1], spec.keys) || spec.keys < 1 || spec.keys > kMaxZipfKeys) {
    result.error = shown + ": KEYS must be an integer in [1, " + std::to_string(kMaxZipfKeys) +
                   "], got '" + std::string(fields[1]) + "'";
  } else if (!parse_u64(fields[2], spec.requests) || spec.requests < 1 ||
             spec.requests > kMaxZipfRequests) {
    result.error = shown + ": REQUESTS must be an integer in [1, " +
                   std::to_string(kMaxZipfRequests) + "], got '" + std::string(fields[2]) + "'";
  } else if (!parse_u64(fields[3], spec.seed)) {
    result.error =
        shown + ": SEED must be an unsigned 64-bit integer, got '" + std::string(fields[3]) + "'";
  }
  return result;
}

std::uint64_t zipf_key(std::uint64_t rank) { return fmix64(rank); }

std::vector<std::uint64_t> generate_zipf_trace(const ZipfSpec& spec) {
  const ZipfRankSampler sampler(spec.keys, spec.alpha);
  SplitMix64 rng(spec.seed);
  const auto uniform01 = [&rng] { return rng.next_double(); };
  std::vector<std::uint64_t> trace(spec.requests);
  for (std::uint64_t& key : trace) key = zipf_key(sampler(uniform01));
  return trace;
}

ZipfRankSampler::ZipfRankSampler(std::uint64_t n, double alpha) : n_(n), alpha_(alpha) {
  if (n < 1 || !(alpha > 0.0)) {
    throw std::invalid_argument("ZipfRankSampler: needs n >= 1 and alpha > 0");
  }
  h_integral_x1_ = h_integral(1.5) - 1.0;
  h_integral_n_ = h_integral(static_cast<double>(n) + 0.5);
  s_ = 2.0 - h_integral_inverse(h_integral(2.5) - h(2.0));
}

double ZipfRankSampler::h(double x) const { return std::exp(-alpha_ * std::log(x)); }

double ZipfRankSampler::h_integral(double x) const {
  const double log_x = std::log(x);
  return helper2((1.0 - alpha_) * log_x) * log_x;
}

double ZipfRankSampler::h_integral_inverse(double x) const {
  double t = x * (1.0 - alpha_);
  if (t < -1.0) t = -1.0;  // rounding guard: the true value is > -1
  return std::exp(helper1(t) * x);
}

}  // namespace tiercache::sim
