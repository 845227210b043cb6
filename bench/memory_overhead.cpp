// Memory overhead per entry of tiercache::LocalCache<uint64_t, uint64_t> (default policy)
// and of the MutexLru baseline (tools/sim/mutex_lru.hpp), for 1M entries.
//
// Global operator new/delete are replaced to track every live heap block:
//   requested  the bytes asked of operator new;
//   footprint  what glibc really uses: malloc_usable_size(p) + 8 (the chunk header).
// For each cache: construct it with room for 1M entries, insert 1M distinct keys (no
// replacements, so nothing is retired), call cleanup(), and take
//   (live bytes now - live bytes before the cache was constructed) / entries - 16
// (16 = sizeof key + sizeof value), i.e. everything the cache costs beyond the payload,
// its fixed structures (hash table, frequency sketch, ...) included, spread over the
// entries. The fixed part (bytes right after construction) is printed separately too.
//
// Output ends with one machine-readable line per cache:
//   memory policy=<cache> entries=<n> overhead_bytes_per_entry=<requested - 16>
//          footprint_bytes_per_entry=<malloc footprint - 16> allocs_per_entry=<live blocks / n>
//
// Usage: tiercache_memory_overhead [entries]   (default 1000000)

#include <malloc.h>
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "cache_adapters.hpp"
#include "zipf.hpp"

namespace {

// ---- allocation tracking ---------------------------------------------------------------
// An open-addressing table (linear probing, backward-shift deletion) from block address to
// requested size, in memory from mmap so that it is not itself tracked.
class Tracker {
 public:
  struct Totals {
    std::int64_t requested = 0;
    std::int64_t footprint = 0;
    std::int64_t blocks = 0;
  };

  void on_alloc(void* p, std::size_t n) {
    if (p == nullptr) return;
    Lock lock(busy_);
    if (!ensure_table()) return;
    std::size_t i = slot_of(p);
    while (table_[i].ptr != nullptr) i = (i + 1) & kMask;
    table_[i] = {p, n};
    live_.requested += static_cast<std::int64_t>(n);
    live_.footprint += footprint(p);
    live_.blocks += 1;
  }

  void on_free(void* p) {
    if (p == nullptr) return;
    Lock lock(busy_);
    if (table_ == nullptr) return;
    std::size_t i = slot_of(p);
    while (table_[i].ptr != p) {
      if (table_[i].ptr == nullptr) return;  // not ours (allocated before tracking)
      i = (i + 1) & kMask;
    }
    live_.requested -= static_cast<std::int64_t>(table_[i].size);
    live_.footprint -= footprint(p);
    live_.blocks -= 1;
    // Backward-shift deletion keeps every probe chain unbroken.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & kMask; table_[j].ptr != nullptr; j = (j + 1) & kMask) {
      const std::size_t home = slot_of(table_[j].ptr);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const bool home_after_hole = ((j - home) & kMask) < ((j - hole) & kMask);
      if (!home_after_hole) {
        table_[hole] = table_[j];
        hole = j;
      }
    }
    table_[hole] = {nullptr, 0};
  }

  Totals totals() {
    Lock lock(busy_);
    return live_;
  }

 private:
  struct Entry {
    void* ptr;
    std::size_t size;
  };
  struct Lock {
    explicit Lock(std::atomic_flag& f) : flag(f) {
      while (flag.test_and_set(std::memory_order_acquire)) {
      }
    }
    ~Lock() { flag.clear(std::memory_order_release); }
    std::atomic_flag& flag;
  };
  static constexpr std::size_t kSlotsLog2 = 24;  // 16M slots, 256 MiB of (lazy) mmap
  static constexpr std::size_t kSlots = std::size_t{1} << kSlotsLog2;
  static constexpr std::size_t kMask = kSlots - 1;

  static std::size_t slot_of(const void* p) {
    const auto x = reinterpret_cast<std::uintptr_t>(p) >> 4;
    return static_cast<std::size_t>((x * 0x9e3779b97f4a7c15ULL) >> (64 - kSlotsLog2));
  }
  static std::int64_t footprint(void* p) {
    return static_cast<std::int64_t>(malloc_usable_size(p)) + 8;
  }
  bool ensure_table() {
    if (table_ != nullptr) return true;
    void* m = mmap(nullptr, kSlots * sizeof(Entry), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return false;
    table_ = static_cast<Entry*>(m);
    return true;
  }

  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  Entry* table_ = nullptr;
  Totals live_;
};

Tracker& tracker() {
  static Tracker t;  // constant-initialised: usable before any other static constructor
  return t;
}

void* tracked_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  tracker().on_alloc(p, n);
  return p;
}

void* tracked_aligned_alloc(std::size_t n, std::align_val_t al) {
  const auto a = static_cast<std::size_t>(al);
  void* p = nullptr;
  if (posix_memalign(&p, a < sizeof(void*) ? sizeof(void*) : a, n == 0 ? 1 : n) != 0) {
    return nullptr;
  }
  tracker().on_alloc(p, n);
  return p;
}

