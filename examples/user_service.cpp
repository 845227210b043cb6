// user_service.cpp -- the classic `GetUser` read path of a backend service, on a real SQLite
// database (the system of record), with every pattern tiercache provides:
//
//   read-through      get_user: L1 (this process) -> Redis (shared) -> SELECT   (get_or_load)
//   write-through     rename_user: UPDATE first, then the new row in both tiers, and every
//                     other process drops its copy                             (write_through)
//   negative caching  get_user of an id that does not exist: the SELECT runs once, "not found"
//                     is remembered for negative_ttl                            (std::nullopt)
//   tags              each cached user is tagged with its team ("team:3"); renaming a team
//                     changes what every member's row shows, so one call makes all of them
//                     stale, in every process, without listing keys            (invalidate_tag)
//   metrics           GET /metrics serves render_prometheus() (Prometheus text format)
//
// Usage:
//   user_service [--redis URL] [--port P] [--users N]
//       creates a database of N users (default 5000) in a temporary file and serves
//       GET /users/ID (JSON; header X-Cache-Source) and GET /metrics on 127.0.0.1:P (default
//       8080) until Ctrl-C. URL default: $TIERCACHE_REDIS_URL, then redis://127.0.0.1:6379.
//   user_service --self-test [--redis URL]
//       runs a scripted scenario with two "pods" (two Cache objects with their own Redis
//       connection and L1, as two processes would have), prints each check, exits 1 if one
//       fails. Its test: examples/CMakeLists.txt.
//
// HTTP: cpp-httplib (Debian's libcpp-httplib-dev), listening on loopback only.
#include <httplib.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tiercache/cache.hpp>

