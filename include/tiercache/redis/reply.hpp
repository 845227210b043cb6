// Reply: one RESP2 or RESP3 value as the server sent it, decoded into a small tree.
//
// A Reply is a plain value (copyable, movable, no references into I/O buffers). Every RESP3
// type has a ReplyType; RESP2 replies use the subset (simple string, error, integer, bulk
// string, array, null). Field use by type:
//   kSimpleString, kBulkString, kBigNumber   `string` (a big number keeps its decimal text)
//   kVerbatimString                          `string` (payload), `verbatim_format` ("txt")
//   kSimpleError, kBulkError                 `string` (the whole error line, e.g. "ERR x")
//   kInteger                                 `integer`
//   kDouble                                  `number` (inf/-inf/nan included)
//   kBoolean                                 `boolean`
//   kNull                                    nothing (RESP2 null bulk / null array too)
//   kArray, kSet, kPush                      `elements`
//   kMap                                     `elements` = key0, value0, key1, value1, ...
// RESP3 attributes (`|`) that precede a reply are attached to it, flattened like a map, in
// `attributes`. Errors inside a pipeline or a transaction are Replies of an error type; the
// client turns a *top-level* error reply of a single command into Errc::kServerError.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache::redis {

enum class ReplyType : std::uint8_t {
  kSimpleString,
  kBulkString,
  kVerbatimString,
  kSimpleError,
  kBulkError,
  kInteger,
  kDouble,
  kBoolean,
  kBigNumber,
  kNull,
  kArray,
  kMap,
  kSet,
  kPush,
};

// "simple_string", "array", ... (for messages and tests).
std::string_view to_string(ReplyType type) noexcept;

struct Reply {
  ReplyType type = ReplyType::kNull;
  bool boolean = false;
  char verbatim_format[3] = {0, 0, 0};
  std::int64_t integer = 0;
  double number = 0;
  std::string string;
  std::vector<Reply> elements;
  std::vector<Reply> attributes;

  bool is_null() const noexcept { return type == ReplyType::kNull; }
  bool is_error() const noexcept {
    return type == ReplyType::kSimpleError || type == ReplyType::kBulkError;
  }
  // A string-like reply: simple, bulk or verbatim string (not errors, not big numbers).
  bool is_string() const noexcept {
    return type == ReplyType::kSimpleString || type == ReplyType::kBulkString ||
           type == ReplyType::kVerbatimString;
  }
  bool is_aggregate() const noexcept {
    return type == ReplyType::kArray || type == ReplyType::kMap || type == ReplyType::kSet ||
           type == ReplyType::kPush;
  }

  static Reply simple_string(std::string s) {
    return with_string(ReplyType::kSimpleString, std::move(s));
  }
  static Reply bulk_string(std::string s) {
    return with_string(ReplyType::kBulkString, std::move(s));
  }
  static Reply error(std::string s) { return with_string(ReplyType::kSimpleError, std::move(s)); }
  static Reply from_integer(std::int64_t v) {
    Reply r;
    r.type = ReplyType::kInteger;
    r.integer = v;
    return r;
  }
  static Reply null() { return Reply{}; }
  static Reply aggregate(ReplyType type, std::vector<Reply> elements) {
    Reply r;
    r.type = type;
    r.elements = std::move(elements);
    return r;
  }

  // Deep equality: same type, same attributes, and same values in the fields the type uses
  // (see the table above; other fields are ignored). Doubles are equal when bitwise equal
  // (so 0.0 != -0.0) or both NaN.
  friend bool operator==(const Reply& a, const Reply& b);

 private:
  static Reply with_string(ReplyType type, std::string s) {
    Reply r;
    r.type = type;
    r.string = std::move(s);
    return r;
  }
};

// redis-cli-like rendering: `"bar"`, `(integer) 1`, `(nil)`, `(error) ERR ...`, numbered
// aggregate elements, indented. Strings are quoted with non-printable bytes escaped.
// Several lines for aggregates, no trailing newline. Attributes, which redis-cli does not
// show, come first on a line of their own: `(attributes) 1# "key" => value`.
std::string format_reply(const Reply& reply);

}  // namespace tiercache::redis
