// Cache<V>: the two-tier cache. An in-process L1 (LocalCache, decoded values) in front of a
// shared L2 (Redis, encoded envelopes) in front of the system of record, reached through a
// loader the caller passes to get_or_load.
//
//   tiercache::Cache<User> users(options, redis_client);
//   auto user = users.get_or_load("user:42", [&db](tiercache::LoadContext& c) {
//     return db.find_user(c.key());      // std::optional<User>: nullopt = "not found"
//   });
//   if (user) greet(user->name); else if (user.is_negative()) not_found(); else
//   fail(*user.error());
//
// Contract:
//  - Thread-safety: every member may be called from any number of threads.
//  - Failures are values: a read returns a value, "not found", or a CacheError (the loader
//    threw, or nothing came within the hard timeout and no stale value exists). Redis being
//    down, slow or returning garbage is never an error: the read goes to L1 and the loader
//    (docs/fail-safe.md). Only the loader's own exceptions are captured and handed back.
//  - One load per key at a time in a process (single-flight) and, with Redis, across every
//    process sharing the cache's name (the stampede lock, docs/stampede.md); loads of all keys
//    together are bounded by max_concurrent_loads.
//  - A loader may run after the call that started it returned (the caller's soft or hard
//    timeout passed, or it is a background refresh): it must capture by value, or reference
//    only what outlives the cache.
//  - Writes (set, write_through, invalidate, invalidate_tag, clear) reach every process: L2
//    is updated and the other processes drop their L1 copies (docs/invalidation.md). A process
//    that cannot hear the invalidation bus serves L1 copies for at most disconnected_l1_ttl.
//  - One rule for every invalidation (key, write, tag, clear, a bus gap; here or in another
//    process): a value carries the epoch observed when its read of the source began (the L2
//    GET, the loader's query). It is stored in L1 or L2, or handed to a caller who arrived
//    after that read began, only if no invalidation that could cover it came since; else it
//    goes only to the callers that were already waiting, and is stored nowhere. A removed
//    value (invalidate, write, clear) is never served, not even stale; a tag invalidation
//    makes entries stale, which fail-safe may still serve flagged.
//  - A read waits at most its hard_timeout, counted from the call; a load is abandoned after
//    max_load_time (its lock released, its result stored nowhere).
//  - A write whose L2 part failed returns kL2Unreachable (this process has the new value;
//    the others may keep the old one until their copies expire).
//  - Without a Redis client the cache is L1-only: the same API, no sharing.
// REQUIRES: V is move-constructible; C is a Codec for V (codec.hpp).

#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tiercache/cache_result.hpp"
#include "tiercache/codec.hpp"
#include "tiercache/detail/cache_impl.hpp"
#include "tiercache/metrics.hpp"
#include "tiercache/options.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache {

template <class V, class C = DefaultCodec<V>>
requires Codec<C, V>
class Cache {
 public:
  // `client` may be null (L1-only). Several caches may share one client.
  explicit Cache(CacheOptions options, std::shared_ptr<redis::Client> client = nullptr)
      : impl_(std::make_shared<detail::CacheImpl<V, C>>(std::move(options), std::move(client))) {
    impl_->start();
  }
  // Stops background work. Loads still running finish on their own (their results dropped).
  ~Cache() { impl_->shutdown(); }
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // ---- reads --------------------------------------------------------------------------------

  // L1, then L2. Never loads: a miss is CacheResult::is_miss().
  CacheResult<V> get(const std::string& key) { return impl_->get(key); }

  // L1, then L2, then `loader` (one load per key across processes). The loader takes
  // (LoadContext&) -- to set the entry's TTL or tags -- or (std::string_view key), and returns
  // std::optional<V> (nullopt: "not found", cached for negative_ttl) or V; what it throws is
  // returned as CacheErrc::kLoaderFailed (or, if a stale value exists, the stale value).
  template <class Loader>
  CacheResult<V> get_or_load(const std::string& key, Loader&& loader, const ReadOptions& ro = {}) {
    return impl_->get_or_load(key, std::forward<Loader>(loader), ro);
  }

  // get_or_load of several keys: L1 first; then one pipelined L2 round trip that reads the
  // rest and takes the locks of the absent ones; then one batch_loader call for those, stored
  // in one more round trip. batch_loader takes the missing keys (const
  // std::vector<std::string>&) and returns a map-like range of (key, V) pairs; a key it leaves
  // out is "not found". Results come in the order of `keys`.
  template <class BatchLoader>
  std::vector<CacheResult<V>> get_or_load_many(const std::vector<std::string>& keys,
                                               BatchLoader&& batch_loader,
                                               const ReadOptions& ro = {}) {
    return impl_->get_or_load_many(keys, std::forward<BatchLoader>(batch_loader), ro);
  }

