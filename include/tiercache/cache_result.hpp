// CacheResult<V>: what a Cache<V> read returns -- a value, "not found", a miss, or an error --
// with where the answer came from and whether it was stale.
//
// Contract:
//  - No copy of V: *result is the object the cache holds (immutable), kept alive by the result
//    like a std::shared_ptr<const V> would, even after the entry leaves the cache.
//  - Exactly one of: has_value(), is_negative() (the loader said "not found", possibly
//    remembered), is_miss() (get() found nothing; get_or_load never returns it), error().
//  - is_stale(): the value is past its freshness and was served by fail-safe (the loader
//    failed or was too slow) -- callers that must not use old data can check it.
//  - Copying costs an atomic increment; a CacheResult may be used from any thread.

#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tiercache/cached.hpp"
#include "tiercache/clock.hpp"

namespace tiercache {

enum class CacheErrc : std::uint8_t {
  kLoaderFailed = 1,  // the loader threw (CacheError::exception holds what)
  kLoaderTimeout,     // no answer within the hard timeout, and no stale value to serve
  kWriterFailed,      // write_through: the database writer threw; nothing was cached
  kEncodeFailed,      // the value cannot be stored in L2: the codec threw, or it exceeds the
                      // envelope's limits (EnvelopeOptions::max_payload_bytes, max_tags...)
  kClosed,            // the cache was being destroyed
  kOverloaded,        // an asynchronous read found the queue of waiting reads full
  kL2Unreachable,     // a write reached this process but not Redis: other processes may keep
                      // the old value until their copies expire
};
const char* to_string(CacheErrc code);

struct CacheError {
  CacheErrc code = CacheErrc::kLoaderFailed;
  // What happened, for logs: names the key's pattern, never the key or a value.
  std::string message;
  // kLoaderFailed, kWriterFailed: the exception thrown by the user's function.
  std::exception_ptr exception;
};

// Where a read's answer came from.
enum class Source : std::uint8_t { kNone, kL1, kL2, kLoader };
const char* to_string(Source source);

namespace detail {

// What L1 holds for a key: the decoded value and what the cache needs to judge it.
template <class V>
struct Entry {
  std::optional<V> value;       // nullopt: "not found"
  std::int64_t created_ms = 0;  // when its read of the source began (unix ms): tags compare with it
  TimePoint fresh_until{};      // logical expiry
  TimePoint l1_fresh_until{};   // min(fresh_until, stored_at + l1_max_ttl)
  TimePoint stored_at{};        // when this process got it (loaded, or read from L2)
  Duration load_time{};         // how long its load took: early refresh scales with it
  std::vector<std::string> tags;
  bool stale = false;  // kept by fail-safe: served as stale until l1_fresh_until
  // The invalidation epoch noted when the read that produced it began (invalidation_epochs.hpp).
  std::uint64_t read_epoch = 0;
  mutable std::atomic<std::uint64_t> tags_checked{0};  // tag generation last checked against
  mutable std::atomic<bool> refresh_started{false};    // an early refresh was started

  Entry() = default;
  Entry(Entry&& o) noexcept
      : value(std::move(o.value)),
        created_ms(o.created_ms),
        fresh_until(o.fresh_until),
        l1_fresh_until(o.l1_fresh_until),
        stored_at(o.stored_at),
        load_time(o.load_time),
        tags(std::move(o.tags)),
        stale(o.stale),
        read_epoch(o.read_epoch),
        tags_checked(o.tags_checked.load(std::memory_order_relaxed)),
        refresh_started(o.refresh_started.load(std::memory_order_relaxed)) {}
  Entry& operator=(Entry&&) = delete;
};

template <class V, class C>
class CacheImpl;

}  // namespace detail

template <class V>
class CacheResult {
 public:
  // A miss.
  CacheResult() = default;

  bool has_value() const noexcept { return entry_ && entry_->value.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  // REQUIRES: has_value().
  const V& operator*() const noexcept { return *entry_->value; }
  const V* operator->() const noexcept { return &*entry_->value; }
  // The value, or nullptr.
  const V* get() const noexcept { return has_value() ? &*entry_->value : nullptr; }

  // The loader said the key does not exist (now, or when this was cached).
  bool is_negative() const noexcept { return entry_.found() && !entry_->value.has_value(); }
  // Nothing found and nothing failed (get() only).
  bool is_miss() const noexcept { return !entry_.found() && error_ == nullptr; }
  // The error, or nullptr.
  const CacheError* error() const noexcept { return error_.get(); }
  bool ok() const noexcept { return error_ == nullptr; }

  bool is_stale() const noexcept { return stale_; }
  Source source() const noexcept { return source_; }
  // Tags the entry was stored with.
  const std::vector<std::string>& tags() const {
    static const std::vector<std::string> kNone;
    return entry_.found() ? entry_->tags : kNone;
  }

 private:
  template <class, class>
  friend class detail::CacheImpl;

  CacheResult(Cached<detail::Entry<V>> entry, Source source, bool stale)
      : entry_(std::move(entry)), source_(source), stale_(stale) {}
  explicit CacheResult(std::shared_ptr<const CacheError> error) : error_(std::move(error)) {}

  Cached<detail::Entry<V>> entry_;
  std::shared_ptr<const CacheError> error_;
  Source source_ = Source::kNone;
  bool stale_ = false;
};

// The outcome of set() and write_through().
struct WriteResult {
  // write_through's database writer threw (kWriterFailed): nothing was cached, nothing sent.
  // The value cannot be encoded (kEncodeFailed): the key was invalidated everywhere instead.
  // Redis could not be told (kL2Unreachable): this process has the new value, others may not.
  std::shared_ptr<const CacheError> error;
  // The value reached Redis and the other processes were told. False when Redis was
  // unreachable (then other processes see the change when their copies expire) or in L1-only
  // mode.
  bool l2_written = false;

  bool ok() const noexcept { return error == nullptr; }
};

}  // namespace tiercache
