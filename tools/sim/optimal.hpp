// The clairvoyant upper bound on a trace's hit count: Belady's MIN with bypass.
//
// L. A. Belady, "A study of replacement algorithms for a virtual-storage computer", IBM
// Systems Journal 5(2), 1966. Knowing the whole trace, on a miss with a full cache evict
// the resident key whose next use is farthest in the future -- or, when the requested key's
// own next use is farther still, do not insert it at all (bypass: the variant that is
// optimal for caches that need not admit every miss, like every policy compared here).

#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tiercache::sim {

// Belady's MIN for one trace, any number of capacities. The next-use table is computed once
// (O(n) expected, one hash map over the distinct keys); each hits() call is O(n log c).
class BeladyOracle {
 public:
  explicit BeladyOracle(std::span<const std::uint64_t> trace);

  // Hits of MIN with bypass over the whole trace with room for `capacity` keys.
  // REQUIRES: capacity > 0.
  std::uint64_t hits(std::size_t capacity) const;

  std::size_t requests() const { return next_use_.size(); }

 private:
  // next_use_[i]: the position of the next request for the key of request i; when there is
  // none, n + i (beyond every real position, and still unique, so positions identify
  // residents: the resident whose next use is i is exactly the key requested at i).
  std::vector<std::uint64_t> next_use_;
};

}  // namespace tiercache::sim
