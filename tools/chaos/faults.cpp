// The faults of `tiercache chaos` (faults.hpp).

#include "chaos/faults.hpp"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "chaos/settings.hpp"
#include "chaos/worker_pool.hpp"
#include "demo/redis_server.hpp"
#include "fault_proxy.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli::chaos {
namespace {

using std::chrono::milliseconds;

// How long a worker told to die in a load may take to start one before it is simply killed.
constexpr milliseconds kDieInLoadTimeout{3'000};
// How long a restarted worker may take to be ready.
constexpr milliseconds kWorkerStartTimeout{15'000};

std::string seconds_text(milliseconds d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(d.count()) / 1000);
  return text;
}

// The value of "<field>=" in a CLIENT LIST line, or "".
std::string_view client_field(std::string_view line, std::string_view field) {
  std::size_t at = 0;
  while ((at = line.find(field, at)) != std::string_view::npos) {
    if ((at == 0 || line[at - 1] == ' ') && at + field.size() < line.size() &&
        line[at + field.size()] == '=') {
      const std::size_t start = at + field.size() + 1;
      const std::size_t end = line.find(' ', start);
      return line.substr(start, end == std::string_view::npos ? end : end - start);
    }
    at += field.size();
  }
  return {};
}

}  // namespace

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::kRedisStop:
      return "redis-sigstop";
    case FaultKind::kRedisKill:
      return "redis-kill";
    case FaultKind::kProxyCut:
      return "proxy-cut";
    case FaultKind::kProxyLatency:
      return "proxy-latency";
    case FaultKind::kProxyBandwidth:
      return "proxy-bandwidth";
    case FaultKind::kProxyHalfOpen:
      return "proxy-half-open";
    case FaultKind::kProxyFreeze:
      return "proxy-freeze";
    case FaultKind::kProxyRefuse:
      return "proxy-refuse";
    case FaultKind::kProxyReset:
      return "proxy-reset";
    case FaultKind::kBusKill:
      return "bus-kill";
    case FaultKind::kLoaderHang:
      return "loader-hang";
    case FaultKind::kLoaderFail:
      return "loader-fail";
    case FaultKind::kWorkerKill:
      return "worker-kill";
  }
  return "?";
}

std::optional<FaultKind> fault_kind(std::string_view name) {
  for (std::size_t k = 0; k < kFaultKinds; ++k) {
    if (name == to_string(static_cast<FaultKind>(k))) return static_cast<FaultKind>(k);
  }
  return std::nullopt;
}

bool needs_redis_process(FaultKind kind) {
  return kind == FaultKind::kRedisStop || kind == FaultKind::kRedisKill;
}

// ---- FaultSchedule ------------------------------------------------------------------------------

FaultSchedule::FaultSchedule(std::uint64_t seed, bool redis_process, unsigned workers,
                             const std::vector<FaultKind>& only)
    : random_(seed * 0x9e3779b97f4a7c15ULL + 17), workers_(workers) {
  for (std::size_t k = 0; k < kFaultKinds; ++k) {
    const auto kind = static_cast<FaultKind>(k);
    if (!redis_process && needs_redis_process(kind)) continue;
    if (!only.empty() && std::find(only.begin(), only.end(), kind) == only.end()) continue;
    kinds_.push_back(kind);
  }
}

milliseconds FaultSchedule::between(std::int64_t low_ms, std::int64_t high_ms) {
  return milliseconds(low_ms + static_cast<std::int64_t>(random_.next_below(
                                   static_cast<std::uint64_t>(high_ms - low_ms + 1))));
}

milliseconds FaultSchedule::next_gap() { return between(1'000, 3'000); }

