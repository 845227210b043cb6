// CacheImpl<V, C>: the typed half of Cache<V> -- L1, single-flight, the read path, the codec.
// The untyped half (L2 protocol, bus, loader pool, metrics) is CacheCore.
//
// The read path (DESIGN.md, "The read path"):
//   1. L1. A fresh entry is returned as is (no copy, no decode). Past its early-refresh point
//      (XFetch) it is returned and a background refresh starts (once per entry). Past its L1
//      freshness -- logical expiry, l1_max_ttl, a tag invalidated after it was created, or the
//      bus down for longer than disconnected_l1_ttl -- it becomes the *stale candidate* and
//      the read goes on as a miss.
//   2. Single-flight: the first caller for a key leads a Flight; the others wait on it.
//   3. The leader runs CacheCore::read_or_lock: the L2 entry if fresh (decoded once, put in
//      L1); else the lock. A stale L2 entry becomes the stale candidate and the leader asks
//      for the lock alone.
//   4. Lock held (or L2 unavailable): the load runs on the loader pool (bounded: the DB's
//      protection). It stores the result in L2 (if the lock is still ours), then L1, and
//      completes the flight. Lock contended: the leader waits for the holder's fill message
//      or the lock's expiry, and reads again (taking the lock over if the holder vanished).
//   5. Every caller waits on the flight with its own deadlines: at the soft timeout it takes
//      the stale candidate if there is one; at the hard timeout it takes the stale candidate
//      or gets kLoaderTimeout. A load that outlives its callers still stores its result.
//
// Lifetime: Cache<V> owns a shared_ptr to its CacheImpl; loads and background refreshes hold
// references too, so they may finish after the Cache is gone (their results are dropped).

#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tiercache/cache_result.hpp"
#include "tiercache/codec.hpp"
#include "tiercache/detail/cache_core.hpp"
#include "tiercache/envelope.hpp"
#include "tiercache/local_cache.hpp"
#include "tiercache/options.hpp"

namespace tiercache::detail {

// Early refresh is not even considered while more than this many load times (times beta) are
// left before expiry: -ln(u) exceeds 20 with probability e^-20 (2e-9).
inline constexpr double kEarlyRefreshHorizon = 20.0;
// One L1 hit in this many has its latency measured (two clock reads would double a hit's cost).
inline constexpr std::uint32_t kL1LatencySampling = 128;
// A lock's remaining time is padded by this before a waiter tries to take it over.
inline constexpr Duration kTakeoverMargin = std::chrono::milliseconds(5);

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <class V, class C>
class CacheImpl : public std::enable_shared_from_this<CacheImpl<V, C>> {
 public:
  using Result = CacheResult<V>;
  using EntryT = Entry<V>;
  using Loader = std::function<std::optional<V>(LoadContext&)>;
  using SteadyTime = std::chrono::steady_clock::time_point;

  CacheImpl(CacheOptions options, std::shared_ptr<redis::Client> client)
      : core_(std::make_shared<CacheCore>(normalize(std::move(options)), std::move(client))),
        options_(core_->options()),
        clock_(core_->clock()),
        l1_(l1_options(options_)) {}

  ~CacheImpl() { core_->shutdown(); }

  void start() {
    std::weak_ptr<CacheImpl> weak = this->weak_from_this();
    CacheCore::Hooks hooks;
    hooks.drop_key = [weak](std::string_view key) {
      if (auto self = weak.lock()) self->drop_local(std::string(key));
    };
    hooks.drop_all = [weak] {
      if (auto self = weak.lock()) self->drop_all_local();
    };
    core_->start(std::move(hooks));
  }

  void shutdown() { core_->shutdown(); }

  // ---- reads --------------------------------------------------------------------------------

  Result get(const std::string& key) {
    Cached<EntryT> e = l1_.get(key);
    const TimePoint now = clock_.now();
    if (e.found()) {
      const Verdict v = judge(*e, now);
      if (v == Verdict::kServeStale) return l1_stale_hit(std::move(e));
      if (v != Verdict::kStale) return l1_hit(std::move(e));
    }
    core_->metrics().l1_misses.inc();
    if (!core_->has_l2()) return Result();
    L2Read r = core_->read(key);
    if (r.kind != L2Read::Kind::kValue) {
      if (r.kind == L2Read::Kind::kMiss) core_->metrics().l2_misses.inc();
      return Result();
    }
    std::optional<EntryT> entry = from_envelope(key, r.envelope);
    if (!entry || r.tag_invalidated || entry->fresh_until <= now) {
      core_->metrics().l2_misses.inc();
      return Result();
    }
    count_l2_hit(*entry);
    return Result(store_l1(key, std::move(*entry)), Source::kL2, false);
  }

  // Any callable taking LoadContext& (or the key as std::string_view) and returning
  // std::optional<V> (nullopt: "not found") or V.
  template <class F>
  static Loader adapt(F&& f) {
    if constexpr (std::is_invocable_v<F&, LoadContext&>) {
      return Loader([f = std::forward<F>(f)](LoadContext& c) -> std::optional<V> { return f(c); });
    } else {
      static_assert(std::is_invocable_v<F&, std::string_view>,
                    "a loader takes (tiercache::LoadContext&) or (std::string_view key)");
      return Loader(
          [f = std::forward<F>(f)](LoadContext& c) -> std::optional<V> { return f(c.key()); });
    }
  }

