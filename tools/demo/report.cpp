// What `tiercache demo` prints and writes, except the HTML page (report_html.cpp).

#include "demo/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "demo/user_db.hpp"
#include "tiercache/metrics.hpp"

namespace tiercache::cli::demo {
namespace {

std::string format(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* f, ...) {
  char buffer[1024];
  va_list args;
  va_start(args, f);
  const int n = std::vsnprintf(buffer, sizeof buffer, f, args);
  va_end(args);
  return std::string(buffer, static_cast<std::size_t>(std::clamp(n, 0, 1023)));
}

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

PhaseId id_of(std::size_t phase) { return kPhases[phase].id; }

// The sample's q-quantile (nearest rank), or 0 if empty.
double sample_quantile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
  return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

// The counts of the last `seconds` of phase `phase`.
Counts tail_of_phase(const Timeline& timeline, std::size_t phase, double seconds) {
  Counts out;
  double covered = 0;
  const std::vector<Row>& rows = timeline.rows();
  for (auto it = rows.rbegin(); it != rows.rend() && covered < seconds; ++it) {
    if (it->phase != phase) continue;
    out += it->counts;
    covered += it->seconds;
  }
  return out;
}

double per_second(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

std::string percent(double ratio) { return format("%.1f%%", ratio * 100); }

// "1 DB load", "2 DB loads".
std::string db_loads(std::uint64_t n) {
  return format("%llu DB load%s", ull(n), n == 1 ? "" : "s");
}

}  // namespace

std::string format_latency_us(double us) {
  if (us >= 1000) return format("%.2f ms", us / 1000);
  if (us >= 1) return format("%.1f us", us);
  return format("%.0f ns", us * 1000);
}

std::string phase_explanation(std::size_t phase, const RunInfo& info) {
  const double s = info.plan.seconds[phase];
  switch (id_of(phase)) {
    case PhaseId::kWarmUp:
      return format(
          "%u pods start cold: a first read goes L1 miss -> L2 miss -> SQLite (every query "
          "given %lld us more, --db-latency-us); L1 and L2 fill, hit ratios climb.",
          info.pods, static_cast<long long>(info.db_latency.count()));
    case PhaseId::kSteady:
      return format(
          "Zipf(0.99) GetUser reads over %lld users, 1.5%% write-through renames, 4%% ids "
          "that do not exist (negative caching); TTL %.1f s: most reads never leave the pod.",
          static_cast<long long>(info.users), info.plan.ttl.count() / 1000.0);
    case PhaseId::kHotKey:
      return format(
          "user:%lld, the hottest key, is re-stored with a %.1f s TTL; when it expires, every "
          "pod misses it at once: stampede protection must make that exactly ONE DB load "
          "across all %u pods.",
          static_cast<long long>(kHotUserId), info.plan.hot_ttl.count() / 1000.0, info.pods);
    case PhaseId::kUpdate:
      return format(
          "pod 0 renames user:%lld every 200 ms (write_through: SQL UPDATE, then the cache, "
          "which tells every pod over Redis pub/sub); every pod polls it: time from the DB "
          "commit to each other pod's first read of the new name.",
          static_cast<long long>(kWatchedUserId));
    case PhaseId::kTagRefresh:
      return format(
          "pod 0 invalidates tag team:%lld (%lld users) at once; its entries turn stale, not "
          "gone, and are reloaded only as they are read, at most %u loads at a time per pod "
          "(max_concurrent_loads): a phased refresh, not a DB stampede.",
          static_cast<long long>(kRefreshedTeam),
          static_cast<long long>(
              info.users >= kRefreshedTeam ? (info.users - kRefreshedTeam) / kTeams + 1 : 0),
          info.max_concurrent_loads);
    case PhaseId::kRedisDown:
      if (info.private_redis) {
        return format(
            "redis-server is stopped for %.1f s: L2 calls fail, the circuit breaker opens, "
            "pods serve from L1 + SQLite; no read may fail because of Redis.",
            s);
      }
      return format(
          "Redis is paused for %.1f s (CLIENT PAUSE %lld ALL: simulated, the server is not the "
          "demo's to stop): L2 calls time out, the circuit opens, pods serve from L1 + SQLite; "
          "no read may fail because of Redis.",
          s, static_cast<long long>(s * 1000));
    case PhaseId::kRedisBack:
      if (info.private_redis) {
        return "redis-server restarts, empty: clients reconnect, the bus reports a gap (each pod "
               "drops its L1), circuits close after a probe, L2 refills and its hits return.";
      }
      return "Redis answers again: circuits close after a probe, L2 hits return.";
    case PhaseId::kDbDown:
      return format(
          "the database is down for %.1f s (loaders and writers throw): fail-safe serves stale "
          "values; only reads of ids never cached have nothing to serve (counted apart).",
          s);
    case PhaseId::kDbBack:
      return "the database is back: loads succeed, stale serves stop, hit ratios recover.";
  }
  return {};
}

std::string phase_result(std::size_t phase, const Timeline& timeline, const RunInfo& info) {
  const PhaseSummary p = timeline.summary(phase);
  const Counts& c = p.counts;
  switch (id_of(phase)) {
    case PhaseId::kWarmUp:
    case PhaseId::kSteady:
      return format(
          "%.0f reads/s, L1 %s, L2 %s, DB %.0f queries/s (offload %s), p99 %s, %llu not found, "
          "errors %llu",
          per_second(c[kReads], p.seconds), percent(l1_hit_ratio(c)).c_str(),
          percent(l2_hit_ratio(c)).c_str(), per_second(c[kDbSelects] + c[kDbUpdates], p.seconds),
          percent(offload(c)).c_str(),
          format_latency_us(p.latency.kinds[kLatAll].quantile_us(0.99)).c_str(), ull(c[kNegative]),
          ull(c[kErrors]));
    case PhaseId::kHotKey:
      return format(
          "user:%lld expired under load: %s of it across %u pods; its %llu reads in the phase "
          "were answered by L1 except %llu by the load itself (callers in the loading pod, "
          "single-flight), %llu by L2 (the other pods, once the load was stored) and %llu "
          "stale; errors %llu",
          static_cast<long long>(kHotUserId), db_loads(c[kHotLoads]).c_str(), info.pods,
          ull(c[kHotReads]), ull(c[kHotFromLoad]), ull(c[kHotFromL2]), ull(c[kHotStale]),
          ull(c[kErrors]));
    case PhaseId::kUpdate: {
      const std::vector<double> samples = timeline.propagation_us(phase);
      return format(
          "%llu updates of user:%lld; seen by the %u other pods after p50 %s, p99 %s, max %s "
          "(%zu observations); errors %llu",
          ull(c[kUpdates]), static_cast<long long>(kWatchedUserId),
          info.pods > 0 ? info.pods - 1 : 0,
          format_latency_us(sample_quantile(samples, 0.5)).c_str(),
          format_latency_us(sample_quantile(samples, 0.99)).c_str(),
          format_latency_us(sample_quantile(samples, 1.0)).c_str(), samples.size(),
          ull(c[kErrors]));
    }
    case PhaseId::kTagRefresh: {
      const PhaseSummary steady = timeline.summary(1);
      return format(
          "%llu users of team:%lld reloaded as they were read; at most %u loads in flight in a "
          "pod (limit %u); DB %.0f queries/s on average, %.0f at the busiest 250 ms "
          "(steady state: %.0f); errors %llu",
          ull(c[kTeamLoads]), static_cast<long long>(kRefreshedTeam), p.inflight_peak,
          info.max_concurrent_loads, per_second(c[kDbSelects] + c[kDbUpdates], p.seconds),
          p.peak_db_queries_per_second,
          per_second(steady.counts[kDbSelects] + steady.counts[kDbUpdates], steady.seconds),
          ull(c[kErrors]));
    }
    case PhaseId::kRedisDown:
      return format(
          "circuit open in %u/%u pods%s; %.0f reads/s served from L1 (%s) and SQLite (DB %.0f "
          "queries/s); errors %llu",
          p.max_circuits_open, info.pods,
          p.all_open_after ? format(" (all within %.2f s)", *p.all_open_after).c_str() : "",
          per_second(c[kReads], p.seconds), percent(l1_hit_ratio(c)).c_str(),
          per_second(c[kDbSelects] + c[kDbUpdates], p.seconds), ull(c[kErrors]));
    case PhaseId::kRedisBack: {
      const Counts last = tail_of_phase(timeline, phase, 1.0);
      const std::string closed =
          p.all_closed_after ? format("circuits closed in every pod %.2f s after Redis came back",
                                      *p.all_closed_after)
                             : std::string("circuits NOT all closed by the end of the phase");
      return format("%s; L2 hit ratio in the phase's last second %s (steady state %s); errors %llu",
                    closed.c_str(), percent(l2_hit_ratio(last)).c_str(),
                    percent(l2_hit_ratio(timeline.summary(1).counts)).c_str(), ull(c[kErrors]));
    }
    case PhaseId::kDbDown:
      return format(
          "stale values served: %llu; reads that failed although a value was cached: %llu; "
          "reads of ids never cached, unavailable: %llu; writes refused: %llu",
          ull(c[kStale]), ull(c[kErrors]), ull(c[kUnavailable]), ull(c[kWriteErrors]));
    case PhaseId::kDbBack: {
      const Counts last = tail_of_phase(timeline, phase, 1.0);
      return format(
          "stale serves in this phase %llu, in its last second %llu; L1 %s, L2 %s in its last "
          "second; errors %llu",
          ull(c[kStale]), ull(last[kStale]), percent(l1_hit_ratio(last)).c_str(),
          percent(l2_hit_ratio(last)).c_str(), ull(c[kErrors]));
    }
  }
  return {};
}

std::vector<std::string> result_lines(const Timeline& timeline, const RunInfo& info) {
  std::vector<std::string> lines;
  const Counts c = timeline.totals();
  const Latencies l = timeline.latency_totals();
  double seconds = 0;
  for (const Row& row : timeline.rows()) seconds += row.seconds;
  const std::uint64_t past_l1 = c[kReads] - std::min(c[kReads], c[kL1Hits]);
  const std::uint64_t past_l2 = past_l1 - std::min(past_l1, c[kL2Hits]);

  lines.push_back("---- per tier ----------------------------------------------------------------");
  lines.push_back(format("%-4s %12s %12s %10s %10s %10s", "tier", "requests", "answered",
                         "hit ratio", "p50", "p99"));
  const auto tier = [&](const char* name, std::uint64_t requests, std::uint64_t answered,
                        const std::string& ratio, const Buckets& b) {
    lines.push_back(format("%-4s %12llu %12llu %10s %10s %10s", name, ull(requests), ull(answered),
                           ratio.c_str(), format_latency_us(b.quantile_us(0.5)).c_str(),
                           format_latency_us(b.quantile_us(0.99)).c_str()));
  };
  tier("L1", c[kReads], c[kL1Hits], format("%.2f%%", 100 * l1_hit_ratio(c)), l.kinds[kLatL1]);
  tier("L2", past_l1, c[kL2Hits], format("%.2f%%", 100 * l2_hit_ratio(c)), l.kinds[kLatL2]);
  tier("DB", past_l2, c[kDbAnswers], "-", l.kinds[kLatDb]);
  lines.push_back(format("all  %12llu %12s %10s %10s %10s", ull(c[kReads]), "", "",
                         format_latency_us(l.kinds[kLatAll].quantile_us(0.5)).c_str(),
                         format_latency_us(l.kinds[kLatAll].quantile_us(0.99)).c_str()));
  lines.push_back(
      "(L2 requests: reads that missed L1; DB requests: reads that missed L2 -- answered by a "
      "load, their own or one they waited for, or by fail-safe, or failed)");
  lines.push_back(
      format("reads %llu in %.1f s (%.0f/s, %llu of them \"not found\"); DB reads (SELECT) %llu: "
             "offload %.2f%%; DB writes (UPDATE) %llu for %llu write-throughs",
             ull(c[kReads]), seconds, per_second(c[kReads], seconds), ull(c[kNegative]),
             ull(c[kDbSelects]), 100 * offload(c), ull(c[kDbUpdates]), ull(c[kWrites])));
  const std::size_t hot = static_cast<std::size_t>(PhaseId::kHotKey);
  lines.push_back(format("stampede: %s of user:%lld when it expired under load, across %u pods",
                         db_loads(timeline.summary(hot).counts[kHotLoads]).c_str(),
                         static_cast<long long>(kHotUserId), info.pods));
  lines.push_back(
      format("fail-safe: %llu stale serves (tiercache_stale_served_total: %llu); errors %llu; "
             "unavailable while the DB was down (never cached) %llu",
             ull(c[kStale]), ull(c[kLibStaleServed]), ull(c[kErrors]), ull(c[kUnavailable])));
  const std::vector<double> prop = timeline.propagation_us();
  lines.push_back(format("invalidation propagation: p50 %s, p99 %s (%zu observations)",
                         format_latency_us(sample_quantile(prop, 0.5)).c_str(),
                         format_latency_us(sample_quantile(prop, 0.99)).c_str(), prop.size()));
  lines.push_back(
      "---- per phase ----------------------------------------------------------------");
  lines.push_back(format("%-15s %5s %8s %7s %7s %8s %9s %9s %7s %6s", "phase", "s", "reads/s", "L1",
                         "L2", "DB q/s", "p50", "p99", "stale", "errors"));
  for (std::size_t i = 0; i < kPhaseCount; ++i) {
    const PhaseSummary p = timeline.summary(i);
    if (p.seconds <= 0) continue;
    const Counts& pc = p.counts;
    lines.push_back(format(
        "%-15s %5.1f %8.0f %7s %7s %8.0f %9s %9s %7llu %6llu", std::string(kPhases[i].name).c_str(),
        p.seconds, per_second(pc[kReads], p.seconds), percent(l1_hit_ratio(pc)).c_str(),
        percent(l2_hit_ratio(pc)).c_str(), per_second(pc[kDbSelects] + pc[kDbUpdates], p.seconds),
        format_latency_us(p.latency.kinds[kLatAll].quantile_us(0.5)).c_str(),
        format_latency_us(p.latency.kinds[kLatAll].quantile_us(0.99)).c_str(), ull(pc[kStale]),
        ull(pc[kErrors])));
  }
  return lines;
}

std::string last_line(const Timeline& timeline) {
  const Counts c = timeline.totals();
  const Latencies l = timeline.latency_totals();
  return format(
      "reads=%llu l1_hit_ratio=%.4f l2_hit_ratio=%.4f db_reads=%llu offload_pct=%.2f "
      "p99_us=%.1f stale_serves=%llu",
      ull(c[kReads]), l1_hit_ratio(c), l2_hit_ratio(c), ull(c[kDbSelects]), 100 * offload(c),
      l.kinds[kLatAll].quantile_us(0.99), ull(c[kStale]));
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

void write_timeline_csv(const std::string& path, const Timeline& timeline, const RunInfo&) {
  std::string csv =
      "t_s,phase,reads_per_s,l1_hit_ratio,l2_hit_ratio,db_queries_per_s,p50_us,p99_us,"
      "stale_per_s,errors,unavailable,circuits_open,loads_in_flight_peak\n";
  for (const Row& r : timeline.rows()) {
    const Buckets& all = r.latency.kinds[kLatAll];
    csv += format("%.2f,%s,%.0f,%.4f,%.4f,%.0f,%.1f,%.1f,%.0f,%llu,%llu,%u,%u\n", r.t,
                  std::string(kPhases[r.phase].name).c_str(), r.per_second(kReads),
                  l1_hit_ratio(r.counts), l2_hit_ratio(r.counts), r.db_queries_per_second(),
                  all.quantile_us(0.5), all.quantile_us(0.99), r.per_second(kStale),
                  ull(r.counts[kErrors]), ull(r.counts[kUnavailable]), r.circuits_open,
                  r.inflight_peak);
  }
  write_file(path, csv);
}

namespace {

// One family of a Prometheus text: its HELP and TYPE lines and its samples.
struct Family {
  std::string name;
  std::string help;
  std::string type;
  std::string samples;
};

Family& family_named(std::vector<Family>& families, std::string_view name) {
  for (Family& f : families) {
    if (f.name == name) return f;
  }
  families.push_back(Family{std::string(name), {}, {}, {}});
  return families.back();
}

// Adds the families of `text` (as PrometheusText renders it: HELP, TYPE, then the samples) to
// `families`, with label `label`="value" put first on every sample.
void add_with_label(std::vector<Family>& families, std::string_view text, std::string_view label,
                    std::string_view value) {
  Family* current = nullptr;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const std::string_view rest = line.substr(7);
      current = &family_named(families, rest.substr(0, rest.find(' ')));
      std::string& slot = line[2] == 'H' ? current->help : current->type;
      if (slot.empty()) slot = std::string(line) + "\n";
      continue;
    }
    if (line.starts_with('#') || current == nullptr) continue;
    const std::size_t cut = line.find_first_of("{ ");
    if (cut == std::string_view::npos) continue;
    std::string sample(line.substr(0, cut));
    sample += "{" + std::string(label) + "=\"" + std::string(value) + "\"";
    if (line[cut] == '{') {
      sample += line[cut + 1] == '}' ? "" : ",";
      sample += line.substr(cut + 1);
    } else {
      sample += "}";
      sample += line.substr(cut);
    }
    current->samples += sample + "\n";
  }
}

Buckets buckets_of(const std::vector<double>& samples_us) {
  Buckets b;
  const std::vector<double>& bounds = latency_bounds();
  for (double us : samples_us) {
    const double s = us / 1e6;
    const auto i = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), s) -
                                            bounds.begin());
    ++b.counts[i];
    b.sum_ns += static_cast<std::uint64_t>(std::llround(std::max(0.0, us) * 1000));
  }
  return b;
}

}  // namespace

