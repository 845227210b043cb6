// CacheCore (detail/cache_core.hpp): the L2 protocol of Cache<V>.
//
// The stampede lock (docs/stampede.md). A miss runs READ_OR_LOCK: in one round trip
// it returns the entry if there is one, else takes `N:lock:{key}` with SET NX PX and a random
// token, else reports the lock's remaining time. The holder loads, then runs STORE, which
// writes the entry only if the lock still holds its token, deletes the lock and publishes a
// fill on the bus. Waiters (other processes) are woken by that message and read again; if no
// message comes before the lock's time is up (the holder died), their next READ_OR_LOCK takes
// the lock over. Writes and invalidations delete the lock: a load that started before them
// then fails the token check and does not store what may be an older value. A holder renews
// its lock for at most max_load_time, then releases it: a hung loader blocks no one for longer.
// Locks are per namespace version, like values.
//
// The invalidation sources (writes, tags, versions, the bus) are in invalidation_sources.cpp.
//
// The bus carries "<origin>|<kind>|<data>" messages on N:bus: k (key changed: drop L1 copies,
// wake waiters), f (key filled: wake waiters), t (tag invalidated at ms: "<ms>|<tag>"),
// c (namespace version changed: "<version>"). Pub/sub can lose messages while disconnected;
// the subscriber reports that as a gap, on which the cache forgets everything it learnt from
// the bus (L1, tag times, version).

#include "tiercache/detail/cache_core.hpp"

#include <unistd.h>

#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <thread>

#include "cache/core_scripts.hpp"
#include "tiercache/cache_result.hpp"

namespace tiercache {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

const char* to_string(CacheErrc code) {
  switch (code) {
    case CacheErrc::kLoaderFailed:
      return "loader_failed";
    case CacheErrc::kLoaderTimeout:
      return "loader_timeout";
    case CacheErrc::kWriterFailed:
      return "writer_failed";
    case CacheErrc::kEncodeFailed:
      return "encode_failed";
    case CacheErrc::kClosed:
      return "closed";
    case CacheErrc::kOverloaded:
      return "overloaded";
    case CacheErrc::kL2Unreachable:
      return "l2_unreachable";
  }
  return "unknown";
}

const char* to_string(Source source) {
  switch (source) {
    case Source::kNone:
      return "none";
    case Source::kL1:
      return "l1";
    case Source::kL2:
      return "l2";
    case Source::kLoader:
      return "loader";
  }
  return "unknown";
}

}  // namespace tiercache

namespace tiercache::detail {

namespace {

// Tag timestamps a process remembers; beyond, the least useful are asked from Redis again.
constexpr std::size_t kMaxKnownTags = 100'000;
// While the bus is down, the namespace version is read again at most this often (and at least
// every disconnected_l1_ttl): a clear() elsewhere is then seen within it.
constexpr Duration kVersionRecheck = std::chrono::seconds(1);

}  // namespace

// Per-key wake-up signals for waiters of other processes' loads.
struct CacheCore::FillSignals {
  struct Signal {
    std::uint64_t generation = 0;
    std::uint32_t watchers = 0;
    std::condition_variable cv;
  };
  std::mutex mutex;
  std::unordered_map<std::string, std::unique_ptr<Signal>> signals;

  void wake(std::string_view key) {
    std::lock_guard lock(mutex);
    auto it = signals.find(std::string(key));
    if (it == signals.end()) return;
    ++it->second->generation;
    it->second->cv.notify_all();
  }
  void wake_all() {
    std::lock_guard lock(mutex);
    for (auto& [key, signal] : signals) {
      ++signal->generation;
      signal->cv.notify_all();
    }
  }

  class Watch final : public FillWait {
   public:
    Watch(std::shared_ptr<CacheCore> owner, std::string key)
        : owner_(std::move(owner)), key_(std::move(key)) {
      FillSignals& s = *owner_->fills_;
      std::lock_guard lock(s.mutex);
      auto& slot = s.signals[key_];
      if (!slot) slot = std::make_unique<Signal>();
      ++slot->watchers;
      signal_ = slot.get();
      seen_ = signal_->generation;
    }
    ~Watch() override {
      FillSignals& s = *owner_->fills_;
      std::lock_guard lock(s.mutex);
      if (--signal_->watchers == 0) s.signals.erase(key_);
    }
    bool wait_until(std::chrono::steady_clock::time_point deadline) override {
      FillSignals& s = *owner_->fills_;
      std::unique_lock lock(s.mutex);
      const bool woken = signal_->cv.wait_until(
          lock, deadline, [&] { return signal_->generation != seen_ || owner_->closed(); });
      seen_ = signal_->generation;
      return woken;
    }

