// Traces for `tiercache sim`: a sequence of 64-bit keys, one per request, read from a file
// (one decimal key per line, the format of the *.keys cache traces) or generated (zipf:...).
//
// Parse errors are values, not exceptions: a bad line is an expected input error, reported
// with its line number.

#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache::sim {

// Either a trace or the reason there is none.
struct TraceResult {
  std::vector<std::uint64_t> keys;
  std::string error;           // empty on success
  std::size_t error_line = 0;  // 1-based line of a parse error; 0 when not about a line
  bool ok() const { return error.empty(); }
};

// Parses the text of a trace file: one decimal key (0 .. 2^64-1) per line, optionally
// surrounded by spaces, tabs or a '\r'. Blank lines are ignored. Anything else -- a sign,
// a letter, a second number, an overflow -- is an error naming the line. An empty trace is
// not an error here.
TraceResult parse_trace_text(std::string_view text);

// Reads and parses the file at `path` (whole file in one read). Errors name the file.
TraceResult load_trace_file(const std::string& path);

// `spec` is either "zipf:ALPHA:KEYS:REQUESTS:SEED" (see zipf.hpp) or a file path (to read a
// file whose name starts with "zipf:", write "./zipf:..."). An empty trace is an error.
TraceResult load_trace(const std::string& spec);

// Number of distinct keys in `trace`.
std::size_t count_distinct_keys(std::span<const std::uint64_t> trace);

}  // namespace tiercache::sim
