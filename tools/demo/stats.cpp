// Stats lines of `tiercache demo` (stats.hpp).

#include "demo/stats.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tiercache::cli::demo {
namespace {

// 10 bounds per decade, from 1e-7 s (100 ns) to 1e1 s (10 s).
constexpr int kBoundsPerDecade = 10;
constexpr int kFirstExponentTenths = -70;
constexpr int kLastExponentTenths = 10;

template <class T>
bool parse(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

// Calls f(piece) for each piece of `text` separated by `sep` (empty pieces skipped).
template <class F>
void split(std::string_view text, char sep, F f) {
  while (!text.empty()) {
    const std::size_t at = text.find(sep);
    const std::string_view piece = text.substr(0, at);
    if (!piece.empty()) f(piece);
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
}

std::string encode_marks(const std::vector<PodStats::Mark>& marks) {
  std::string out;
  for (const PodStats::Mark& m : marks) {
    if (!out.empty()) out += ",";
    out += std::to_string(m.seq) + ":" + std::to_string(m.ns);
  }
  return out;
}

// Parses "seq:ns,..." into `marks`; false if malformed.
bool decode_marks(std::string_view text, std::vector<PodStats::Mark>& marks) {
  bool ok = true;
  split(text, ',', [&](std::string_view pair) {
    const std::size_t colon = pair.find(':');
    PodStats::Mark m;
    if (colon == std::string_view::npos || !parse(pair.substr(0, colon), m.seq) ||
        !parse(pair.substr(colon + 1), m.ns)) {
      ok = false;
      return;
    }
    marks.push_back(m);
  });
  return ok;
}

}  // namespace

Counts& Counts::operator+=(const Counts& o) {
  for (std::size_t i = 0; i < kCountCount; ++i) n[i] += o.n[i];
  return *this;
}

Counts Counts::minus(const Counts& o) const {
  Counts out;
  for (std::size_t i = 0; i < kCountCount; ++i) out.n[i] = n[i] >= o.n[i] ? n[i] - o.n[i] : 0;
  return out;
}

const std::vector<double>& latency_bounds() {
  static const std::vector<double> bounds = [] {
    std::vector<double> b;
    for (int tenths = kFirstExponentTenths; tenths <= kLastExponentTenths; ++tenths) {
      // Rounded to 3 significant digits (mantissa x 10^exponent, computed so that the double
      // is the one "1.26e-07" parses to), so that the Prometheus "le" labels read well.
      const double raw = std::pow(10.0, static_cast<double>(tenths) / kBoundsPerDecade);
      const int exponent = static_cast<int>(std::floor(std::log10(raw) + 1e-9)) - 2;
      const double mantissa = std::round(raw / std::pow(10.0, exponent));
      const double scale = std::pow(10.0, std::abs(exponent));  // exact up to 10^22
      b.push_back(exponent < 0 ? mantissa / scale : mantissa * scale);
    }
    return b;
  }();
  return bounds;
}

Buckets& Buckets::operator+=(const Buckets& o) {
  for (std::size_t i = 0; i < counts.size() && i < o.counts.size(); ++i) counts[i] += o.counts[i];
  sum_ns += o.sum_ns;
  return *this;
}

Buckets Buckets::minus(const Buckets& o) const {
  Buckets out;
  for (std::size_t i = 0; i < counts.size() && i < o.counts.size(); ++i) {
    out.counts[i] = counts[i] >= o.counts[i] ? counts[i] - o.counts[i] : 0;
  }
  out.sum_ns = sum_ns >= o.sum_ns ? sum_ns - o.sum_ns : 0;
  return out;
}

std::uint64_t Buckets::total() const {
  std::uint64_t total = 0;
  for (std::uint64_t c : counts) total += c;
  return total;
}

Buckets Buckets::from(const Histogram::Snapshot& s) {
  Buckets out;
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i < s.cumulative_counts.size() && i < out.counts.size(); ++i) {
    out.counts[i] = s.cumulative_counts[i] - previous;
    previous = s.cumulative_counts[i];
  }
  out.sum_ns = static_cast<std::uint64_t>(std::llround(s.sum_seconds * 1e9));
  return out;
}

Histogram::Snapshot Buckets::snapshot() const {
  Histogram::Snapshot s;
  s.upper_bounds = latency_bounds();
  std::uint64_t running = 0;
  for (std::uint64_t c : counts) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.count = running;
  s.sum_seconds = static_cast<double>(sum_ns) / 1e9;
  return s;
}

double Buckets::quantile_us(double q) const { return snapshot().quantile(q) * 1e6; }

Latencies& Latencies::operator+=(const Latencies& o) {
  for (std::size_t i = 0; i < kLatencyKinds; ++i) kinds[i] += o.kinds[i];
  return *this;
}

Latencies Latencies::minus(const Latencies& o) const {
  Latencies out;
  for (std::size_t i = 0; i < kLatencyKinds; ++i) out.kinds[i] = kinds[i].minus(o.kinds[i]);
  return out;
}

std::string encode(const PodStats& stats) {
  std::string line = "S pod=" + std::to_string(stats.pod);
  for (std::size_t i = 0; i < kCountCount; ++i) {
    line += " ";
    line += kCountNames[i];
    line += "=" + std::to_string(stats.counts.n[i]);
  }
  line += " circuit=" + std::to_string(stats.circuit);
  line += " bus=" + std::to_string(stats.bus_connected);
  line += " inflight_peak=" + std::to_string(stats.inflight_peak);
  for (std::size_t k = 0; k < kLatencyKinds; ++k) {
    const Buckets& b = stats.latency.kinds[k];
    line += " lat_";
    line += kLatencyNames[k];
    line += "=";
    bool first = true;
    for (std::size_t i = 0; i < b.counts.size(); ++i) {
      if (b.counts[i] == 0) continue;
      if (!first) line += ",";
      first = false;
      line += std::to_string(i) + ":" + std::to_string(b.counts[i]);
    }
    line += " lat_";
    line += kLatencyNames[k];
    line += "_sum_ns=" + std::to_string(b.sum_ns);
  }
  line += " written=" + encode_marks(stats.written);
  line += " seen=" + encode_marks(stats.seen);
  return line;
}

std::optional<PodStats> decode(std::string_view line) {
  if (!line.starts_with("S ")) return std::nullopt;
  PodStats stats;
  bool ok = true;
  bool has_pod = false;
  split(line.substr(2), ' ', [&](std::string_view token) {
    const std::size_t eq = token.find('=');
    if (eq == std::string_view::npos) {
      ok = false;
      return;
    }
    const std::string_view key = token.substr(0, eq);
    const std::string_view value = token.substr(eq + 1);
    if (key == "pod") {
      has_pod = true;
      ok = ok && parse(value, stats.pod);
      return;
    }
    for (std::size_t i = 0; i < kCountCount; ++i) {
      if (key == kCountNames[i]) {
        ok = ok && parse(value, stats.counts.n[i]);
        return;
      }
    }
    if (key == "circuit") {
      ok = ok && parse(value, stats.circuit);
    } else if (key == "bus") {
      ok = ok && parse(value, stats.bus_connected);
    } else if (key == "inflight_peak") {
      ok = ok && parse(value, stats.inflight_peak);
    } else if (key == "written") {
      ok = ok && decode_marks(value, stats.written);
    } else if (key == "seen") {
      ok = ok && decode_marks(value, stats.seen);
    } else if (key.starts_with("lat_")) {
      for (std::size_t k = 0; k < kLatencyKinds; ++k) {
        const std::string name = "lat_" + std::string(kLatencyNames[k]);
        Buckets& b = stats.latency.kinds[k];
        if (key == name + "_sum_ns") {
          ok = ok && parse(value, b.sum_ns);
        } else if (key == name) {
          split(value, ',', [&](std::string_view pair) {
            const std::size_t colon = pair.find(':');
            std::size_t index = 0;
            std::uint64_t count = 0;
            if (colon == std::string_view::npos || !parse(pair.substr(0, colon), index) ||
                !parse(pair.substr(colon + 1), count) || index >= b.counts.size()) {
              ok = false;
              return;
            }
            b.counts[index] = count;
          });
        }
      }
    }
  });
  if (!ok || !has_pod) return std::nullopt;
  return stats;
}

double prometheus_value(std::string_view text, std::string_view family,
                        std::string_view label_part) {
  double total = 0;
  bool found = false;
  split(text, '\n', [&](std::string_view line) {
    if (found || !line.starts_with(family) || line.size() <= family.size()) return;
    const char next = line[family.size()];
    if (next != '{' && next != ' ') return;
    const std::size_t space = line.rfind(' ');
    if (!label_part.empty() && line.substr(0, space).find(label_part) == std::string_view::npos) {
      return;
    }
    double v = 0;
    if (parse(line.substr(space + 1), v)) {
      total = v;
      found = true;
    }
  });
  return total;
}

}  // namespace tiercache::cli::demo
