// CacheImpl<V, C>: the typed half of Cache<V> -- L1, single-flight, the read path, the codec.
// The untyped half (L2 protocol, bus, loader pool, metrics) is CacheCore.
//
// The read path (docs/read-through.md):
//   1. L1. A fresh entry is returned as is (no copy, no decode). Past its early-refresh point
//      (XFetch) it is returned and a background refresh starts (once per entry). Past its L1
//      freshness -- logical expiry, l1_max_ttl, a tag invalidated after it was created, or the
//      bus down for longer than disconnected_l1_ttl -- it becomes the *stale candidate* and
//      the read goes on as a miss.
//   2. Single-flight (flight.hpp): the first caller for a key leads a Flight; the others wait
//      on it.
//   3. The leader runs CacheCore::read_or_lock: the L2 entry if fresh (decoded once, put in
//      L1); else the lock. A stale L2 entry becomes the stale candidate and the leader asks
//      for the lock alone.
//   4. Lock held (or L2 unavailable): the load runs on the loader pool (bounded: the DB's
//      protection). It stores the result in L2 (if the lock is still ours), then L1, and
//      completes the flight. Lock contended: the leader waits for the holder's fill message
//      or the lock's expiry, and reads again (taking the lock over if the holder vanished).
//   5. Every caller waits on the flight with its own deadlines, counted from its call: at the
//      soft timeout it takes the stale candidate if there is one; at the hard timeout it takes
//      the stale candidate or gets kLoaderTimeout. A load that outlives its callers still
//      stores its result, unless it ran past max_load_time (then it is abandoned).
//
// The one invalidation rule (invalidation_epochs.hpp, docs/invalidation.md) is applied in
// `current()` and `keep()` only: every value carries the epoch noted when its read of the
// source began (L2 GET, loader call); it is stored in L2 or L1, handed to a caller who arrived
// after its read began, or served as stale, only if no invalidation that could cover it came
// since. Fail-safe serves values that expired or whose tag was invalidated (stale, not gone),
// never values that a key invalidation, a write or a clear() removed.
//
// Lifetime: Cache<V> owns a shared_ptr to its CacheImpl; loads and background refreshes hold
// references too, so they may finish after the Cache is gone (their results are dropped).

#pragma once

#include <algorithm>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
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
#include <utility>
#include <vector>

#include "tiercache/cache_result.hpp"
#include "tiercache/codec.hpp"
#include "tiercache/detail/cache_core.hpp"
#include "tiercache/detail/flight.hpp"
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
// A caller handed a value that an invalidation it arrived after covers reads again; after this
// many such rounds it leads a flight of its own (whose value it may always take).
inline constexpr int kMaxJoinAttempts = 3;

using SteadyTime = std::chrono::steady_clock::time_point;

// An asynchronous read's handler, called exactly once: with complete()'s result, or, if the
// read is dropped before it completes (its task discarded at shutdown), with `if_dropped`.
// The handler runs on its executor (dispatched).
template <class V, class Handler, class Executor>
class PendingRead {
 public:
  PendingRead(Handler handler, Executor ex, CacheResult<V> if_dropped)
      : handler_(std::move(handler)), ex_(std::move(ex)), if_dropped_(std::move(if_dropped)) {}
  ~PendingRead() {
    if (handler_) deliver(std::move(if_dropped_), /*posted=*/true);
  }
  PendingRead(const PendingRead&) = delete;
  PendingRead& operator=(const PendingRead&) = delete;

  // From a pool thread: dispatched. From the initiating call (posted = true): posted, so the
  // handler never runs inside the async_* call that started it.
  void complete(CacheResult<V> result, bool posted = false) {
    if (handler_) deliver(std::move(result), posted);
  }

 private:
  void deliver(CacheResult<V> result, bool posted) {
    auto run = [handler = std::move(*handler_), r = std::move(result)]() mutable {
      std::move(handler)(std::move(r));
    };
    handler_.reset();
    if (posted) {
      asio::post(ex_, std::move(run));
    } else {
      asio::dispatch(ex_, std::move(run));
    }
  }

