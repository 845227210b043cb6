// prometheus_format_errors(text): checks `text` against the Prometheus text exposition
// format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/) and returns one
// message per problem, "line N: ..." (empty: valid). The stand-in for
// `promtool check metrics`, which is not installed here; written independently of
// PrometheusText so that it checks it rather than mirrors it. For tests of anything that
// renders Prometheus text (PrometheusText, Cache::render_prometheus()).
//
// Checked:
//  - UTF-8 throughout; a non-empty text ends with '\n'; empty lines are ignored.
//  - "# HELP <name> <text>" (text escapes only \\ and \n) and "# TYPE <name> <type>" with
//    type counter|gauge|histogram|summary|untyped; any other "#" line is a plain comment.
//  - Samples: <name>[{<label>="<value>",...[,]}] <value> [<timestamp>], tokens separated by
//    spaces or tabs; metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
//    (not repeated in a sample); label values escape only \\ \" \n; the value a float (Go's
//    syntax: 1, -2.5e-06, +Inf, NaN), the timestamp an int64.
//  - Per family (a TYPE'd name, with _bucket/_sum/_count of histograms, _sum/_count of
//    summaries): at most one HELP and one TYPE, the TYPE before any sample, and all its lines
//    in one contiguous group. No series twice (same name, same labels in any order).
//  - Counters are not negative. Histograms: per series (labels without le), _bucket samples
//    with an le label, le increasing and ending in "+Inf", counts non-decreasing, a _count
//    equal to the +Inf bucket, and a _sum. Summaries: plain samples carry a quantile label in
//    [0, 1]; _sum and _count present.

#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tiercache::test {

namespace prometheus_format_detail {

inline bool is_name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
inline bool is_name_char(char c, bool colon) {
  return is_name_start(c, colon) || (c >= '0' && c <= '9');
}
inline bool valid_name(std::string_view s, bool colon) {
  if (s.empty() || !is_name_start(s[0], colon)) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return is_name_char(c, colon); });
}
inline bool valid_metric_name(std::string_view s) { return valid_name(s, true); }
inline bool valid_label_name(std::string_view s) { return valid_name(s, false); }

inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// A float as Go's strconv.ParseFloat reads it (decimal, optional sign, Inf, NaN).
inline std::optional<double> parse_float(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::string_view digits = s;
  bool negative = false;
  if (digits[0] == '+' || digits[0] == '-') {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty() || digits[0] == '+' || digits[0] == '-') return std::nullopt;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() && ec != std::errc::result_out_of_range) return std::nullopt;
  if (ptr != digits.data() + digits.size()) return std::nullopt;
  if (digits.find('(') != std::string_view::npos) return std::nullopt;  // nan(...)
  return negative ? -v : v;
}

inline std::optional<std::int64_t> parse_int64(std::string_view s) {
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // values unescaped
  double value = 0;
  std::size_t line = 0;

  const std::string* label(std::string_view label_name) const {
    for (const auto& [n, v] : labels) {
      if (n == label_name) return &v;
    }
    return nullptr;
  }
  // The labels, sorted, without `except`: the identity of a histogram/summary series.
  std::string series_key(std::string_view except = {}) const {
    auto sorted = labels;
    std::sort(sorted.begin(), sorted.end());
    std::string key;
    for (const auto& [n, v] : sorted) {
      if (n == except) continue;
      key += n + "=\"" + v + "\",";
    }
    return key;
  }
};

// Parses `rest` as the part after the name of a sample line. Returns an error or "".
inline std::string parse_sample_rest(std::string_view rest, Sample& sample) {
  const auto skip_blanks = [&] {
    while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
  };
  skip_blanks();
  if (!rest.empty() && rest[0] == '{') {
    rest.remove_prefix(1);
    std::set<std::string> seen;
    for (;;) {
      skip_blanks();
      if (rest.empty()) return "unterminated label set";
      if (rest[0] == '}') {
        rest.remove_prefix(1);
        break;
      }
      std::size_t n = 0;
      while (n < rest.size() && is_name_char(rest[n], false)) ++n;
      const std::string label_name(rest.substr(0, n));
      if (!valid_label_name(label_name)) {
        return "invalid label name at '" + std::string(rest.substr(0, 20)) + "'";
      }
      if (!seen.insert(label_name).second) return "label '" + label_name + "' repeated";
      rest.remove_prefix(n);
      skip_blanks();
      if (rest.empty() || rest[0] != '=') return "expected '=' after label '" + label_name + "'";
      rest.remove_prefix(1);
      skip_blanks();
      if (rest.empty() || rest[0] != '"') return "label value of '" + label_name + "' not quoted";
      rest.remove_prefix(1);
      std::string value;
      bool closed = false;
      while (!rest.empty()) {
        const char c = rest[0];
        rest.remove_prefix(1);
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (rest.empty()) break;
          const char e = rest[0];
          rest.remove_prefix(1);
          if (e == '\\' || e == '"') {
            value += e;
          } else if (e == 'n') {
            value += '\n';
          } else {
            return std::string("invalid escape \\") + e + " in label value of '" + label_name + "'";
          }
          continue;
        }
        value += c;
      }
      if (!closed) return "unterminated label value of '" + label_name + "'";
      sample.labels.emplace_back(label_name, std::move(value));
      skip_blanks();
      if (!rest.empty() && rest[0] == ',') {
        rest.remove_prefix(1);
      } else if (rest.empty() || rest[0] != '}') {
        return "expected ',' or '}' after label '" + label_name + "'";
      }
    }
  }
  // Value and optional timestamp.
  std::vector<std::string_view> tokens;
  for (;;) {
    skip_blanks();
    if (rest.empty()) break;
    std::size_t n = 0;
    while (n < rest.size() && rest[n] != ' ' && rest[n] != '\t') ++n;
    tokens.push_back(rest.substr(0, n));
    rest.remove_prefix(n);
  }
  if (tokens.empty()) return "missing value";
  if (tokens.size() > 2) return "unexpected text after value and timestamp";
  const auto value = parse_float(tokens[0]);
  if (!value) return "invalid value '" + std::string(tokens[0]) + "'";
  sample.value = *value;
  if (tokens.size() == 2 && !parse_int64(tokens[1])) {
    return "invalid timestamp '" + std::string(tokens[1]) + "'";
  }
  return "";
}