  template <class F>
  Result get_or_load(const std::string& key, F&& loader, const ReadOptions& ro) {
    const bool sample = sample_latency();
    const auto t0 = sample ? std::chrono::steady_clock::now() : SteadyTime();
    Cached<EntryT> e = l1_.get(key);
    Result stale;
    if (e.found()) {
      const TimePoint now = clock_.now();
      switch (judge(*e, now)) {
        case Verdict::kFresh:
          if (sample) core_->metrics().l1_latency.observe(std::chrono::steady_clock::now() - t0);
          return l1_hit(std::move(e));
        case Verdict::kRefresh:
          if (!e->refresh_started.exchange(true, std::memory_order_acq_rel)) {
            refresh_in_background(key, adapt(std::forward<F>(loader)), e);
          }
          return l1_hit(std::move(e));
        case Verdict::kServeStale:
          return l1_stale_hit(std::move(e));
        case Verdict::kStale:
          if (e->value) stale = Result(std::move(e), Source::kL1, true);
          break;
      }
    }
    core_->metrics().l1_misses.inc();
    return resolve(key, adapt(std::forward<F>(loader)), ro, std::move(stale), nullptr);
  }

  // A fresh L1 hit, or a miss (nothing counted for a miss: the caller goes on to get_or_load).
  Result try_l1(const std::string& key) {
    Cached<EntryT> e = l1_.get(key);
    if (e.found() && judge(*e, clock_.now()) == Verdict::kFresh) return l1_hit(std::move(e));
    return Result();
  }

  static Result closed_result() { return error(CacheErrc::kClosed, "cache shut down"); }

  template <class F>
  std::vector<Result> get_or_load_many(const std::vector<std::string>& keys, F&& batch,
                                       const ReadOptions& ro) {
    using BatchFn = std::function<std::vector<std::optional<V>>(const std::vector<std::string>&)>;
    // Adapts the user's map-returning loader to one answer per key, in order.
    BatchFn load_batch = [f = std::forward<F>(batch)](const std::vector<std::string>& ks) {
      auto found = f(ks);
      std::vector<std::optional<V>> out(ks.size());
      for (std::size_t i = 0; i < ks.size(); ++i) {
        auto it = found.find(ks[i]);
        if (it != found.end()) out[i].emplace(std::move(it->second));
      }
      return out;
    };
    std::vector<Result> results(keys.size());
    std::vector<std::shared_ptr<Flight>> flights(keys.size());
    std::vector<std::size_t> led;  // indices of the keys this call leads
    for (std::size_t i = 0; i < keys.size(); ++i) {
      Cached<EntryT> e = l1_.get(keys[i]);
      Result stale;
      if (e.found()) {
        const Verdict v = judge(*e, clock_.now());
        if (v == Verdict::kFresh || v == Verdict::kRefresh) {
          results[i] = l1_hit(std::move(e));
          continue;
        }
        if (v == Verdict::kServeStale) {
          results[i] = l1_stale_hit(std::move(e));
          continue;
        }
        if (e->value) stale = Result(std::move(e), Source::kL1, true);
      }
      core_->metrics().l1_misses.inc();
      bool leader = false;
      flights[i] = join(keys[i], leader);
      offer_stale(flights[i], stale);
      if (leader) {
        led.push_back(i);
      } else {
        core_->metrics().coalesced_waits.inc();
      }
    }
    if (!led.empty()) lead_many(keys, led, flights, load_batch, ro);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (flights[i]) results[i] = wait(flights[i], deadlines(ro, flights[i]->started));
    }
    return results;
  }

  // ---- writes -------------------------------------------------------------------------------

  WriteResult set(const std::string& key, V value, const WriteOptions& wo) {
    WriteResult out;
    EntryT entry;
    entry.value.emplace(std::move(value));
    entry.tags = wo.tags;
    const Duration ttl = core_->jitter(wo.ttl.value_or(options_.ttl));
    stamp(entry, ttl, Duration::zero());
    std::string bytes;
    if (core_->has_l2() && !wo.skip_l2) {
      try {
        bytes = to_envelope(key, entry);
      } catch (...) {
        // Not storable (the codec threw, or beyond the envelope's limits). The database may
        // already hold the new value: drop the old copies everywhere rather than keep them.
        core_->log(LogLevel::kError, "value of " + key_pattern(key) + " cannot be encoded");
        invalidate(key);
        out.error = encode_error(key, std::current_exception());
        return out;
      }
    }
    mark_flight_invalidated(key);
    store_l1(key, std::move(entry));
    if (!bytes.empty()) out.l2_written = core_->write(key, bytes, ttl + options_.stale_window);
    return out;
  }

  bool invalidate(const std::string& key) {
    mark_flight_invalidated(key);
    l1_.erase(key);
    return !core_->has_l2() || core_->invalidate(key);
  }

