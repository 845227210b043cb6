// The chaos tool's SQLite table of versioned rows (row_db.hpp).

#include "chaos/row_db.hpp"

#include <sqlite3.h>

#include <stdexcept>
#include <string_view>

namespace tiercache::cli::chaos {
namespace {

// How long a writer waits for another process's write lock before SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 10'000;
// Bytes of padding in a payload (with its key and version: about 60 bytes, a small row).
constexpr std::size_t kPaddingBytes = 40;

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
  // SQLITE_OPEN_NOMUTEX: RowDb's own mutexes serialise each connection.
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

// Resets a statement when it goes out of scope (its bindings too), whatever happens.
class Step {
 public:
  explicit Step(sqlite3_stmt* statement) : statement_(statement) {}
  ~Step() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  Step(const Step&) = delete;
  Step& operator=(const Step&) = delete;
  int operator()() { return sqlite3_step(statement_); }

 private:
  sqlite3_stmt* statement_;
};

Row row_at(sqlite3_stmt* statement) {
  Row row;
  row.key = sqlite3_column_int64(statement, 0);
  row.version = sqlite3_column_int64(statement, 1);
  row.tag = sqlite3_column_int64(statement, 2);
  const unsigned char* text = sqlite3_column_text(statement, 3);
  if (text != nullptr) row.payload = reinterpret_cast<const char*>(text);
  return row;
}

// A transaction on the write connection: BEGIN IMMEDIATE (the write lock up front, so two
// processes never deadlock upgrading), COMMIT by commit(), else ROLLBACK.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    exec(db_, "COMMIT");
    committed_ = true;
  }

 private:
  sqlite3* db_;
  bool committed_ = false;
};

const std::string& padding() {
  static const std::string text(kPaddingBytes, 'x');
  return text;
}

}  // namespace

std::string row_key(std::int64_t key) { return "row:" + std::to_string(key); }
std::string tag_name(std::int64_t tag) { return "tag:" + std::to_string(tag); }

std::string row_payload(std::int64_t key, std::int64_t version) {
  return "row:" + std::to_string(key) + "/v" + std::to_string(version) + "/" + padding();
}