struct FamilyInfo {
  std::string type = "untyped";
  bool has_type = false;
  bool has_help = false;
  bool has_samples = false;
  bool closed = false;  // another family's lines came after some of its own
  std::vector<Sample> samples;
};

inline void check_histogram(const std::string& name, const FamilyInfo& f,
                            std::vector<std::string>& errors) {
  struct Series {
    std::vector<std::pair<double, const Sample*>> buckets;
    const Sample* sum = nullptr;
    const Sample* count = nullptr;
    std::size_t line = 0;
  };
  std::map<std::string, Series> series;
  const auto at = [](const Sample& s) { return "line " + std::to_string(s.line) + ": "; };
  for (const Sample& s : f.samples) {
    if (s.name == name + "_bucket") {
      const std::string* le = s.label("le");
      if (le == nullptr) {
        errors.push_back(at(s) + "histogram bucket without an le label");
        continue;
      }
      const auto bound = parse_float(*le);
      if (!bound || std::isnan(*bound)) {
        errors.push_back(at(s) + "histogram bucket with invalid le=\"" + *le + "\"");
        continue;
      }
      Series& ser = series[s.series_key("le")];
      if (ser.line == 0) ser.line = s.line;
      ser.buckets.emplace_back(*bound, &s);
    } else if (s.name == name + "_sum" || s.name == name + "_count") {
      if (s.label("le") != nullptr) errors.push_back(at(s) + s.name + " with an le label");
      Series& ser = series[s.series_key()];
      if (ser.line == 0) ser.line = s.line;
      (s.name == name + "_sum" ? ser.sum : ser.count) = &s;
    } else {
      errors.push_back(at(s) + "sample '" + s.name + "' in histogram family '" + name + "'");
    }
  }
  for (const auto& [key, ser] : series) {
    const std::string where =
        "line " + std::to_string(ser.line) + ": histogram " + name + "{" + key + "}: ";
    if (ser.buckets.empty()) {
      errors.push_back(where + "no _bucket samples");
    } else {
      for (std::size_t i = 1; i < ser.buckets.size(); ++i) {
        if (!(ser.buckets[i - 1].first < ser.buckets[i].first)) {
          errors.push_back(where + "le not increasing at line " +
                           std::to_string(ser.buckets[i].second->line));
        }
        if (ser.buckets[i].second->value < ser.buckets[i - 1].second->value) {
          errors.push_back(where + "bucket counts decrease at line " +
                           std::to_string(ser.buckets[i].second->line));
        }
      }
      const auto& last = ser.buckets.back();
      if (!(std::isinf(last.first) && last.first > 0)) {
        errors.push_back(where + "last bucket is not le=\"+Inf\"");
      } else if (ser.count != nullptr && ser.count->value != last.second->value) {
        errors.push_back(where + "_count differs from the +Inf bucket");
      }
    }
    if (ser.count == nullptr) errors.push_back(where + "no _count sample");
    if (ser.sum == nullptr) errors.push_back(where + "no _sum sample");
  }
}

inline void check_summary(const std::string& name, const FamilyInfo& f,
                          std::vector<std::string>& errors) {
  std::map<std::string, std::pair<bool, bool>> sum_and_count;  // by series
  for (const Sample& s : f.samples) {
    const std::string at = "line " + std::to_string(s.line) + ": ";
    if (s.name == name) {
      const std::string* q = s.label("quantile");
      const auto v = q ? parse_float(*q) : std::nullopt;
      if (!v || !(*v >= 0 && *v <= 1)) errors.push_back(at + "summary sample without quantile");
      sum_and_count[s.series_key("quantile")];
    } else if (s.name == name + "_sum") {
      sum_and_count[s.series_key()].first = true;
    } else if (s.name == name + "_count") {
      sum_and_count[s.series_key()].second = true;
    }
  }
  for (const auto& [key, present] : sum_and_count) {
    if (!present.first || !present.second) {
      errors.push_back("summary " + name + "{" + key + "}: missing _sum or _count");
    }
  }
}

}  // namespace prometheus_format_detail

