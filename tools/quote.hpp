// single_quoted(): how the command-line tools quote user input in messages.

#pragma once

#include <string>
#include <string_view>

namespace tiercache::cli {

// 'text', built by appending (GCC 12 reports a false -Wrestrict on "'" + std::string).
inline std::string single_quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  out.append(text);
  out.push_back('\'');
  return out;
}

}  // namespace tiercache::cli