  bool invalidate_tag(const std::string& tag) { return core_->invalidate_tag(tag); }

  bool clear() {
    {
      std::lock_guard lock(flights_mutex_);
      for (auto& [k, f] : flights_) f->invalidated.store(true, std::memory_order_release);
    }
    l1_.clear();
    return !core_->has_l2() || core_->clear();
  }

  // ---- observability ------------------------------------------------------------------------

  void collect(PrometheusText& text) const { core_->collect(text, l1_.stats(), l1_.size()); }
  CacheCore& core() { return *core_; }
  LocalCache<std::string, EntryT>& l1() { return l1_; }

 private:
  enum class Verdict { kFresh, kRefresh, kServeStale, kStale };

  // A load in progress for one key, and the callers waiting for it.
  struct Flight {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    Result result;
    Result stale;  // the best stale candidate known so far (may be empty)
    SteadyTime started = std::chrono::steady_clock::now();
    bool timeout_counted = false;
    // A write or invalidation of the key arrived meanwhile: the load's result must not be
    // kept in L1 (it may predate the change).
    std::atomic<bool> invalidated{false};
    bool refresh = false;  // an early refresh: nobody waits; failures leave L1 alone
  };

  static CacheOptions normalize(CacheOptions o) {
    if (!o.clock) o.clock = default_clock();
    o.l1.clock = o.clock;
    if (!o.l1.seed && o.seed) o.l1.seed = o.seed;
    return o;
  }
  static LocalCacheOptions l1_options(const CacheOptions& o) {
    LocalCacheOptions l1 = o.l1;
    l1.default_ttl = o.l1_max_ttl;
    return l1;
  }

  static bool sample_latency() {
    thread_local std::uint32_t calls = 0;
    return ++calls % kL1LatencySampling == 0;
  }

  Result l1_hit(Cached<EntryT> e) {
    if (e->value) {
      core_->metrics().l1_hits.inc();
    } else {
      core_->metrics().l1_negative_hits.inc();
    }
    return Result(std::move(e), Source::kL1, false);
  }

  // An entry fail-safe keeps in L1 (Verdict::kServeStale): served flagged stale, and counted
  // the same way by every read.
  Result l1_stale_hit(Cached<EntryT> e) {
    core_->metrics().l1_stale.inc();
    core_->metrics().stale_served.inc();
    return Result(std::move(e), Source::kL1, true);
  }

  Verdict judge(const EntryT& e, TimePoint now) {
    if (now >= e.l1_fresh_until) return Verdict::kStale;
    if (e.stale) return Verdict::kServeStale;
    if (!core_->bus_connected() && core_->has_l2() &&
        now - e.stored_at > options_.disconnected_l1_ttl) {
      // Invalidations may be missed while the bus is down: distrust older copies.
      core_->metrics().l1_distrusted.inc();
      return Verdict::kStale;
    }
    if (!e.tags.empty()) {
      const std::uint64_t generation = core_->tag_generation();
      if (e.tags_checked.load(std::memory_order_acquire) != generation) {
        if (core_->tags_invalidated(e.tags, e.created_ms)) return Verdict::kStale;
        e.tags_checked.store(generation, std::memory_order_release);
      }
    }
    if (options_.early_refresh_beta > 0 && e.load_time > Duration::zero() && e.value) {
      const double scaled = static_cast<double>(e.load_time.count()) * options_.early_refresh_beta;
      const double left = static_cast<double>((e.fresh_until - now).count());
      if (left < scaled * kEarlyRefreshHorizon && scaled * -std::log(core_->uniform()) >= left) {
        return Verdict::kRefresh;
      }
    }
    return Verdict::kFresh;
  }

  // ---- single-flight ------------------------------------------------------------------------

  // Joins the flight for `key`, or starts one (then `leader` is set).
  std::shared_ptr<Flight> join(const std::string& key, bool& leader) {
    std::lock_guard lock(flights_mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      leader = false;
      return it->second;
    }
    leader = true;
    auto flight = std::make_shared<Flight>();
    flights_.emplace(key, flight);
    return flight;
  }

  void complete(const std::string& key, const std::shared_ptr<Flight>& flight, Result result) {
    {
      // Out of the map first: a caller woken below may ask again at once, and must then start
      // a new flight rather than join this finished one.
      std::lock_guard lock(flights_mutex_);
      auto it = flights_.find(key);
      if (it != flights_.end() && it->second == flight) flights_.erase(it);
    }
    {
      std::lock_guard lock(flight->mutex);
      if (flight->done) return;
      flight->done = true;
      flight->result = std::move(result);
    }
    flight->cv.notify_all();
  }

  void offer_stale(const std::shared_ptr<Flight>& flight, const Result& stale) {
    if (!stale.has_value()) return;
    {
      std::lock_guard lock(flight->mutex);
      if (flight->stale.has_value()) return;
      flight->stale = stale;
    }
    flight->cv.notify_all();
  }

  void mark_flight_invalidated(const std::string& key) {
    std::lock_guard lock(flights_mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end()) it->second->invalidated.store(true, std::memory_order_release);
  }

