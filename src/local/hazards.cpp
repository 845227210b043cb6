#include "tiercache/detail/hazards.hpp"

#include "tiercache/detail/lazy_chunks.hpp"

namespace tiercache::detail {

namespace {

constexpr std::size_t kRecordsPerChunk = 64;
constexpr std::size_t kMaxChunks = 64;  // 4,096 threads; beyond, handles count references

struct Chunk {
  HazardRecord records[kRecordsPerChunk];
};

// Process-wide and never freed: a slot must outlive every cache and every handle. It holds
// no cache data, only addresses that handles currently protect.
using Registry = LazyChunks<Chunk, kMaxChunks>;

Registry& registry() {
  static auto* r = new Registry();
  return *r;
}

template <class F>
void for_each_slot(F&& f) {
  registry().for_each([&](Chunk& chunk) {
    for (HazardRecord& record : chunk.records) {
      for (auto& slot : record.slots) f(slot);
    }
  });
}

}  // namespace

HazardRecord* allocate_hazard_record() {
  const std::size_t index = thread_index();
  const std::size_t c = index / kRecordsPerChunk;
  if (c >= kMaxChunks) return nullptr;
  return &registry().at(c).records[index % kRecordsPerChunk];
}

void hazard_snapshot(std::vector<NodeHeader*>& out) {
  for_each_slot([&](std::atomic<NodeHeader*>& slot) {
    NodeHeader* n = slot.load(std::memory_order_acquire);
    if (n != nullptr && n != kConverted) out.push_back(n);
  });
}

void convert_hazards(NodeHeader* node) {
  for_each_slot([&](std::atomic<NodeHeader*>& slot) {
    if (slot.load(std::memory_order_acquire) != node) return;
    // The cache still holds its own reference, so refs > 0 throughout.
    node->refs.fetch_add(1, std::memory_order_relaxed);
    NodeHeader* expected = node;
    if (!slot.compare_exchange_strong(expected, kConverted, std::memory_order_acq_rel)) {
      node->refs.fetch_sub(1, std::memory_order_relaxed);  // the holder let go first
    }
  });
}

}  // namespace tiercache::detail