  std::optional<Handler> handler_;
  Executor ex_;
  CacheResult<V> if_dropped_;
};

template <class V, class C>
class CacheImpl : public std::enable_shared_from_this<CacheImpl<V, C>> {
 public:
  using Result = CacheResult<V>;
  using EntryT = Entry<V>;
  using Loader = std::function<std::optional<V>(LoadContext&)>;
  using SteadyTime = std::chrono::steady_clock::time_point;
  using Epoch = InvalidationEpochs::Epoch;

  CacheImpl(CacheOptions options, std::shared_ptr<redis::Client> client)
      : core_(std::make_shared<CacheCore>(normalize(std::move(options)), std::move(client))),
        options_(core_->options()),
        clock_(core_->clock()),
        l1_(l1_options(options_)) {}

  ~CacheImpl() { shutdown(); }

  void start() {
    std::weak_ptr<CacheImpl> weak = this->weak_from_this();
    CacheCore::Hooks hooks;
    // Called under an invalidation epoch bump (cache_core.hpp, Hooks).
    hooks.drop_key = [weak](std::string_view key) {
      if (auto self = weak.lock()) self->l1_.erase(std::string(key));
    };
    hooks.drop_all = [weak] {
      if (auto self = weak.lock()) self->l1_.clear();
    };
    core_->start(std::move(hooks));
  }

  // Stops background work; callers waiting on flights get kClosed now, not at their timeouts.
  void shutdown() {
    core_->close();
    for (auto& [key, flight] : flights_.take_all()) complete(key, flight, closed_result());
    core_->shutdown();
    // Flights begun meanwhile, whose loads the stopped pool dropped.
    for (auto& [key, flight] : flights_.take_all()) complete(key, flight, closed_result());
  }

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
    const ReadStart start = core_->begin_read();
    if (!start.version) return Result();
    L2Read r = core_->read(key, *start.version);
    hook("get:l2_read", key);
    if (r.kind != L2Read::Kind::kValue) {
      if (r.kind == L2Read::Kind::kMiss) core_->metrics().l2_misses.inc();
      return Result();
    }
    std::optional<EntryT> entry = from_envelope(key, r, start.epoch);
    if (!entry || r.tag_invalidated || entry->fresh_until <= clock_.now()) {
      core_->metrics().l2_misses.inc();
      return Result();
    }
    count_l2_hit(*entry);
    return Result(keep(key, std::move(*entry)), Source::kL2, false);
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

