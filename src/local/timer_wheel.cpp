#include "tiercache/detail/timer_wheel.hpp"

#include <algorithm>
#include <cstddef>

namespace tiercache::detail {

TimerWheel::TimerWheel(std::int64_t now_ns) : now_ns_(now_ns) {
  std::size_t total = 0;
  for (std::size_t w = 0; w < kWheels; ++w) {
    wheel_base_[w] = total;
    total += kBuckets[w];
  }
  static_assert(offsetof(Sentinel, header) == TimerLinks::kOffset);
  bucket_total_ = total;
  buckets_ = std::make_unique<Sentinel[]>(total);
  clear();
}

NodeHeader* TimerWheel::bucket_for(std::int64_t expires_at_ns) {
  const auto remaining =
      static_cast<std::uint64_t>(expires_at_ns > now_ns_ ? expires_at_ns - now_ns_ : 0);
  const auto at = static_cast<std::uint64_t>(expires_at_ns);
  for (std::size_t w = 0; w + 1 < kWheels; ++w) {
    // Wheel w covers kBuckets[w] slots of 2^kShift[w] ns: up to 2^kShift[w + 1].
    if (remaining < (std::uint64_t{1} << kShift[w + 1])) {
      const std::size_t index = (at >> kShift[w]) & (kBuckets[w] - 1);
      return &buckets_[wheel_base_[w] + index].header;
    }
  }
  return &buckets_[wheel_base_[kWheels - 1]].header;
}

void TimerWheel::link(NodeHeader* bucket, NodeHeader* node) {
  TimerLinks* sentinel = timer_links(bucket);
  TimerLinks* links = timer_links(node);
  links->prev = sentinel->prev;
  links->next = bucket;
  timer_links(sentinel->prev)->next = node;
  sentinel->prev = node;
}

void TimerWheel::unlink(NodeHeader* node) {
  TimerLinks* links = timer_links(node);
  timer_links(links->prev)->next = links->next;
  timer_links(links->next)->prev = links->prev;
  links->prev = links->next = nullptr;
}

void TimerWheel::schedule(NodeHeader* node) {
  link(bucket_for(timer_links(node)->expires_at_ns), node);
}

void TimerWheel::deschedule(NodeHeader* node) {
  if (timer_links(node)->next != nullptr) unlink(node);
}

void TimerWheel::advance(std::int64_t now_ns, std::vector<NodeHeader*>& expired) {
  if (now_ns <= now_ns_) return;
  const auto previous = static_cast<std::uint64_t>(now_ns_);
  const auto current = static_cast<std::uint64_t>(now_ns);
  now_ns_ = now_ns;
  for (std::size_t w = 0; w < kWheels; ++w) {
    const std::uint64_t previous_ticks = previous >> kShift[w];
    const std::uint64_t current_ticks = current >> kShift[w];
    if (current_ticks == previous_ticks) break;
    // Visit the slots from the previous tick to the current one, inclusive (all of them if
    // a full turn passed).
    const std::uint64_t mask = kBuckets[w] - 1;
    const std::uint64_t steps =
        std::min<std::uint64_t>(current_ticks - previous_ticks + 1, kBuckets[w]);
    for (std::uint64_t i = 0; i < steps; ++i) {
      Sentinel& s = buckets_[wheel_base_[w] + ((previous_ticks + i) & mask)];
      NodeHeader* bucket = &s.header;
      // Detach the whole bucket first: rescheduled nodes may land in it again.
      NodeHeader* n = s.links.next;
      NodeHeader* last = s.links.prev;
      if (n == bucket) continue;
      s.links.prev = s.links.next = bucket;
      timer_links(last)->next = nullptr;
      while (n != nullptr) {
        TimerLinks* links = timer_links(n);
        NodeHeader* next = links->next;
        links->prev = links->next = nullptr;
        if (links->expires_at_ns <= now_ns) {
          expired.push_back(n);
        } else {
          link(bucket_for(links->expires_at_ns), n);
        }
        n = next;
      }
    }
  }
}

void TimerWheel::clear() {
  for (std::size_t i = 0; i < bucket_total_; ++i) {
    buckets_[i].links.prev = buckets_[i].links.next = &buckets_[i].header;
  }
}

}  // namespace tiercache::detail
