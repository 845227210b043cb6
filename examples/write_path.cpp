// write_path.cpp -- keeping a cache in step with the database when a row changes:
// write-through or invalidate-on-write, and the race that makes naive versions of both keep
// an old row in the cache.
//
// Two ways to follow an UPDATE:
//   write_through(key, row, db_writer)   runs db_writer (the UPDATE), then puts the new row in
//                                        both tiers: the next read, in any process, is a hit.
//                                        For rows the writer knows in full.
//   UPDATE, then invalidate(key)         the next read loads the row from the database: for
//                                        rows the database completes (defaults, triggers,
//                                        updated_at). Costs one load.
// Either way every other process drops its L1 copy (a message on the cache's Redis channel).
//
// The race. Process A misses and SELECTs the row: version 1. Before A stores what it read,
// process B UPDATEs the row to version 2 and writes it to the cache (or deletes it from the
// cache). Then A stores version 1. A naive read path (GET; SELECT; SETEX) now holds the old
// row and serves it everywhere for a whole TTL, though the database moved on.
//
// How tiercache closes it (docs/write-through.md): A's load holds the key's lock in Redis
// (the stampede lock); B's write_through, set or invalidate deletes that lock in the same
// atomic script that changes the value; A's store writes only if the lock still holds A's
// token. So A's old row is refused, and A keeps it out of its own L1 too. A's caller still gets
// version 1: it asked before the change, so that answer is right.
//
// This program plays the race step by step: Cache objects with their own Redis connection
// and L1 stand for processes A, B and C (C only looks), and A's loader is held after its
// SELECT until B has written. It exits 1 if the old row gets into the cache.
//
//   write_path [REDIS_URL]      (default: $TIERCACHE_REDIS_URL, then redis://127.0.0.1:6379)
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tiercache/cache.hpp>

namespace {

struct Product {
  std::int64_t id = 0;
  std::int64_t price = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Product, id, price)  // Cache<Product> stores it as JSON

// The system of record: a table in memory.
class ProductTable {
 public:
  std::optional<Product> select(std::int64_t id) {
    std::lock_guard lock(mutex_);
    auto it = rows_.find(id);
    return it == rows_.end() ? std::nullopt : std::optional<Product>(it->second);
  }
  void update(const Product& row) {
    std::lock_guard lock(mutex_);
    rows_[row.id] = row;
  }

 private:
  std::mutex mutex_;
  std::map<std::int64_t, Product> rows_;
};

using Cache = tiercache::Cache<Product>;

int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("      %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}
std::string describe(const tiercache::CacheResult<Product>& r) {
  if (r.has_value()) {
    return "price " + std::to_string(r->price) + " (from " + tiercache::to_string(r.source()) + ")";
  }
  return r.is_miss() ? "nothing (a miss)" : r.is_negative() ? "not found" : "an error";
}
std::int64_t price_of(const tiercache::CacheResult<Product>& r) { return r ? r->price : -1; }

// One round of the race on product `id`: process A's read is held between its SELECT and its
// return while `write` (B's UPDATE and cache write) runs. Returns what A's caller got.
tiercache::CacheResult<Product> race(Cache& a, const std::shared_ptr<ProductTable>& db,
                                     std::int64_t id, const std::string& write_step,
                                     const std::function<void()>& write) {
  const std::string key = "product:" + std::to_string(id);
  // The loader may outlive the call that started it: what it uses is owned by shared_ptr.
  struct Gate {
    std::latch selected{1};  // A's loader has read the row
    std::latch released{1};  // B is done: A's loader may return
  };
  auto gate = std::make_shared<Gate>();
  auto held_select = [db, gate, id](std::string_view) {
    std::optional<Product> row = db->select(id);
    gate->selected.count_down();
    gate->released.wait();
    return row;
  };

  auto a_read = std::async(std::launch::async, [&] { return a.get_or_load(key, held_select); });
  gate->selected.wait();
  std::printf(
      "  1. A: get_or_load(%s) misses everywhere and SELECTs: price %lld (A's load holds"
      " the key's lock; held here)\n",
      key.c_str(), static_cast<long long>(db->select(id)->price));
  write();
  std::printf("  2. %s\n", write_step.c_str());
  gate->released.count_down();
  tiercache::CacheResult<Product> got = a_read.get();
  std::printf("  3. A's loader returns the row it read; A's caller gets %s\n",
              describe(got).c_str());
  return got;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env_url = std::getenv("TIERCACHE_REDIS_URL");
  const std::string url = argc > 1 ? argv[1] : env_url ? env_url : "redis://127.0.0.1:6379";
  auto config = tiercache::redis::parse_url(url);
  if (!config) return std::fprintf(stderr, "%s\n", config.error().to_string().c_str()), 2;

  tiercache::CacheOptions options;
  // A name of its own for each run: runs sharing a Redis server never see each other's keys.
  options.name = "write-path-" + std::to_string(::getpid()) + "-" +
                 std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  // Three processes: each its own connection and L1, one shared name (so one shared L2).
  Cache a(options, std::make_shared<tiercache::redis::Client>(config.value()));
  Cache b(options, std::make_shared<tiercache::redis::Client>(config.value()));
  Cache c(options, std::make_shared<tiercache::redis::Client>(config.value()));
  auto db = std::make_shared<ProductTable>();
  const auto load = [db](std::int64_t id) {
    return [db, id](std::string_view) { return db->select(id); };
  };

  std::printf("write-through while A loads the old row\n");
  db->update({1, 1000});
  tiercache::CacheResult<Product> got = race(
      a, db, 1,
      "B: write_through(product:1, price 1200)"
      ": UPDATE, then SET in Redis",
      [&] {
        b.write_through("product:1", Product{1, 1200}, [db](const Product& p) { db->update(p); });
      });
  check(price_of(got) == 1000, "A's caller got the row as it was when it asked");
  check(price_of(a.get("product:1")) == 1200, "A's next read: price 1200 (A kept nothing old)");
  check(price_of(b.get("product:1")) == 1200, "B reads price 1200");
  check(price_of(c.get("product:1")) == 1200, "C, which never read it, gets price 1200 from Redis");

  std::printf("invalidate-on-write while A loads the old row\n");
  db->update({2, 500});
  got = race(a, db, 2, "B: UPDATE to price 450, then invalidate(product:2)", [&] {
    db->update({2, 450});
    b.invalidate("product:2");
  });
  check(price_of(got) == 500, "A's caller got the row as it was when it asked");
  check(a.get("product:2").is_miss(), "A's next get(): a miss -- the old row was not stored");
  tiercache::CacheResult<Product> fresh = c.get_or_load("product:2", load(2));
  std::printf("  4. C: get_or_load(product:2) gets %s\n", describe(fresh).c_str());
  check(price_of(fresh) == 450 && fresh.source() == tiercache::Source::kLoader,
        "C loads the new row from the database");

  std::printf("the same inside one process: A writes while A loads\n");
  db->update({3, 70});
  got = race(a, db, 3, "A (another thread): write_through(product:3, price 75)", [&] {
    a.write_through("product:3", Product{3, 75}, [db](const Product& p) { db->update(p); });
  });
  check(price_of(got) == 70, "the reading caller got the row as it was when it asked");
  check(price_of(a.get("product:3")) == 75, "A's L1 holds price 75, not 70");
  check(price_of(c.get("product:3")) == 75, "C gets price 75 from Redis");

  std::printf(failures == 0 ? "the old rows stayed out of the cache\n"
                            : "FAILED: %d checks (an old row got into the cache)\n",
              failures);
  return failures == 0 ? 0 : 1;
}
