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
//
// Size: a reply of a million small elements is a million Replies, so the node is kept small:
// 80 bytes with libstdc++ (`string` 32, `elements` 24, `attributes` 8, the rest 16).
// `integer` and `number` share their storage: read the one the type uses (the other holds
// meaningless bits; `integer` of any type other than kInteger and kDouble is 0 in replies
// the parser builds). `attributes` is one pointer until a reply has some (servers send them
// only when asked). reply_memory() and reply_element_count() measure a tree the way the
// parser's limits do.

#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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

struct Reply;

// The attributes of a Reply: key0, value0, key1, value1, ... Reads like a const
// std::vector<Reply> (and converts to one); set it by assigning a std::vector<Reply>. Holds
// one pointer, null while there are no attributes, so that the many Replies without any
// stay small. Copying copies the attributes (a Reply is a value).
class ReplyAttributes {
 public:
  ReplyAttributes() noexcept = default;
  ReplyAttributes(std::vector<Reply> pairs);  // NOLINT: implicit, like the vector it was
  ReplyAttributes(const ReplyAttributes& other);
  ReplyAttributes(ReplyAttributes&& other) noexcept;
  ReplyAttributes& operator=(const ReplyAttributes& other);
  ReplyAttributes& operator=(ReplyAttributes&& other) noexcept;
  ReplyAttributes& operator=(std::vector<Reply> pairs);
  ~ReplyAttributes();

  bool empty() const noexcept;
  std::size_t size() const noexcept;
  // REQUIRES: index < size().
  const Reply& operator[](std::size_t index) const;
  const Reply* begin() const noexcept;
  const Reply* end() const noexcept;
  // The pairs as a vector (an empty one, shared, when there are none).
  operator const std::vector<Reply>&() const noexcept;  // NOLINT: implicit by design
  void clear() noexcept;

  // Same pairs in the same order (Reply's deep equality).
  friend bool operator==(const ReplyAttributes& a, const ReplyAttributes& b);

 private:
  std::unique_ptr<std::vector<Reply>> pairs_;  // null or non-empty
};

struct Reply {
  ReplyType type = ReplyType::kNull;
  bool boolean = false;
  char verbatim_format[3] = {0, 0, 0};
  union {  // one storage for the two numeric types; see "Size" above
    std::int64_t integer = 0;
    double number;
  };
  std::string string;
  std::vector<Reply> elements;
  ReplyAttributes attributes;

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

inline ReplyAttributes::ReplyAttributes(std::vector<Reply> pairs) {
  if (!pairs.empty()) pairs_ = std::make_unique<std::vector<Reply>>(std::move(pairs));
}
inline ReplyAttributes::ReplyAttributes(const ReplyAttributes& other)
    : pairs_(other.pairs_ ? std::make_unique<std::vector<Reply>>(*other.pairs_) : nullptr) {}
inline ReplyAttributes::ReplyAttributes(ReplyAttributes&& other) noexcept = default;
inline ReplyAttributes& ReplyAttributes::operator=(const ReplyAttributes& other) {
  if (this != &other) *this = ReplyAttributes(other);
  return *this;
}
inline ReplyAttributes& ReplyAttributes::operator=(ReplyAttributes&& other) noexcept = default;
inline ReplyAttributes& ReplyAttributes::operator=(std::vector<Reply> pairs) {
  return *this = ReplyAttributes(std::move(pairs));
}
inline ReplyAttributes::~ReplyAttributes() = default;
inline bool ReplyAttributes::empty() const noexcept { return pairs_ == nullptr; }
inline std::size_t ReplyAttributes::size() const noexcept { return pairs_ ? pairs_->size() : 0; }
inline const Reply& ReplyAttributes::operator[](std::size_t index) const {
  return (*pairs_)[index];
}
inline const Reply* ReplyAttributes::begin() const noexcept {
  return pairs_ ? pairs_->data() : nullptr;
}
inline const Reply* ReplyAttributes::end() const noexcept {
  return pairs_ ? pairs_->data() + pairs_->size() : nullptr;
}
inline void ReplyAttributes::clear() noexcept { pairs_.reset(); }

// What `reply` occupies in memory, by the measure of ParserLimits::max_reply_memory:
// sizeof(Reply) for it and for every value below it (elements and attributes, at any depth),
// plus reply_string_memory(size()) for each of their strings. An estimate: the allocator's
// own overhead per block (8-16 bytes with glibc) and spare capacity are not counted.
std::size_t reply_memory(const Reply& reply) noexcept;

// What a string of `length` bytes adds to reply_memory(): nothing while std::string stores it
// inside its object (up to 15 bytes with libstdc++), else length + 1 (its heap block, NUL
// included).
std::size_t reply_string_memory(std::size_t length) noexcept;

// The values below `reply`, by the measure of ParserLimits::max_reply_elements: the elements
// of its aggregates and the keys and values of its attributes, at any depth (`reply` itself
// is not counted; a map of N pairs counts 2N plus what its keys and values hold).
std::size_t reply_element_count(const Reply& reply) noexcept;

// redis-cli-like rendering: `"bar"`, `(integer) 1`, `(nil)`, `(error) ERR ...`, numbered
// aggregate elements, indented. Strings are quoted with non-printable bytes escaped.
// Several lines for aggregates, no trailing newline. Attributes, which redis-cli does not
// show, come first on a line of their own: `(attributes) 1# "key" => value`.
std::string format_reply(const Reply& reply);

}  // namespace tiercache::redis