   private:
    std::shared_ptr<CacheCore> owner_;
    std::string key_;
    Signal* signal_ = nullptr;
    std::uint64_t seen_ = 0;
  };
};

// Lock renewal. One thread per cache, started with the first load that holds a lock, renews
// every held lock each lock_ttl/3 (a compare-and-PEXPIRE script: a lock no longer ours is left
// alone). Synchronous calls on a thread the core owns and joins: nothing of the client is
// captured by Asio handlers, so the client is never released on its own I/O thread.
// A lock held longer than max_load_time is released (by token, waking waiters everywhere) and
// renewed no more.
struct CacheCore::Renewals {
  struct Held {
    std::string key;
    std::string token;
    std::uint64_t version = 0;
    std::chrono::steady_clock::time_point since;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::uint64_t, Held> held;  // by id
  std::uint64_t next_id = 0;
  bool stopping = false;
  std::thread thread;
};

// ---- construction ------------------------------------------------------------------------------

namespace {

std::uint64_t entropy() {
  std::random_device device;
  const auto now = static_cast<std::uint64_t>(
      std::chrono::high_resolution_clock::now().time_since_epoch().count());
  return ((static_cast<std::uint64_t>(device()) << 32) ^ device()) ^
         mix64(now ^ (static_cast<std::uint64_t>(::getpid()) << 40));
}

// Seeds jitter and early refresh: fixed by CacheOptions::seed for reproducible tests.
std::uint64_t initial_seed(const CacheOptions& options) {
  return options.seed ? *options.seed : entropy();
}

LocalCacheOptions tag_cache_options(const CacheOptions& options) {
  LocalCacheOptions o;
  o.max_entries = kMaxKnownTags;
  o.clock = options.clock;
  return o;
}

}  // namespace

CacheCore::CacheCore(CacheOptions options, std::shared_ptr<redis::Client> client)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : default_clock()),
      client_(std::move(client)),
      wall_offset_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() -
                      to_ms(clock_->now().time_since_epoch())),
      // Never from the seed: processes started with the same seed (or forked) must still
      // tell their bus messages and lock tokens apart.
      origin_(hex64(entropy() ^ mix64(reinterpret_cast<std::uintptr_t>(this)))),
      channel_(options_.name + ":bus"),
      jitter_(options_.jitter, initial_seed(options_)),
      random_state_(mix64(initial_seed(options_) + 1)),
      token_state_(entropy()),
      breaker_(options_.circuit_breaker, clock_),
      scripts_(std::make_unique<Scripts>()),
      fills_(std::make_unique<FillSignals>()),
      renewals_(std::make_unique<Renewals>()),
      tag_times_(tag_cache_options(options_)),
      loads_(options_.name + "-load", options_.max_concurrent_loads),
      background_(options_.name + "-bg", options_.max_concurrent_loads) {}

CacheCore::~CacheCore() { shutdown(); }

void CacheCore::start(Hooks hooks) {
  hooks_ = std::move(hooks);
  if (!client_) return;
  std::weak_ptr<CacheCore> weak = weak_from_this();
  bus_ = std::make_unique<redis::Subscriber>(
      client_->config(),
      [weak](redis::PubSubMessage&& m) {
        if (auto self = weak.lock()) self->on_bus_message(std::move(m));
      },
      [weak](redis::PubSubEvent&& e) {
        if (auto self = weak.lock()) self->on_bus_event(std::move(e));
      },
      // The constructor must not wait long for a Redis that is down: the subscription is
      // remembered and sent when the connection comes up.
      redis::SubscriberOptions{
          .command_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::max<Duration>(options_.l2_timeout, std::chrono::milliseconds(1)))});
  const auto deadline = std::chrono::steady_clock::now() + options_.l2_timeout;
  if (auto r = bus_->subscribe({channel_}); !r.ok()) {
    // Not fatal: the subscriber retries on reconnect; until then the bus counts as down.
    log(LogLevel::kWarning, "invalidation bus: subscribe failed: " + r.error().to_string());
    return;
  }
  // Reads that begin before the server confirms the subscription cannot hear invalidations:
  // the confirmation invalidates everything read before it (on_bus_event). Waiting for it here
  // (within l2_timeout) keeps that from discarding the first loads of a new process.
  std::unique_lock lock(subscribed_mutex_);
  subscribed_cv_.wait_until(lock, deadline,
                            [&] { return subscribed_.load(std::memory_order_acquire); });
}