// Out of line: inlined into the replaced operator delete, gcc 12 would see free() of a
// pointer from operator new and warn (-Wmismatched-new-delete), wrongly: new is ours too.
[[gnu::noinline]] void tracked_free(void* p) noexcept {
  tracker().on_free(p);
  std::free(p);
}

}  // namespace

// ---- replaced global allocation functions ----------------------------------------------
void* operator new(std::size_t n) {
  if (void* p = tracked_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = tracked_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return tracked_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return tracked_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = tracked_aligned_alloc(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  if (void* p = tracked_aligned_alloc(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return tracked_aligned_alloc(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return tracked_aligned_alloc(n, a);
}
void operator delete(void* p) noexcept { tracked_free(p); }
void operator delete[](void* p) noexcept { tracked_free(p); }
void operator delete(void* p, std::size_t) noexcept { tracked_free(p); }
void operator delete[](void* p, std::size_t) noexcept { tracked_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { tracked_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { tracked_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { tracked_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { tracked_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { tracked_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { tracked_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { tracked_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  tracked_free(p);
}

// ---- measurement -----------------------------------------------------------------------
namespace {

constexpr double kPayloadBytes = sizeof(std::uint64_t) * 2;

template <class Adapter>
bool measure(std::size_t entries) {
  using tiercache::bench::scramble_key;
  const Tracker::Totals before = tracker().totals();
  Tracker::Totals constructed;
  Tracker::Totals filled;
  {
    Adapter cache(entries);
    constructed = tracker().totals();
    for (std::size_t i = 0; i < entries; ++i) cache.put(scramble_key(i), i);
    cache.cleanup();
    filled = tracker().totals();
    // Sanity: every key must still be there (no eviction at capacity == entries).
    std::size_t present = 0;
    for (std::size_t i = 0; i < entries; ++i) {
      std::uint64_t v = 0;
      if (cache.get(scramble_key(i), &v) && v == i) ++present;
    }
    if (present != entries) {
      std::printf("%s: only %zu of %zu entries present after the inserts\n", Adapter::kName,
                  present, entries);
      return false;
    }
  }
  const Tracker::Totals after = tracker().totals();

  const auto n = static_cast<double>(entries);
  const double fixed_req = static_cast<double>(constructed.requested - before.requested);
  const double fixed_fp = static_cast<double>(constructed.footprint - before.footprint);
  const double inserts_req = static_cast<double>(filled.requested - constructed.requested);
  const double inserts_fp = static_cast<double>(filled.footprint - constructed.footprint);
  const double total_req = static_cast<double>(filled.requested - before.requested);
  const double total_fp = static_cast<double>(filled.footprint - before.footprint);
  const double blocks = static_cast<double>(filled.blocks - before.blocks);

  std::printf("%s (%zu entries of uint64_t -> uint64_t)\n", Adapter::kName, entries);
  std::printf("  %-32s %14s %14s\n", "", "requested", "malloc footprint");
  std::printf("  %-32s %14.0f %14.0f\n", "fixed, after construction (B)", fixed_req, fixed_fp);
  std::printf("  %-32s %14.2f %14.2f\n", "per insert (B/entry)", inserts_req / n, inserts_fp / n);
  std::printf("  %-32s %14.2f %14.2f\n", "total per entry (B/entry)", total_req / n, total_fp / n);
  std::printf("  %-32s %14.2f %14.2f\n", "overhead beyond 16 B (B/entry)",
              total_req / n - kPayloadBytes, total_fp / n - kPayloadBytes);
  std::printf("  %-32s %14.2f\n", "live heap blocks per entry", blocks / n);
  std::printf("  %-32s %14lld %14lld\n", "left after destruction (B)",
              static_cast<long long>(after.requested - before.requested),
              static_cast<long long>(after.footprint - before.footprint));
  std::printf(
      "memory policy=%s entries=%zu overhead_bytes_per_entry=%.2f "
      "footprint_bytes_per_entry=%.2f allocs_per_entry=%.2f\n",
      Adapter::kName, entries, total_req / n - kPayloadBytes, total_fp / n - kPayloadBytes,
      blocks / n);
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t entries = 1'000'000;
  if (argc > 1) entries = static_cast<std::size_t>(std::stoull(argv[1]));
  if (argc > 2 || entries == 0) {
    std::fprintf(stderr, "usage: %s [entries]\n", argv[0]);
    return 2;
  }
  bool ok = measure<tiercache::bench::TiercacheAdapter>(entries);
#if TIERCACHE_BENCH_HAVE_MUTEX_LRU
  ok = measure<tiercache::bench::MutexLruAdapter>(entries) && ok;
#else
  std::printf("mutex_lru: tools/sim/mutex_lru.hpp not found, baseline skipped\n");
#endif
  return ok ? 0 : 1;
}
