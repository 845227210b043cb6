#include "tiercache/detail/readers.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <vector>

namespace tiercache::detail {

namespace {

// Process-wide allocator of dense thread indices. It holds no cache state: it only hands
// each live thread a distinct small number, recycled when the thread exits.
class ThreadIndices {
 public:
  std::size_t acquire() {
    std::lock_guard lock(mutex_);
    if (!free_.empty()) {
      // Reuse the smallest free index, keeping indices dense.
      auto smallest = free_.begin();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (*it < *smallest) smallest = it;
      }
      const std::size_t index = *smallest;
      *smallest = free_.back();
      free_.pop_back();
      return index;
    }
    return next_++;
  }
  void release(std::size_t index) {
    std::lock_guard lock(mutex_);
    free_.push_back(index);
  }

 private:
  std::mutex mutex_;
  std::vector<std::size_t> free_;
  std::size_t next_ = 0;
};

ThreadIndices& thread_indices() {
  // Leaked on purpose: threads may exit (and release their index) after static
  // destruction has begun.
  static auto* indices = new ThreadIndices();
  return *indices;
}

// Gives the index back when its thread exits.
struct IndexOwner {
  std::size_t index = SIZE_MAX;
  ~IndexOwner() {
    if (index != SIZE_MAX) thread_indices().release(index);
  }
};

long membarrier(int command) { return syscall(__NR_membarrier, command, 0, 0); }

bool register_membarrier() {
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

std::size_t assign_thread_index() {
  thread_local IndexOwner owner;
  if (owner.index == SIZE_MAX) owner.index = thread_indices().acquire();
  return owner.index;
}

bool asymmetric_fences_available() {
  static const bool available = register_membarrier();
  return available;
}

void heavy_fence() {
  if (asymmetric_fences_available()) {
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  } else {
    full_fence();
  }
}

Readers::Readers()
    : fence_in_readers_(!asymmetric_fences_available()), overflow_(std::make_unique<Chunk>()) {}

int Readers::try_advance(int steps) {
  // Make every reader's announcement visible (or its later loads see our unlinks).
  heavy_fence();
  int taken = 0;
  for (; taken < steps; ++taken) {
    const std::uint64_t e = epoch_.load(std::memory_order_relaxed);
    bool quiet = true;
    for_each_record([&](ReaderRecord& r) {
      const std::uint64_t announced = r.announced.load(std::memory_order_acquire);
      if (announced != 0 && announced < e) quiet = false;
    });
    if (!quiet) break;
    epoch_.store(e + 1, std::memory_order_seq_cst);
  }
  return taken;
}

Readers::Counts Readers::counts() const {
  Counts c;
  for_each_record([&](ReaderRecord& r) {
    c.hits += r.hits.load(std::memory_order_relaxed);
    c.negative_hits += r.negative_hits.load(std::memory_order_relaxed);
    c.misses += r.misses.load(std::memory_order_relaxed);
  });
  return c;
}

}  // namespace tiercache::detail