  struct Deadlines {
    SteadyTime soft;
    SteadyTime hard;
  };
  Deadlines deadlines(const ReadOptions& ro, SteadyTime start) const {
    const auto cap = [](Duration d) { return std::min<Duration>(d, std::chrono::hours(24 * 365)); };
    return Deadlines{start + cap(ro.soft_timeout.value_or(options_.soft_timeout)),
                     start + cap(ro.hard_timeout.value_or(options_.hard_timeout))};
  }

  // Waits for the flight's result; at the soft deadline takes its stale candidate; at the hard
  // deadline, the stale candidate or kLoaderTimeout.
  Result wait(const std::shared_ptr<Flight>& flight, Deadlines d) {
    std::unique_lock lock(flight->mutex);
    while (!flight->done) {
      const SteadyTime now = std::chrono::steady_clock::now();
      const bool has_stale = flight->stale.has_value();
      if (has_stale && now >= d.soft) return serve_stale(flight->stale);
      if (now >= d.hard) {
        if (!flight->timeout_counted) {
          flight->timeout_counted = true;
          core_->metrics().loads_timeout.inc();
        }
        if (has_stale) return serve_stale(flight->stale);
        return error(CacheErrc::kLoaderTimeout, "no answer within the hard timeout");
      }
      flight->cv.wait_until(lock, has_stale ? std::min(d.soft, d.hard) : d.hard);
    }
    if (flight->result.is_stale()) core_->metrics().stale_served.inc();
    return flight->result;
  }

  Result serve_stale(const Result& stale) {
    core_->metrics().stale_served.inc();
    return stale;
  }

  static Result error(CacheErrc code, std::string message, std::exception_ptr e = nullptr) {
    auto err = std::make_shared<CacheError>();
    err->code = code;
    err->message = std::move(message);
    err->exception = std::move(e);
    return Result(std::move(err));
  }

  // Steps 2-5 of the read path. `refresh_of`: the entry an early refresh replaces (nullptr for
  // a read); a refresh runs on the background pool and nobody waits for it.
  Result resolve(const std::string& key, Loader loader, const ReadOptions& ro, Result stale,
                 const EntryT* refresh_of) {
    bool leader = false;
    std::shared_ptr<Flight> flight = join(key, leader);
    const Deadlines d = deadlines(ro, flight->started);
    if (!leader) {
      if (refresh_of != nullptr) return Result();  // a load is already running
      core_->metrics().coalesced_waits.inc();
      offer_stale(flight, stale);
      return wait(flight, d);
    }
    flight->refresh = refresh_of != nullptr;
    offer_stale(flight, stale);
    lead(key, std::move(loader), ro, flight, d, refresh_of);
    if (refresh_of != nullptr) return Result();
    return wait(flight, d);
  }

  void lead(const std::string& key, Loader loader, const ReadOptions& ro,
            const std::shared_ptr<Flight>& flight, Deadlines d, const EntryT* refresh_of) {
    if (!core_->has_l2() || ro.skip_l2) {
      start_load(key, std::move(loader), flight, std::string(), !ro.skip_l2);
      return;
    }
    const std::unique_ptr<CacheCore::FillWait> fills = core_->watch_fills(key);
    bool ignore_value = false;
    bool contended = false;
    bool woken = true;
    while (true) {
      L2Read r = core_->read_or_lock(key, ignore_value);
      switch (r.kind) {
        case L2Read::Kind::kValue: {
          std::optional<EntryT> entry = from_envelope(key, r.envelope);
          if (!entry) {  // undecodable for this codec: as absent
            ignore_value = true;
            continue;
          }
          const bool newer = refresh_of == nullptr || entry->created_ms > refresh_of->created_ms;
          if (!r.tag_invalidated && entry->fresh_until > clock_.now() && newer) {
            count_l2_hit(*entry);
            complete(key, flight, Result(keep(key, std::move(*entry), flight), Source::kL2, false));
            return;
          }
          core_->metrics().l2_stale.inc();
          if (entry->value && refresh_of == nullptr) {
            offer_stale(flight, Result(l1_.wrap(key, std::move(*entry)), Source::kL2, true));
          }
          ignore_value = true;
          continue;
        }
        case L2Read::Kind::kMiss:
          core_->metrics().l2_misses.inc();
          ignore_value = true;
          continue;
        case L2Read::Kind::kLocked:
          if (adopt_fresh(key, flight, r, refresh_of)) return;
          core_->metrics().lock_acquired.inc();
          if (contended && !woken) core_->metrics().lock_taken_over.inc();
          if (!contended) core_->metrics().l2_misses.inc();
          start_load(key, std::move(loader), flight, std::move(r.token), true);
          return;
        case L2Read::Kind::kContended: {
          if (!contended) core_->metrics().lock_contended.inc();
          contended = true;
          bool has_stale;
          {
            std::lock_guard lock(flight->mutex);
            has_stale = flight->stale.has_value();
          }
          const SteadyTime limit = has_stale ? std::min(d.soft, d.hard) : d.hard;
          const SteadyTime now = std::chrono::steady_clock::now();
          if (now >= limit) {
            Result out;
            {
              std::lock_guard lock(flight->mutex);
              if (flight->stale.has_value()) {
                out = flight->stale;
              } else {
                out = error(CacheErrc::kLoaderTimeout,
                            "another process's load of " + key_pattern(key) +
                                " did not finish within the hard timeout");
                core_->metrics().loads_timeout.inc();
              }
              flight->timeout_counted = true;
            }
            complete(key, flight, std::move(out));
            return;
          }
          woken = fills->wait_until(std::min(limit, now + r.lock_remaining + kTakeoverMargin));
          if (core_->closed()) {
            complete(key, flight, error(CacheErrc::kClosed, "cache shut down"));
            return;
          }
          ignore_value = false;
          continue;
        }
        case L2Read::Kind::kUnavailable:
          // Redis down or slow: load without the cross-process lock (single-flight still
          // holds in this process) and do not try to store.
          start_load(key, std::move(loader), flight, std::string(), false);
          return;
      }
    }
  }

