// CacheImpl<V, C>::get_or_load_many: the read path of cache_impl.hpp for several keys at once.
// L1 first; the keys this call leads then share one pipelined read-or-lock round trip, one
// batch loader call for the keys whose locks it took, and one pipelined store. Keys whose lock
// another process holds go through the one-key path (lead()). The same invalidation rule
// applies: every store goes through prepare()/finalize()/keep(), every hand-over through
// wait(). Included at the end of cache_impl.hpp; not a header of its own.

#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tiercache::detail {

template <class V, class C>
template <class F>
std::vector<CacheResult<V>> CacheImpl<V, C>::get_or_load_many(const std::vector<std::string>& keys,
                                                              F&& batch, const ReadOptions& ro) {
  const SteadyTime call_start = std::chrono::steady_clock::now();
  const Deadlines d = deadlines(ro, call_start);
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
  std::vector<FlightPtr> flights(keys.size());
  std::vector<Epoch> arrivals(keys.size());
  std::vector<std::size_t> led;  // indices of the keys this call leads
  // A key asked twice is read once: its later places take the first one's result (two flights
  // of one key in one batch would hand the batch loader the key twice).
  std::unordered_map<std::string_view, std::size_t> first_place;
  std::vector<std::size_t> same_as(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    same_as[i] = first_place.try_emplace(keys[i], i).first->second;
    if (same_as[i] != i) continue;
    arrivals[i] = core_->epochs().now();  // before the lookup, as in get_or_load
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
      stale = stale_candidate(std::move(e));
    }
    core_->metrics().l1_misses.inc();
    bool leader = false;
    flights[i] =
        flights_.join(keys[i], core_->epochs(), arrivals[i], options_.max_load_time, false, leader);
    hook("many:joined", keys[i]);
    offer_stale(keys[i], flights[i], stale, arrivals[i]);
    if (leader) {
      led.push_back(i);
    } else {
      core_->metrics().coalesced_waits.inc();
    }
  }
  if (!led.empty()) lead_many(keys, led, flights, load_batch, ro, d);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (same_as[i] != i) {
      results[i] = results[same_as[i]];
      continue;
    }
    if (!flights[i]) continue;
    std::optional<Result> r = wait(keys[i], flights[i], d, arrivals[i]);
    // A value that predates an invalidation this caller arrived after: read that key again.
    results[i] = r ? std::move(*r)
                   : resolve(keys[i], one_key(load_batch, keys[i]), ro, Result(), nullptr,
                             call_start, core_->epochs().now());
  }
  return results;
}

