// Hazard slots: how a Cached<V> keeps its node alive without writing to the node. Internal.
//
// Counting references on the node costs two atomic read-modify-writes per lookup on the
// node's cache line, which then ping-pongs between the cores that read the same hot key.
// Instead, a lookup parks the node's address in one of its thread's hazard slots (Michael,
// "Hazard Pointers", IEEE TPDS 2004): a plain store to a line only that thread writes.
// A cache about to drop its own reference to a node first scans every thread's slots and,
// for each slot that still holds the node, *converts* it: it adds a counted reference for
// the holder and swaps the slot's content for kConverted. The holder's Cached<V>, on
// release, exchanges its slot with nullptr and, if it finds kConverted, drops that counted
// reference. So a node lives while any handle needs it, the cache never waits, and handles
// may outlive the cache and move between threads.
//
// Why a scan sees the slot: the reader stores into its slot inside its lookup, i.e. before
// it leaves its epoch (a release store, Readers::Lookup); a node is released only after a
// grace period, whose check reads every reader's announcement with acquire.
//
// Slots are process-wide (one record per live thread, indexed like thread_index(), never
// freed), so a slot outlives any cache. A thread holding more than kSlots handles at once
// falls back to counted references, as do copies of a handle.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tiercache/detail/node.hpp"
#include "tiercache/detail/readers.hpp"

namespace tiercache::detail {

struct alignas(kCacheLine) HazardRecord {
  static constexpr std::size_t kSlots = 8;
  std::atomic<NodeHeader*> slots[kSlots] = {};
};

// Marks a slot whose node the cache has converted to a counted reference: the address of
// an object that is never a real node.
inline NodeHeader converted_marker;
inline NodeHeader* const kConverted = &converted_marker;

// The calling thread's record; nullptr past the supported number of threads.
HazardRecord* allocate_hazard_record();
inline HazardRecord* thread_hazards() {
  thread_local HazardRecord* record = nullptr;  // constant-initialised: no TLS guard
  if (record == nullptr) [[unlikely]]
    record = allocate_hazard_record();
  return record;
}

// Parks `node` in a free slot of the calling thread; returns the slot, or nullptr if all
// are in use. REQUIRES: inside a Readers::Lookup that found `node`.
inline std::atomic<NodeHeader*>* acquire_hazard(NodeHeader* node) {
  HazardRecord* record = thread_hazards();
  if (record == nullptr) return nullptr;
  for (auto& slot : record->slots) {
    if (slot.load(std::memory_order_relaxed) == nullptr) {
      slot.store(node, std::memory_order_relaxed);
      return &slot;
    }
  }
  return nullptr;
}

// Releases a slot taken by acquire_hazard; returns true if the cache had converted it to a
// counted reference, which the caller must then release.
inline bool release_hazard(std::atomic<NodeHeader*>* slot) {
  return slot->exchange(nullptr, std::memory_order_acq_rel) == kConverted;
}

// The nodes currently parked in any hazard slot (a snapshot). REQUIRES: a grace period
// separates the removal of the nodes the caller cares about from this call.
void hazard_snapshot(std::vector<NodeHeader*>& out);

// For every slot that holds `node`: add a counted reference and mark the slot kConverted.
void convert_hazards(NodeHeader* node);

}  // namespace tiercache::detail