  // The leader's part of get_or_load_many: one pipelined read-or-lock, one batch
  // load; keys whose lock another process holds go through lead() one by one.
  template <class BatchFn>
  void lead_many(const std::vector<std::string>& keys, const std::vector<std::size_t>& led,
                 const std::vector<std::shared_ptr<Flight>>& flights, const BatchFn& load_batch,
                 const ReadOptions& ro) {
    std::vector<std::size_t> to_load;
    std::vector<std::string> tokens;
    std::vector<std::size_t> contended;
    if (!core_->has_l2() || ro.skip_l2) {
      to_load = led;
      tokens.assign(led.size(), std::string());
    } else {
      std::vector<std::string> led_keys;
      led_keys.reserve(led.size());
      for (std::size_t i : led) led_keys.push_back(keys[i]);
      // One round trip reads every key and locks the absent ones.
      std::vector<L2Read> reads = core_->read_or_lock_many(led_keys, false);
      std::vector<std::size_t> to_lock;  // present but stale or undecodable: lock them next
      const TimePoint now = clock_.now();
      const auto sort = [&](std::size_t i, L2Read& r) {
        switch (r.kind) {
          case L2Read::Kind::kLocked:
            if (adopt_fresh(keys[i], flights[i], r, nullptr)) break;
            core_->metrics().lock_acquired.inc();
            to_load.push_back(i);
            tokens.push_back(std::move(r.token));
            break;
          case L2Read::Kind::kUnavailable:
            to_load.push_back(i);
            tokens.emplace_back();
            break;
          case L2Read::Kind::kContended:
            core_->metrics().lock_contended.inc();
            contended.push_back(i);  // the one-key path waits for the fill, or takes over
            break;
          case L2Read::Kind::kValue:
          case L2Read::Kind::kMiss:
            contended.push_back(i);  // filled or broken meanwhile: the one-key path decides
            break;
        }
      };
      for (std::size_t j = 0; j < led.size(); ++j) {
        const std::size_t i = led[j];
        if (reads[j].kind == L2Read::Kind::kValue) {
          std::optional<EntryT> entry = from_envelope(keys[i], reads[j].envelope);
          if (entry && !reads[j].tag_invalidated && entry->fresh_until > now) {
            count_l2_hit(*entry);
            complete(keys[i], flights[i],
                     Result(keep(keys[i], std::move(*entry), flights[i]), Source::kL2, false));
            continue;
          }
          if (entry) {
            core_->metrics().l2_stale.inc();
            if (entry->value) {
              offer_stale(flights[i],
                          Result(l1_.wrap(keys[i], std::move(*entry)), Source::kL2, true));
            }
          }
          to_lock.push_back(i);
        } else if (reads[j].kind == L2Read::Kind::kMiss) {
          to_lock.push_back(i);  // undecodable: replace it
        } else {
          if (reads[j].kind == L2Read::Kind::kLocked) core_->metrics().l2_misses.inc();
          sort(i, reads[j]);
        }
      }
      if (!to_lock.empty()) {
        std::vector<std::string> lock_keys;
        lock_keys.reserve(to_lock.size());
        for (std::size_t i : to_lock) lock_keys.push_back(keys[i]);
        std::vector<L2Read> locks = core_->read_or_lock_many(lock_keys, true);
        for (std::size_t j = 0; j < to_lock.size(); ++j) sort(to_lock[j], locks[j]);
      }
    }
    if (!to_load.empty()) {
      auto self = this->shared_from_this();
      std::vector<std::string> load_keys;
      std::vector<std::shared_ptr<Flight>> load_flights;
      for (std::size_t i : to_load) {
        load_keys.push_back(keys[i]);
        load_flights.push_back(flights[i]);
      }
      const bool use_l2 = core_->has_l2() && !ro.skip_l2;
      // Renewed from now on: the load may wait for a loader slot longer than lock_ttl.
      std::vector<std::shared_ptr<void>> renewals;
      for (std::size_t j = 0; j < load_keys.size(); ++j) {
        renewals.push_back(core_->keep_lock(load_keys[j], tokens[j]));
      }
      const bool queued =
          core_->submit_load([self, load_keys, load_flights, tokens, load_batch, use_l2, renewals] {
            self->run_batch_load(load_keys, load_flights, tokens, load_batch, use_l2);
          });
      if (!queued) {
        for (std::size_t j = 0; j < load_keys.size(); ++j) {
          complete(load_keys[j], load_flights[j], closed_result());
        }
      }
    }
    for (std::size_t i : contended) {
      Loader one = [load_batch, key = keys[i]](LoadContext&) {
        return std::move(load_batch(std::vector<std::string>{key})[0]);
      };
      lead(keys[i], std::move(one), ro, flights[i], deadlines(ro, flights[i]->started), nullptr);
    }
  }

