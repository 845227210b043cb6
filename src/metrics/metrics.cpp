// Counter, Histogram, PrometheusText and key_pattern (include/tiercache/metrics.hpp).
//
// Striping: a Counter is kMetricStripes blocks of 128 bytes (detail::MetricBlock), one
// counter each; a Histogram is one heap array of kMetricStripes * cells_per_stripe_ cells,
// stripe s owning cells [s * cells_per_stripe_, (s + 1) * cells_per_stripe_), a whole number
// of blocks. (With 64-byte stripes, two threads observing one Histogram ran at 60% of the
// speed of two threads on private ones -- the adjacent-line prefetcher pairs lines; with
// 128-byte stripes at 90%: bench/metrics_bench.cpp, histogram vs private_histogram.)
// Writers add to their stripe with relaxed atomics; readers add the stripes up. Nothing
// else is shared, so there are no other invariants between cells: a histogram's count is
// derived from its bucket cells (never stored apart), which is what keeps count equal to
// the +Inf bucket in every snapshot.
//
// Prometheus text: format 0.0.4 as specified at
// https://prometheus.io/docs/instrumenting/exposition_formats/ (line format, escaping,
// histogram sample names). Numbers follow Go's client (expfmt's writeFloat:
// strconv.FormatFloat(v, 'g', -1, 64)) except that integral values print as integers.

#include "tiercache/metrics.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace tiercache {

// ---- Counter -------------------------------------------------------------------------------

std::uint64_t Counter::value() const noexcept {
  std::uint64_t total = 0;
  for (const auto& stripe : stripes_) total += stripe.cells[0].load(std::memory_order_relaxed);
  return total;
}

// ---- Histogram -----------------------------------------------------------------------------

namespace {

constexpr double kNanosPerSecond = 1e9;
constexpr std::int64_t kMaxNanos = std::numeric_limits<std::int64_t>::max();
// The largest double below 2^63: seconds * 1e9 at or above it does not fit an int64.
constexpr double kMaxNanosAsDouble = 9223372036854774784.0;

// Whether n nanoseconds, as observe_seconds would see them, fall at or below `bound` seconds.
bool nanos_within(std::int64_t n, double bound) {
  return static_cast<double>(n) / kNanosPerSecond <= bound;
}

// The largest whole number of nanoseconds n with n / 1e9 <= bound (clamped to int64).
std::int64_t bound_in_nanos(double bound) {
  const double scaled = std::floor(bound * kNanosPerSecond);
  if (scaled >= kMaxNanosAsDouble) return kMaxNanos;
  if (scaled <= -kMaxNanosAsDouble) return std::numeric_limits<std::int64_t>::min();
  auto n = static_cast<std::int64_t>(scaled);
  // bound * 1e9 is rounded: step to the exact boundary (a step or two at most; above 2^53 ns
  // doubles are coarser than a nanosecond and the first answer is as good as any).
  for (int step = 0; step < 4 && !nanos_within(n, bound); ++step) --n;
  for (int step = 0; step < 4 && nanos_within(n + 1, bound); ++step) ++n;
  return n;
}

std::uint64_t seconds_to_nanos(double s) {
  const double scaled = std::round(s * kNanosPerSecond);
  return scaled >= kMaxNanosAsDouble ? static_cast<std::uint64_t>(kMaxNanos)
                                     : static_cast<std::uint64_t>(scaled);
}

}  // namespace

std::vector<double> Histogram::default_bounds() {
  return {
      1e-6, 2.5e-6, 5e-6,  // an L1 hit
      1e-5, 2.5e-5, 5e-5,  //
      1e-4, 2.5e-4, 5e-4,  // an L2 hit on a nearby Redis
      1e-3, 2.5e-3, 5e-3,  //
      1e-2, 2.5e-2, 5e-2,  // a fast load
      0.1,  0.25,   0.5,   //
      1.0,  2.5,    5.0,   // a slow load, a timeout
      10.0,
  };
}

Histogram::Histogram() : Histogram(default_bounds()) {}

Histogram::Histogram(std::vector<double> upper_bounds_seconds)
    : bounds_(std::move(upper_bounds_seconds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) {
      throw std::invalid_argument("Histogram: bucket bounds must be finite");
    }
    if (i > 0 && !(bounds_[i - 1] < bounds_[i])) {
      throw std::invalid_argument("Histogram: bucket bounds must be sorted and unique");
    }
    bounds_ns_.push_back(bound_in_nanos(bounds_[i]));
  }
  sum_cell_ = bounds_.size() + 1;  // after the buckets and +Inf
  const std::size_t blocks_per_stripe =
      (sum_cell_ + 1 + detail::MetricBlock::kCells - 1) / detail::MetricBlock::kCells;
  cells_per_stripe_ = blocks_per_stripe * detail::MetricBlock::kCells;
  blocks_ = std::make_unique<detail::MetricBlock[]>(blocks_per_stripe * kMetricStripes);
}

