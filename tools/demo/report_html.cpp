// report.html of `tiercache demo --report DIR` (report.hpp): one self-contained page -- inline
// CSS and SVG, no script, no web font, no network -- that opens in any browser.
//
// Charts are drawn from the timeline's 250 ms rows: x is seconds since the load started, each
// phase a shaded band labelled with its name (or its number when the band is too narrow).
// A series has no point where it is undefined (an L2 hit ratio when nothing missed L1), so its
// line breaks there rather than dropping to zero.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "demo/report.hpp"

namespace tiercache::cli::demo {
namespace {

constexpr double kWidth = 960;
constexpr double kHeight = 250;
constexpr double kLeft = 64;
constexpr double kRight = 16;
constexpr double kTop = 30;
constexpr double kBottom = 34;
constexpr double kCharWidth = 6.2;  // of the 11px sans-serif labels, roughly

std::string num(double v, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

struct Series {
  std::string name;
  std::string color;
  std::function<double(const Row&)> value;  // NaN: no point
};

// 1, 2 or 5 times a power of ten, >= v.
double nice_ceiling(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v * 0.999) return m * p;
  }
  return 10 * p;
}

std::string chart(const std::string& title, const std::string& y_label, const Timeline& timeline,
                  const std::vector<Series>& series, bool log_y, double fixed_max = 0) {
  const std::vector<Row>& rows = timeline.rows();
  const double t_max = rows.empty() ? 1 : std::max(1.0, rows.back().t);
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;
  const auto x_of = [&](double t) { return kLeft + plot_w * t / t_max; };

  double lo = 0;
  double hi = fixed_max;
  if (hi <= 0 || log_y) {
    double max_v = 0;
    double min_v = 0;
    for (const Row& r : rows) {
      for (const Series& s : series) {
        const double v = s.value(r);
        if (!std::isfinite(v)) continue;
        max_v = std::max(max_v, v);
        if (v > 0 && (min_v == 0 || v < min_v)) min_v = v;
      }
    }
    if (log_y) {
      lo = std::pow(10.0, std::floor(std::log10(min_v > 0 ? min_v : 1)));
      hi = std::pow(10.0, std::ceil(std::log10(std::max(max_v, lo * 10))));
    } else if (hi <= 0) {
      hi = nice_ceiling(max_v);
    }
  }
  const auto y_of = [&](double v) {
    double f;
    if (log_y) {
      f = (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    } else {
      f = v / hi;
    }
    return kTop + plot_h * (1 - std::clamp(f, 0.0, 1.0));
  };

  std::string svg = "<svg viewBox=\"0 0 " + num(kWidth, 0) + " " + num(kHeight, 0) +
                    "\" role=\"img\" aria-label=\"" + escape(title) + "\">\n";
  svg +=
      "<text x=\"" + num(kLeft, 0) + "\" y=\"18\" class=\"title\">" + escape(title) + "</text>\n";

  // Phase bands.
  const std::vector<double>& starts = timeline.phase_starts();
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const double t0 = starts[i];
    const double t1 = i + 1 < starts.size() ? starts[i + 1] : t_max;
    const double x0 = x_of(t0);
    const double w = std::max(0.0, x_of(t1) - x0);
    svg += "<rect x=\"" + num(x0) + "\" y=\"" + num(kTop) + "\" width=\"" + num(w) +
           "\" height=\"" + num(plot_h) + "\" class=\"band" + std::to_string(i % 2) + "\"/>\n";
    const std::string name(kPhases[i].name);
    const std::string label =
        w >= kCharWidth * static_cast<double>(name.size()) + 4 ? name : std::to_string(i + 1);
    svg += "<text x=\"" + num(x0 + w / 2) + "\" y=\"" + num(kTop + 12) +
           "\" class=\"phase\" text-anchor=\"middle\">" + escape(label) + "</text>\n";
  }

  // Axes and grid.
  std::vector<double> ticks;
  if (log_y) {
    for (double v = lo; v <= hi * 1.001; v *= 10) ticks.push_back(v);
  } else {
    for (int i = 0; i <= 4; ++i) ticks.push_back(hi * i / 4);
  }
  for (double v : ticks) {
    const double y = y_of(v);
    svg += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kWidth - kRight) + "\" y1=\"" + num(y) +
           "\" y2=\"" + num(y) + "\" class=\"grid\"/>\n";
    const std::string text =
        v >= 1000 ? num(v / 1000, v >= 10'000 ? 0 : 1) + "k" : num(v, v == std::floor(v) ? 0 : 2);
    svg += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(y + 4) +
           "\" text-anchor=\"end\" class=\"axis\">" + text + "</text>\n";
  }
  const double step = t_max > 120 ? 30 : t_max > 40 ? 10 : 5;
  for (double t = 0; t <= t_max + 1e-9; t += step) {
    svg += "<text x=\"" + num(x_of(t)) + "\" y=\"" + num(kHeight - kBottom + 16) +
           "\" text-anchor=\"middle\" class=\"axis\">" + num(t, 0) + " s</text>\n";
  }
  svg += "<text x=\"14\" y=\"" + num(kTop + plot_h / 2) +
         "\" class=\"axis\" transform=\"rotate(-90 14 " + num(kTop + plot_h / 2) +
         ")\" text-anchor=\"middle\">" + escape(y_label) + "</text>\n";
  svg += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(plot_w) +
         "\" height=\"" + num(plot_h) + "\" class=\"frame\"/>\n";

  // Series, and their legend.
  double legend_x = kWidth - kRight;
  for (std::size_t i = series.size(); i-- > 0;) {  // right to left
    const Series& s = series[i];
    legend_x -= kCharWidth * static_cast<double>(s.name.size()) + 26;
    svg += "<rect x=\"" + num(legend_x) + "\" y=\"9\" width=\"12\" height=\"4\" fill=\"" + s.color +
           "\"/><text x=\"" + num(legend_x + 16) + "\" y=\"15\" class=\"axis\">" + escape(s.name) +
           "</text>\n";
  }
  for (const Series& s : series) {
    std::string points;
    const auto flush = [&] {
      if (points.empty()) return;
      svg += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.6\" points=\"" +
             points + "\"/>\n";
      points.clear();
    };
    for (const Row& r : rows) {
      const double v = s.value(r);
      if (!std::isfinite(v) || (log_y && v <= 0)) {
        flush();
        continue;
      }
      points += num(x_of(r.t)) + "," + num(y_of(v)) + " ";
    }
    flush();
  }
  svg += "</svg>\n";
  return svg;
}

double nan() { return std::nan(""); }

}  // namespace

