#include "tiercache/detail/frequency_sketch.hpp"

#include <algorithm>
#include <bit>

namespace tiercache::detail {

void FrequencySketch::ensure_capacity(std::size_t max_entries) {
  entries_ = std::max<std::size_t>(max_entries, 16);
  // One 64-bit word (16 counters) per entry, rounded to whole blocks, as in Caffeine.
  const std::size_t words = std::max<std::size_t>(std::bit_ceil(entries_), kWordsPerBlock);
  set_sample_factor(sample_factor_);
  if (words == table_.size()) return;
  table_.assign(words, 0);
  block_mask_ = (words / kWordsPerBlock) - 1;
  additions_ = 0;
}

void FrequencySketch::set_sample_factor(double factor) {
  sample_factor_ = factor;
  sample_size_ =
      std::max<std::size_t>(1, static_cast<std::size_t>(factor * static_cast<double>(entries_)));
}

namespace {
// Picks counter `i` (0..3) of a key: the word inside the block and the nibble inside it.
struct CounterRef {
  std::size_t word;
  unsigned shift;
};
inline CounterRef counter_ref(std::uint64_t block_base, std::uint64_t counter_hash, unsigned i) {
  const std::uint64_t h = counter_hash >> (i * 8);
  const std::uint64_t nibble = (h >> 1) & 15;
  const std::uint64_t word = block_base + (h & 1) + (i << 1);
  return {static_cast<std::size_t>(word), static_cast<unsigned>(nibble << 2)};
}
}  // namespace

std::uint32_t FrequencySketch::frequency(std::uint32_t hash) const noexcept {
  if (table_.empty()) return 0;
  const std::uint64_t block_hash = mix64(hash ^ seed_);
  const std::uint64_t counter_hash = mix64(block_hash);
  const std::uint64_t base = (block_hash & block_mask_) * kWordsPerBlock;
  std::uint32_t result = 15;
  for (unsigned i = 0; i < 4; ++i) {
    const CounterRef c = counter_ref(base, counter_hash, i);
    result = std::min<std::uint32_t>(result, (table_[c.word] >> c.shift) & 15);
  }
  return result;
}

void FrequencySketch::increment(std::uint32_t hash) noexcept {
  if (table_.empty()) return;
  const std::uint64_t block_hash = mix64(hash ^ seed_);
  const std::uint64_t counter_hash = mix64(block_hash);
  const std::uint64_t base = (block_hash & block_mask_) * kWordsPerBlock;
  bool added = false;
  for (unsigned i = 0; i < 4; ++i) {
    const CounterRef c = counter_ref(base, counter_hash, i);
    if (((table_[c.word] >> c.shift) & 15) != 15) {
      table_[c.word] += std::uint64_t{1} << c.shift;
      added = true;
    }
  }
  if (added && ++additions_ >= sample_size_) reset();
}

void FrequencySketch::reset() noexcept {
  std::size_t odd = 0;
  for (std::uint64_t& word : table_) {
    odd += static_cast<std::size_t>(std::popcount(word & 0x1111111111111111ULL));
    word = (word >> 1) & 0x7777777777777777ULL;
  }
  additions_ = (additions_ - (odd >> 2)) >> 1;
}

}  // namespace tiercache::detail