void CacheCore::close() {
  closed_.store(true, std::memory_order_release);
  fills_->wake_all();
}

void CacheCore::shutdown() {
  if (shut_down_.exchange(true, std::memory_order_acq_rel)) return;
  close();
  {
    std::lock_guard lock(renewals_->mutex);
    renewals_->stopping = true;
    renewals_->changed.notify_all();
  }
  if (renewals_->thread.joinable()) {
    if (renewals_->thread.get_id() == std::this_thread::get_id()) {
      renewals_->thread.detach();
    } else {
      renewals_->thread.join();
    }
  }
  // Stopped, not destroyed: a read still running elsewhere may ask bus_connected().
  if (bus_) bus_->stop();
  loads_.shutdown(std::chrono::milliseconds(1000));
  background_.shutdown(std::chrono::milliseconds(1000));
}

// ---- time and randomness -----------------------------------------------------------------------

std::int64_t CacheCore::wall_ms() const { return to_wall_ms(clock_->now()); }

std::int64_t CacheCore::to_wall_ms(TimePoint t) const {
  return to_ms(t.time_since_epoch()) + wall_offset_ms_;
}

TimePoint CacheCore::from_wall_ms(std::int64_t ms) const {
  return TimePoint(std::chrono::milliseconds(ms - wall_offset_ms_));
}

Duration CacheCore::jitter(Duration ttl) { return jitter_(ttl); }

double CacheCore::uniform() {
  const std::uint64_t x = splitmix64_next(random_state_);
  return static_cast<double>((x >> 11) + 1) * 0x1.0p-53;  // (0, 1]
}

bool CacheCore::bus_connected() const {
  return bus_ == nullptr || (bus_->connected() && subscribed_.load(std::memory_order_acquire));
}

// ---- keys --------------------------------------------------------------------------------------

std::string CacheCore::data_key(std::string_view key, std::uint64_t version) const {
  std::string k;
  k.reserve(options_.name.size() + key.size() + 24);
  k.append(options_.name).append(":").append(std::to_string(version)).append(":{");
  k.append(key).append("}");
  return k;
}

std::string CacheCore::signed_identity(std::string_view key) const {
  std::string id;
  id.reserve(options_.name.size() + key.size() + 1);
  id.append(options_.name).push_back('\0');
  id.append(key);
  return id;
}

std::string CacheCore::encode(const EnvelopeMeta& meta, std::string_view payload,
                              std::string_view key) const {
  return encode_envelope(meta, payload, options_.envelope, signed_identity(key));
}

std::string CacheCore::lock_key(std::string_view key, std::uint64_t version) const {
  std::string k;
  k.reserve(options_.name.size() + key.size() + 32);
  k.append(options_.name).append(":lock:").append(std::to_string(version)).append(":{");
  k.append(key).append("}");
  return k;
}

std::string CacheCore::tag_key(std::string_view tag) const {
  std::string k;
  k.reserve(options_.name.size() + tag.size() + 8);
  k.append(options_.name).append(":tag:{").append(tag).append("}");
  return k;
}

std::string CacheCore::bus_message(char kind, std::string_view data) const {
  std::string m;
  m.reserve(kOriginLength + 3 + data.size());
  m.append(origin_).push_back('|');
  m.push_back(kind);
  m.push_back('|');
  m.append(data);
  return m;
}

// ---- L2 plumbing -------------------------------------------------------------------------------

redis::CallOptions CacheCore::call_options() const {
  redis::CallOptions o;
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.l2_timeout);
  if (*o.timeout <= std::chrono::milliseconds(0)) o.timeout = std::chrono::milliseconds(1);
  return o;
}

bool CacheCore::l2_allowed() {
  if (!client_ || closed()) return false;
  if (breaker_.allow()) return true;
  metrics_.l2_skipped.inc();
  return false;
}

