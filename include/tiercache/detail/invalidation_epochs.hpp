// InvalidationEpochs: the one rule every invalidation source feeds (docs/invalidation.md, "One
// rule for every invalidation source").
//
// Every invalidation -- of a key, of a tag, of everything (clear, a namespace version change,
// a bus gap) -- is numbered by a process-wide epoch. A read of the source (the L2 GET, the
// loader's database query) notes the epoch before it begins (`now()`); the value it produces
// carries that epoch. Before the value is stored in L1 or L2, or handed to a caller who
// arrived after the read began, the read path asks `covered_since(key, tags, read_epoch)`:
// did an invalidation that could cover this key or one of these tags come since? If so the
// value is stored nowhere, and only callers who were already waiting get it.
//
// Invariants:
//  - Epochs only grow. `now()` is the number of the last invalidation.
//  - key_slots_[h(key)] / tag_slots_[h(tag)] hold the epoch of the last invalidation of any key
//    / tag hashing there; all_ the last invalidation of everything. A slot shared by two keys
//    makes the check conservative (a value not stored, never a stale value stored).
//  - An invalidation updates its slot and then the epoch under `gate_` held exclusively;
//    `store_if_current` checks and stores under `gate_` held shared. So a store either happens
//    before the invalidation (and the invalidation's caller then drops the L1 copy) or sees it
//    (and does not store): no value read before an invalidation can appear in L1 after the
//    invalidation's caller dropped its copy.
//  - The invalidation's caller must bump *after* the change is visible to new reads (after the
//    database write and the L2 delete), and drop its L1 copies after the bump.
//
// Thread-safety: every member may be called from any thread. `store` callbacks must not
// invalidate (they run under the shared gate).

#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/detail/mix.hpp"

namespace tiercache::detail {

class InvalidationEpochs {
 public:
  using Epoch = std::uint64_t;

  // The epoch to note before a read of the source begins.
  Epoch now() const noexcept { return epoch_.load(std::memory_order_acquire); }

  // Invalidation sources. Each returns the new epoch. `also`, if given, runs under the gate
  // with the new epoch, after the slot is set and before the epoch is published (e.g. putting
  // a written value in L1, or recording the namespace version that changed, so that a read
  // that sees the new epoch sees the new version too).
  using Also = std::function<void(Epoch)>;
  Epoch invalidate_key(std::string_view key, const Also& also = nullptr) {
    return bump(&key_slots_[slot(key)], also);
  }
  Epoch invalidate_tag(std::string_view tag, const Also& also = nullptr) {
    return bump(&tag_slots_[slot(tag)], also);
  }
  Epoch invalidate_all(const Also& also = nullptr) { return bump(&all_, also); }

  // Whether an invalidation of everything or of `key` came after `since` (what removes a
  // value, as opposed to a tag's, which makes it stale).
  bool removed_since(std::string_view key, Epoch since) const noexcept {
    return all_.load(std::memory_order_acquire) > since ||
           key_slots_[slot(key)].load(std::memory_order_acquire) > since;
  }

  // Whether an invalidation of everything, of `key` or of one of `tags` came after `since`.
  bool covered_since(std::string_view key, const std::vector<std::string>& tags,
                     Epoch since) const noexcept {
    if (removed_since(key, since)) return true;
    for (const std::string& tag : tags) {
      if (tag_slots_[slot(tag)].load(std::memory_order_acquire) > since) return true;
    }
    return false;
  }

  // Runs `store()` if no invalidation covers (key, tags) since `since`, atomically with respect
  // to every invalidation. Returns whether it ran. `tags` is read before `store()` runs, never
  // after (so it may refer to what `store()` moves away).
  template <class Store>
  bool store_if_current(std::string_view key, const std::vector<std::string>& tags, Epoch since,
                        Store&& store) {
    std::shared_lock lock(gate_);
    if (covered_since(key, tags, since)) return false;
    store();
    return true;
  }

 private:
  // Slots per kind: 16384 x 8 bytes each (128 KiB). A collision only costs a value not kept in
  // L1 (a reload); L2 stores are decided by the stampede lock, which is exact.
  static constexpr std::size_t kSlots = 16384;

  static std::size_t slot(std::string_view s) noexcept {
    return static_cast<std::size_t>(mix64(std::hash<std::string_view>{}(s))) & (kSlots - 1);
  }

  Epoch bump(std::atomic<Epoch>* target, const Also& also) {
    std::unique_lock lock(gate_);
    const Epoch e = epoch_.load(std::memory_order_relaxed) + 1;
    target->store(e, std::memory_order_release);
    if (also) also(e);
    epoch_.store(e, std::memory_order_release);
    return e;
  }

  mutable std::shared_mutex gate_;
  std::atomic<Epoch> epoch_{1};
  std::atomic<Epoch> all_{0};
  std::array<std::atomic<Epoch>, kSlots> key_slots_{};
  std::array<std::atomic<Epoch>, kSlots> tag_slots_{};
};

}  // namespace tiercache::detail