FaultPlan FaultSchedule::next() {
  if (bag_.empty()) {
    bag_ = kinds_;
    for (std::size_t i = bag_.size(); i > 1; --i) {  // Fisher-Yates
      std::swap(bag_[i - 1], bag_[random_.next_below(i)]);
    }
  }
  FaultPlan plan;
  plan.kind = bag_.back();
  bag_.pop_back();
  plan.worker = static_cast<unsigned>(random_.next_below(workers_));
  switch (plan.kind) {
    case FaultKind::kRedisStop:
    case FaultKind::kProxyHalfOpen:
    case FaultKind::kProxyRefuse:
      plan.duration = between(500, 3'000);
      break;
    case FaultKind::kRedisKill:
    case FaultKind::kWorkerKill:
      plan.duration = between(200, 2'000);  // how long it stays down
      break;
    case FaultKind::kProxyLatency:
      plan.duration = between(1'000, 4'000);
      plan.amount = static_cast<std::uint64_t>(between(20, 250).count());
      break;
    case FaultKind::kProxyBandwidth:
      plan.duration = between(1'000, 4'000);
      plan.amount = static_cast<std::uint64_t>(between(20, 200).count()) * 1000;
      break;
    case FaultKind::kProxyFreeze:
      // Longer than it takes a client to notice a silent connection.
      plan.duration = bus_detection() + between(500, 2'000);
      break;
    case FaultKind::kProxyReset:
      plan.amount = static_cast<std::uint64_t>(between(1, 400).count());
      break;
    case FaultKind::kLoaderHang:
    case FaultKind::kLoaderFail:
      plan.duration = between(1'000, 3'000);
      break;
    case FaultKind::kProxyCut:
    case FaultKind::kBusKill:
      break;
  }
  return plan;
}

// ---- FaultInjector ------------------------------------------------------------------------------

FaultInjector::FaultInjector(testing::FaultProxy& proxy, demo::PrivateRedis* redis,
                             redis::Client& admin, WorkerPool& workers, std::string cache_name)
    : proxy_(proxy),
      redis_(redis),
      admin_(admin),
      workers_(workers),
      cache_name_(std::move(cache_name)) {}

FaultRecord FaultInjector::begin(const FaultPlan& plan) {
  FaultRecord f;
  f.start = now_us();
  f.affects_bus = plan.kind != FaultKind::kLoaderHang && plan.kind != FaultKind::kLoaderFail &&
                  plan.kind != FaultKind::kWorkerKill;
  f.slows_loads = true;  // every fault slows some load: even a killed bus delays lock waiters
  f.tail = to_micros(reconnection());
  f.kind = to_string(plan.kind);
  std::string name = f.kind;
  const std::string worker = workers_.process(plan.worker).name();
  switch (plan.kind) {
    case FaultKind::kRedisStop:
      if (const std::optional<pid_t> pid = redis_pid()) {
        ::kill(*pid, SIGSTOP);
        redis_stopped_ = true;
      } else {
        name += " (skipped: redis-server's pid unknown)";
      }
      name += " for " + seconds_text(plan.duration);
      break;
    case FaultKind::kRedisKill:
      if (const std::optional<pid_t> pid = redis_pid()) {
        ::kill(*pid, SIGKILL);
        redis_pid_.reset();
      } else {
        name += " (skipped: redis-server's pid unknown)";
      }
      name += ", restarted (empty) after " + seconds_text(plan.duration);
      break;
    case FaultKind::kProxyCut:
      proxy_.cut();
      break;
    case FaultKind::kProxyLatency:
      proxy_.set_latency(milliseconds(plan.amount));
      name += " " + std::to_string(plan.amount) + " ms each way for " + seconds_text(plan.duration);
      break;
    case FaultKind::kProxyBandwidth:
      proxy_.set_bandwidth(plan.amount);
      name += " " + std::to_string(plan.amount / 1000) + " kB/s for " + seconds_text(plan.duration);
      break;
    case FaultKind::kProxyHalfOpen:
      proxy_.set_half_open(true);
      name += " for " + seconds_text(plan.duration);
      break;
    case FaultKind::kProxyFreeze:
      proxy_.freeze_existing();
      name += " for " + seconds_text(plan.duration) + ", then cut";
      break;
    case FaultKind::kProxyRefuse:
      proxy_.set_refuse(true);
      proxy_.cut();
      name += " for " + seconds_text(plan.duration);
      break;
    case FaultKind::kProxyReset:
      proxy_.reset_mid_reply(plan.amount);
      name += " after " + std::to_string(plan.amount) + " bytes of a reply";
      break;
    case FaultKind::kBusKill:
      name += ": " + kill_buses();
      break;
    case FaultKind::kLoaderHang:
      workers_.send(plan.worker, "loader hang");
      name += " in " + worker + " for " + seconds_text(plan.duration);
      f.tail = to_micros(kLoaderHang + kMargin);  // loads started at its end hang that long
      break;
    case FaultKind::kLoaderFail:
      workers_.send_all("loader fail");
      name += " for " + seconds_text(plan.duration);
      f.tail = to_micros(kFailSafeThrottle + kMargin);
      break;
    case FaultKind::kWorkerKill:
      name += " " + worker + ": " + kill_worker_in_load(plan.worker) + ", restarted after " +
              seconds_text(plan.duration);
      f.tail = to_micros(kLockTtl + kMargin);  // its lock outlives it by up to lock_ttl
      break;
  }
  f.name = std::move(name);
  if (plan.duration.count() == 0) f.end = f.start;
  return f;
}

std::string FaultInjector::end(const FaultPlan& plan) {
  switch (plan.kind) {
    case FaultKind::kRedisStop:
      if (redis_stopped_ && redis_pid_) ::kill(*redis_pid_, SIGCONT);
      redis_stopped_ = false;
      return {};
    case FaultKind::kRedisKill:
      if (redis_ != nullptr) {
        redis_->restart();  // throws if it does not come back: the run cannot go on
        return "redis-server restarted on port " + std::to_string(redis_->port());
      }
      return {};
    case FaultKind::kProxyLatency:
    case FaultKind::kProxyBandwidth:
    case FaultKind::kProxyHalfOpen:
    case FaultKind::kProxyRefuse:
      proxy_.heal();
      return {};
    case FaultKind::kProxyFreeze:
      proxy_.cut();
      return "frozen connections cut (the others too)";
    case FaultKind::kLoaderHang:
    case FaultKind::kLoaderFail:
      workers_.send_all("loader ok");
      return {};
    case FaultKind::kWorkerKill: {
      workers_.start(plan.worker);
      const bool ready = workers_.wait_ready(WorkerPool::Clock::now() + kWorkerStartTimeout);
      return workers_.process(plan.worker).name() + (ready ? " started" : " started, NOT ready");
    }
    case FaultKind::kProxyCut:
    case FaultKind::kProxyReset:
    case FaultKind::kBusKill:
      return {};
  }
  return {};
}

void FaultInjector::heal_all() {
  proxy_.heal();
  if (redis_stopped_ && redis_pid_) ::kill(*redis_pid_, SIGCONT);
  redis_stopped_ = false;
  workers_.send_all("loader ok");
}

std::optional<pid_t> FaultInjector::redis_pid() {
  if (redis_ == nullptr) return std::nullopt;
  if (redis_pid_) return redis_pid_;
  redis::Result<redis::Reply> info = admin_.command("INFO", "server");
  if (!info.ok()) return std::nullopt;
  const std::string_view text = info->string;
  const std::size_t at = text.find("process_id:");
  if (at == std::string_view::npos) return std::nullopt;
  const long pid = std::strtol(text.data() + at + 11, nullptr, 10);
  if (pid <= 1) return std::nullopt;
  redis_pid_ = static_cast<pid_t>(pid);
  return redis_pid_;
}

std::string FaultInjector::kill_buses() {
  redis::Result<redis::Reply> list = admin_.command("CLIENT", "LIST", "TYPE", "pubsub");
  if (!list.ok()) return "CLIENT LIST failed: " + list.error().to_string();
  unsigned killed = 0;
  const std::string_view text = list->string;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (client_field(line, "name") != cache_name_) continue;
    const std::string id(client_field(line, "id"));
    redis::Result<redis::Reply> gone = admin_.command("CLIENT", "KILL", "ID", id);
    if (gone.ok() && gone->integer == 1) ++killed;
  }
  return "killed " + std::to_string(killed) + " pub/sub connection(s) of the run";
}

std::string FaultInjector::kill_worker_in_load(unsigned index) {
  workers_.send(index, "die-in-load");
  if (workers_.wait_exit(index, WorkerPool::Clock::now() + kDieInLoadTimeout)) {
    return "killed itself (SIGKILL) in a load";
  }
  workers_.kill(index);
  return "no load within " + seconds_text(kDieInLoadTimeout) + ": SIGKILLed outside a load";
}

}  // namespace tiercache::cli::chaos