void CacheCore::l2_outcome(bool ok, const redis::Error* error, std::string_view what) {
  const CircuitBreaker::State before = breaker_.state();
  if (ok) {
    breaker_.record_success();
  } else {
    metrics_.l2_errors.inc();
    // "Redis said no" (a script error, NOPERM, OOM) is not Redis being down.
    const bool server_error =
        error != nullptr && error->code == make_error_code(redis::Errc::kServerError);
    if (server_error) {
      log(LogLevel::kError, std::string(what) + ": " + error->message);
      breaker_.record_success();
    } else {
      breaker_.record_failure();
    }
  }
  const CircuitBreaker::State after = breaker_.state();
  if (before != after) {
    if (after == CircuitBreaker::State::kOpen) {
      log(LogLevel::kWarning, std::string("L2 circuit open after ") + std::string(what) +
                                  " failed" + (error ? ": " + error->to_string() : std::string()));
    } else if (after == CircuitBreaker::State::kClosed) {
      log(LogLevel::kInfo, "L2 circuit closed: Redis answers again");
    }
  }
}

std::optional<std::uint64_t> CacheCore::version() {
  const std::uint64_t known = version_plus_one_.load(std::memory_order_acquire);
  if (known != 0) {
    if (bus_connected()) return known - 1;
    // The bus is down: a clear() elsewhere would go unheard. Look again now and then.
    const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count();
    const std::int64_t interval_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::min<Duration>(kVersionRecheck, options_.disconnected_l1_ttl))
            .count();
    std::int64_t checked = version_checked_ns_.load(std::memory_order_acquire);
    if (now_ns - checked < interval_ns ||
        !version_checked_ns_.compare_exchange_strong(checked, now_ns, std::memory_order_acq_rel)) {
      return known - 1;
    }
  }
  redis::Request request;
  request.push("GET", options_.name + ":version");
  redis::Result<Reply> r = client_->exec_one(request, call_options());
  if (!r.ok()) {
    l2_outcome(false, &r.error(), "namespace version");
    if (known != 0) return known - 1;
    return std::nullopt;
  }
  std::uint64_t v = 0;
  if (r->is_string()) {
    const auto parsed = parse_int(r->string);
    if (!parsed || *parsed < 0) {
      l2_outcome(false, nullptr, "namespace version");
      log(LogLevel::kError, "namespace version key holds a non-integer");
      return std::nullopt;
    }
    v = static_cast<std::uint64_t>(*parsed);
  }
  if (known == 0) {
    // A version learnt from the bus meanwhile is newer than what we read.
    std::uint64_t expected = 0;
    version_plus_one_.compare_exchange_strong(expected, v + 1, std::memory_order_acq_rel);
  } else if (v + 1 != known) {
    log(LogLevel::kWarning, "namespace version changed while the bus was down: L1 dropped");
    version_changed(v);
  }
  return version_plus_one_.load(std::memory_order_acquire) - 1;
}

ReadStart CacheCore::begin_read(bool want_l2) {
  ReadStart start;
  start.epoch = epochs_.now();
  if (want_l2 && client_ && !closed()) start.version = version();
  start.wall_ms = wall_ms();
  return start;
}

void CacheCore::decode_into(std::string_view key, const Reply& reply, L2Read& out,
                            bool report_corrupt) {
  if (reply.is_null()) {
    out.kind = L2Read::Kind::kMiss;
    return;
  }
  if (!reply.is_string()) {
    if (report_corrupt) {
      metrics_.l2_corrupt.inc();
      log(LogLevel::kWarning, "L2 entry of " + key_pattern(key) + " is not a string: ignored");
    }
    out.kind = L2Read::Kind::kMiss;
    return;
  }
  const EnvelopeStatus status =
      decode_envelope(reply.string, options_.envelope, signed_identity(key), out.envelope);
  if (status != EnvelopeStatus::kOk) {
    if (report_corrupt) {
      metrics_.l2_corrupt.inc();
      log(LogLevel::kWarning, "L2 entry of " + key_pattern(key) + " does not decode (" +
                                  to_string(status) + "): treated as a miss");
    }
    out.kind = L2Read::Kind::kMiss;
    return;
  }
  out.kind = L2Read::Kind::kValue;
  // The generation is noted before the check: a tag invalidation arriving during the check
  // makes the entry be checked again.
  out.tag_generation = tag_generation();
  out.tag_invalidated = !out.envelope.meta.tags.empty() &&
                        tags_invalidated(out.envelope.meta.tags, out.envelope.meta.created_ms);
}

// ---- L2 operations -----------------------------------------------------------------------------