template <class V, class C>
void CacheImpl<V, C>::lead_many(const std::vector<std::string>& keys,
                                const std::vector<std::size_t>& led,
                                const std::vector<FlightPtr>& flights, const BatchFn& load_batch,
                                const ReadOptions& ro, Deadlines d) {
  std::vector<std::size_t> to_load;
  std::vector<std::string> tokens;  // per to_load entry; empty: no lock (nothing stored in L2)
  std::vector<std::size_t> contended;
  std::uint64_t version = 0;
  if (core_->has_l2() && !ro.skip_l2) {
    std::vector<std::string> led_keys;
    led_keys.reserve(led.size());
    for (std::size_t i : led) led_keys.push_back(keys[i]);
    // One round trip reads every key and locks the absent ones.
    const ReadStart start = core_->begin_read();
    std::vector<L2Read> reads(led_keys.size());
    if (start.version) {
      version = *start.version;
      reads = core_->read_or_lock_many(led_keys, false, version);
    }
    std::vector<std::size_t> to_lock;  // present but stale or undecodable: lock them next
    const auto sort = [&](std::size_t i, L2Read& r, const ReadStart& at) {
      switch (r.kind) {
        case L2Read::Kind::kLocked:
          if (adopt_fresh(keys[i], flights[i], r, nullptr, at)) break;
          core_->metrics().lock_acquired.inc();
          to_load.push_back(i);
          tokens.push_back(std::move(r.token));
          break;
        case L2Read::Kind::kUnavailable:
          to_load.push_back(i);
          tokens.emplace_back();  // no lock: the load is not stored in L2
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
    const TimePoint now = clock_.now();
    for (std::size_t j = 0; j < led.size(); ++j) {
      const std::size_t i = led[j];
      L2Read& r = reads[j];
      if (r.kind == L2Read::Kind::kValue) {
        std::optional<EntryT> entry = from_envelope(keys[i], r, start.epoch);
        if (entry && !r.tag_invalidated && entry->fresh_until > now) {
          count_l2_hit(*entry);
          complete(keys[i], flights[i],
                   Result(keep(keys[i], std::move(*entry)), Source::kL2, false));
          continue;
        }
        if (entry) {
          core_->metrics().l2_stale.inc();
          if (entry->value) {
            offer_stale(keys[i], flights[i],
                        Result(l1_.wrap(keys[i], std::move(*entry)), Source::kL2, true),
                        start.epoch);
          }
        }
        to_lock.push_back(i);
      } else if (r.kind == L2Read::Kind::kMiss) {
        to_lock.push_back(i);  // undecodable: replace it
      } else {
        if (r.kind == L2Read::Kind::kLocked) core_->metrics().l2_misses.inc();
        sort(i, r, start);
      }
    }
    if (!to_lock.empty()) {
      std::vector<std::string> lock_keys;
      lock_keys.reserve(to_lock.size());
      for (std::size_t i : to_lock) lock_keys.push_back(keys[i]);
      const ReadStart again = core_->begin_read();
      std::vector<L2Read> locks(lock_keys.size());
      // Under the version of the first read: the loads below store under one version.
      if (again.version && *again.version == version) {
        locks = core_->read_or_lock_many(lock_keys, true, version);
      }
      for (std::size_t j = 0; j < to_lock.size(); ++j) {
        if (!again.version || *again.version != version) {
          contended.push_back(to_lock[j]);  // the namespace changed: the one-key path
          continue;
        }
        sort(to_lock[j], locks[j], again);
      }
    }
  } else {
    to_load = led;
    tokens.assign(led.size(), std::string());
  }
  if (!to_load.empty()) {
    auto self = this->shared_from_this();
    std::vector<std::string> load_keys;
    std::vector<FlightPtr> load_flights;
    for (std::size_t i : to_load) {
      load_keys.push_back(keys[i]);
      load_flights.push_back(flights[i]);
    }
    // Renewed from now on: the load may wait for a loader slot longer than lock_ttl.
    std::vector<std::shared_ptr<void>> renewals;
    for (std::size_t j = 0; j < load_keys.size(); ++j) {
      renewals.push_back(core_->keep_lock(load_keys[j], tokens[j], version));
    }
    const bool queued =
        core_->submit_load([self, load_keys, load_flights, tokens, version, load_batch, renewals] {
          self->run_batch_load(load_keys, load_flights, tokens, version, load_batch);
        });
    if (!queued) {
      for (std::size_t j = 0; j < load_keys.size(); ++j) {
        complete(load_keys[j], load_flights[j], closed_result());
      }
    }
  }
  for (std::size_t i : contended) {
    lead(keys[i], one_key(load_batch, keys[i]), ro, flights[i], d, nullptr);
  }
}

template <class V, class C>
void CacheImpl<V, C>::run_batch_load(const std::vector<std::string>& keys,
                                     const std::vector<FlightPtr>& flights,
                                     const std::vector<std::string>& tokens, std::uint64_t version,
                                     const BatchFn& load_batch) {
  if (core_->closed()) {
    for (std::size_t j = 0; j < keys.size(); ++j) complete(keys[j], flights[j], closed_result());
    return;
  }
  std::exception_ptr failure;
  Duration took{};
  for (const FlightPtr& flight : flights) flight->mark_load_started();
  const ReadStart start = core_->begin_read(/*want_l2=*/false);  // the database read begins
  std::vector<std::optional<V>> loaded =
      call_loader<std::vector<std::optional<V>>>([&] { return load_batch(keys); }, failure, took);
  for (const std::string& key : keys) hook("load:done", key);
  if (failure) {
    core_->log(LogLevel::kWarning, "batch loader failed");
    for (std::size_t j = 0; j < keys.size(); ++j) {
      load_failed(keys[j], flights[j], tokens[j], version, failure);
    }
    return;
  }
  std::vector<Prepared> prepared(keys.size());
  std::vector<bool> ready(keys.size(), false);
  std::vector<CacheCore::StoreItem> items;
  std::vector<std::size_t> item_of;
  for (std::size_t j = 0; j < keys.size(); ++j) {
    ready[j] = prepare(keys[j], flights[j], tokens[j], version, std::move(loaded[j]), {},
                       std::nullopt, took, start, prepared[j]);
    if (ready[j] && !prepared[j].bytes.empty()) {
      item_of.push_back(j);
      items.push_back({keys[j], prepared[j].bytes, prepared[j].redis_ttl, tokens[j]});
    }
  }
  std::vector<StoreResult> stored(keys.size(), StoreResult::kFailed);
  const std::vector<StoreResult> results = core_->store_many(items, version);
  for (std::size_t n = 0; n < item_of.size(); ++n) stored[item_of[n]] = results[n];
  for (std::size_t j = 0; j < keys.size(); ++j) {
    if (ready[j]) finalize(keys[j], flights[j], std::move(prepared[j]), stored[j]);
  }
}

}  // namespace tiercache::detail