std::string merged_prometheus(const std::vector<std::string>& pod_texts, const Timeline& timeline,
                              const RunInfo& info) {
  std::vector<Family> families;
  for (std::size_t i = 0; i < pod_texts.size(); ++i) {
    add_with_label(families, pod_texts[i], "pod", std::to_string(i));
  }
  std::string out;
  for (const Family& f : families) out += f.help + f.type + f.samples;

  // The demo's own numbers, per pod, from the pods' final stats.
  PrometheusText text;
  using Labels = PrometheusText::Labels;
  const auto& latest = timeline.latest();
  const std::string cache = info.cache_name;
  for (std::size_t i = 0; i < latest.size(); ++i) {
    if (!latest[i]) continue;
    const Counts& c = latest[i]->counts;
    const std::string pod = std::to_string(i);
    const auto reads = [&](const char* answer, std::uint64_t n) {
      text.counter("tiercache_demo_reads_total",
                   "GetUser reads by what answered them: l1, l2, db (a load), stale (fail-safe), "
                   "error, unavailable (DB down, id never cached).",
                   Labels{{"cache", cache}, {"pod", pod}, {"answer", answer}}, n);
    };
    reads("l1", c[kL1Hits]);
    reads("l2", c[kL2Hits]);
    reads("db", c[kDbAnswers]);
    reads("stale", c[kStale]);
    reads("error", c[kErrors]);
    reads("unavailable", c[kUnavailable]);
    text.counter("tiercache_demo_not_found_total", "Reads answered \"not found\".",
                 Labels{{"cache", cache}, {"pod", pod}}, c[kNegative]);
    text.counter("tiercache_demo_db_queries_total", "SQLite queries by kind.",
                 Labels{{"cache", cache}, {"pod", pod}, {"query", "select"}}, c[kDbSelects]);
    text.counter("tiercache_demo_db_queries_total", "SQLite queries by kind.",
                 Labels{{"cache", cache}, {"pod", pod}, {"query", "update"}}, c[kDbUpdates]);
    text.counter("tiercache_demo_writes_total", "write_through calls by outcome.",
                 Labels{{"cache", cache}, {"pod", pod}, {"result", "ok"}},
                 c[kWrites] - std::min(c[kWrites], c[kWriteErrors]));
    text.counter("tiercache_demo_writes_total", "write_through calls by outcome.",
                 Labels{{"cache", cache}, {"pod", pod}, {"result", "failed"}}, c[kWriteErrors]);
    text.counter("tiercache_demo_hot_key_loads_total",
                 "DB loads of the hot user during the hot-key-expiry phase.",
                 Labels{{"cache", cache}, {"pod", pod}}, c[kHotLoads]);
    for (std::size_t k = 0; k < kLatencyKinds; ++k) {
      text.histogram(
          "tiercache_demo_read_latency_seconds",
          "GetUser read latency by what answered (all: every read).",
          Labels{{"cache", cache}, {"pod", pod}, {"answer", std::string(kLatencyNames[k])}},
          latest[i]->latency.kinds[k].snapshot());
    }
  }
  text.histogram("tiercache_demo_invalidation_propagation_seconds",
                 "From the start of a write_through in one pod to another pod reading the new "
                 "value (update phase).",
                 Labels{{"cache", cache}}, buckets_of(timeline.propagation_us()).snapshot());
  return out + text.render();
}

}  // namespace tiercache::cli::demo