namespace {

// ---- the row, and how it is stored in Redis ---------------------------------------------------

struct User {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  std::int64_t team_id = 0;
  std::string team_name;  // from the teams table: a team rename changes every member's row
};
// Cache<User> uses the JSON codec by default: it finds these to_json/from_json functions.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(User, id, name, email, team_id, team_name)

std::string user_key(std::int64_t id) { return "user:" + std::to_string(id); }
std::string team_tag(std::int64_t team_id) { return "team:" + std::to_string(team_id); }

// ---- the database -----------------------------------------------------------------------------

// One SQLite connection in a temporary file, guarded by a mutex (loaders run on the cache's
// loader threads; a real service would use a connection pool). Counts the SELECTs it runs, so
// we can see what the cache saved the database.
class UserDb {
 public:
  UserDb(int users, int teams) {
    std::string path = (std::filesystem::temp_directory_path() / "tiercache-users-XXXXXX").string();
    const int fd = ::mkstemp(path.data());  // a unique empty file: SQLite makes it a database
    if (fd < 0) throw std::runtime_error("cannot create a temporary file");
    ::close(fd);
    path_ = path;
    if (sqlite3_open(path_.c_str(), &db_) != SQLITE_OK) fail("open");
    exec(
        "CREATE TABLE teams (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (length(name) > 0),"
        "                    email TEXT NOT NULL, team_id INTEGER NOT NULL REFERENCES teams);"
        "BEGIN");
    for (int t = 0; t < teams; ++t) {
      exec("INSERT INTO teams VALUES (" + std::to_string(t) + ", 'team-" + std::to_string(t) +
           "')");
    }
    Statement insert(*this, "INSERT INTO users VALUES (?, ?, ?, ?)");
    for (int id = 1; id <= users; ++id) {
      const std::string name = "user-" + std::to_string(id);
      sqlite3_bind_int64(insert.stmt, 1, id);
      sqlite3_bind_text(insert.stmt, 2, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(insert.stmt, 3, (name + "@example.com").c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(insert.stmt, 4, id % teams);
      if (sqlite3_step(insert.stmt) != SQLITE_DONE) fail("insert");
      sqlite3_reset(insert.stmt);
    }
    exec("COMMIT");
  }
  ~UserDb() {
    sqlite3_close(db_);
    std::filesystem::remove(path_);
  }
  UserDb(const UserDb&) = delete;
  UserDb& operator=(const UserDb&) = delete;

  // The loader's query. nullopt: no such user.
  std::optional<User> find_user(std::int64_t id) {
    std::lock_guard lock(mutex_);
    ++selects_;
    Statement select(*this,
                     "SELECT u.id, u.name, u.email, u.team_id, t.name FROM users u"
                     " JOIN teams t ON t.id = u.team_id WHERE u.id = ?");
    sqlite3_bind_int64(select.stmt, 1, id);
    const int rc = sqlite3_step(select.stmt);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail("select");
    const auto text = [&](int column) {
      return std::string(reinterpret_cast<const char*>(sqlite3_column_text(select.stmt, column)));
    };
    return User{sqlite3_column_int64(select.stmt, 0), text(1), text(2),
                sqlite3_column_int64(select.stmt, 3), text(4)};
  }
  // Throws if the database refuses (no such user; an empty name breaks the CHECK constraint).
  void rename_user(std::int64_t id, const std::string& name) {
    update("UPDATE users SET name = ? WHERE id = ?", name, id);
  }
  void rename_team(std::int64_t team_id, const std::string& name) {
    update("UPDATE teams SET name = ? WHERE id = ?", name, team_id);
  }
  std::uint64_t selects() const { return selects_.load(); }

 private:
  struct Statement {
    Statement(UserDb& db, const char* sql) : db(db) {
      if (sqlite3_prepare_v2(db.db_, sql, -1, &stmt, nullptr) != SQLITE_OK) db.fail("prepare");
    }
    ~Statement() { sqlite3_finalize(stmt); }
    UserDb& db;
    sqlite3_stmt* stmt = nullptr;
  };

  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }
  void exec(const std::string& sql) {
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail("exec");
  }
  void update(const char* sql, const std::string& name, std::int64_t id) {
    std::lock_guard lock(mutex_);
    Statement update(*this, sql);
    sqlite3_bind_text(update.stmt, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(update.stmt, 2, id);
    if (sqlite3_step(update.stmt) != SQLITE_DONE) fail("update");
    if (sqlite3_changes(db_) == 0) throw std::runtime_error("no such row");
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::atomic<std::uint64_t> selects_{0};
};

// ---- the service: every read and write of a user goes through here ----------------------------

class UserService {
 public:
  UserService(std::shared_ptr<UserDb> db, tiercache::Cache<User>& users)
      : db_(std::move(db)), users_(users) {}

  // Read-through. The loader may outlive this call (a caller's timeout, a background
  // refresh): it captures the database by shared_ptr and the id by value, nothing by reference.
  tiercache::CacheResult<User> get_user(std::int64_t id) {
    return users_.get_or_load(
        user_key(id), [db = db_, id](tiercache::LoadContext& load) -> std::optional<User> {
          std::optional<User> user = db->find_user(id);  // nullopt: cached as "not found"
          if (user) load.add_tag(team_tag(user->team_id));
          return user;
        });
  }

  // Write-through: the UPDATE runs first; only if it succeeds is the new row cached (in both
  // tiers, every other process told to drop its copy). The entry keeps its team tag, or a
  // later team rename would miss it. (This caches the row as we computed it: if the database
  // derived columns from it -- triggers, updated_at -- invalidate instead: write_path.cpp.)
  tiercache::WriteResult rename_user(const User& user, const std::string& new_name) {
    User renamed = user;
    renamed.name = new_name;
    tiercache::WriteOptions options;
    options.tags = {team_tag(renamed.team_id)};
    return users_.write_through(
        user_key(renamed.id), std::move(renamed),
        [db = db_](const User& u) { db->rename_user(u.id, u.name); }, options);
  }

  // A change that shows in every member's row: the database first, then one tag invalidation
  // (no key is listed; each member is reloaded when next read, once across all processes).
  bool rename_team(std::int64_t team_id, const std::string& name) {
    db_->rename_team(team_id, name);
    return users_.invalidate_tag(team_tag(team_id));
  }

 private:
  std::shared_ptr<UserDb> db_;
  tiercache::Cache<User>& users_;
};

// ---- HTTP: GET /users/ID and GET /metrics ------------------------------------------------------

void add_routes(httplib::Server& server, UserService& service, tiercache::Cache<User>& users) {
  server.Get(
      R"(/users/(\d{1,18}))", [&service](const httplib::Request& req, httplib::Response& res) {
        tiercache::CacheResult<User> user = service.get_user(std::stoll(req.matches[1].str()));
        if (user.has_value()) {
          res.set_content(nlohmann::json(*user).dump(), "application/json");
          res.set_header("X-Cache-Source", tiercache::to_string(user.source()));
          if (user.is_stale()) res.set_header("X-Cache-Stale", "1");  // served by fail-safe
        } else if (user.is_negative()) {
          res.status = 404;
        } else {  // the database failed and no stale copy exists
          res.status = 503;
          res.set_content(user.error()->message, "text/plain");
        }
      });
  server.Get("/metrics", [&users](const httplib::Request&, httplib::Response& res) {
    res.set_content(users.render_prometheus(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

std::shared_ptr<tiercache::redis::Client> connect(const std::string& url) {
  auto config = tiercache::redis::parse_url(url);
  if (!config) throw std::invalid_argument(config.error().to_string());
  return std::make_shared<tiercache::redis::Client>(config.value());
}

// ---- serve mode --------------------------------------------------------------------------------

int serve(const std::string& redis_url, int port, int users) {
  // Ctrl-C and SIGTERM are taken by sigwait() below: blocked first, before any thread starts,
  // so that every thread inherits the mask and none is interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto db = std::make_shared<UserDb>(users, 10);
  tiercache::CacheOptions options;
  options.name = "users";
  tiercache::Cache<User> cache(options, connect(redis_url));
  UserService service(db, cache);
  httplib::Server server;
  add_routes(server, service, cache);
  if (!server.bind_to_port("127.0.0.1", port)) {  // loopback only
    std::fprintf(stderr, "cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::atomic<bool> listen_returned{false};
  std::thread listener([&] {
    server.listen_after_bind();
    listen_returned = true;
  });
  std::printf("%d users; serving http://127.0.0.1:%d/users/42 and /metrics (Ctrl-C stops)\n", users,
              port);
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  // stop() acts only on a running server: a signal may come before the listener has started.
  while (!server.is_running() && !listen_returned) std::this_thread::yield();
  server.stop();
  listener.join();
  return 0;
}

// ---- self-test mode ----------------------------------------------------------------------------

int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// What a read returned, for the checks ("" if not a user).
std::string name_of(const tiercache::CacheResult<User>& user) { return user ? user->name : ""; }
std::string team_of(const tiercache::CacheResult<User>& user) {
  return user ? user->team_name : "";
}

// Invalidations reach the other processes through Redis pub/sub, within milliseconds.
template <class Condition>
bool eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

int self_test(const std::string& redis_url) {
  auto db = std::make_shared<UserDb>(5000, 10);  // user N is in team N % 10
  tiercache::CacheOptions options;
  // A name of its own for each run: runs sharing a Redis server never see each other's entries.
  options.name = "user-service-test-" + std::to_string(::getpid()) + "-" +
                 std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  tiercache::Cache<User> cache_a(options, connect(redis_url));  // pod A
  tiercache::Cache<User> cache_b(options, connect(redis_url));  // pod B: same name, own L1
  UserService pod_a(db, cache_a);
  UserService pod_b(db, cache_b);
  using tiercache::Source;

  std::printf("read-through\n");
  std::uint64_t selects = db->selects();
  auto user = pod_a.get_user(42);
  check(name_of(user) == "user-42" && user.source() == Source::kLoader,
        "pod A, first read of user 42: loaded from the database");
  if (!user) return 1;  // nothing to go on with
  check(pod_a.get_user(42).source() == Source::kL1, "pod A, second read: from its L1");
  check(pod_b.get_user(42).source() == Source::kL2, "pod B: from Redis, filled by pod A");
  check(db->selects() == selects + 1, "one SELECT for the three reads");

  std::printf("negative caching\n");
  selects = db->selects();
  check(pod_a.get_user(999999).is_negative(), "pod A: user 999999 does not exist");
  check(pod_a.get_user(999999).is_negative(), "pod A, again: \"not found\" from its L1");
  auto absent = pod_b.get_user(999999);
  check(absent.is_negative() && absent.source() == Source::kL2, "pod B: \"not found\" from Redis");
  check(db->selects() == selects + 1, "one SELECT for the three lookups");

  std::printf("write-through\n");
  check(pod_a.rename_user(*user, "Ada Lovelace").l2_written,
        "pod A renames user 42: UPDATE, then the new row in Redis");
  check(db->find_user(42).value_or(User{}).name == "Ada Lovelace", "the database has the new name");
  selects = db->selects();
  user = pod_a.get_user(42);
  check(name_of(user) == "Ada Lovelace" && user.source() == Source::kL1, "pod A reads it from L1");
  if (!user) return 1;
  check(eventually([&] { return name_of(pod_b.get_user(42)) == "Ada Lovelace"; }),
        "pod B sees the new name (its old copy was dropped by the invalidation message)");
  check(db->selects() == selects, "without a SELECT");
  tiercache::WriteResult refused = pod_a.rename_user(*user, "");  // breaks the CHECK constraint
  check(refused.error && refused.error->code == tiercache::CacheErrc::kWriterFailed,
        "an UPDATE the database refuses is an error (kWriterFailed) ...");
  check(name_of(pod_a.get_user(42)) == "Ada Lovelace", "... and nothing was cached");

  std::printf("tags\n");
  pod_a.get_user(3);   // team 3
  pod_b.get_user(13);  // team 3
  pod_a.get_user(4);   // team 4
  check(pod_a.rename_team(3, "Platform"), "pod A renames team 3: UPDATE, invalidate_tag(team:3)");
  user = pod_a.get_user(3);
  check(team_of(user) == "Platform" && user.source() == Source::kLoader,
        "pod A: user 3 (team 3) is reloaded, with the new team name");
  check(eventually([&] { return team_of(pod_b.get_user(13)) == "Platform"; }),
        "pod B: user 13 (team 3) too, though no key was named");
  check(pod_a.get_user(4).source() == Source::kL1, "user 4 (team 4) is still served from L1");

  std::printf("metrics over HTTP\n");
  httplib::Server server;
  add_routes(server, pod_a, cache_a);
  const int port = server.bind_to_any_port("127.0.0.1");  // loopback only, a free port
  std::thread listener([&] { server.listen_after_bind(); });
  check(port > 0 && eventually([&] { return server.is_running(); }),
        "an HTTP server on 127.0.0.1:" + std::to_string(port));
  httplib::Client client("127.0.0.1", port);
  httplib::Result metrics = client.Get("/metrics");
  check(metrics && metrics->status == 200 &&
            metrics->body.find("tiercache_lookups_total{cache=\"" + options.name + "\"") !=
                std::string::npos,
        "GET /metrics: tiercache_lookups_total of this cache");
  httplib::Result found = client.Get("/users/42");
  check(found && found->status == 200 && found->body.find("Ada Lovelace") != std::string::npos,
        "GET /users/42: 200, the user as JSON");
  httplib::Result not_found = client.Get("/users/999999");
  check(not_found && not_found->status == 404, "GET /users/999999: 404");
  server.stop();
  listener.join();

  std::printf(failures == 0 ? "self-test passed\n" : "self-test FAILED: %d checks\n", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_url = std::getenv("TIERCACHE_REDIS_URL");
  std::string redis_url = env_url ? env_url : "redis://127.0.0.1:6379";
  bool test = false;
  int port = 8080;
  int users = 5000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--self-test") {
      test = true;
    } else if (arg == "--redis" && has_value) {
      redis_url = argv[++i];
    } else if (arg == "--port" && has_value) {
      port = std::atoi(argv[++i]);
    } else if (arg == "--users" && has_value) {
      users = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr,
                   "usage: user_service [--redis URL] [--port P] [--users N] | --self-test "
                   "[--redis URL]\n");
      return 2;
    }
  }
  try {
    return test ? self_test(redis_url) : serve(redis_url, port, users);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "user_service: %s\n", e.what());
    return 1;
  }
}
