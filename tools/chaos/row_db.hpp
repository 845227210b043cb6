// The system of record of `tiercache chaos`: one SQLite table of versioned rows, and the Row
// value the workers cache.
//
//   rows(key INTEGER PRIMARY KEY, version INTEGER NOT NULL, tag INTEGER NOT NULL,
//        payload TEXT NOT NULL)
//
// Rows 1..K exist; row k belongs to tag k % kTags (cache tag "tag:<n>"). Every change of a row
// increments its version, in one statement or transaction, so a value read from the table is
// identified by (key, version) and a later value always has a larger version. The value a
// loader returns embeds both, which is what lets the oracle tell a wrong value from a right
// one. (tools/demo/user_db.hpp is the demo's table of users: its rows carry no version and its
// UPDATE is a blind overwrite, so the chaos tool has its own.)
//
// The coordinator creates the file (WAL mode) before any worker exists; each worker opens its
// own RowDb. Thread-safety: a RowDb may be used from any number of threads; it holds two
// connections, one for reads (loaders) and one for writes, so a writer waiting for another
// process's write lock never holds up this process's loads.

#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace tiercache::cli::chaos {

// Rows are spread over this many tags.
inline constexpr std::int64_t kTags = 8;

struct Row {
  std::int64_t key = 0;
  std::int64_t version = 0;
  std::int64_t tag = 0;
  std::string payload;
  // Provenance, not stored in the database: the worker that produced this value ("w2.1") and
  // when (CLOCK_MONOTONIC us) -- its loader's database read began, or its write_through was
  // called. A wrong value then names who read it from the database, and when.
  std::string origin;
  std::int64_t origin_us = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Row, key, version, tag, payload, origin, origin_us)

// The cache key of row k ("row:<k>") and the cache tag of tag t ("tag:<t>").
std::string row_key(std::int64_t key);
std::string tag_name(std::int64_t tag);
// The payload of a row at a version: bytes that name both, padded to a realistic size.
std::string row_payload(std::int64_t key, std::int64_t version);

class RowDb {
 public:
  // Creates the database at `path` (which must not exist) with rows 1..keys at version 1, in
  // WAL mode. Throws std::runtime_error.
  static void create(const std::string& path, std::int64_t keys);

  // Opens `path` (created by create()). Throws std::runtime_error.
  explicit RowDb(const std::string& path);
  ~RowDb();
  RowDb(const RowDb&) = delete;
  RowDb& operator=(const RowDb&) = delete;

  // The row, or nullopt if there is none. Throws std::runtime_error on a database error.
  std::optional<Row> find(std::int64_t key);
  // The rows that exist among `keys`, in one query.
  std::vector<Row> find_many(const std::vector<std::int64_t>& keys);
  // The row's version now (through the write connection). nullopt if there is no such row.
  std::optional<std::int64_t> version(std::int64_t key);
  // Sets the row to `row.version` and `row.payload` if it is still at `expected`; throws
  // std::runtime_error if it is not (a write the caller did not serialise).
  void compare_and_set(const Row& row, std::int64_t expected);
  // Increments the row's version (and its payload); returns the new version.
  std::int64_t bump(std::int64_t key);
  // Increments the version of every row of `tag`, in one transaction; returns (key, version)
  // of each.
  std::vector<std::pair<std::int64_t, std::int64_t>> bump_tag(std::int64_t tag);
  // Every row's version (the end-of-run check for lost writes).
  std::vector<std::pair<std::int64_t, std::int64_t>> all_versions();

 private:
  void close();  // finalizes the statements, closes the connections (idempotent)

  std::mutex read_mutex_;  // read_ and its statements
  sqlite3* read_ = nullptr;
  sqlite3_stmt* select_ = nullptr;
  std::mutex write_mutex_;  // write_ and its statements
  sqlite3* write_ = nullptr;
  sqlite3_stmt* version_ = nullptr;
  sqlite3_stmt* set_ = nullptr;
  sqlite3_stmt* bump_ = nullptr;
  sqlite3_stmt* bump_tag_ = nullptr;
};

}  // namespace tiercache::cli::chaos