void Histogram::observe_seconds(double s) noexcept {
  if (std::isnan(s)) return;
  if (s < 0) s = 0;
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), s) -
                                               bounds_.begin());
  record(bucket, seconds_to_nanos(s));
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative_counts.assign(bounds_.size() + 1, 0);
  std::uint64_t sum_ns = 0;
  for (std::size_t stripe = 0; stripe < kMetricStripes; ++stripe) {
    const std::size_t base = stripe * cells_per_stripe_;
    for (std::size_t b = 0; b <= bounds_.size(); ++b) {
      s.cumulative_counts[b] += cell(base + b).load(std::memory_order_relaxed);
    }
    sum_ns += cell(base + sum_cell_).load(std::memory_order_relaxed);
  }
  for (std::size_t b = 1; b < s.cumulative_counts.size(); ++b) {
    s.cumulative_counts[b] += s.cumulative_counts[b - 1];
  }
  s.count = s.cumulative_counts.back();
  s.sum_seconds = static_cast<double>(sum_ns) / kNanosPerSecond;
  return s;
}

double Histogram::Snapshot::quantile(double q) const {
  if (count == 0 || cumulative_counts.empty() || std::isnan(q)) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  // The first non-empty bucket whose cumulative count reaches the rank. It exists: the
  // last (+Inf) bucket holds `count` >= rank observations, and count > 0.
  std::size_t b = 0;
  while (b + 1 < cumulative_counts.size() &&
         (cumulative_counts[b] == 0 || static_cast<double>(cumulative_counts[b]) < rank)) {
    ++b;
  }
  if (b == upper_bounds.size()) return upper_bounds.empty() ? 0.0 : upper_bounds.back();
  const double upper = upper_bounds[b];
  double lower = 0.0;
  if (b > 0) {
    lower = upper_bounds[b - 1];
  } else if (upper <= 0) {
    return upper;
  }
  const std::uint64_t before = b == 0 ? 0 : cumulative_counts[b - 1];
  const auto in_bucket = static_cast<double>(cumulative_counts[b] - before);
  return lower + (upper - lower) * ((rank - static_cast<double>(before)) / in_bucket);
}

double Histogram::Snapshot::mean_seconds() const {
  return count == 0 ? 0.0 : sum_seconds / static_cast<double>(count);
}

// ---- PrometheusText ------------------------------------------------------------------------

namespace {

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool valid_metric_name(std::string_view name) {
  if (name.empty() || is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_letter(c) || is_digit(c) || c == '_' || c == ':'; });
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || is_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_letter(c) || is_digit(c) || c == '_'; });
}

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 if it is not one
// (truncated, overlong, a surrogate, beyond U+10FFFF, a stray continuation byte).
std::size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char min_second = 0x80, max_second = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min_second = 0xA0;  // overlong
    if (lead == 0xED) max_second = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min_second = 0x90;  // overlong
    if (lead == 0xF4) max_second = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  if (byte(1) < min_second || byte(1) > max_second) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Appends `text` escaped: backslash and newline always, the double quote if `quote`;
// invalid UTF-8 bytes become U+FFFD.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  while (!text.empty()) {
    const char c = text[0];
    std::size_t length = 1;
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if ((length = utf8_sequence_length(text)) != 0) {
      out.append(text.substr(0, length));
    } else {
      out += "\xEF\xBF\xBD";
      length = 1;
    }
    text.remove_prefix(length);
  }
}

void append_integer(std::string& out, std::uint64_t v) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
  out.append(buffer, result.ptr);
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buffer[64];
  constexpr double kLargestPlainInteger = 1e15;
  if (v == std::trunc(v) && std::fabs(v) < kLargestPlainInteger) {
    const auto result =
        std::to_chars(buffer, buffer + sizeof buffer, static_cast<long long>(v));  // -0 -> 0
    out.append(buffer, result.ptr);
    return;
  }
  // As Go's %g with the shortest precision: exponent notation below 1e-4 and from 1e21.
  auto result = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::scientific);
  const std::string_view scientific(buffer, static_cast<std::size_t>(result.ptr - buffer));
  int exponent = 0;
  const std::size_t e = scientific.find('e');
  const char* exponent_begin = scientific.data() + e + 1;
  if (*exponent_begin == '+') ++exponent_begin;
  std::from_chars(exponent_begin, scientific.data() + scientific.size(), exponent);
  if (exponent < -4 || exponent >= 21) {
    out.append(scientific);
    return;
  }
  result = std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::fixed);
  out.append(buffer, result.ptr);
}

