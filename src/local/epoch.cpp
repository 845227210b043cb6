#include "tiercache/detail/epoch.hpp"

namespace tiercache::detail {

std::size_t thread_stripe() noexcept {
  // A process-wide round-robin counter for stripe assignment. It holds no cache state:
  // it only spreads threads so that the first kReaderStripes threads never share a line.
  static std::atomic<std::size_t> next_stripe{0};
  thread_local const std::size_t stripe =
      next_stripe.fetch_add(1, std::memory_order_relaxed) % kReaderStripes;
  return stripe;
}

bool EpochDomain::try_advance() noexcept {
  const std::uint64_t e = epoch_.load(std::memory_order_relaxed);
  const std::size_t previous_parity = (e - 1) & 1;
  for (const Stripe& s : stripes_) {
    if (s.active[previous_parity].load(std::memory_order_seq_cst) != 0) return false;
  }
  epoch_.store(e + 1, std::memory_order_seq_cst);
  return true;
}

}  // namespace tiercache::detail
