// CacheCore's invalidation sources (detail/cache_core.hpp): this process's writes, tag
// invalidations, namespace versions, and the bus that brings the other processes' ones.
//
// Each source makes its change visible to new reads first (the L2 script has run, or the bus
// message says another process's has), then bumps the invalidation epoch that covers what it
// changed (invalidation_epochs.hpp) and, under the same exclusive gate, drops the L1 copies
// (the typed layer's hooks). So a read that began before the change stores nothing, a read
// that begins after it sees it, and an L1 lookup that noted an epoch at or after the bump
// cannot find a dropped copy.
//
// The bus carries "<origin>|<kind>|<data>" messages on N:bus: k (key changed: drop L1 copies,
// wake waiters), f (key filled or its lock released: wake waiters), t (tag invalidated at ms:
// "<ms>|<tag>"), c (namespace version changed: "<version>"). Pub/sub can lose messages while
// disconnected; the subscriber reports that as a gap, once it hears everything again, on
// which the cache forgets everything it learnt from the bus (L1, tag times, version).

#include <algorithm>

#include "cache/core_scripts.hpp"
#include "tiercache/detail/cache_core.hpp"

namespace tiercache::detail {

namespace {

// How long a tag's invalidation time is kept in Redis: entries created before it must have
// expired by then (TTL + stale window, unless a loader chose a longer TTL:
// docs/invalidation.md, "By tag").
constexpr Duration kMinTagRetention = std::chrono::hours(24 * 7);

}  // namespace

// ---- this process's writes ---------------------------------------------------------------------

bool CacheCore::change_key(std::string_view key, const redis::Script& script,
                           const std::vector<std::string>& args, std::string_view what) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::optional<std::uint64_t> v = l2_allowed() ? version() : std::nullopt;
    if (!v) return false;
    std::vector<std::string> call{script.sha1(), "2", data_key(key, *v), lock_key(key, *v)};
    call.insert(call.end(), args.begin(), args.end());
    redis::Request request;
    request.push_range("EVALSHA", call);
    request.push("GET", options_.name + ":version");
    redis::Result<std::vector<Reply>> r = exec_scripts(request, script);
    const bool ok = r.ok() && r->size() == 2 && !(*r)[0].is_error();
    l2_outcome(ok, r.ok() ? nullptr : &r.error(), what);
    if (!ok) {
      if (r.ok() && r->size() == 2 && (*r)[0].is_error()) {
        log(LogLevel::kError, std::string(what) + ": " + (*r)[0].string);
      }
      return false;
    }
    std::uint64_t now = 0;
    if ((*r)[1].is_string()) {
      const auto parsed = parse_int((*r)[1].string);
      if (!parsed || *parsed < 0) return true;  // reported by version() when next read
      now = static_cast<std::uint64_t>(*parsed);
    }
    if (now == *v) return true;
    // The namespace moved before the script ran (a clear() not heard yet): the change went to a
    // namespace no one reads. Adopt the new one and make the change there too.
    version_changed(now);
  }
  return true;
}

bool CacheCore::write(std::string_view key, const std::string& bytes, Duration redis_ttl,
                      const InvalidationEpochs::Also& also) {
  bool written = true;
  if (!bytes.empty()) {
    written = change_key(key, scripts_->write,
                         {bytes, px(redis_ttl), channel_, bus_message('k', key)}, "L2 write");
    if (written) {
      metrics_.l2_writes.inc();
      metrics_.invalidations_sent.inc();
    } else {
      metrics_.l2_writes_skipped.inc();
    }
  }
  epochs_.invalidate_key(key, also);
  return written;
}

bool CacheCore::invalidate(std::string_view key) {
  bool done = true;
  if (client_) {
    done = change_key(key, scripts_->invalidate, {channel_, bus_message('k', key)}, "invalidation");
    if (done) metrics_.invalidations_sent.inc();
  }
  epochs_.invalidate_key(key, [&](InvalidationEpochs::Epoch) { drop_key(key); });
  return done;
}