void check_snapshot(const Histogram::Snapshot& s) {
  const auto& bounds = s.upper_bounds;
  const auto& counts = s.cumulative_counts;
  if (counts.size() != bounds.size() + 1) {
    throw std::invalid_argument("PrometheusText: snapshot needs one count per bound, and +Inf");
  }
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      throw std::invalid_argument("PrometheusText: snapshot bounds not finite and increasing");
    }
  }
  for (std::size_t i = 1; i < counts.size(); ++i) {
    if (counts[i] < counts[i - 1]) {
      throw std::invalid_argument("PrometheusText: snapshot counts are not cumulative");
    }
  }
  if (counts.back() != s.count) {
    throw std::invalid_argument("PrometheusText: snapshot count differs from its +Inf bucket");
  }
}

}  // namespace

std::size_t PrometheusText::check_family(std::string_view name, Type type) const {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("PrometheusText: invalid metric name '" + std::string(name) + "'");
  }
  const std::string key(name);
  if (const auto it = family_of_name_.find(key); it != family_of_name_.end()) {
    const Family& existing = families_[it->second];
    if (existing.name != name || existing.type != type) {
      throw std::invalid_argument("PrometheusText: metric name '" + key +
                                  "' used by two families or with two types");
    }
    return it->second;
  }
  if (type == Type::kHistogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (family_of_name_.count(key + suffix) != 0) {
        throw std::invalid_argument("PrometheusText: metric name '" + key + suffix +
                                    "' used by two families");
      }
    }
  }
  return kNewFamily;
}

PrometheusText::Family& PrometheusText::family(std::size_t index, std::string_view name,
                                               std::string_view help, Type type) {
  if (index == kNewFamily) {
    const std::string key(name);
    index = families_.size();
    families_.push_back(Family{key, std::string(help), type, {}});
    family_of_name_.emplace(key, index);
    if (type == Type::kHistogram) {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        family_of_name_.emplace(key + suffix, index);
      }
    }
  }
  Family& f = families_[index];
  if (f.help.empty()) f.help = help;
  return f;
}

std::string PrometheusText::open_labels(std::string_view sample_name, const Labels& labels,
                                        std::string_view extra_label) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  for (const auto& label : labels) {
    if (!valid_label_name(label.first) || label.first.starts_with("__")) {
      throw std::invalid_argument("PrometheusText: invalid label name '" + label.first + "'");
    }
    if (label.first == extra_label) {
      throw std::invalid_argument("PrometheusText: label '" + label.first + "' is reserved here");
    }
    sorted.push_back(&label);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string series(sample_name);
  series += '{';
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i]->first == sorted[i - 1]->first) {
      throw std::invalid_argument("PrometheusText: label '" + sorted[i]->first + "' repeated");
    }
    series += sorted[i]->first;
    series += "=\"";
    append_escaped(series, sorted[i]->second, /*quote=*/true);
    series += "\",";
  }
  if (!series_.insert(std::move(series)).second) {
    throw std::invalid_argument("PrometheusText: series '" + std::string(sample_name) +
                                "' added twice with the same labels");
  }

  std::string rendered;
  for (const auto& [label, value] : labels) {
    rendered += rendered.empty() ? "{" : ",";
    rendered += label;
    rendered += "=\"";
    append_escaped(rendered, value, /*quote=*/true);
    rendered += '"';
  }
  return rendered;
}

void PrometheusText::counter(std::string_view name, std::string_view help, const Labels& labels,
                             std::uint64_t value) {
  const std::size_t index = check_family(name, Type::kCounter);
  const std::string label_part = open_labels(name, labels);
  std::string& out = family(index, name, help, Type::kCounter).samples;
  out += name;
  if (!label_part.empty()) out += label_part + "}";
  out += ' ';
  append_integer(out, value);
  out += '\n';
}