  template <class BatchFn>
  void run_batch_load(const std::vector<std::string>& keys,
                      const std::vector<std::shared_ptr<Flight>>& flights,
                      const std::vector<std::string>& tokens, const BatchFn& load_batch,
                      bool use_l2) {
    std::exception_ptr failure;
    Duration took{};
    std::vector<std::optional<V>> loaded =
        call_loader<std::vector<std::optional<V>>>([&] { return load_batch(keys); }, failure, took);
    if (failure) {
      core_->log(LogLevel::kWarning, "batch loader failed");
      for (std::size_t j = 0; j < keys.size(); ++j)
        load_failed(keys[j], flights[j], tokens[j], failure);
    } else {
      std::vector<Prepared> prepared(keys.size());
      std::vector<bool> ready(keys.size(), false);
      std::vector<CacheCore::StoreItem> items;
      std::vector<std::size_t> item_of;
      for (std::size_t j = 0; j < keys.size(); ++j) {
        ready[j] = prepare(keys[j], flights[j], tokens[j], use_l2, std::move(loaded[j]), {},
                           std::nullopt, took, prepared[j]);
        if (ready[j] && !prepared[j].bytes.empty()) {
          item_of.push_back(j);
          items.push_back({keys[j], prepared[j].bytes, prepared[j].redis_ttl, tokens[j]});
        }
      }
      std::vector<StoreResult> stored(keys.size(), StoreResult::kFailed);
      const std::vector<StoreResult> results = core_->store_many(items);
      for (std::size_t n = 0; n < item_of.size(); ++n) stored[item_of[n]] = results[n];
      for (std::size_t j = 0; j < keys.size(); ++j) {
        if (ready[j]) finalize(keys[j], flights[j], std::move(prepared[j]), stored[j]);
      }
    }
  }

  // Calls a user's loader: what it returns, or in `failure` what it threw; its duration goes
  // to `took` and the loader latency histogram.
  template <class T, class Call>
  T call_loader(Call&& call, std::exception_ptr& failure, Duration& took) {
    const auto t0 = std::chrono::steady_clock::now();
    T out{};
    try {
      out = call();
    } catch (...) {
      failure = std::current_exception();
    }
    took = std::chrono::steady_clock::now() - t0;
    core_->metrics().load_latency.observe(took);
    return out;
  }

  // A load that threw: counted, the lock released (waiters elsewhere wake and retry), and the
  // callers get the stale value or the error.
  void load_failed(const std::string& key, const std::shared_ptr<Flight>& flight,
                   const std::string& token, const std::exception_ptr& failure) {
    core_->metrics().loads_error.inc();
    core_->release(key, token);
    fail(key, flight, failure);
  }

  // A lock taken over a value seen stale: if another process stored a fresh value meanwhile
  // (r.locked_value), releases the lock and completes the flight with that value instead of
  // loading again. Returns whether it did.
  bool adopt_fresh(const std::string& key, const std::shared_ptr<Flight>& flight, L2Read& r,
                   const EntryT* refresh_of) {
    if (!r.locked_value || r.tag_invalidated) return false;
    std::optional<EntryT> entry = from_envelope(key, r.envelope);
    if (!entry || entry->fresh_until <= clock_.now()) return false;
    if (refresh_of != nullptr && entry->created_ms <= refresh_of->created_ms) return false;
    core_->release(key, r.token);
    count_l2_hit(*entry);
    complete(key, flight, Result(keep(key, std::move(*entry), flight), Source::kL2, false));
    return true;
  }

  // Runs the loader on the loader pool; its task completes the flight.
  void start_load(const std::string& key, Loader loader, const std::shared_ptr<Flight>& flight,
                  std::string token, bool use_l2) {
    auto self = this->shared_from_this();
    // The lock is renewed from now on, not from when a loader slot frees up: queued behind
    // max_concurrent_loads, the load may start after lock_ttl.
    std::shared_ptr<void> renewal = core_->keep_lock(key, token);
    const bool queued = core_->submit_load(
        [self, key, loader = std::move(loader), flight, token = std::move(token), use_l2,
         renewal = std::move(renewal)] { self->run_load(key, loader, flight, token, use_l2); });
    if (!queued) complete(key, flight, error(CacheErrc::kClosed, "cache shut down"));
  }

