// Belady's MIN with bypass (see optimal.hpp).
//
// State while replaying: `resident` holds, for every key in the cache, the position of its
// next request. Because next-use positions are unique (see next_use_), the key requested at
// position i is resident iff i is in the set -- no map from keys is needed -- and the
// farthest resident is the set's largest element.
//  - hit at i:  replace i by next_use_[i];
//  - miss at i with room: insert next_use_[i];
//  - miss at i when full: if next_use_[i] > the largest element, bypass (keep the cache as
//    it is); else erase the largest element and insert next_use_[i].

#include "sim/optimal.hpp"

#include <iterator>
#include <set>
#include <stdexcept>
#include <unordered_map>

namespace tiercache::sim {

BeladyOracle::BeladyOracle(std::span<const std::uint64_t> trace) : next_use_(trace.size()) {
  const std::uint64_t n = trace.size();
  std::unordered_map<std::uint64_t, std::uint64_t> following;  // key -> next position seen
  following.reserve(trace.size() / 4);
  for (std::uint64_t i = n; i-- > 0;) {
    const auto [it, inserted] = following.try_emplace(trace[i], i);
    next_use_[i] = inserted ? n + i : it->second;
    it->second = i;
  }
}

std::uint64_t BeladyOracle::hits(std::size_t capacity) const {
  if (capacity == 0) throw std::invalid_argument("BeladyOracle: capacity must be > 0");
  std::set<std::uint64_t> resident;
  std::uint64_t hits = 0;
  for (std::uint64_t i = 0; i < next_use_.size(); ++i) {
    const std::uint64_t next = next_use_[i];
    if (const auto it = resident.find(i); it != resident.end()) {
      ++hits;
      resident.erase(it);
      resident.insert(next);
      continue;
    }
    if (resident.size() < capacity) {
      resident.insert(next);
    } else if (const auto farthest = std::prev(resident.end()); next < *farthest) {
      resident.erase(farthest);
      resident.insert(next);
    }  // else bypass
  }
  return hits;
}

}  // namespace tiercache::sim