inline std::vector<std::string> prometheus_format_errors(std::string_view text) {
  using namespace prometheus_format_detail;
  std::vector<std::string> errors;
  if (!valid_utf8(text)) errors.push_back("text is not valid UTF-8");
  if (!text.empty() && text.back() != '\n') errors.push_back("text does not end with '\\n'");

  std::map<std::string, FamilyInfo> families;
  std::vector<std::string> family_order;
  std::set<std::string> series_seen;
  std::string current;  // the family of the previous line

  const auto family_of_sample = [&](const std::string& name) {
    if (families.count(name) != 0 && families[name].has_type) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string_view s(suffix);
      if (name.size() > s.size() && name.ends_with(s)) {
        const std::string base = name.substr(0, name.size() - s.size());
        const auto it = families.find(base);
        if (it == families.end() || !it->second.has_type) continue;
        if (it->second.type == "histogram" || (it->second.type == "summary" && s != "_bucket")) {
          return base;
        }
      }
    }
    return name;
  };
  // Moves to family `name`'s group; reports a family whose group was left before.
  const auto enter = [&](const std::string& name, std::size_t line) -> FamilyInfo& {
    if (name != current) {
      if (!current.empty()) families[current].closed = true;
      if (families.count(name) != 0 && families[name].closed) {
        errors.push_back("line " + std::to_string(line) + ": lines of family '" + name +
                         "' are not grouped together");
        families[name].closed = false;
      }
      current = name;
    }
    if (families.count(name) == 0) family_order.push_back(name);
    return families[name];
  };

  std::size_t line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    const std::string at = "line " + std::to_string(line_number) + ": ";
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;

    if (line[0] == '#') {
      std::string_view rest = line.substr(1);
      const auto next_token = [&] {
        while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
        std::size_t n = 0;
        while (n < rest.size() && rest[n] != ' ' && rest[n] != '\t') ++n;
        const std::string_view token = rest.substr(0, n);
        rest.remove_prefix(n);
        return token;
      };
      const std::string_view keyword = next_token();
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
      const std::string name(next_token());
      if (!valid_metric_name(name)) {
        errors.push_back(at + "invalid metric name '" + name + "' in # " + std::string(keyword));
        continue;
      }
      FamilyInfo& f = enter(name, line_number);
      if (keyword == "HELP") {
        if (f.has_help) errors.push_back(at + "second HELP for '" + name + "'");
        f.has_help = true;
        if (!rest.empty()) rest.remove_prefix(1);  // the blank after the name
        for (std::size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] != '\\') continue;
          if (i + 1 < rest.size() && (rest[i + 1] == '\\' || rest[i + 1] == 'n')) {
            ++i;
          } else {
            errors.push_back(at + "invalid escape in HELP of '" + name + "'");
            break;
          }
        }
      } else {
        const std::string type(next_token());
        if (!next_token().empty()) errors.push_back(at + "text after the type");
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (kTypes.count(type) == 0) errors.push_back(at + "unknown type '" + type + "'");
        if (f.has_type) errors.push_back(at + "second TYPE for '" + name + "'");
        if (f.has_samples) errors.push_back(at + "TYPE of '" + name + "' after its samples");
        if (type == "histogram" || type == "summary") {
          for (const char* suffix : {"_bucket", "_sum", "_count"}) {
            const auto it = families.find(name + suffix);
            if (it != families.end() && it->second.has_samples) {
              errors.push_back(at + "TYPE of '" + name + "' after its samples");
            }
          }
        }
        f.has_type = true;
        f.type = type;
      }
      continue;
    }

    Sample sample;
    sample.line = line_number;
    std::size_t n = 0;
    while (n < line.size() && is_name_char(line[n], true)) ++n;
    sample.name = std::string(line.substr(0, n));
    if (!valid_metric_name(sample.name)) {
      errors.push_back(at + "invalid metric name at '" + std::string(line.substr(0, 30)) + "'");
      continue;
    }
    if (const std::string error = parse_sample_rest(line.substr(n), sample); !error.empty()) {
      errors.push_back(at + error);
      continue;
    }
    const std::string series = sample.name + "{" + sample.series_key() + "}";
    if (!series_seen.insert(series).second) {
      errors.push_back(at + "duplicate series " + series);
    }
    FamilyInfo& f = enter(family_of_sample(sample.name), line_number);
    f.has_samples = true;
    if (f.type == "counter" && sample.value < 0) {
      errors.push_back(at + "negative counter " + sample.name);
    }
    f.samples.push_back(std::move(sample));
  }

  for (const std::string& name : family_order) {
    const FamilyInfo& f = families[name];
    if (f.type == "histogram") check_histogram(name, f, errors);
    if (f.type == "summary") check_summary(name, f, errors);
  }
  return errors;
}

}  // namespace tiercache::test