  // get_or_load as an Asio asynchronous operation: completes with void(CacheResult<V>) on the
  // handler's associated executor (default: asio::system_executor). An L1 hit is posted at
  // once; a miss runs on the cache's background pool (it holds one of its threads while it
  // waits: docs/read-through.md). Its timeouts count from this call, queueing included; with
  // max_queued_async_reads misses already in progress, it completes at once with
  // CacheErrc::kOverloaded; at shutdown, with kClosed. The handler is always called once.
  template <class Loader, class CompletionToken>
  auto async_get_or_load(std::string key, Loader loader, CompletionToken&& token,
                         ReadOptions ro = {}) {
    return initiate(
        std::forward<CompletionToken>(token), std::move(key),
        [loader = std::move(loader), ro](detail::CacheImpl<V, C>& impl, const std::string& key,
                                         detail::SteadyTime call_start) mutable {
          return impl.get_or_load(key, std::move(loader), ro, call_start);
        });
  }
  // get as an Asio asynchronous operation (L1, then L2; never loads), like async_get_or_load.
  template <class CompletionToken>
  auto async_get(std::string key, CompletionToken&& token) {
    return initiate(std::forward<CompletionToken>(token), std::move(key),
                    [](detail::CacheImpl<V, C>& impl, const std::string& key, detail::SteadyTime) {
                      return impl.get(key);
                    });
  }

  // ---- writes -------------------------------------------------------------------------------

  // Stores `value` -- which the caller has already written to the database -- in both tiers,
  // and tells every process to drop its copy. A load of the key running meanwhile does not
  // overwrite it.
  WriteResult set(const std::string& key, V value, const WriteOptions& wo = {}) {
    return impl_->set(key, std::move(value), wo);
  }

  // Write-through: db_writer(value) first (the system of record); if it throws, nothing is
  // cached and the error is returned (kWriterFailed); else set(key, value).
  template <class DbWriter>
  WriteResult write_through(const std::string& key, V value, DbWriter&& db_writer,
                            const WriteOptions& wo = {}) {
    try {
      std::forward<DbWriter>(db_writer)(static_cast<const V&>(value));
    } catch (...) {
      WriteResult failed;
      auto error = std::make_shared<CacheError>();
      error->code = CacheErrc::kWriterFailed;
      error->message = "database writer failed for " + key_pattern(key) + ": nothing cached";
      error->exception = std::current_exception();
      failed.error = std::move(error);
      return failed;
    }
    return impl_->set(key, std::move(value), wo);
  }

  // Deletes the key in L2 and in every process's L1. Returns false if Redis could not be told
  // (the local copy is gone anyway).
  bool invalidate(const std::string& key) { return impl_->invalidate(key); }
  // Makes every entry stored with `tag` stale, in every process, without enumerating keys.
  bool invalidate_tag(const std::string& tag) { return impl_->invalidate_tag(tag); }
  // Forgets every entry of this cache's name (a namespace version bump: O(1) in Redis).
  bool clear() { return impl_->clear(); }

  // ---- observability ------------------------------------------------------------------------

  // This cache's metrics in Prometheus text format (docs/operations.md lists them).
  std::string render_prometheus() const {
    PrometheusText text;
    impl_->collect(text);
    return text.render();
  }
  // Adds them to `text` (to render several caches together).
  void collect(PrometheusText& text) const { impl_->collect(text); }
  CircuitBreaker::State circuit_state() const { return impl_->core().circuit_state(); }
  LocalCacheStats l1_stats() const { return impl_->l1().stats(); }
  const CacheOptions& options() const { return impl_->core().options(); }

 private:
  // Starts an asynchronous read: an L1 hit completes at once (posted); anything else runs
  // `read(impl, key, call_start)` on the background pool, if fewer than max_queued_async_reads
  // are in progress.
  template <class CompletionToken, class Read>
  auto initiate(CompletionToken&& token, std::string key, Read read) {
    return asio::async_initiate<CompletionToken, void(CacheResult<V>)>(
        [impl = impl_](auto handler, std::string key, Read read) {
          auto ex = asio::get_associated_executor(handler, asio::system_executor());
          CacheResult<V> hit = impl->try_l1(key);
          if (hit.has_value() || hit.is_negative()) {
            asio::post(ex, [handler = std::move(handler), hit = std::move(hit)]() mutable {
              std::move(handler)(std::move(hit));
            });
            return;
          }
          const detail::SteadyTime call_start = std::chrono::steady_clock::now();
          using Pending = detail::PendingRead<V, decltype(handler), decltype(ex)>;
          auto pending = std::make_shared<Pending>(std::move(handler), ex,
                                                   detail::CacheImpl<V, C>::closed_result());
          if (!impl->reserve_async_read()) {
            pending->complete(detail::CacheImpl<V, C>::overloaded_result(), /*posted=*/true);
            return;
          }
          // A task dropped at shutdown destroys `pending`, which then completes with kClosed.
          const bool queued = impl->core().submit_background(
              [impl, pending, key = std::move(key), read = std::move(read), call_start]() mutable {
                CacheResult<V> r = read(*impl, key, call_start);
                impl->release_async_read();
                pending->complete(std::move(r));
              });
          if (!queued) {
            impl->release_async_read();
            pending->complete(detail::CacheImpl<V, C>::closed_result(), /*posted=*/true);
          }
        },
        token, std::move(key), std::move(read));
  }

  std::shared_ptr<detail::CacheImpl<V, C>> impl_;
};

}  // namespace tiercache
