// A fixed array of chunk pointers whose chunks are allocated on first use, by whichever
// thread gets there first, and never moved. Internal; shared by the per-cache reader
// records (readers.hpp) and the process-wide hazard slots (hazards.cpp).
//
// Thread-safety: at() and for_each() may run concurrently from any threads. A chunk, once
// published, stays at its address until the LazyChunks is destroyed.

#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

namespace tiercache::detail {

template <class Chunk, std::size_t kChunks>
class LazyChunks {
 public:
  LazyChunks() = default;
  LazyChunks(const LazyChunks&) = delete;
  LazyChunks& operator=(const LazyChunks&) = delete;
  ~LazyChunks() {
    for (auto& c : chunks_) delete c.load(std::memory_order_relaxed);
  }

  // Chunk `index`, allocated if needed. REQUIRES: index < kChunks.
  Chunk& at(std::size_t index) {
    Chunk* c = chunks_[index].load(std::memory_order_acquire);
    return c != nullptr ? *c : allocate(index);
  }

  // Calls f(chunk) for every chunk allocated so far.
  template <class F>
  void for_each(F&& f) const {
    const std::size_t allocated = allocated_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < allocated; ++i) {
      if (Chunk* c = chunks_[i].load(std::memory_order_acquire)) f(*c);
    }
  }

 private:
  Chunk& allocate(std::size_t index) {
    auto fresh = std::make_unique<Chunk>();
    Chunk* expected = nullptr;
    Chunk* result = fresh.get();
    if (chunks_[index].compare_exchange_strong(expected, result, std::memory_order_acq_rel)) {
      static_cast<void>(fresh.release());  // owned by chunks_ now
    } else {
      result = expected;  // another thread won the race
    }
    // Publish the chunk to for_each() before anyone can use it.
    std::size_t allocated = allocated_.load(std::memory_order_relaxed);
    while (allocated < index + 1 &&
           !allocated_.compare_exchange_weak(allocated, index + 1, std::memory_order_acq_rel)) {
    }
    return *result;
  }

  std::atomic<std::size_t> allocated_{0};  // 1 + highest index allocated
  std::atomic<Chunk*> chunks_[kChunks] = {};
};

}  // namespace tiercache::detail