L2Read CacheCore::read(std::string_view key, std::uint64_t version) {
  L2Read out;
  if (!l2_allowed()) return out;
  const auto start = std::chrono::steady_clock::now();
  redis::Request request;
  request.push("GET", data_key(key, version));
  redis::Result<Reply> r = client_->exec_one(request, call_options());
  metrics_.l2_latency.observe(std::chrono::steady_clock::now() - start);
  l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "L2 read");
  if (!r.ok()) return out;
  decode_into(key, *r, out);
  return out;
}

std::string CacheCore::new_token() {
  const std::uint64_t a = splitmix64_next(token_state_);
  const std::uint64_t b = splitmix64_next(token_state_);
  return hex64(a) + hex64(b ^ mix64(reinterpret_cast<std::uintptr_t>(this)));
}

namespace {

bool is_lock_reply(const Reply& r) {
  return r.type == redis::ReplyType::kArray && !r.elements.empty() &&
         r.elements[0].type == redis::ReplyType::kInteger && r.elements[0].integer >= 1 &&
         r.elements[0].integer <= 3;
}

}  // namespace

void CacheCore::read_lock_reply(std::string_view key, const Reply& reply, std::string token,
                                L2Read& out) {
  const std::vector<Reply>& e = reply.elements;
  switch (e[0].integer) {
    case 1:
      if (e.size() >= 2) {
        decode_into(key, e[1], out);
        return;
      }
      break;
    case 2:
      if (e.size() >= 2) {
        // Locked, and the value as it is now: another process may have stored a fresh one
        // since the caller saw it stale (then the caller uses it instead of loading again).
        L2Read current;
        decode_into(key, e[1], current, /*report_corrupt=*/false);  // reported when first read
        if (current.kind == L2Read::Kind::kValue) {
          out.envelope = std::move(current.envelope);
          out.tag_invalidated = current.tag_invalidated;
          out.locked_value = true;
        }
      }
      out.kind = L2Read::Kind::kLocked;
      out.token = std::move(token);
      return;
    case 3:
      out.kind = L2Read::Kind::kContended;
      out.lock_remaining = std::chrono::milliseconds(
          e.size() >= 2 && e[1].type == redis::ReplyType::kInteger && e[1].integer > 0
              ? e[1].integer
              : 1);
      return;
    default:
      break;
  }
  out.kind = L2Read::Kind::kUnavailable;
}

namespace {

// A call that failed this way may have run on the server all the same (written, then a
// timeout or the connection lost before the reply).
bool may_have_run(const redis::Error& e) {
  return e.code == make_error_code(redis::Errc::kTimeout) ||
         e.code == make_error_code(redis::Errc::kConnection);
}

}  // namespace

L2Read CacheCore::read_or_lock(std::string_view key, bool ignore_value, std::uint64_t version) {
  L2Read out;
  if (!l2_allowed()) return out;
  std::string token = new_token();
  const std::string lock_ms = px(options_.lock_ttl);
  const auto start = std::chrono::steady_clock::now();
  redis::Result<Reply> r =
      client_->eval(scripts_->read_or_lock, {data_key(key, version), lock_key(key, version)},
                    {token, lock_ms, ignore_value ? "1" : "0"}, call_options());
  metrics_.l2_latency.observe(std::chrono::steady_clock::now() - start);
  const bool well_formed = r.ok() && is_lock_reply(*r);
  if (r.ok() && !well_formed) log(LogLevel::kError, "stampede lock script: unexpected reply");
  l2_outcome(well_formed, r.ok() ? nullptr : &r.error(), "L2 read/lock");
  if (!r.ok() && may_have_run(r.error())) release_in_background(key, token, version);
  if (!well_formed) return out;
  read_lock_reply(key, *r, std::move(token), out);
  if (out.kind == L2Read::Kind::kMiss) {
    // An undecodable entry: treat it as absent, and compete for the lock to replace it.
    return read_or_lock(key, true, version);
  }
  return out;
}

void CacheCore::release_in_background(std::string_view key, const std::string& token,
                                      std::uint64_t version) {
  if (token.empty() || closed()) return;
  // EVAL, not EVALSHA: nothing to retry from a completion handler. The handler captures
  // nothing of the cache.
  redis::Request request;
  request.push("EVAL", scripts_->release.source(), 1, lock_key(key, version), token, channel_,
               bus_message('f', key));
  client_->async_exec_one(
      request, [](redis::Result<Reply>) {}, call_options());
}

