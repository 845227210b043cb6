// The demo's SQLite database (user_db.hpp).

#include "demo/user_db.hpp"

#include <sqlite3.h>

#include <array>
#include <cctype>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "sim/random.hpp"

namespace tiercache::cli::demo {
namespace {

constexpr std::array<std::string_view, 24> kFirstNames = {
    "Ada",     "Alan",     "Barbara", "Brian", "Claude", "Dennis", "Donald", "Edsger",
    "Frances", "Grace",    "Guido",   "Hedy",  "Ivan",   "John",   "Ken",    "Leslie",
    "Linus",   "Margaret", "Niklaus", "Radia", "Rob",    "Sophie", "Tim",    "Whitfield"};
constexpr std::array<std::string_view, 24> kLastNames = {
    "Allen",      "Backus",  "Cerf",    "Diffie",     "Engelbart", "Floyd",  "Gray",     "Hamilton",
    "Hopper",     "Iverson", "Johnson", "Kahan",      "Lamport",   "Liskov", "McCarthy", "Naur",
    "Ousterhout", "Perlman", "Ritchie", "Stroustrup", "Thompson",  "Turing", "Wirth",    "Yao"};

// How long a writer waits for another process's write lock before SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 5000;

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw std::runtime_error("sqlite: " + std::string(what) + ": " +
                           (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    throw std::runtime_error(std::string("sqlite: ") + sql + ": " + text);
  }
}

sqlite3* open(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  // SQLITE_OPEN_NOMUTEX: the UserDb's own mutex serialises the connection.
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("sqlite: open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return db;
}

sqlite3_stmt* prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &statement, nullptr) !=
      SQLITE_OK) {
    fail(db, sql);
  }
  return statement;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string team_tag(std::int64_t team) { return "team:" + std::to_string(team); }

void UserDb::create(const std::string& path, std::int64_t users, std::uint64_t seed) {
  sqlite3* db = open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  try {
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db,
         "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, "
         "team INTEGER NOT NULL, updated_at INTEGER NOT NULL)");
    exec(db, "BEGIN");
    sqlite3_stmt* insert = prepare(db, "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5)");
    const std::int64_t now = unix_ms();
    for (std::int64_t id = 1; id <= users; ++id) {
      const std::uint64_t h = sim::fmix64(seed ^ (static_cast<std::uint64_t>(id) * 0x9e37u));
      const std::string_view first = kFirstNames[h % kFirstNames.size()];
      const std::string_view last = kLastNames[(h >> 20) % kLastNames.size()];
      const std::string name = std::string(first) + " " + std::string(last);
      const std::string email =
          lowercase(first) + "." + lowercase(last) + "." + std::to_string(id) + "@example.com";
      sqlite3_bind_int64(insert, 1, id);
      sqlite3_bind_text(insert, 2, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
      sqlite3_bind_text(insert, 3, email.data(), static_cast<int>(email.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(insert, 4, id % kTeams);
      sqlite3_bind_int64(insert, 5, now);
      if (sqlite3_step(insert) != SQLITE_DONE) {
        sqlite3_finalize(insert);
        fail(db, "INSERT");
      }
      sqlite3_reset(insert);
    }
    sqlite3_finalize(insert);
    exec(db, "COMMIT");
  } catch (...) {
    sqlite3_close(db);
    throw;
  }
  sqlite3_close(db);
}

UserDb::UserDb(const std::string& path, std::chrono::microseconds latency)
    : latency_(latency), db_(open(path, SQLITE_OPEN_READWRITE)) {
  try {
    // WAL with synchronous=NORMAL: a commit does not wait for the disk (a checkpoint does).
    exec(db_, "PRAGMA synchronous=NORMAL");
    select_ = prepare(db_, "SELECT id, name, email, team, updated_at FROM users WHERE id = ?1");
    update_ = prepare(db_, "UPDATE users SET name = ?2, updated_at = ?3 WHERE id = ?1");
  } catch (...) {
    sqlite3_finalize(select_);
    sqlite3_close(db_);
    throw;
  }
}

UserDb::~UserDb() {
  sqlite3_finalize(select_);
  sqlite3_finalize(update_);
  sqlite3_close(db_);
}

void UserDb::wait_latency() const {
  if (latency_.count() > 0) std::this_thread::sleep_for(latency_);
}

std::optional<User> UserDb::find(std::int64_t id) {
  wait_latency();
  selects_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  sqlite3_bind_int64(select_, 1, id);
  const int rc = sqlite3_step(select_);
  std::optional<User> user;
  if (rc == SQLITE_ROW) {
    const auto text = [&](int column) {
      const unsigned char* p = sqlite3_column_text(select_, column);
      return p != nullptr ? std::string(reinterpret_cast<const char*>(p)) : std::string();
    };
    user.emplace();
    user->id = sqlite3_column_int64(select_, 0);
    user->name = text(1);
    user->email = text(2);
    user->team = sqlite3_column_int64(select_, 3);
    user->updated_at = sqlite3_column_int64(select_, 4);
  }
  sqlite3_reset(select_);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(db_, "SELECT");
  return user;
}

void UserDb::update_name(std::int64_t id, const std::string& name, std::int64_t updated_at) {
  wait_latency();
  updates_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  sqlite3_bind_int64(update_, 1, id);
  sqlite3_bind_text(update_, 2, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(update_, 3, updated_at);
  const int rc = sqlite3_step(update_);
  sqlite3_reset(update_);
  if (rc != SQLITE_DONE) fail(db_, "UPDATE");
}

}  // namespace tiercache::cli::demo