  void run_load(const std::string& key, const Loader& loader, const std::shared_ptr<Flight>& flight,
                const std::string& token, bool use_l2) {
    if (core_->closed()) {
      complete(key, flight, error(CacheErrc::kClosed, "cache shut down"));
      return;
    }
    LoadContext context(key);
    std::exception_ptr failure;
    Duration took{};
    std::optional<V> loaded =
        call_loader<std::optional<V>>([&] { return loader(context); }, failure, took);
    if (failure) {
      core_->log(LogLevel::kWarning, "loader failed for " + key_pattern(key));
      load_failed(key, flight, token, failure);
      return;
    }
    finish_load(key, flight, token, use_l2, std::move(loaded), std::move(context.mutable_tags()),
                context.ttl(), took);
  }

  // A loaded entry on its way to L2 and L1.
  struct Prepared {
    EntryT entry;
    std::string bytes;  // the envelope; empty: not for L2
    Duration redis_ttl{};
  };

  // Builds the entry for what a loader returned and its envelope. False if the codec failed
  // (then the flight is already completed by fail-safe or with the error).
  bool prepare(const std::string& key, const std::shared_ptr<Flight>& flight,
               const std::string& token, bool use_l2, std::optional<V> loaded,
               std::vector<std::string>&& tags, std::optional<Duration> chosen_ttl, Duration took,
               Prepared& out) {
    const bool found = loaded.has_value();
    out.entry.value = std::move(loaded);
    out.entry.tags = std::move(tags);
    Duration ttl;
    if (found) {
      core_->metrics().loads_ok.inc();
      ttl = core_->jitter(chosen_ttl.value_or(options_.ttl));
    } else {
      core_->metrics().loads_not_found.inc();
      ttl = core_->jitter(chosen_ttl.value_or(options_.negative_ttl));
    }
    stamp(out.entry, ttl, took);
    out.redis_ttl = found ? ttl + options_.stale_window : ttl;
    if (use_l2 && core_->has_l2()) {
      try {
        out.bytes = to_envelope(key, out.entry);
      } catch (...) {
        core_->release(key, token);
        core_->log(LogLevel::kError, "value of " + key_pattern(key) + " cannot be encoded");
        fail(key, flight, std::current_exception(), CacheErrc::kEncodeFailed);
        return false;
      }
    } else {
      core_->release(key, token);
    }
    return true;
  }

  // Puts a stored (or not) entry in L1 and completes the flight with it.
  void finalize(const std::string& key, const std::shared_ptr<Flight>& flight, Prepared&& p,
                StoreResult stored) {
    // A lost lock means a write or invalidation came during the load: the value may be old.
    const bool keep_in_l1 =
        stored != StoreResult::kLockLost && !flight->invalidated.load(std::memory_order_acquire);
    Cached<EntryT> handle =
        keep_in_l1 ? store_l1(key, std::move(p.entry)) : l1_.wrap(key, std::move(p.entry));
    complete(key, flight, Result(std::move(handle), Source::kLoader, false));
  }

  void finish_load(const std::string& key, const std::shared_ptr<Flight>& flight,
                   const std::string& token, bool use_l2, std::optional<V> loaded,
                   std::vector<std::string> tags, std::optional<Duration> chosen_ttl,
                   Duration took) {
    Prepared p;
    if (!prepare(key, flight, token, use_l2, std::move(loaded), std::move(tags), chosen_ttl, took,
                 p)) {
      return;
    }
    const StoreResult stored =
        p.bytes.empty() ? StoreResult::kFailed : core_->store(key, p.bytes, p.redis_ttl, token);
    finalize(key, flight, std::move(p), stored);
  }

  // The loader (or the codec) failed: fail-safe serves the stale candidate, else the error.
  static std::shared_ptr<const CacheError> encode_error(const std::string& key,
                                                        std::exception_ptr e) {
    auto err = std::make_shared<CacheError>();
    err->code = CacheErrc::kEncodeFailed;
    err->message = "value of " + key_pattern(key) +
                   " cannot be stored: the codec failed or it exceeds the envelope's limits";
    err->exception = std::move(e);
    return err;
  }

  void fail(const std::string& key, const std::shared_ptr<Flight>& flight,
            std::exception_ptr failure, CacheErrc code = CacheErrc::kLoaderFailed) {
    Result stale;
    {
      std::lock_guard lock(flight->mutex);
      stale = flight->stale;
    }
    if (stale.has_value() && options_.stale_window > Duration::zero()) {
      // A failed early refresh leaves the current entry in L1 as it is.
      complete(key, flight, flight->refresh ? stale : throttle_stale(key, stale, flight));
      return;
    }
    if (code == CacheErrc::kEncodeFailed) {
      complete(key, flight, Result(encode_error(key, failure)));
      return;
    }
    complete(key, flight, error(code, "loader failed for " + key_pattern(key), failure));
  }