bool CacheCore::invalidate_tag(std::string_view tag) {
  const std::string name(tag);
  // Known locally at once, whatever Redis says (this process's entries go stale now).
  const std::int64_t now = wall_ms();
  learn_tag_time(name, now);
  bool done = true;
  if (client_) {
    done = false;
    if (l2_allowed()) {
      const Duration retention =
          std::max(kMinTagRetention, 2 * (options_.ttl + options_.stale_window));
      redis::Result<Reply> r =
          client_->eval(scripts_->invalidate_tag, {tag_key(tag)},
                        {std::to_string(now), px(retention), channel_, bus_message('t', ""), tag},
                        call_options());
      l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "tag invalidation");
      done = r.ok();
      if (done) {
        metrics_.invalidations_sent.inc();
        if (r->type == redis::ReplyType::kInteger) learn_tag_time(name, r->integer);
      }
    }
  }
  epochs_.invalidate_tag(tag, [this](InvalidationEpochs::Epoch) {
    tag_generation_.fetch_add(1, std::memory_order_acq_rel);
  });
  return done;
}

bool CacheCore::clear() {
  if (!client_) {
    epochs_.invalidate_all([this](InvalidationEpochs::Epoch) { drop_all(); });
    return true;
  }
  bool done = false;
  if (l2_allowed()) {
    redis::Result<Reply> r = client_->eval(scripts_->clear, {options_.name + ":version"},
                                           {channel_, bus_message('c', "")}, call_options());
    l2_outcome(r.ok(), r.ok() ? nullptr : &r.error(), "clear");
    if (r.ok() && r->type == redis::ReplyType::kInteger && r->integer >= 0) {
      metrics_.invalidations_sent.inc();
      version_changed(static_cast<std::uint64_t>(r->integer));
      done = true;
    }
  }
  // Always a bump of our own, under which L1 is dropped, before returning: the bus may have
  // delivered our own version first, its bump still dropping L1 on the dispatcher thread.
  epochs_.invalidate_all([this](InvalidationEpochs::Epoch) { drop_all(); });
  return done;
}

// ---- namespace versions and tag times ----------------------------------------------------------

void CacheCore::version_changed(std::uint64_t version) {
  // Known already (our own clear() coming back on the bus): nothing changed. Any other value
  // is adopted, lower ones too (N:version lost and re-created: Redis is the reference).
  if (version_plus_one_.load(std::memory_order_acquire) == version + 1) return;
  epochs_.invalidate_all([&](InvalidationEpochs::Epoch) {
    version_plus_one_.store(version + 1, std::memory_order_release);
    drop_all();
  });
  wake_all_fills();
}

void CacheCore::drop_key(std::string_view key) {
  if (hooks_.drop_key) hooks_.drop_key(key);
}

void CacheCore::drop_all() {
  if (hooks_.drop_all) hooks_.drop_all();
}

void CacheCore::learn_tag_time(const std::string& tag, std::int64_t ms) {
  std::lock_guard lock(tag_times_mutex_);
  const Cached<std::int64_t> known = tag_times_.get(tag);
  if (!known || *known < ms) tag_times_.put(tag, ms, options_.l1_max_ttl);
}

bool CacheCore::tags_invalidated(const std::vector<std::string>& tags, std::int64_t created_ms) {
  std::vector<std::string> unknown;
  for (const std::string& tag : tags) {
    const Cached<std::int64_t> t = tag_times_.get(tag);
    if (!t) {
      unknown.push_back(tag);
    } else if (*t >= created_ms) {
      return true;
    }
  }
  if (unknown.empty() || !l2_allowed()) return false;
  std::vector<std::string> keys;
  keys.reserve(unknown.size());
  for (const std::string& tag : unknown) keys.push_back(tag_key(tag));
  redis::Request request;
  request.push_range("MGET", keys);
  redis::Result<Reply> r = client_->exec_one(request, call_options());
  const bool well_formed =
      r.ok() && r->type == redis::ReplyType::kArray && r->elements.size() == unknown.size();
  l2_outcome(well_formed, r.ok() ? nullptr : &r.error(), "tag read");
  if (!well_formed) return false;
  if (options_.test_hook) {
    for (const std::string& tag : unknown) options_.test_hook("tags:read", tag);
  }
  bool invalidated = false;
  for (std::size_t i = 0; i < unknown.size(); ++i) {
    std::int64_t t = 0;
    if (r->elements[i].is_string()) t = parse_int(r->elements[i].string).value_or(0);
    // Never below a newer time the bus delivered while the MGET was on its way.
    learn_tag_time(unknown[i], t);
    const Cached<std::int64_t> known = tag_times_.get(unknown[i]);
    invalidated = invalidated || t >= created_ms || (known && *known >= created_ms);
  }
  return invalidated;
}

