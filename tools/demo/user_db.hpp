// The system of record of `tiercache demo`: a SQLite database of users, and the User value the
// pods cache (JSON in Redis, through to_json/from_json).
//
//   users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, team INTEGER, updated_at INTEGER)
//
// Ids run from 1 to N; user i is in team i % kTeams. The coordinator creates the file once
// (UserDb::create, WAL mode) before any pod exists; each pod then opens its own connection
// (a UserDb). Every query a UserDb runs is counted, and preceded by an artificial sleep (the
// --db-latency-us flag): the round trip to a database server that SQLite, in process, does not
// have. The sleep happens outside the connection's lock, so queries of one pod overlap in it as
// they would on a real server; the query itself runs under the lock (one connection).
//
// Thread-safety: a UserDb may be used from any number of threads.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace tiercache::cli::demo {

// Users are spread over this many teams (user i in team i % kTeams); the tag of a cached user
// is "team:<team>".
inline constexpr std::int64_t kTeams = 20;

struct User {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  std::int64_t team = 0;
  std::int64_t updated_at = 0;  // unix milliseconds
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(User, id, name, email, team, updated_at)

// The cache tag of a team's users.
std::string team_tag(std::int64_t team);

class UserDb {
 public:
  // Creates the database at `path` (which must not exist) with users 1..users, in WAL mode.
  // Deterministic for a given seed. Throws std::runtime_error.
  static void create(const std::string& path, std::int64_t users, std::uint64_t seed);

  // Opens `path` (created by create()). Throws std::runtime_error.
  UserDb(const std::string& path, std::chrono::microseconds latency);
  ~UserDb();
  UserDb(const UserDb&) = delete;
  UserDb& operator=(const UserDb&) = delete;

  // SELECT of one user; nullopt if there is no such id. Throws std::runtime_error on a
  // database error.
  std::optional<User> find(std::int64_t id);
  // UPDATE of a user's name and updated_at. Throws std::runtime_error on a database error.
  void update_name(std::int64_t id, const std::string& name, std::int64_t updated_at);

  std::uint64_t selects() const { return selects_.load(std::memory_order_relaxed); }
  std::uint64_t updates() const { return updates_.load(std::memory_order_relaxed); }

 private:
  void wait_latency() const;

  const std::chrono::microseconds latency_;
  std::mutex mutex_;  // the connection and its statements
  sqlite3* db_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  sqlite3_stmt* update_ = nullptr;
  std::atomic<std::uint64_t> selects_{0};
  std::atomic<std::uint64_t> updates_{0};
};

}  // namespace tiercache::cli::demo