  // Keeps serving a stale value for fail_safe_throttle, so the failing database is not asked
  // again at once by every caller. (Needs a copy of V: without one, the value is served once.)
  Result throttle_stale(const std::string& key, const Result& stale,
                        const std::shared_ptr<Flight>& flight) {
    if constexpr (std::is_copy_constructible_v<V>) {
      if (!flight->invalidated.load(std::memory_order_acquire)) {
        EntryT copy;
        copy.value.emplace(*stale);
        copy.created_ms = stale.entry_->created_ms;
        copy.tags = stale.entry_->tags;
        copy.stale = true;
        const TimePoint now = clock_.now();
        copy.fresh_until = stale.entry_->fresh_until;
        copy.stored_at = now;
        copy.l1_fresh_until = now + options_.fail_safe_throttle;
        return Result(l1_.insert(key, std::move(copy), options_.fail_safe_throttle), stale.source(),
                      true);
      }
    }
    return stale;
  }

  void refresh_in_background(const std::string& key, Loader loader, const Cached<EntryT>& current) {
    core_->metrics().early_refreshes.inc();
    auto self = this->shared_from_this();
    core_->submit_background([self, key, loader = std::move(loader), current] {
      // The current entry is the stale candidate of whoever joins the refresh after it expired.
      self->resolve(key, loader, ReadOptions{}, Result(current, Source::kL1, true), current.get());
    });
  }

  // ---- entries ------------------------------------------------------------------------------

  // Sets created/fresh times of a new entry whose logical TTL is `ttl`.
  void stamp(EntryT& entry, Duration ttl, Duration load_time) {
    const TimePoint now = clock_.now();
    entry.created_ms = core_->to_wall_ms(now);
    entry.fresh_until = now + ttl;
    entry.l1_fresh_until = std::min(entry.fresh_until, now + options_.l1_max_ttl);
    entry.stored_at = now;
    entry.load_time = load_time;
  }

  std::string to_envelope(const std::string& key, const EntryT& entry) {
    EnvelopeMeta meta;
    meta.negative = !entry.value.has_value();
    meta.codec = C::kId;
    meta.created_ms = entry.created_ms;
    meta.fresh_until_ms = core_->to_wall_ms(entry.fresh_until);
    meta.load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(entry.load_time).count();
    meta.tags = entry.tags;
    std::string payload;
    if (entry.value) C::template encode<V>(*entry.value, payload);
    return core_->encode(meta, payload, key);
  }

  // Decodes an L2 envelope; nullopt (and a corrupt count) if the payload does not decode.
  std::optional<EntryT> from_envelope(const std::string& key, const DecodedEnvelope& envelope) {
    EntryT entry;
    if (!envelope.meta.negative) {
      if (envelope.meta.codec != C::kId) {
        core_->metrics().l2_corrupt.inc();
        core_->log(LogLevel::kWarning, "L2 entry of " + key_pattern(key) +
                                           " was written with another codec: treated as a miss");
        return std::nullopt;
      }
      try {
        entry.value.emplace(C::template decode<V>(envelope.payload));
      } catch (...) {
        core_->metrics().l2_corrupt.inc();
        core_->log(LogLevel::kWarning,
                   "L2 entry of " + key_pattern(key) + " does not decode: treated as a miss");
        return std::nullopt;
      }
    }
    const TimePoint now = clock_.now();
    entry.created_ms = envelope.meta.created_ms;
    entry.fresh_until = core_->from_wall_ms(envelope.meta.fresh_until_ms);
    entry.l1_fresh_until = std::min(entry.fresh_until, now + options_.l1_max_ttl);
    entry.stored_at = now;
    entry.load_time = std::chrono::milliseconds(envelope.meta.load_ms);
    entry.tags = envelope.meta.tags;
    entry.tags_checked.store(core_->tag_generation(), std::memory_order_relaxed);
    return entry;
  }

  void count_l2_hit(const EntryT& entry) {
    if (entry.value) {
      core_->metrics().l2_hits.inc();
    } else {
      core_->metrics().l2_negative_hits.inc();
    }
  }

  // Puts an entry in L1 for as long as it may serve: fresh, then stale for fail-safe.
  Cached<EntryT> store_l1(const std::string& key, EntryT entry) {
    const TimePoint now = clock_.now();
    Duration lifetime = entry.l1_fresh_until - now;
    if (entry.value && !entry.stale) {
      lifetime = std::max(lifetime, entry.fresh_until + options_.stale_window - now);
    }
    if (lifetime <= Duration::zero()) return l1_.wrap(key, std::move(entry));
    return l1_.insert(key, std::move(entry), lifetime);
  }

  Cached<EntryT> keep(const std::string& key, EntryT entry, const std::shared_ptr<Flight>& flight) {
    if (flight->invalidated.load(std::memory_order_acquire)) return l1_.wrap(key, std::move(entry));
    return store_l1(key, std::move(entry));
  }

  void drop_local(const std::string& key) {
    mark_flight_invalidated(key);
    l1_.erase(key);
  }
  void drop_all_local() {
    {
      std::lock_guard lock(flights_mutex_);
      for (auto& [k, f] : flights_) f->invalidated.store(true, std::memory_order_release);
    }
    l1_.clear();
  }

  const std::shared_ptr<CacheCore> core_;
  const CacheOptions& options_;
  const Clock& clock_;
  LocalCache<std::string, EntryT> l1_;
  std::mutex flights_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>, StringHash, std::equal_to<>> flights_;
};

}  // namespace tiercache::detail