redis::Result<std::vector<Reply>> CacheCore::exec_scripts(const redis::Request& request,
                                                          const redis::Script& script) {
  redis::Result<std::vector<Reply>> r = client_->exec(request, call_options());
  if (r.ok() && !r->empty() && (*r)[0].is_error() && (*r)[0].string.starts_with("NOSCRIPT")) {
    // The script is not loaded on this server yet: load it, then try once more.
    redis::Request load;
    load.push("SCRIPT", "LOAD", script.source());
    if (client_->exec_one(load, call_options()).ok()) r = client_->exec(request, call_options());
  }
  return r;
}

std::vector<L2Read> CacheCore::read_or_lock_many(const std::vector<std::string>& keys,
                                                 bool ignore_values, std::uint64_t version) {
  std::vector<L2Read> out(keys.size());
  if (keys.empty() || !l2_allowed()) return out;
  const std::string lock_ms = px(options_.lock_ttl);
  std::vector<std::string> tokens;
  tokens.reserve(keys.size());
  redis::Request request;
  for (const std::string& key : keys) {
    tokens.push_back(new_token());
    request.push("EVALSHA", scripts_->read_or_lock.sha1(), 2, data_key(key, version),
                 lock_key(key, version), tokens.back(), lock_ms, ignore_values ? "1" : "0");
  }
  const auto start = std::chrono::steady_clock::now();
  redis::Result<std::vector<Reply>> r = exec_scripts(request, scripts_->read_or_lock);
  metrics_.l2_latency.observe(std::chrono::steady_clock::now() - start);
  l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "L2 read/lock of many keys");
  if (!r.ok() && may_have_run(r.error())) {
    for (std::size_t i = 0; i < keys.size(); ++i)
      release_in_background(keys[i], tokens[i], version);
  }
  if (!r.ok() || r->size() != keys.size()) return out;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (is_lock_reply((*r)[i])) read_lock_reply(keys[i], (*r)[i], std::move(tokens[i]), out[i]);
  }
  return out;
}

StoreResult CacheCore::store(std::string_view key, const std::string& bytes, Duration redis_ttl,
                             const std::string& token, std::uint64_t version) {
  if (token.empty() || !l2_allowed()) {
    metrics_.l2_writes_skipped.inc();
    return StoreResult::kFailed;
  }
  const std::string ttl_ms = px(redis_ttl);
  redis::Result<Reply> r =
      client_->eval(scripts_->store, {data_key(key, version), lock_key(key, version)},
                    {bytes, ttl_ms, token, channel_, bus_message('f', key)}, call_options());
  l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "L2 write");
  if (!r.ok()) {
    metrics_.l2_writes_skipped.inc();
    return StoreResult::kFailed;
  }
  if (r->type == redis::ReplyType::kInteger && r->integer == 1) {
    metrics_.l2_writes.inc();
    return StoreResult::kStored;
  }
  return StoreResult::kLockLost;
}

std::vector<StoreResult> CacheCore::store_many(const std::vector<StoreItem>& items,
                                               std::uint64_t version) {
  std::vector<StoreResult> out(items.size(), StoreResult::kFailed);
  if (items.empty()) return out;
  if (!l2_allowed()) {
    metrics_.l2_writes_skipped.inc(items.size());
    return out;
  }
  redis::Request request;
  for (const StoreItem& item : items) {
    request.push("EVALSHA", scripts_->store.sha1(), 2, data_key(item.key, version),
                 lock_key(item.key, version), item.bytes, px(item.redis_ttl), item.token, channel_,
                 bus_message('f', item.key));
  }
  redis::Result<std::vector<Reply>> r = exec_scripts(request, scripts_->store);
  l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "L2 write of many keys");
  if (!r.ok() || r->size() != items.size()) {
    metrics_.l2_writes_skipped.inc(items.size());
    return out;
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Reply& reply = (*r)[i];
    if (reply.type != redis::ReplyType::kInteger) {
      metrics_.l2_writes_skipped.inc();
    } else if (reply.integer == 1) {
      metrics_.l2_writes.inc();
      out[i] = StoreResult::kStored;
    } else {
      out[i] = StoreResult::kLockLost;
    }
  }
  return out;
}

void CacheCore::release(std::string_view key, const std::string& token, std::uint64_t version) {
  if (token.empty() || !l2_allowed()) return;
  redis::Result<Reply> r = client_->eval(scripts_->release, {lock_key(key, version)},
                                         {token, channel_, bus_message('f', key)}, call_options());
  l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "lock release");
}