// ---- the bus -----------------------------------------------------------------------------------

void CacheCore::on_bus_message(redis::PubSubMessage&& message) {
  if (closed()) return;
  const std::string_view m = message.payload;
  if (m.size() < kOriginLength + 3 || m[kOriginLength] != '|' || m[kOriginLength + 2] != '|') {
    log(LogLevel::kWarning, "invalidation bus: malformed message ignored");
    return;
  }
  const bool mine = m.substr(0, kOriginLength) == origin_;
  const char kind = m[kOriginLength + 1];
  const std::string_view data = m.substr(kOriginLength + 3);
  switch (kind) {
    case 'f':
      wake_fills(data);
      break;
    case 'k':
      if (!mine) {
        metrics_.invalidations_received.inc();
        epochs_.invalidate_key(data, [&](InvalidationEpochs::Epoch) { drop_key(data); });
      }
      wake_fills(data);
      break;
    case 't': {
      const std::size_t bar = data.find('|');
      const auto ms = parse_int(data.substr(0, bar));
      if (bar == std::string_view::npos || !ms) break;
      const std::string tag(data.substr(bar + 1));
      if (options_.test_hook) options_.test_hook("bus:tag", tag);
      learn_tag_time(tag, *ms);
      epochs_.invalidate_tag(tag, [this](InvalidationEpochs::Epoch) {
        tag_generation_.fetch_add(1, std::memory_order_acq_rel);
      });
      if (!mine) metrics_.invalidations_received.inc();
      break;
    }
    case 'c': {
      const auto v = parse_int(data);
      if (!v || *v < 0) break;
      if (options_.test_hook) options_.test_hook("bus:clear", data);
      version_changed(static_cast<std::uint64_t>(*v));
      if (!mine) metrics_.invalidations_received.inc();
      break;
    }
    default:
      log(LogLevel::kWarning, "invalidation bus: unknown message kind ignored");
  }
}

void CacheCore::on_bus_event(redis::PubSubEvent&& event) {
  if (closed()) return;
  if (event.kind == redis::PubSubEvent::Kind::kError) {
    log(LogLevel::kError, "invalidation bus: " + event.detail);
    return;
  }
  if (event.kind == redis::PubSubEvent::Kind::kSubscribed && event.channel == channel_) {
    if (!subscribed_.load(std::memory_order_acquire)) {
      // Whatever was read before the bus could be heard may have missed an invalidation.
      epochs_.invalidate_all([this](InvalidationEpochs::Epoch) { drop_all(); });
      wake_all_fills();
      {
        std::lock_guard lock(subscribed_mutex_);
        subscribed_.store(true, std::memory_order_release);
      }
      subscribed_cv_.notify_all();
    }
    return;
  }
  if (event.kind != redis::PubSubEvent::Kind::kGap) return;
  // Anything may have changed while we were not listening.
  metrics_.bus_gaps.inc();
  log(LogLevel::kWarning, "invalidation bus: " + event.detail + "; dropping L1 and tag times");
  epochs_.invalidate_all([this](InvalidationEpochs::Epoch) {
    {
      std::lock_guard lock(tag_times_mutex_);
      tag_times_.clear();
    }
    tag_generation_.fetch_add(1, std::memory_order_acq_rel);
    version_plus_one_.store(0, std::memory_order_release);
    drop_all();
  });
  wake_all_fills();
}

}  // namespace tiercache::detail
