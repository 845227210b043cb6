// Reply: names of the types, deep equality, the memory measure of the parser's limits, and
// redis-cli-like rendering.
//
// format_reply follows redis-cli's cliFormatReplyTTY (redis/src/redis-cli.c) so that output of
// `tiercache redis` can be compared with redis-cli's by eye: bulk strings are quoted with
// sdscatrepr's escapes, simple strings and verbatim strings are printed raw, each element of
// an aggregate starts with its 1-based index right-aligned to the width of the largest index,
// and nested elements are indented by that width + 2. Separators are redis-cli's: `)` for
// arrays and pushes, `~` for sets, `#` for maps (whose pairs print as `key => value`, the value
// starting on a new line when it takes several, as redis-cli >= 7.0 does).
// redis-cli does not show RESP3 attributes; we print them on a line of their own before the
// value, as `(attributes) ` followed by the map rendering.

#include "tiercache/redis/reply.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace tiercache::redis {

std::string_view to_string(ReplyType type) noexcept {
  switch (type) {
    case ReplyType::kSimpleString:
      return "simple_string";
    case ReplyType::kBulkString:
      return "bulk_string";
    case ReplyType::kVerbatimString:
      return "verbatim_string";
    case ReplyType::kSimpleError:
      return "simple_error";
    case ReplyType::kBulkError:
      return "bulk_error";
    case ReplyType::kInteger:
      return "integer";
    case ReplyType::kDouble:
      return "double";
    case ReplyType::kBoolean:
      return "boolean";
    case ReplyType::kBigNumber:
      return "big_number";
    case ReplyType::kNull:
      return "null";
    case ReplyType::kArray:
      return "array";
    case ReplyType::kMap:
      return "map";
    case ReplyType::kSet:
      return "set";
    case ReplyType::kPush:
      return "push";
  }
  return "unknown";
}

// std::vector<Reply> moves its elements when it grows (as the parser's aggregates do) only if
// moving a Reply cannot throw; otherwise it would deep-copy every subtree.
static_assert(std::is_nothrow_move_constructible_v<Reply> &&
              std::is_nothrow_move_assignable_v<Reply>);

ReplyAttributes::operator const std::vector<Reply>&() const noexcept {
  static const std::vector<Reply> kNone;
  return pairs_ ? *pairs_ : kNone;
}

bool operator==(const ReplyAttributes& a, const ReplyAttributes& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::size_t reply_string_memory(std::size_t length) noexcept {
  static const std::size_t inline_capacity = std::string().capacity();
  return length > inline_capacity ? length + 1 : 0;
}

std::size_t reply_memory(const Reply& reply) noexcept {
  std::size_t bytes = sizeof(Reply) + reply_string_memory(reply.string.size());
  for (const Reply& element : reply.elements) bytes += reply_memory(element);
  for (const Reply& attribute : reply.attributes) bytes += reply_memory(attribute);
  return bytes;
}

std::size_t reply_element_count(const Reply& reply) noexcept {
  std::size_t count = reply.elements.size() + reply.attributes.size();
  for (const Reply& element : reply.elements) count += reply_element_count(element);
  for (const Reply& attribute : reply.attributes) count += reply_element_count(attribute);
  return count;
}

namespace {

bool same_double(double a, double b) noexcept {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  // Bitwise: 0.0 and -0.0 differ (a reply that says -0 is not the reply that says 0).
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace

// Compares the type, the attributes and the fields the type uses (see reply.hpp); fields a
// type does not use are ignored.
bool operator==(const Reply& a, const Reply& b) {
  if (a.type != b.type || a.attributes != b.attributes) return false;
  switch (a.type) {
    case ReplyType::kSimpleString:
    case ReplyType::kBulkString:
    case ReplyType::kSimpleError:
    case ReplyType::kBulkError:
    case ReplyType::kBigNumber:
      return a.string == b.string;
    case ReplyType::kVerbatimString:
      return a.string == b.string &&
             std::memcmp(a.verbatim_format, b.verbatim_format, sizeof a.verbatim_format) == 0;
    case ReplyType::kInteger:
      return a.integer == b.integer;
    case ReplyType::kDouble:
      return same_double(a.number, b.number);
    case ReplyType::kBoolean:
      return a.boolean == b.boolean;
    case ReplyType::kNull:
      return true;
    case ReplyType::kArray:
    case ReplyType::kMap:
    case ReplyType::kSet:
    case ReplyType::kPush:
      return a.elements == b.elements;
  }
  return false;
}

namespace {

// redis's sdscatrepr: "..." with \\ \" \n \r \t \a \b escaped, other bytes outside
// printable ASCII as \xhh (lower-case hex).
void append_quoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      default: {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f) {
          out += c;
        } else {
          out += "\\x";
          out += kHex[byte >> 4];
          out += kHex[byte & 0xf];
        }
      }
    }
  }
  out += '"';
}