  // `call_start`: when the caller's call began (its deadlines count from it); default: now.
  template <class F>
  Result get_or_load(const std::string& key, F&& loader, const ReadOptions& ro,
                     std::optional<SteadyTime> call_start = std::nullopt) {
    const bool sample = sample_latency();
    const auto t0 = sample ? std::chrono::steady_clock::now() : SteadyTime();
    // Noted before the lookup: a copy found is valid as of this epoch (invalidations drop L1
    // copies under their bump).
    const Epoch arrived = core_->epochs().now();
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
            refresh_in_background(key, adapt(std::forward<F>(loader)), e, arrived);
          }
          return l1_hit(std::move(e));
        case Verdict::kServeStale:
          return l1_stale_hit(std::move(e));
        case Verdict::kStale:
          stale = stale_candidate(std::move(e));
          break;
      }
    }
    core_->metrics().l1_misses.inc();
    const SteadyTime started = call_start.value_or(std::chrono::steady_clock::now());
    return resolve(key, adapt(std::forward<F>(loader)), ro, std::move(stale), nullptr, started,
                   arrived);
  }

  // A fresh L1 hit, or a miss (nothing counted for a miss: the caller goes on to get_or_load).
  Result try_l1(const std::string& key) {
    Cached<EntryT> e = l1_.get(key);
    if (e.found() && judge(*e, clock_.now()) == Verdict::kFresh) return l1_hit(std::move(e));
    return Result();
  }

  static Result closed_result() { return error(CacheErrc::kClosed, "cache shut down"); }
  static Result overloaded_result() {
    return error(CacheErrc::kOverloaded,
                 "too many asynchronous reads waiting (CacheOptions::max_queued_async_reads)");
  }

  // A place among the asynchronous reads in progress (missed L1, not completed); false when
  // max_queued_async_reads are. Each true is matched by one release_async_read().
  bool reserve_async_read() {
    if (queued_async_reads_.fetch_add(1, std::memory_order_acq_rel) >=
        options_.max_queued_async_reads) {
      queued_async_reads_.fetch_sub(1, std::memory_order_acq_rel);
      return false;
    }
    return true;
  }
  void release_async_read() { queued_async_reads_.fetch_sub(1, std::memory_order_acq_rel); }

  // get_or_load of several keys (cache_impl_batch.hpp).
  template <class F>
  std::vector<Result> get_or_load_many(const std::vector<std::string>& keys, F&& batch,
                                       const ReadOptions& ro);

  // ---- writes -------------------------------------------------------------------------------

  WriteResult set(const std::string& key, V value, const WriteOptions& wo) {
    WriteResult out;
    EntryT entry;
    entry.value.emplace(std::move(value));
    entry.tags = wo.tags.empty() && wo.keep_tags ? tags_of_current(key, wo.skip_l2) : wo.tags;
    const Duration ttl = core_->jitter(wo.ttl.value_or(options_.ttl));
    stamp(entry, ttl, Duration::zero(), core_->wall_ms());
    std::string bytes;
    const bool to_l2 = core_->has_l2() && !wo.skip_l2;
    if (to_l2) {
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
    // L2 first, then the epoch bump with the new value put in L1 under it: a read that began
    // before the write stores nothing, one that begins after it reads the new value.
    const bool written = core_->write(key, bytes, ttl + options_.stale_window, [&](Epoch epoch) {
      entry.read_epoch = epoch;
      store_l1(key, std::move(entry));
    });
    if (to_l2) {
      out.l2_written = written;
      if (!written) {
        auto err = std::make_shared<CacheError>();
        err->code = CacheErrc::kL2Unreachable;
        err->message = "the new value of " + key_pattern(key) +
                       " is in this process but Redis could not be told: other processes may "
                       "serve the old value until their copies expire";
        out.error = std::move(err);
      }
    }
    return out;
  }

  // L2 first, then the epoch bump with this process's L1 copy dropped under it.
  bool invalidate(const std::string& key) { return core_->invalidate(key); }

  bool invalidate_tag(const std::string& tag) { return core_->invalidate_tag(tag); }

  // The version, then the epoch bump with L1 dropped under it.
  bool clear() { return core_->clear(); }

  // ---- observability ------------------------------------------------------------------------

  void collect(PrometheusText& text) const { core_->collect(text, l1_.stats(), l1_.size()); }
  CacheCore& core() { return *core_; }
  LocalCache<std::string, EntryT>& l1() { return l1_; }

 private:
  enum class Verdict { kFresh, kRefresh, kServeStale, kStale };
  using FlightT = Flight<V>;
  using FlightPtr = std::shared_ptr<FlightT>;

  static CacheOptions normalize(CacheOptions o) {
    if (!o.clock) o.clock = default_clock();
    o.l1.clock = o.clock;
    if (!o.l1.seed && o.seed) o.l1.seed = o.seed;
    if (o.max_load_time <= Duration::zero()) o.max_load_time = std::chrono::seconds(60);
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

  void hook(std::string_view point, std::string_view key) const {
    if (options_.test_hook) options_.test_hook(point, key);
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
      // Noted before the check: a tag invalidation arriving during it is checked next time.
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

  // ---- the one invalidation rule ------------------------------------------------------------

  // Whether no invalidation that could cover `entry` (its key, its tags, everything) came since
  // its read began.
  bool current(const std::string& key, const EntryT& entry) const {
    return !core_->epochs().covered_since(key, entry.tags, entry.read_epoch);
  }

  // Puts `entry` in L1 if current(), atomically with respect to invalidations; either way
  // returns a handle to it.
  Cached<EntryT> keep(const std::string& key, EntryT entry) {
    Cached<EntryT> out;
    const bool kept = core_->epochs().store_if_current(
        key, entry.tags, entry.read_epoch, [&] { out = store_l1(key, std::move(entry)); });
    if (!kept) return l1_.wrap(key, std::move(entry));
    return out;
  }

  // ---- single-flight ------------------------------------------------------------------------

  void complete(const std::string& key, const FlightPtr& flight, Result result) {
    // Out of the map first: a caller woken below may ask again at once, and must then start
    // a new flight rather than join this finished one.
    flights_.remove(key, flight);
    {
      std::lock_guard lock(flight->mutex);
      if (flight->done) return;
      flight->done = true;
      flight->result = std::move(result);
    }
    flight->cv.notify_all();
  }

  // Stale candidates. Fail-safe may serve a value that expired, or whose tag was invalidated
  // (a soft invalidation: stale, not gone); never one that a key invalidation, a write or a
  // clear() removed after `epoch`, the epoch as of which the candidate was valid.
  bool removed_since(const std::string& key, Epoch epoch) const {
    return core_->epochs().removed_since(key, epoch);
  }

  // An L1 entry judged stale, as a stale candidate (valid as of the epoch noted before the
  // lookup that found it).
  static Result stale_candidate(Cached<EntryT> e) {
    if (!e->value) return Result();
    return Result(std::move(e), Source::kL1, true);
  }

  // Offers a stale candidate valid as of `epoch`. Replaces a candidate removed since.
  void offer_stale(const std::string& key, const FlightPtr& flight, const Result& stale,
                   Epoch epoch) {
    if (!stale.has_value() || removed_since(key, epoch)) return;
    {
      std::lock_guard lock(flight->mutex);
      if (current_stale(key, *flight).has_value()) return;
      flight->stale = stale;
      flight->stale_epoch = epoch;
    }
    flight->cv.notify_all();
  }

  // The flight's stale candidate unless it was removed since. REQUIRES: flight->mutex held.
  Result current_stale(const std::string& key, const FlightT& flight) const {
    if (!flight.stale.has_value() || removed_since(key, flight.stale_epoch)) return Result();
    return flight.stale;
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
  // deadline, the stale candidate or kLoaderTimeout. nullopt: the result is a value whose read
  // began before the caller arrived (`arrived`) and that an invalidation covers: the caller
  // must read again.
  std::optional<Result> wait(const std::string& key, const FlightPtr& flight, Deadlines d,
                             Epoch arrived) {
    std::unique_lock lock(flight->mutex);
    while (!flight->done) {
      const SteadyTime now = std::chrono::steady_clock::now();
      Result stale = current_stale(key, *flight);
      const bool has_stale = stale.has_value();
      if (has_stale && now >= d.soft) return serve_stale(std::move(stale));
      if (now >= d.hard) {
        if (!flight->timeout_counted) {
          flight->timeout_counted = true;
          core_->metrics().loads_timeout.inc();
        }
        if (has_stale) return serve_stale(std::move(stale));
        return error(CacheErrc::kLoaderTimeout, "no answer within the hard timeout");
      }
      flight->cv.wait_until(lock, has_stale ? std::min(d.soft, d.hard) : d.hard);
    }
    const Result& r = flight->result;
    if (r.entry_.found()) {
      // A stale value (fail-safe) removed since is served to no one; a value whose read began
      // before this caller arrived, and that an invalidation covers, not to this caller.
      if (r.is_stale()) {
        if (removed_since(key, flight->stale_epoch)) return std::nullopt;
      } else if (r.entry_->read_epoch < arrived && !current(key, *r.entry_)) {
        return std::nullopt;
      }
    }
    if (r.is_stale()) core_->metrics().stale_served.inc();
    return r;
  }

  Result serve_stale(Result stale) {
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
  // `first_arrival`: the epoch noted before the caller's L1 lookup; the stale candidate is
  // valid as of it.
  Result resolve(const std::string& key, Loader loader, const ReadOptions& ro, Result stale,
                 const EntryT* refresh_of, SteadyTime call_start, Epoch first_arrival) {
    if (core_->closed()) return closed_result();
    const Deadlines d = deadlines(ro, call_start);
    for (int attempt = 1;; ++attempt) {
      const Epoch arrived = attempt == 1 ? first_arrival : core_->epochs().now();
      bool leader = false;
      FlightPtr flight = flights_.join(key, core_->epochs(), arrived, options_.max_load_time,
                                       attempt >= kMaxJoinAttempts, leader);
      if (!leader) {
        if (refresh_of != nullptr) return Result();  // a load is already running
        core_->metrics().coalesced_waits.inc();
        offer_stale(key, flight, stale, first_arrival);
        std::optional<Result> r = wait(key, flight, d, arrived);
        if (r) return std::move(*r);
        continue;  // its value predates an invalidation this caller arrived after
      }
      flight->refresh = refresh_of != nullptr;
      offer_stale(key, flight, stale, first_arrival);
      lead(key, std::move(loader), ro, flight, d, refresh_of);
      if (refresh_of != nullptr) return Result();
      std::optional<Result> r = wait(key, flight, d, arrived);
      if (r) return std::move(*r);
      // Only a stale value invalidated while it waited: nothing else to give.
      return error(CacheErrc::kLoaderTimeout, "the load of " + key_pattern(key) +
                                                  " failed and its stale value was invalidated");
    }
  }

  void lead(const std::string& key, Loader loader, const ReadOptions& ro, const FlightPtr& flight,
            Deadlines d, const EntryT* refresh_of) {
    if (!core_->has_l2() || ro.skip_l2) {
      start_load(key, std::move(loader), flight, std::string(), 0);
      return;
    }
    const std::unique_ptr<CacheCore::FillWait> fills = core_->watch_fills(key);
    bool ignore_value = false;
    bool contended = false;
    bool woken = true;
    while (true) {
      const ReadStart start = core_->begin_read();
      L2Read r;
      if (start.version) r = core_->read_or_lock(key, ignore_value, *start.version);
      hook("lead:l2_read", key);
      switch (r.kind) {
        case L2Read::Kind::kValue: {
          std::optional<EntryT> entry = from_envelope(key, r, start.epoch);
          if (!entry) {  // undecodable for this codec: as absent
            ignore_value = true;
            continue;
          }
          const bool newer = refresh_of == nullptr || entry->created_ms > refresh_of->created_ms;
          if (!r.tag_invalidated && entry->fresh_until > clock_.now() && newer) {
            count_l2_hit(*entry);
            complete(key, flight, Result(keep(key, std::move(*entry)), Source::kL2, false));
            return;
          }
          core_->metrics().l2_stale.inc();
          if (entry->value && refresh_of == nullptr) {
            offer_stale(key, flight, Result(l1_.wrap(key, std::move(*entry)), Source::kL2, true),
                        start.epoch);
          }
          ignore_value = true;
          continue;
        }
        case L2Read::Kind::kMiss:
          core_->metrics().l2_misses.inc();
          ignore_value = true;
          continue;
        case L2Read::Kind::kLocked:
          if (adopt_fresh(key, flight, r, refresh_of, start)) return;
          core_->metrics().lock_acquired.inc();
          if (contended && !woken) core_->metrics().lock_taken_over.inc();
          if (!contended) core_->metrics().l2_misses.inc();
          start_load(key, std::move(loader), flight, std::move(r.token), *start.version);
          return;
        case L2Read::Kind::kContended: {
          if (!contended) core_->metrics().lock_contended.inc();
          contended = true;
          bool has_stale;
          {
            std::lock_guard lock(flight->mutex);
            has_stale = current_stale(key, *flight).has_value();
          }
          const SteadyTime limit = has_stale ? std::min(d.soft, d.hard) : d.hard;
          const SteadyTime now = std::chrono::steady_clock::now();
          if (now >= limit) {
            Result out;
            {
              std::lock_guard lock(flight->mutex);
              out = current_stale(key, *flight);
              if (!out.has_value()) {
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
            complete(key, flight, closed_result());
            return;
          }
          ignore_value = false;
          continue;
        }
        case L2Read::Kind::kUnavailable:
          // Redis down or slow: load without the cross-process lock (single-flight still
          // holds in this process) and do not store in L2.
          start_load(key, std::move(loader), flight, std::string(), 0);
          return;
      }
    }
  }

  // A lock taken over a value seen stale: if another process stored a fresh value meanwhile
  // (r.locked_value), releases the lock and completes the flight with that value instead of
  // loading again. Returns whether it did.
  bool adopt_fresh(const std::string& key, const FlightPtr& flight, L2Read& r,
                   const EntryT* refresh_of, const ReadStart& start) {
    if (!r.locked_value || r.tag_invalidated) return false;
    std::optional<EntryT> entry = from_envelope(key, r, start.epoch);
    if (!entry || entry->fresh_until <= clock_.now()) return false;
    if (refresh_of != nullptr && entry->created_ms <= refresh_of->created_ms) return false;
    core_->release(key, r.token, *start.version);
    count_l2_hit(*entry);
    complete(key, flight, Result(keep(key, std::move(*entry)), Source::kL2, false));
    return true;
  }

  // ---- loads --------------------------------------------------------------------------------

  // Runs the loader on the loader pool; its task completes the flight. `token`: the stampede
  // lock under namespace `version` (empty: no lock, nothing stored in L2).
  void start_load(const std::string& key, Loader loader, const FlightPtr& flight, std::string token,
                  std::uint64_t version) {
    auto self = this->shared_from_this();
    // The lock is renewed from now on, not from when a loader slot frees up: queued behind
    // max_concurrent_loads, the load may start after lock_ttl.
    std::shared_ptr<void> renewal = core_->keep_lock(key, token, version);
    const bool queued = core_->submit_load(
        [self, key, loader = std::move(loader), flight, token = std::move(token), version,
         renewal = std::move(renewal)] { self->run_load(key, loader, flight, token, version); });
    if (!queued) complete(key, flight, closed_result());
  }

  void run_load(const std::string& key, const Loader& loader, const FlightPtr& flight,
                const std::string& token, std::uint64_t version) {
    if (core_->closed()) {
      complete(key, flight, closed_result());
      return;
    }
    LoadContext context(key);
    std::exception_ptr failure;
    Duration took{};
    flight->mark_load_started();  // max_load_time counts from here, not from the queue
    const ReadStart start = core_->begin_read(/*want_l2=*/false);  // the database read begins
    std::optional<V> loaded =
        call_loader<std::optional<V>>([&] { return loader(context); }, failure, took);
    hook("load:done", key);
    if (failure) {
      core_->log(LogLevel::kWarning, "loader failed for " + key_pattern(key));
      load_failed(key, flight, token, version, failure);
      return;
    }
    Prepared p;
    if (!prepare(key, flight, token, version, std::move(loaded), std::move(context.mutable_tags()),
                 context.ttl(), took, start, p)) {
      return;
    }
    const StoreResult stored = p.bytes.empty()
                                   ? StoreResult::kFailed
                                   : core_->store(key, p.bytes, p.redis_ttl, token, version);
    finalize(key, flight, std::move(p), stored);
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
  void load_failed(const std::string& key, const FlightPtr& flight, const std::string& token,
                   std::uint64_t version, const std::exception_ptr& failure) {
    core_->metrics().loads_error.inc();
    core_->release(key, token, version);
    fail(key, flight, failure);
  }

  // A loaded entry on its way to L2 and L1.
  struct Prepared {
    EntryT entry;
    std::string bytes;  // the envelope; empty: not for L2
    Duration redis_ttl{};
  };

  // Builds the entry for what a loader returned (read at `start`) and, if it holds the lock
  // and no invalidation covers it (current()), its envelope; else the lock is released. False
  // if the codec failed (then the flight is already completed by fail-safe or with the error).
  bool prepare(const std::string& key, const FlightPtr& flight, const std::string& token,
               std::uint64_t version, std::optional<V> loaded, std::vector<std::string>&& tags,
               std::optional<Duration> chosen_ttl, Duration took, const ReadStart& start,
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
    stamp(out.entry, ttl, took, start.wall_ms);
    out.entry.read_epoch = start.epoch;
    out.redis_ttl = found ? ttl + options_.stale_window : ttl;
    // L2 is decided by the lock (exact: every write or key invalidation, anywhere, deletes it;
    // tags are decided by created_ms, clear() by the version); L1 by current() in finalize().
    const bool storable = !token.empty() && !flight->load_overdue(options_.max_load_time);
    if (storable) {
      try {
        out.bytes = to_envelope(key, out.entry);
      } catch (...) {
        core_->release(key, token, version);
        core_->log(LogLevel::kError, "value of " + key_pattern(key) + " cannot be encoded");
        fail(key, flight, std::current_exception(), CacheErrc::kEncodeFailed);
        return false;
      }
    } else {
      core_->release(key, token, version);
    }
    return true;
  }

  // Puts a stored (or not) entry in L1 and completes the flight with it. An abandoned load
  // (past max_load_time) or one whose lock was lost (a write or invalidation came) is not kept.
  void finalize(const std::string& key, const FlightPtr& flight, Prepared&& p, StoreResult stored) {
    const bool keep_in_l1 =
        stored != StoreResult::kLockLost && !flight->load_overdue(options_.max_load_time);
    Cached<EntryT> handle =
        keep_in_l1 ? keep(key, std::move(p.entry)) : l1_.wrap(key, std::move(p.entry));
    complete(key, flight, Result(std::move(handle), Source::kLoader, false));
  }

  static std::shared_ptr<const CacheError> encode_error(const std::string& key,
                                                        std::exception_ptr e) {
    auto err = std::make_shared<CacheError>();
    err->code = CacheErrc::kEncodeFailed;
    err->message = "value of " + key_pattern(key) +
                   " cannot be stored: the codec failed or it exceeds the envelope's limits";
    err->exception = std::move(e);
    return err;
  }

  // The loader (or the codec) failed: fail-safe serves the stale candidate, else the error.
  void fail(const std::string& key, const FlightPtr& flight, std::exception_ptr failure,
            CacheErrc code = CacheErrc::kLoaderFailed) {
    Result stale;
    Epoch stale_epoch = 0;
    {
      std::lock_guard lock(flight->mutex);
      stale = current_stale(key, *flight);
      stale_epoch = flight->stale_epoch;
    }
    if (stale.has_value() && options_.stale_window > Duration::zero()) {
      // A failed early refresh leaves the current entry in L1 as it is; so does an abandoned
      // load (a newer flight may have stored a fresh value since).
      const bool leave_l1 = flight->refresh || flight->load_overdue(options_.max_load_time);
      complete(key, flight, leave_l1 ? stale : throttle_stale(key, stale, stale_epoch));
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
  Result throttle_stale(const std::string& key, const Result& stale, Epoch stale_epoch) {
    if constexpr (std::is_copy_constructible_v<V>) {
      EntryT copy;
      copy.value.emplace(*stale);
      copy.created_ms = stale.entry_->created_ms;
      copy.tags = stale.entry_->tags;
      copy.read_epoch = stale_epoch;
      copy.stale = true;
      const TimePoint now = clock_.now();
      copy.fresh_until = stale.entry_->fresh_until;
      copy.stored_at = now;
      copy.l1_fresh_until = now + options_.fail_safe_throttle;
      Cached<EntryT> out;
      static const std::vector<std::string> kNoTags;  // a tag-stale value may serve as stale
      const bool kept = core_->epochs().store_if_current(key, kNoTags, copy.read_epoch, [&] {
        out = l1_.insert(key, std::move(copy), options_.fail_safe_throttle);
      });
      if (kept) return Result(std::move(out), stale.source(), true);
    }
    return stale;
  }

  // `looked`: the epoch noted before the lookup that found `current`.
  void refresh_in_background(const std::string& key, Loader loader, const Cached<EntryT>& current,
                             Epoch looked) {
    core_->metrics().early_refreshes.inc();
    auto self = this->shared_from_this();
    core_->submit_background([self, key, loader = std::move(loader), current, looked] {
      // The current entry is the stale candidate of whoever joins the refresh after it expired.
      self->resolve(key, loader, ReadOptions{}, Result(current, Source::kL1, true), current.get(),
                    std::chrono::steady_clock::now(), looked);
    });
  }

  // ---- entries ------------------------------------------------------------------------------

  // The tags of the entry a write replaces: this process's L1 copy's, else the L2 entry's
  // (whatever its freshness), else none.
  std::vector<std::string> tags_of_current(const std::string& key, bool skip_l2) {
    if (Cached<EntryT> e = l1_.get(key); e.found()) return e->tags;
    if (skip_l2 || !core_->has_l2()) return {};
    const ReadStart start = core_->begin_read();
    if (!start.version) return {};
    L2Read r = core_->read(key, *start.version);
    if (r.kind != L2Read::Kind::kValue) return {};
    return std::move(r.envelope.meta.tags);
  }

  // Sets the times of a new entry whose logical TTL is `ttl`, whose read began at `created_ms`.
  void stamp(EntryT& entry, Duration ttl, Duration load_time, std::int64_t created_ms) {
    const TimePoint now = clock_.now();
    entry.created_ms = created_ms;
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

  // Decodes an L2 entry read at `read_epoch`; nullopt (and a corrupt count) if the payload does
  // not decode.
  std::optional<EntryT> from_envelope(const std::string& key, const L2Read& read,
                                      Epoch read_epoch) {
    const DecodedEnvelope& envelope = read.envelope;
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
    entry.read_epoch = read_epoch;
    // The generation its tags were checked against, noted before that check.
    entry.tags_checked.store(read.tag_generation, std::memory_order_relaxed);
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

  const std::shared_ptr<CacheCore> core_;
  const CacheOptions& options_;
  const Clock& clock_;
  LocalCache<std::string, EntryT> l1_;
  FlightMap<V> flights_;
  std::atomic<std::uint32_t> queued_async_reads_{0};

  // ---- get_or_load_many (cache_impl_batch.hpp) ----------------------------------------------
  using BatchFn = std::function<std::vector<std::optional<V>>(const std::vector<std::string>&)>;
  void lead_many(const std::vector<std::string>& keys, const std::vector<std::size_t>& led,
                 const std::vector<FlightPtr>& flights, const BatchFn& load_batch,
                 const ReadOptions& ro, Deadlines d);
  void run_batch_load(const std::vector<std::string>& keys, const std::vector<FlightPtr>& flights,
                      const std::vector<std::string>& tokens, std::uint64_t version,
                      const BatchFn& load_batch);
  // A one-key loader that asks `load_batch` for `key` alone.
  static Loader one_key(const BatchFn& load_batch, const std::string& key) {
    return [load_batch, key](LoadContext&) {
      return std::move(load_batch(std::vector<std::string>{key})[0]);
    };
  }
};

}  // namespace tiercache::detail

#include "tiercache/detail/cache_impl_batch.hpp"
