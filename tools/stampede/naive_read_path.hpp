// NaiveReadPath: the read path that is copied from blog post to blog post (in Go: go-cache for
// L1, x/sync/singleflight, and `SETNX lock:user:ID 1 EX 5` in Redis), rebuilt faithfully on
// tiercache's Redis client so `tiercache stampede --mode naive` can set it against Cache<V>.
//
//   get(key):  L1 (an in-process map behind a mutex) -> hit: return it
//              miss: singleflight per key in this process, the leader runs fetch(key):
//   fetch:     GET key in Redis -> hit: fill L1, return it
//              miss: SET lock:<key> 1 NX PX <lock ttl>
//                won:  load from the database, SET key value, DEL the lock, fill L1
//                lost: sleep 100 ms, look in L1 again -- this process's L1, which nothing in
//                      this process can have filled meanwhile (the singleflight holds the only
//                      fetch of the key) -- then load from the database anyway, SET the value
//                      and DEL the lock it never held
//
// So the lock protects the database only from callers that come after the winner has stored
// the value: every process that arrives while the load runs loads the key itself (once, thanks
// to its singleflight), and the last losers delete whatever lock is there. What it is missing
// next to Cache<V> (DESIGN.md, the read path): losers wait for the holder's result (a fill
// message, then a second look at Redis) instead of a fixed sleep and a look at their own L1, and
// a lock is only ever deleted by its holder (a random token, compare-and-delete).
//
// Thread-safety: get() may be called from any number of threads.

#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "tiercache/redis/client.hpp"

namespace tiercache::cli {

class NaiveReadPath {
 public:
  // What a read returns: the value, or what went wrong.
  struct Outcome {
    std::optional<std::string> value;
    std::string error;
  };
  // Loads a key from the database; may throw.
  using DatabaseLoad = std::function<std::string(const std::string& key)>;

  // How long a lock loser sleeps before looking at its L1 again (the reference's 100 ms).
  static constexpr std::chrono::milliseconds kLoserSleep{100};
  // How long the value lives in Redis (longer than any run).
  static constexpr int kValueTtlSeconds = 300;

  NaiveReadPath(std::shared_ptr<redis::Client> redis, DatabaseLoad load_from_database,
                std::chrono::milliseconds lock_ttl)
      : redis_(std::move(redis)),
        load_from_database_(std::move(load_from_database)),
        lock_ttl_(lock_ttl) {}

  Outcome get(const std::string& key) {
    if (std::optional<std::string> hit = look_in_l1(key)) return {std::move(hit), {}};
    return single_flight(key);
  }

 private:
  // Like Go's singleflight.Group.Do: the first caller of a key runs fetch(), the callers that
  // come while it runs get its outcome.
  Outcome single_flight(const std::string& key) {
    std::promise<Outcome> promise;
    {
      std::unique_lock lock(flights_mutex_);
      auto it = flights_.find(key);
      if (it != flights_.end()) {
        std::shared_future<Outcome> running = it->second;
        lock.unlock();
        return running.get();
      }
      flights_.emplace(key, promise.get_future().share());
    }
    Outcome outcome = fetch(key);
    promise.set_value(outcome);
    std::lock_guard lock(flights_mutex_);
    flights_.erase(key);
    return outcome;
  }

  Outcome fetch(const std::string& key) {
    redis::Result<redis::Reply> cached = redis_->command("GET", key);
    if (!cached.ok()) return failed("GET", cached.error());
    if (cached->is_string()) {
      fill_l1(key, cached->string);
      return {cached->string, {}};
    }
    const std::string lock_key = "lock:" + key;
    redis::Result<redis::Reply> locked =
        redis_->command("SET", lock_key, "1", "NX", "PX", lock_ttl_.count());
    if (!locked.ok()) return failed("SET NX", locked.error());
    if (locked->is_null()) {  // lost: someone else is loading
      std::this_thread::sleep_for(kLoserSleep);
      if (std::optional<std::string> hit = look_in_l1(key)) return {std::move(hit), {}};
      // Nothing in *this* process's L1: fall through to the database.
    }
    std::string value;
    try {
      value = load_from_database_(key);
    } catch (const std::exception& e) {
      return {std::nullopt, std::string("database load failed: ") + e.what()};
    }
    redis::Result<redis::Reply> stored = redis_->command("SET", key, value, "EX", kValueTtlSeconds);
    if (!stored.ok()) return failed("SET", stored.error());
    redis::Result<redis::Reply> unlocked = redis_->command("DEL", lock_key);
    if (!unlocked.ok()) return failed("DEL", unlocked.error());
    fill_l1(key, value);
    return {std::move(value), {}};
  }

  std::optional<std::string> look_in_l1(const std::string& key) {
    std::lock_guard lock(l1_mutex_);
    auto it = l1_.find(key);
    if (it == l1_.end()) return std::nullopt;
    return it->second;
  }
  void fill_l1(const std::string& key, const std::string& value) {
    std::lock_guard lock(l1_mutex_);
    l1_[key] = value;
  }
  static Outcome failed(const char* what, const redis::Error& error) {
    return {std::nullopt, std::string(what) + ": " + error.to_string()};
  }

  const std::shared_ptr<redis::Client> redis_;
  const DatabaseLoad load_from_database_;
  const std::chrono::milliseconds lock_ttl_;
  std::mutex l1_mutex_;
  std::unordered_map<std::string, std::string> l1_;
  std::mutex flights_mutex_;
  std::unordered_map<std::string, std::shared_future<Outcome>> flights_;
};

}  // namespace tiercache::cli