void PrometheusText::gauge(std::string_view name, std::string_view help, const Labels& labels,
                           double value) {
  const std::size_t index = check_family(name, Type::kGauge);
  const std::string label_part = open_labels(name, labels);
  std::string& out = family(index, name, help, Type::kGauge).samples;
  out += name;
  if (!label_part.empty()) out += label_part + "}";
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void PrometheusText::histogram(std::string_view name, std::string_view help, const Labels& labels,
                               const Histogram::Snapshot& s) {
  check_snapshot(s);
  const std::size_t index = check_family(name, Type::kHistogram);
  // One series per label set: _bucket, _sum and _count come together, so checking the
  // family name once covers them.
  const std::string label_part = open_labels(name, labels, /*extra_label=*/"le");
  std::string& out = family(index, name, help, Type::kHistogram).samples;
  const auto bucket = [&](const auto& write_le, std::uint64_t count) {
    out += name;
    out += "_bucket";
    out += label_part.empty() ? "{" : label_part + ",";
    out += "le=\"";
    write_le();
    out += "\"} ";
    append_integer(out, count);
    out += '\n';
  };
  for (std::size_t i = 0; i < s.upper_bounds.size(); ++i) {
    bucket([&] { append_number(out, s.upper_bounds[i]); }, s.cumulative_counts[i]);
  }
  bucket([&] { out += "+Inf"; }, s.count);
  const std::string closed_labels = label_part.empty() ? "" : label_part + "}";
  out += name;
  out += "_sum";
  out += closed_labels;
  out += ' ';
  append_number(out, s.sum_seconds);
  out += '\n';
  out += name;
  out += "_count";
  out += closed_labels;
  out += ' ';
  append_integer(out, s.count);
  out += '\n';
}

std::string PrometheusText::render() const {
  std::string out;
  for (const Family& f : families_) {
    if (!f.help.empty()) {
      out += "# HELP ";
      out += f.name;
      out += ' ';
      append_escaped(out, f.help, /*quote=*/false);
      out += '\n';
    }
    out += "# TYPE ";
    out += f.name;
    switch (f.type) {
      case Type::kCounter:
        out += " counter\n";
        break;
      case Type::kGauge:
        out += " gauge\n";
        break;
      case Type::kHistogram:
        out += " histogram\n";
        break;
    }
    out += f.samples;
  }
  return out;
}

// ---- key_pattern ---------------------------------------------------------------------------

namespace {

constexpr std::size_t kMaxWordLength = 24;
// Segments this long or longer are checked for looking like hex or base64.
constexpr std::size_t kMinEncodedLength = 8;

bool is_field_separator(char c) { return c == ':' || c == '/' || c == '|'; }

bool is_hex_letter(char c) { return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Whether a non-empty '.'-separated segment may be shown as it is.
bool is_word(std::string_view segment) {
  if (segment.size() > kMaxWordLength) return false;
  std::size_t upper = 0;
  std::size_t lower = 0;
  bool all_hex = true;
  for (const char c : segment) {
    if (c >= 'A' && c <= 'Z') {
      ++upper;
    } else if (c >= 'a' && c <= 'z') {
      ++lower;
    } else if (c != '_' && c != '-') {
      return false;  // a digit, '@', space, other punctuation, a control or non-ASCII byte
    }
    all_hex = all_hex && is_hex_letter(c);
  }
  if (segment.size() < kMinEncodedLength) return true;
  if (all_hex) return false;
  return !(lower > 0 && upper * 3 > segment.size());
}

void append_field_pattern(std::string& out, std::string_view field) {
  if (field.empty()) return;
  if (field.find('@') != std::string_view::npos) {
    out += '*';
    return;
  }
  while (out.size() <= kMaxKeyPatternLength) {
    const std::size_t dot = field.find('.');
    const std::string_view segment = field.substr(0, dot);
    if (!segment.empty()) {
      if (is_word(segment)) {
        out += segment;
      } else {
        out += '*';
      }
    }
    if (dot == std::string_view::npos) return;
    out += '.';
    field.remove_prefix(dot + 1);
  }
}

}  // namespace

std::string key_pattern(std::string_view key) {
  std::string out;
  // Stop as soon as the pattern is over the bound: a huge key costs no more than a small one.
  while (out.size() <= kMaxKeyPatternLength) {
    const auto end = std::find_if(key.begin(), key.end(), is_field_separator);
    append_field_pattern(out, key.substr(0, static_cast<std::size_t>(end - key.begin())));
    if (end == key.end()) break;
    out += *end;
    key.remove_prefix(static_cast<std::size_t>(end - key.begin()) + 1);
  }
  if (out.size() > kMaxKeyPatternLength) {
    // Cut after the last separator that leaves room for the '*'.
    const std::size_t cut = out.find_last_of(":/|.", kMaxKeyPatternLength - 2);
    out.resize(cut == std::string::npos ? 0 : cut + 1);
    out += '*';
  }
  return out;
}

}  // namespace tiercache