template <class T>
void append_number(std::string& out, T value) {
  char digits[64];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, result.ptr);
}

void append_reply(std::string& out, const Reply& reply, const std::string& prefix);

// True if append_reply renders `reply` on several lines: redis-cli's cliIsMultilineValueTTY
// (an aggregate of more than one element, or of one element that is itself multi-line;
// attributes, which redis-cli does not show, add a line).
bool is_multiline(const Reply& reply) {
  if (!reply.attributes.empty()) return true;
  switch (reply.type) {
    case ReplyType::kArray:
    case ReplyType::kSet:
    case ReplyType::kPush:
      if (reply.elements.empty()) return false;
      return reply.elements.size() > 1 || is_multiline(reply.elements.front());
    case ReplyType::kMap:
      if (reply.elements.size() < 2) return false;
      return reply.elements.size() > 2 || is_multiline(reply.elements[1]);
    default:
      return false;
  }
}

// The elements of an aggregate (or the pairs of a map/attributes when is_map), each line
// ending with '\n'. The first line has no prefix: the caller already wrote its index.
void append_elements(std::string& out, const std::vector<Reply>& elements, bool is_map,
                     char separator, const std::string& prefix) {
  const std::size_t count = is_map ? elements.size() / 2 : elements.size();
  std::size_t index_width = 1;
  for (std::size_t n = count; n >= 10; n /= 10) ++index_width;
  const std::string nested_prefix = prefix + std::string(index_width + 2, ' ');

  for (std::size_t i = 0; i < count; ++i) {
    if (i != 0) out += prefix;
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, i + 1).ptr;
    out.append(index_width - static_cast<std::size_t>(end - digits), ' ');
    out.append(digits, end);
    out += separator;
    out += ' ';
    if (is_map) {
      append_reply(out, elements[2 * i], nested_prefix);
      out.pop_back();  // the key's '\n'
      out += " => ";
      if (is_multiline(elements[2 * i + 1])) {
        // redis-cli starts a value of several lines on a line of its own, so that all its
        // elements line up.
        out += '\n';
        out += nested_prefix;
      }
      append_reply(out, elements[2 * i + 1], nested_prefix);
    } else {
      append_reply(out, elements[i], nested_prefix);
    }
  }
  if (is_map && elements.size() % 2 != 0) {
    // Not produced by the parser; a hand-built map with a key and no value.
    out += prefix;
    out += "(incomplete map: key without value)\n";
  }
}

void append_reply(std::string& out, const Reply& reply, const std::string& prefix) {
  if (!reply.attributes.empty()) {
    out += "(attributes) ";
    append_elements(out, reply.attributes, /*is_map=*/true, '#', prefix + "             ");
    out += prefix;
  }
  switch (reply.type) {
    case ReplyType::kSimpleString:
    case ReplyType::kVerbatimString:
      out += reply.string;
      break;
    case ReplyType::kBulkString:
      append_quoted(out, reply.string);
      break;
    case ReplyType::kSimpleError:
    case ReplyType::kBulkError:
      out += "(error) ";
      out += reply.string;
      break;
    case ReplyType::kInteger:
      out += "(integer) ";
      append_number(out, reply.integer);
      break;
    case ReplyType::kDouble:
      out += "(double) ";
      append_number(out, reply.number);
      break;
    case ReplyType::kBoolean:
      out += reply.boolean ? "(true)" : "(false)";
      break;
    case ReplyType::kBigNumber:
      out += "(big number) ";
      out += reply.string;
      break;
    case ReplyType::kNull:
      out += "(nil)";
      break;
    case ReplyType::kArray:
    case ReplyType::kSet:
    case ReplyType::kPush:
    case ReplyType::kMap:
      if (reply.elements.empty()) {
        out += reply.type == ReplyType::kArray  ? "(empty array)"
               : reply.type == ReplyType::kSet  ? "(empty set)"
               : reply.type == ReplyType::kPush ? "(empty push)"
                                                : "(empty hash)";
        break;
      }
      append_elements(out, reply.elements, reply.type == ReplyType::kMap,
                      reply.type == ReplyType::kSet   ? '~'
                      : reply.type == ReplyType::kMap ? '#'
                                                      : ')',
                      prefix);
      return;  // every element line already ends with '\n'
  }
  out += '\n';
}

}  // namespace

std::string format_reply(const Reply& reply) {
  std::string out;
  append_reply(out, reply, std::string());
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace tiercache::redis