void write_report_html(const std::string& path, const Timeline& timeline, const RunInfo& info,
                       const std::vector<std::string>& phase_results) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>tiercache demo " +
      escape(info.run_id) +
      "</title>\n<style>\n"
      "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#1f2933}\n"
      "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
      "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d5dbe1;"
      "padding:4px 8px;text-align:left;vertical-align:top}th{background:#f1f4f7}\n"
      "pre{background:#f6f8fa;padding:10px;font-size:12px;overflow-x:auto}\n"
      "svg{width:100%;height:auto;margin:8px 0 18px}\n"
      "svg text{font-family:sans-serif}.title{font-size:13px;font-weight:bold;fill:#1f2933}\n"
      ".axis{font-size:11px;fill:#52606d}.phase{font-size:10px;fill:#7b8794}\n"
      ".grid{stroke:#d9e2ec;stroke-width:0.7}.frame{fill:none;stroke:#9aa5b1;stroke-width:0.8}\n"
      ".band0{fill:#eef2f7}.band1{fill:#fbfcfd}\n"
      "</style>\n</head>\n<body>\n<h1>tiercache demo</h1>\n";
  html +=
      "<p>Run <code>" + escape(info.run_id) + "</code>: " + std::to_string(info.pods) + " pods x " +
      std::to_string(info.workers) + " workers, " + std::to_string(info.users) +
      " users in SQLite (+" + std::to_string(info.db_latency.count()) +
      " us per query), Redis: " + escape(info.redis) + ", L1 " + std::to_string(info.l1_entries) +
      " entries per pod, TTL " + num(info.plan.ttl.count() / 1000.0) + " s, max_concurrent_loads " +
      std::to_string(info.max_concurrent_loads) +
      (info.reads_per_second > 0 ? ", paced at " + num(info.reads_per_second, 0) + " reads/s in all"
                                 : std::string(", unpaced")) +
      ", seed " + std::to_string(info.seed) + ".</p>\n";

  html += "<h2>Charts</h2>\n";
  html +=
      chart("Hit ratio per tier", "%", timeline,
            {{"L1 (of all reads)", "#2563eb",
              [](const Row& r) { return r.counts[kReads] ? 100 * l1_hit_ratio(r.counts) : nan(); }},
             {"L2 (of L1 misses)", "#16a34a",
              [](const Row& r) {
                return r.counts[kReads] > r.counts[kL1Hits] ? 100 * l2_hit_ratio(r.counts) : nan();
              }}},
            false, 100);
  html +=
      chart("Database queries/s and reads/s", "per second", timeline,
            {{"reads/s", "#9aa5b1", [](const Row& r) { return r.per_second(kReads); }},
             {"DB queries/s", "#dc2626", [](const Row& r) { return r.db_queries_per_second(); }},
             {"stale serves/s", "#d97706", [](const Row& r) { return r.per_second(kStale); }}},
            true);
  html +=
      chart("Read latency (all reads)", "microseconds", timeline,
            {{"p50", "#2563eb",
              [](const Row& r) {
                return r.latency.kinds[kLatAll].total() ? r.latency.kinds[kLatAll].quantile_us(0.5)
                                                        : nan();
              }},
             {"p99", "#7c3aed",
              [](const Row& r) {
                return r.latency.kinds[kLatAll].total() ? r.latency.kinds[kLatAll].quantile_us(0.99)
                                                        : nan();
              }}},
            true);

  html +=
      "<h2>Phases</h2>\n<table>\n<tr><th>#</th><th>phase</th><th>s</th><th>what happens</th>"
      "<th>what it showed</th></tr>\n";
  const std::vector<double>& starts = timeline.phase_starts();
  for (std::size_t i = 0; i < starts.size() && i < kPhaseCount; ++i) {
    html += "<tr><td>" + std::to_string(i + 1) + "</td><td>" + escape(kPhases[i].name) +
            "</td><td>" + num(timeline.summary(i).seconds) + "</td><td>" +
            escape(phase_explanation(i, info)) + "</td><td>" +
            escape(i < phase_results.size() ? phase_results[i] : "") + "</td></tr>\n";
  }
  html += "</table>\n<h2>Results</h2>\n<pre>";
  for (const std::string& line : result_lines(timeline, info)) html += escape(line) + "\n";
  html += "\n" + escape(last_line(timeline)) + "\n</pre>\n";
  html +=
      "<p>Files beside this page: <code>metrics.prom</code> (every pod's metrics, label "
      "<code>pod</code>, and the demo's <code>tiercache_demo_*</code>), "
      "<code>timeline.csv</code> (the 250 ms rows these charts are drawn from).</p>\n";
  html += "</body>\n</html>\n";
  write_file(path, html);
}

}  // namespace tiercache::cli::demo