void CacheCore::renew_locks() {
  const auto period = std::max<Duration>(options_.lock_ttl / 3, std::chrono::milliseconds(1));
  const std::string ttl_ms = px(options_.lock_ttl);
  std::unique_lock lock(renewals_->mutex);
  while (!renewals_->stopping) {
    renewals_->changed.wait_for(lock, period);
    if (renewals_->stopping) break;
    // Holds past max_load_time end here: released, and renewed no more.
    const auto now = std::chrono::steady_clock::now();
    std::vector<Renewals::Held> renew;
    std::vector<Renewals::Held> expired;
    for (auto it = renewals_->held.begin(); it != renewals_->held.end();) {
      if (now - it->second.since >= options_.max_load_time) {
        expired.push_back(std::move(it->second));
        it = renewals_->held.erase(it);
      } else {
        renew.push_back(it->second);
        ++it;
      }
    }
    lock.unlock();
    for (const Renewals::Held& h : expired) {
      log(LogLevel::kWarning,
          "load of " + key_pattern(h.key) + " exceeded max_load_time: its lock is released");
      release(h.key, h.token, h.version);
    }
    for (const Renewals::Held& h : renew) {
      if (!l2_allowed()) break;
      redis::Result<Reply> r = client_->eval(scripts_->renew, {lock_key(h.key, h.version)},
                                             {h.token, ttl_ms}, call_options());
      l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "lock renewal");
    }
    lock.lock();
  }
}

std::shared_ptr<void> CacheCore::keep_lock(std::string_view key, const std::string& token,
                                           std::uint64_t version) {
  if (!client_ || token.empty()) return nullptr;
  std::uint64_t id;
  {
    std::lock_guard lock(renewals_->mutex);
    if (renewals_->stopping) return nullptr;
    id = renewals_->next_id++;
    renewals_->held.emplace(
        id, Renewals::Held{std::string(key), token, version, std::chrono::steady_clock::now()});
    if (!renewals_->thread.joinable()) renewals_->thread = std::thread([this] { renew_locks(); });
  }
  return std::shared_ptr<void>(nullptr, [self = shared_from_this(), id](void*) {
    std::lock_guard lock(self->renewals_->mutex);
    self->renewals_->held.erase(id);
  });
}

void CacheCore::wake_fills(std::string_view key) { fills_->wake(key); }
void CacheCore::wake_all_fills() { fills_->wake_all(); }

std::unique_ptr<CacheCore::FillWait> CacheCore::watch_fills(std::string_view key) {
  return std::make_unique<FillSignals::Watch>(shared_from_this(), std::string(key));
}

// ---- observability -----------------------------------------------------------------------------

void CacheCore::log(LogLevel level, const std::string& message) const {
  if (options_.logger) {
    try {
      options_.logger(level, message);
    } catch (...) {
      // A logger that throws must not break a cache read.
    }
    return;
  }
  if (level >= LogLevel::kWarning) {
    std::fprintf(stderr, "tiercache[%s] %s: %s\n", options_.name.c_str(), to_string(level),
                 message.c_str());
  }
}

