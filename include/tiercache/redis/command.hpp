// Request: one or more Redis commands encoded for the wire, back to back in one buffer.
//
// Contract:
//  - Every command is a RESP array of bulk strings (`*<n>\r\n` then `$<len>\r\n<arg>\r\n` per
//    argument), the only form Redis accepts from clients besides inline commands. Arguments
//    are binary-safe: any bytes, "\0" and "\r\n" included, and empty arguments.
//  - A Request is a pipeline: the commands are sent in order in one write and the server
//    answers each with exactly one reply, in the same order, so size() is the number of
//    replies to read. (Commands that change that, such as SUBSCRIBE or CLIENT REPLY OFF,
//    need their own handling by the connection; they are encoded like any other here.)
//  - Arguments are anything convertible to std::string_view (std::string, string literals,
//    std::string_view) or integers (encoded in decimal, as Redis expects, e.g. "PX", 1500).
//    Encoding appends straight into the one buffer: no allocation per argument, and the
//    buffer keeps its capacity across clear(), so a reused Request allocates nothing.
//  - A Request is a plain value: copyable, movable, no references to its arguments. Not
//    thread-safe: one thread builds it, then hands it over.

#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <ranges>
#include <string>
#include <string_view>
#include <type_traits>

namespace tiercache::redis {

namespace detail {

// Character types would be taken for integers ('x' -> "120"), and bool for a number: both
// are refused. (signed char and unsigned char are std::int8_t and std::uint8_t: numbers.)
template <class T>
concept CharacterLike = std::same_as<T, char> || std::same_as<T, wchar_t> ||
    std::same_as<T, char8_t> || std::same_as<T, char16_t> || std::same_as<T, char32_t>;

template <class T>
concept IntegerArgument =
    std::integral<std::remove_cvref_t<T>> && !std::same_as<std::remove_cvref_t<T>, bool> &&
    !CharacterLike<std::remove_cvref_t<T>>;

template <class T>
concept StringArgument = std::convertible_to<const T&, std::string_view>;

// An argument of a command: bytes, or an integer.
template <class T>
concept CommandArgument = StringArgument<T> || IntegerArgument<T>;

// Room for any 64-bit integer in decimal, sign included.
inline constexpr std::size_t kMaxIntegerDigits = 20;
// Header bytes of one argument: '$', up to 20 length digits, CRLF; then CRLF after the data.
inline constexpr std::size_t kArgumentOverhead = 1 + kMaxIntegerDigits + 2 + 2;

}  // namespace detail

class Request {
 public:
  Request() = default;

  // Appends one command made of `args` (the command name first). Returns *this.
  // REQUIRES: at least one argument.
  template <detail::CommandArgument... Args>
  Request& push(const Args&... args) {
    static_assert(sizeof...(Args) > 0, "a command has at least its name");
    buffer_.reserve(buffer_.size() + kArrayHeaderBytes + (estimated_size(args) + ...));
    append_array_header(sizeof...(Args));
    (append_argument(args), ...);
    ++commands_;
    return *this;
  }

  // Appends `command` followed by every element of `args` (strings or integers), e.g.
  // push_range("MGET", keys) with a std::vector<std::string> or std::vector<std::string_view>.
  // An empty range gives the command alone.
  template <std::ranges::forward_range Range>
  requires detail::CommandArgument<std::ranges::range_value_t<Range>> Request& push_range(
      std::string_view command, const Range& args) {
    return push_head_and_range(&command, 1, args);
  }

  // The same with a fixed head of several arguments, e.g. push_range({"HDEL", key}, fields).
  template <std::ranges::forward_range Range>
  requires detail::CommandArgument<std::ranges::range_value_t<Range>> Request& push_range(
      std::initializer_list<std::string_view> head, const Range& args) {
    return push_head_and_range(head.begin(), head.size(), args);
  }

  // Commands pushed since construction or clear(); the replies this Request will get.
  std::size_t size() const noexcept { return commands_; }
  bool empty() const noexcept { return commands_ == 0; }

  // The encoded bytes, valid until the next non-const call.
  std::string_view payload() const noexcept { return buffer_; }

  // Removes every command; keeps the buffer's capacity.
  void clear() noexcept {
    buffer_.clear();
    commands_ = 0;
  }

 private:
  // '*', up to 20 digits, CRLF.
  static constexpr std::size_t kArrayHeaderBytes = 1 + detail::kMaxIntegerDigits + 2;

  template <class Range>
  Request& push_head_and_range(const std::string_view* head, std::size_t head_size,
                               const Range& args) {
    std::size_t count = head_size;
    std::size_t bytes = kArrayHeaderBytes;
    for (std::size_t i = 0; i < head_size; ++i) bytes += estimated_size(head[i]);
    for (const auto& arg : args) {
      ++count;
      bytes += estimated_size(arg);
    }
    buffer_.reserve(buffer_.size() + bytes);
    append_array_header(count);
    for (std::size_t i = 0; i < head_size; ++i) append_bulk(head[i]);
    for (const auto& arg : args) append_argument(arg);
    ++commands_;
    return *this;
  }

  template <class T>
  static std::size_t estimated_size(const T& arg) noexcept {
    if constexpr (detail::IntegerArgument<T>) {
      return detail::kArgumentOverhead + detail::kMaxIntegerDigits;
    } else {
      return detail::kArgumentOverhead + std::string_view(arg).size();
    }
  }

  void append_array_header(std::size_t count) { append_header('*', count); }

  template <class T>
  void append_argument(const T& arg) {
    if constexpr (detail::IntegerArgument<T>) {
      char digits[detail::kMaxIntegerDigits];
      const auto result = std::to_chars(digits, digits + sizeof digits, arg);
      append_bulk(std::string_view(digits, static_cast<std::size_t>(result.ptr - digits)));
    } else {
      append_bulk(std::string_view(arg));
    }
  }

  void append_bulk(std::string_view bytes) {
    append_header('$', bytes.size());
    buffer_.append(bytes);
    buffer_.append("\r\n", 2);
  }

  void append_header(char type, std::size_t count) {
    char header[1 + detail::kMaxIntegerDigits + 2];
    header[0] = type;
    char* end = std::to_chars(header + 1, header + 1 + detail::kMaxIntegerDigits, count).ptr;
    *end++ = '\r';
    *end++ = '\n';
    buffer_.append(header, static_cast<std::size_t>(end - header));
  }

  std::string buffer_;
  std::size_t commands_ = 0;
};

// One command encoded on its own, e.g. encode_command({"GET", key}).
// REQUIRES: a non-empty list.
std::string encode_command(std::initializer_list<std::string_view> args);

}  // namespace tiercache::redis