void RowDb::create(const std::string& path, std::int64_t keys) {
  sqlite3* db = open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  try {
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db,
         "CREATE TABLE rows(key INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
         "tag INTEGER NOT NULL, payload TEXT NOT NULL)");
    exec(db, "BEGIN");
    sqlite3_stmt* insert = prepare(db, "INSERT INTO rows VALUES (?1, 1, ?2, ?3)");
    for (std::int64_t key = 1; key <= keys; ++key) {
      const std::string payload = row_payload(key, 1);
      sqlite3_bind_int64(insert, 1, key);
      sqlite3_bind_int64(insert, 2, key % kTags);
      sqlite3_bind_text(insert, 3, payload.data(), static_cast<int>(payload.size()),
                        SQLITE_TRANSIENT);
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

RowDb::RowDb(const std::string& path) {
  try {
    read_ = open(path, SQLITE_OPEN_READWRITE);
    write_ = open(path, SQLITE_OPEN_READWRITE);
    // WAL with synchronous=NORMAL: a commit survives the process being killed (the WAL is in
    // the OS's page cache), not a power cut -- the chaos tool kills processes, not machines.
    exec(write_, "PRAGMA synchronous=NORMAL");
    select_ = prepare(read_, "SELECT key, version, tag, payload FROM rows WHERE key = ?1");
    version_ = prepare(write_, "SELECT version FROM rows WHERE key = ?1");
    set_ = prepare(write_,
                   "UPDATE rows SET version = ?2, payload = ?3 WHERE key = ?1 AND version = ?4");
    bump_ = prepare(write_,
                    "UPDATE rows SET version = version + 1, "
                    "payload = 'row:' || key || '/v' || (version + 1) || '/' || ?2 "
                    "WHERE key = ?1 RETURNING version");
    bump_tag_ = prepare(write_,
                        "UPDATE rows SET version = version + 1, "
                        "payload = 'row:' || key || '/v' || (version + 1) || '/' || ?2 "
                        "WHERE tag = ?1 RETURNING key, version");
  } catch (...) {
    close();
    throw;
  }
}

RowDb::~RowDb() { close(); }

void RowDb::close() {
  for (sqlite3_stmt* s : {select_, version_, set_, bump_, bump_tag_}) sqlite3_finalize(s);
  select_ = version_ = set_ = bump_ = bump_tag_ = nullptr;
  sqlite3_close(read_);
  sqlite3_close(write_);
  read_ = write_ = nullptr;
}

std::optional<Row> RowDb::find(std::int64_t key) {
  std::lock_guard lock(read_mutex_);
  Step step(select_);
  sqlite3_bind_int64(select_, 1, key);
  const int rc = step();
  if (rc == SQLITE_ROW) return row_at(select_);
  if (rc != SQLITE_DONE) fail(read_, "SELECT");
  return std::nullopt;
}

std::vector<Row> RowDb::find_many(const std::vector<std::int64_t>& keys) {
  std::string sql = "SELECT key, version, tag, payload FROM rows WHERE key IN (";
  for (std::size_t i = 0; i < keys.size(); ++i) sql += i == 0 ? "?" : ",?";
  sql += ")";
  std::lock_guard lock(read_mutex_);
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(read_, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
    fail(read_, "SELECT ... IN");
  }
  std::vector<Row> rows;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    sqlite3_bind_int64(statement, static_cast<int>(i) + 1, keys[i]);
  }
  int rc;
  while ((rc = sqlite3_step(statement)) == SQLITE_ROW) rows.push_back(row_at(statement));
  sqlite3_finalize(statement);
  if (rc != SQLITE_DONE) fail(read_, "SELECT ... IN");
  return rows;
}

std::optional<std::int64_t> RowDb::version(std::int64_t key) {
  std::lock_guard lock(write_mutex_);
  Step step(version_);
  sqlite3_bind_int64(version_, 1, key);
  const int rc = step();
  if (rc == SQLITE_ROW) return sqlite3_column_int64(version_, 0);
  if (rc != SQLITE_DONE) fail(write_, "SELECT version");
  return std::nullopt;
}

void RowDb::compare_and_set(const Row& row, std::int64_t expected) {
  std::lock_guard lock(write_mutex_);
  Step step(set_);
  sqlite3_bind_int64(set_, 1, row.key);
  sqlite3_bind_int64(set_, 2, row.version);
  sqlite3_bind_text(set_, 3, row.payload.data(), static_cast<int>(row.payload.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(set_, 4, expected);
  if (step() != SQLITE_DONE) fail(write_, "UPDATE");
  if (sqlite3_changes(write_) != 1) {
    throw std::runtime_error("row " + std::to_string(row.key) + " is no longer at version " +
                             std::to_string(expected) + ": a write was not serialised");
  }
}

std::int64_t RowDb::bump(std::int64_t key) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(write_);
  std::int64_t version = -1;
  {
    Step step(bump_);
    sqlite3_bind_int64(bump_, 1, key);
    sqlite3_bind_text(bump_, 2, padding().data(), static_cast<int>(padding().size()),
                      SQLITE_STATIC);
    int rc;
    while ((rc = step()) == SQLITE_ROW) version = sqlite3_column_int64(bump_, 0);
    if (rc != SQLITE_DONE) fail(write_, "UPDATE ... RETURNING");
  }
  if (version < 0) throw std::runtime_error("no row " + std::to_string(key));
  transaction.commit();
  return version;
}

std::vector<std::pair<std::int64_t, std::int64_t>> RowDb::bump_tag(std::int64_t tag) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(write_);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  {
    Step step(bump_tag_);
    sqlite3_bind_int64(bump_tag_, 1, tag);
    sqlite3_bind_text(bump_tag_, 2, padding().data(), static_cast<int>(padding().size()),
                      SQLITE_STATIC);
    int rc;
    while ((rc = step()) == SQLITE_ROW) {
      out.emplace_back(sqlite3_column_int64(bump_tag_, 0), sqlite3_column_int64(bump_tag_, 1));
    }
    if (rc != SQLITE_DONE) fail(write_, "UPDATE ... WHERE tag RETURNING");
  }
  transaction.commit();
  return out;
}

std::vector<std::pair<std::int64_t, std::int64_t>> RowDb::all_versions() {
  std::lock_guard lock(read_mutex_);
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(read_, "SELECT key, version FROM rows", -1, &statement, nullptr) !=
      SQLITE_OK) {
    fail(read_, "SELECT key, version");
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  int rc;
  while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
    out.emplace_back(sqlite3_column_int64(statement, 0), sqlite3_column_int64(statement, 1));
  }
  sqlite3_finalize(statement);
  if (rc != SQLITE_DONE) fail(read_, "SELECT key, version");
  return out;
}

}  // namespace tiercache::cli::chaos