void CacheCore::collect(PrometheusText& text, const LocalCacheStats& l1,
                        std::size_t l1_entries) const {
  using Labels = PrometheusText::Labels;
  const std::string& name = options_.name;
  const auto lookups = [&](const char* tier, const char* result, const Counter& c) {
    text.counter("tiercache_lookups_total",
                 "Lookups per tier and result (hit, negative_hit, stale, miss).",
                 Labels{{"cache", name}, {"tier", tier}, {"result", result}}, c.value());
  };
  lookups("l1", "hit", metrics_.l1_hits);
  lookups("l1", "negative_hit", metrics_.l1_negative_hits);
  lookups("l1", "stale", metrics_.l1_stale);
  lookups("l1", "miss", metrics_.l1_misses);
  lookups("l2", "hit", metrics_.l2_hits);
  lookups("l2", "negative_hit", metrics_.l2_negative_hits);
  lookups("l2", "stale", metrics_.l2_stale);
  lookups("l2", "miss", metrics_.l2_misses);

  const auto loads = [&](const char* result, const Counter& c) {
    text.counter("tiercache_loads_total", "Loader calls by outcome.",
                 Labels{{"cache", name}, {"result", result}}, c.value());
  };
  loads("ok", metrics_.loads_ok);
  loads("not_found", metrics_.loads_not_found);
  loads("error", metrics_.loads_error);
  loads("timeout", metrics_.loads_timeout);

  const auto l2 = [&](const char* kind, const Counter& c) {
    text.counter("tiercache_l2_problems_total",
                 "L2 operations that failed (error), returned undecodable entries (corrupt), or "
                 "were skipped because the circuit was open (skipped).",
                 Labels{{"cache", name}, {"kind", kind}}, c.value());
  };
  l2("error", metrics_.l2_errors);
  l2("corrupt", metrics_.l2_corrupt);
  l2("skipped", metrics_.l2_skipped);
  text.counter("tiercache_l2_writes_total", "L2 writes by outcome.",
               Labels{{"cache", name}, {"result", "ok"}}, metrics_.l2_writes.value());
  text.counter("tiercache_l2_writes_total", "L2 writes by outcome.",
               Labels{{"cache", name}, {"result", "skipped"}}, metrics_.l2_writes_skipped.value());

  const auto lock = [&](const char* result, const Counter& c) {
    text.counter("tiercache_stampede_lock_total",
                 "Cross-process stampede lock attempts: acquired, contended (waited for "
                 "another process), taken_over (the holder vanished).",
                 Labels{{"cache", name}, {"result", result}}, c.value());
  };
  lock("acquired", metrics_.lock_acquired);
  lock("contended", metrics_.lock_contended);
  lock("taken_over", metrics_.lock_taken_over);
  text.counter("tiercache_coalesced_waits_total",
               "Callers that waited for a load already running in this process.",
               Labels{{"cache", name}}, metrics_.coalesced_waits.value());
  text.counter("tiercache_stale_served_total",
               "Stale values served by fail-safe (loader failed or too slow).",
               Labels{{"cache", name}}, metrics_.stale_served.value());
  text.counter("tiercache_early_refreshes_total",
               "Background refreshes started before expiry (XFetch).", Labels{{"cache", name}},
               metrics_.early_refreshes.value());
  text.counter("tiercache_l1_distrusted_total",
               "L1 copies not served because the invalidation bus was down too long.",
               Labels{{"cache", name}}, metrics_.l1_distrusted.value());
  text.counter("tiercache_invalidations_total", "Invalidation messages sent and received.",
               Labels{{"cache", name}, {"direction", "sent"}}, metrics_.invalidations_sent.value());
  text.counter("tiercache_invalidations_total", "Invalidation messages sent and received.",
               Labels{{"cache", name}, {"direction", "received"}},
               metrics_.invalidations_received.value());
  text.counter("tiercache_bus_gaps_total",
               "Times the invalidation bus may have lost messages (L1 was dropped).",
               Labels{{"cache", name}}, metrics_.bus_gaps.value());
  text.counter("tiercache_evictions_total", "L1 entries evicted, by cause.",
               Labels{{"cache", name}, {"tier", "l1"}, {"cause", "size"}}, l1.evictions_size);
  text.counter("tiercache_evictions_total", "L1 entries evicted, by cause.",
               Labels{{"cache", name}, {"tier", "l1"}, {"cause", "expired"}}, l1.evictions_expired);
  text.gauge("tiercache_l1_entries", "Entries in L1.", Labels{{"cache", name}},
             static_cast<double>(l1_entries));
  text.gauge("tiercache_circuit_state", "L2 circuit breaker: 0 closed, 1 open, 2 half-open.",
             Labels{{"cache", name}}, static_cast<double>(breaker_.state()));
  text.gauge("tiercache_bus_connected", "1 while the invalidation bus is connected.",
             Labels{{"cache", name}}, bus_connected() ? 1.0 : 0.0);

  const char* const latency_help =
      "Latency per tier: L1 hits (sampled), L2 round trips, loader calls.";
  text.histogram("tiercache_latency_seconds", latency_help, Labels{{"cache", name}, {"tier", "l1"}},
                 metrics_.l1_latency.snapshot());
  text.histogram("tiercache_latency_seconds", latency_help, Labels{{"cache", name}, {"tier", "l2"}},
                 metrics_.l2_latency.snapshot());
  text.histogram("tiercache_latency_seconds", latency_help,
                 Labels{{"cache", name}, {"tier", "loader"}}, metrics_.load_latency.snapshot());
}

}  // namespace tiercache::detail
