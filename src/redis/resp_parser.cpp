// RespParser: an incremental RESP2/RESP3 parser, a state machine over an explicit stack.
//
// Wire format: the RESP3 specification (redis/redis-specifications, specs/protocol.md); RESP2
// is its subset (+ - : $ *, with $-1 and *-1 as null). Every value is a type byte, a line
// ending in CRLF, and for bulk types (`$` `!` `=`) a payload of the announced length followed
// by CRLF; aggregates (`*` `%` `~` `>` `|`) announce their element count and are followed by
// that many values.
//
// Invariants:
//  - state_ says what the next byte is: a type byte (kType), part of the line of type_
//    (kLine; the part of it that arrived in earlier calls is in line_), part of a payload
//    (kPayload, payload_remaining_ bytes to go, of which a verbatim string's first
//    verbatim_prefix_remaining_ are its "xxx:" prefix, stored in verbatim_format and never
//    in its string), or part of the CRLF that ends it (kPayloadEnd, payload_crlf_seen_ of
//    its 2 bytes seen). kReplyReady and kError consume nothing.
//  - stack_ holds the open aggregates, outermost first; each expects `remaining` > 0 more
//    elements. An aggregate of zero elements completes at once and is never pushed.
//    stack_.size() <= limits_.max_depth.
//  - Values are built in place: a value starts (begin_value) as result_ when no aggregate is
//    open, else as a new last element of the innermost open aggregate, and stays there while
//    its payload arrives (current_value()). When it ends (end_value) the innermost aggregate
//    counts it and, if full, is popped and moved into its own place in turn (a loop, never
//    recursion). Nothing is kept by pointer, so a parser may be moved between calls.
//  - pending_attributes_ holds the attributes read since the last value started; the next
//    value to start (leaf or aggregate) takes them. An attribute frame moves the pending
//    attributes into its reply.attributes when it opens and puts them back, followed by its
//    own pairs, when it completes, so consecutive attributes merge in order and attributes
//    of the attribute's own keys and values stay theirs. An attribute never counts as an
//    element of the aggregate around it.
//  - reply_bytes_ counts the bytes of the current top-level reply used by earlier parse()
//    calls; parse() returns after each complete top-level reply, so every byte of one call
//    belongs to the current reply.
//  - reply_elements_ and reply_memory_ count what the current top-level reply announced so
//    far: every value an aggregate header declared (attributes included), sizeof(Reply) for
//    each and for the top-level value (charged with the reply's first line; 0 means no line
//    yet), and reply_string_memory() of every string whose length is known (a simple
//    string's line, a bulk's declared length). A complete reply has exactly what it
//    announced, so at completion they equal reply_element_count() and reply_memory() of the
//    tree; charging declared values up front is what lets a header be refused before
//    anything is reserved for it. Both stay within their limits (checked before adding) and
//    go back to 0 when a top-level reply completes; they survive across parse() calls like
//    the rest of the state.
//  - Split invariance: the checks are made, and in the same order, whatever the pieces the
//    stream came in, so a stream gives the same replies and the same error message however
//    it is split. The line limit is the only one checked on a partial line; the reply limits
//    (bytes, elements, memory) are checked at the end of each line, and a bulk length is
//    checked against them before its payload is read; a verbatim string's "xxx:" prefix is
//    checked when its 4th byte arrives.
//
// Memory: nothing is reserved from a declared length alone. A payload grows geometrically
// with the bytes that arrive (never beyond its declared length: a fresh string is reserved
// at each step, since growing one in place may round the capacity past it); an aggregate
// reserves at most one element per 3 bytes still unread in the current call (no RESP value
// is shorter than 3 bytes), clamped to [kMinReservedElements, kMaxReservedElements], and
// grows geometrically as elements arrive, again never beyond its declared length, so that a
// complete aggregate holds no spare slots.

#include "tiercache/redis/resp_parser.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>

namespace tiercache::redis {

namespace {

// Elements reserved up front for an aggregate: at least this many when it declares as many...
constexpr std::size_t kMinReservedElements = 16;
// ...and never more than this many, whatever the declared length and the bytes at hand.
constexpr std::size_t kMaxReservedElements = 1024;
// The smallest possible encoding of a value ("_\r\n", "+\r\n").
constexpr std::size_t kMinValueBytes = 3;
// The start of a verbatim string's payload that is not its text: a 3-byte format and ':'.
constexpr std::uint8_t kVerbatimPrefixBytes = 4;

enum class TypeClass : std::uint8_t { kInvalid, kValid, kStreamed };

constexpr std::array<TypeClass, 256> make_type_classes() {
  std::array<TypeClass, 256> classes{};
  for (const char c : std::string_view("+-:$*_,#!=(%~|>")) {
    classes[static_cast<unsigned char>(c)] = TypeClass::kValid;
  }
  classes[static_cast<unsigned char>(';')] = TypeClass::kStreamed;
  classes[static_cast<unsigned char>('.')] = TypeClass::kStreamed;
  return classes;
}
constexpr std::array<TypeClass, 256> kTypeClasses = make_type_classes();

// A RESP integer: optional '-', then decimal digits, fitting int64. No '+', no spaces.
bool parse_int64(const char* text, std::size_t length, std::int64_t& value) {
  if (length == 0 || text[0] == '+') return false;
  const auto [end, ec] = std::from_chars(text, text + length, value);
  return ec == std::errc() && end == text + length;
}

std::string hex_byte(char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto byte = static_cast<unsigned char>(c);
  return std::string{'0', 'x', kHex[byte >> 4], kHex[byte & 0xf]};
}

// "'$'" for messages (type bytes are checked printable before they get here).
std::string quoted(char type) { return std::string{'\'', type, '\''}; }

ReplyType aggregate_type(char type) {
  switch (type) {
    case '%':
      return ReplyType::kMap;
    case '~':
      return ReplyType::kSet;
    case '>':
      return ReplyType::kPush;
    default:
      return ReplyType::kArray;  // '*'; an attribute ('|') is not a Reply of its own
  }
}

}  // namespace

RespParser::RespParser(ParserLimits limits) : limits_(limits) {
  stack_.reserve(std::min<std::size_t>(limits_.max_depth, 8));
}

bool RespParser::mid_reply() const noexcept {
  return state_ == State::kLine || state_ == State::kPayload || state_ == State::kPayloadEnd ||
         !stack_.empty() || !pending_attributes_.empty();
}

void RespParser::reset() {
  state_ = State::kType;
  type_ = 0;
  payload_crlf_seen_ = 0;
  verbatim_prefix_remaining_ = 0;
  exceeded_limit_ = ParserLimit::kNone;
  payload_remaining_ = 0;
  reply_bytes_ = 0;
  reply_elements_ = 0;
  reply_memory_ = 0;
  bytes_available_ = 0;
  line_.clear();
  stack_.clear();
  pending_attributes_.clear();
  result_ = Reply();
  error_ = Error();
}

Reply RespParser::take_reply() {
  assert(state_ == State::kReplyReady);
  state_ = State::kType;
  return std::move(result_);
}

// `bytes` of a line, its '\r' included if present (the limit does not count it).
bool RespParser::line_exceeds_limit(std::size_t bytes) const noexcept {
  return bytes != 0 && bytes - 1 > limits_.max_line_length;
}

std::string RespParser::line_too_long() const {
  return "line of type " + quoted(type_) + " exceeds limit " +
         std::to_string(limits_.max_line_length) + " bytes";
}

bool RespParser::fail(std::string message, ParserLimit limit) {
  state_ = State::kError;
  exceeded_limit_ = limit;
  error_ = make_error(Errc::kProtocol, std::move(message));
  return false;
}

// Adds `count` values (sizeof(Reply) each) to the current reply, if both limits allow them.
bool RespParser::charge_elements(std::size_t count) {
  if (count > limits_.max_reply_elements - reply_elements_) {
    return fail("reply exceeds limit " + std::to_string(limits_.max_reply_elements) + " elements",
                ParserLimit::kReplyElements);
  }
  if (count > (limits_.max_reply_memory - reply_memory_) / sizeof(Reply)) {
    return fail("reply exceeds memory limit " + std::to_string(limits_.max_reply_memory) + " bytes",
                ParserLimit::kReplyMemory);
  }
  reply_elements_ += count;
  reply_memory_ += count * sizeof(Reply);
  return true;
}

// Adds `bytes` of memory to the current reply, if max_reply_memory allows them.
bool RespParser::charge_memory(std::size_t bytes) {
  if (bytes > limits_.max_reply_memory - reply_memory_) {
    return fail("reply exceeds memory limit " + std::to_string(limits_.max_reply_memory) + " bytes",
                ParserLimit::kReplyMemory);
  }
  reply_memory_ += bytes;
  return true;
}

RespParser::Status RespParser::parse(std::span<const char> data, std::size_t& consumed) {
  consumed = 0;
  if (state_ == State::kError) return Status::kError;
  if (state_ == State::kReplyReady) return Status::kReply;

  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const char* p = begin;
  // Leaves with the bytes used so far; the status says why.
  const auto stop = [&](Status status) {
    consumed = static_cast<std::size_t>(p - begin);
    return status;
  };

  while (p != end) {
    switch (state_) {
      case State::kType: {
        const char type = *p;
        const TypeClass type_class = kTypeClasses[static_cast<unsigned char>(type)];
        if (type_class != TypeClass::kValid) {
          fail(type_class == TypeClass::kStreamed
                   ? "streamed RESP3 type " + quoted(type) + " is not supported"
                   : "unknown RESP type byte " + hex_byte(type));
          return stop(Status::kError);
        }
        type_ = type;
        ++p;
        state_ = State::kLine;
        [[fallthrough]];
      }

      case State::kLine: {
        const auto available = static_cast<std::size_t>(end - p);
        const auto* newline = static_cast<const char*>(std::memchr(p, '\n', available));
        if (newline == nullptr) {
          // The line continues in a later call. Room for its '\r' is allowed. (The reply
          // limit is checked when the line ends: it can be overshot by one line at most.)
          if (line_exceeds_limit(line_.size() + available)) {
            fail(line_too_long(), ParserLimit::kLineLength);
            return stop(Status::kError);
          }
          line_.append(p, available);
          p = end;
          break;
        }
        const char* line = p;
        auto length = static_cast<std::size_t>(newline - p);
        if (!line_.empty()) {
          line_.append(p, length);
          line = line_.data();
          length = line_.size();
        }
        p = newline + 1;
        // The checks in the order that a line fed in pieces meets them, so that the error
        // does not depend on where the stream was split.
        if (line_exceeds_limit(length)) {
          fail(line_too_long(), ParserLimit::kLineLength);
          return stop(Status::kError);
        }
        if (length == 0 || line[length - 1] != '\r') {
          fail("line of type " + quoted(type_) + " ends with a bare LF (expected CRLF)");
          return stop(Status::kError);
        }
        --length;
        const std::size_t reply_bytes = reply_bytes_ + static_cast<std::size_t>(p - begin);
        if (reply_bytes > limits_.max_reply_bytes) {
          fail("reply exceeds limit " + std::to_string(limits_.max_reply_bytes) + " bytes",
               ParserLimit::kReplyBytes);
          return stop(Status::kError);
        }
        bytes_available_ = static_cast<std::size_t>(end - p);
        state_ = State::kType;
        const bool ok = on_line(line, length, reply_bytes);
        line_.clear();
        if (!ok) return stop(Status::kError);
        if (state_ == State::kReplyReady) return stop(Status::kReply);
        break;
      }

      case State::kPayload: {
        Reply& value = current_value();
        if (verbatim_prefix_remaining_ != 0) {
          // A verbatim string's format goes to verbatim_format, never into its string.
          while (verbatim_prefix_remaining_ != 0 && p != end) {
            const std::size_t index = kVerbatimPrefixBytes - verbatim_prefix_remaining_;
            if (index < sizeof value.verbatim_format) {
              value.verbatim_format[index] = *p;
            } else if (*p != ':') {
              fail("verbatim string without ':' after its 3-byte format");
              return stop(Status::kError);
            }
            ++p;
            --verbatim_prefix_remaining_;
            --payload_remaining_;
          }
          if (payload_remaining_ == 0) {
            state_ = State::kPayloadEnd;
            payload_crlf_seen_ = 0;
          }
          break;
        }
        const auto available = static_cast<std::size_t>(end - p);
        std::string& payload = value.string;
        if (payload.empty() && available >= payload_remaining_ + 2) {
          // The common case: the whole payload and its CRLF are here. One exact allocation
          // (a string constructed from bytes gets the capacity of their size, no more).
          payload = std::string(p, payload_remaining_);
          p += payload_remaining_;
          payload_remaining_ = 0;
          state_ = State::kPayloadEnd;
          payload_crlf_seen_ = 0;
          break;
        }
        const std::size_t count = std::min(payload_remaining_, available);
        append_payload(payload, p, count);
        p += count;
        payload_remaining_ -= count;
        if (payload_remaining_ == 0) {
          state_ = State::kPayloadEnd;
          payload_crlf_seen_ = 0;
        }
        break;
      }

      case State::kPayloadEnd: {
        while (p != end && payload_crlf_seen_ < 2) {
          if (*p != (payload_crlf_seen_ == 0 ? '\r' : '\n')) {
            fail("payload of type " + quoted(type_) +
                 " is not followed by CRLF (longer than its length, or a bare LF)");
            return stop(Status::kError);
          }
          ++p;
          ++payload_crlf_seen_;
        }
        if (payload_crlf_seen_ < 2) break;
        end_value();
        if (state_ == State::kReplyReady) return stop(Status::kReply);
        break;
      }

      case State::kReplyReady:
      case State::kError:
        assert(false && "unreachable: parse() returns on these states");
        return stop(state_ == State::kError ? Status::kError : Status::kReply);
    }
  }
  reply_bytes_ += data.size();
  return stop(Status::kNeedMore);
}

// The line of type_ (CRLF excluded) is complete; `reply_bytes` of the reply are used.
bool RespParser::on_line(const char* line, std::size_t length, std::size_t reply_bytes) {
  // The top-level value itself, whatever it turns out to be, charged with its first line.
  if (reply_memory_ == 0 && !charge_memory(sizeof(Reply))) return false;
  const std::string_view text(line, length);
  switch (type_) {
    case '+':
    case '-':
      if (text.find('\r') != std::string_view::npos) {
        return fail("line of type " + quoted(type_) + " contains a CR");
      }
      if (!charge_memory(reply_string_memory(length))) return false;
      // Constructed, not assigned: exactly the capacity reply_string_memory() charged.
      begin_value(type_ == '+' ? ReplyType::kSimpleString : ReplyType::kSimpleError).string =
          std::string(text);
      break;

    case ':': {
      std::int64_t value = 0;
      if (!parse_int64(line, length, value)) {
        return fail("malformed integer (" + std::to_string(length) +
                    " bytes; expected an optional '-' and digits fitting 64 bits)");
      }
      begin_value(ReplyType::kInteger).integer = value;
      break;
    }

    case '_':
      if (length != 0) return fail("null ('_') with a non-empty line");
      begin_value(ReplyType::kNull);
      break;

    case '#':
      if (text != "t" && text != "f") return fail("boolean ('#') other than 't' or 'f'");
      begin_value(ReplyType::kBoolean).boolean = text == "t";
      break;

    case ',': {
      // RESP3 allows a leading '+' ("+inf" too); from_chars does not, and is locale-free.
      const char* first = line;
      const char* last = line + length;
      if (first != last && *first == '+') {
        ++first;
        if (first != last && *first == '-') return fail("malformed double (sign twice)");
      }
      double value = 0;
      const auto [parsed_end, ec] = std::from_chars(first, last, value, std::chars_format::general);
      if (ec == std::errc::result_out_of_range) return fail("double out of range");
      if (first == last || ec != std::errc() || parsed_end != last) {
        return fail("malformed double (" + std::to_string(length) + " bytes)");
      }
      begin_value(ReplyType::kDouble).number = value;
      break;
    }

    case '(': {
      const std::size_t sign = length != 0 && (line[0] == '-' || line[0] == '+') ? 1 : 0;
      if (length == sign ||
          !std::all_of(line + sign, line + length, [](char c) { return c >= '0' && c <= '9'; })) {
        return fail("malformed big number (expected an optional sign and digits)");
      }
      if (!charge_memory(reply_string_memory(length))) return false;
      begin_value(ReplyType::kBigNumber).string = std::string(text);
      break;
    }

    case '$':
    case '!':
    case '=': {
      if (text == "?")
        return fail("streamed strings (" + quoted(type_) + " '?') are not supported");
      std::int64_t declared = 0;
      if (!parse_int64(line, length, declared)) {
        return fail("malformed length of type " + quoted(type_));
      }
      if (declared == -1 && type_ == '$') {
        begin_value(ReplyType::kNull);
        break;
      }
      return start_payload(declared, reply_bytes);
    }

    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      if (text == "?") {
        return fail("streamed aggregates (" + quoted(type_) + " '?') are not supported");
      }
      std::int64_t declared = 0;
      if (!parse_int64(line, length, declared)) {
        return fail("malformed length of type " + quoted(type_));
      }
      if (declared == -1 && type_ == '*') {
        begin_value(ReplyType::kNull);
        break;
      }
      return start_aggregate(declared);
    }

    default:
      assert(false && "type bytes are checked before their line is read");
      return fail("unknown RESP type byte " + hex_byte(type_));
  }
  end_value();
  return true;
}

bool RespParser::start_payload(std::int64_t declared, std::size_t reply_bytes) {
  if (declared < 0) {
    return fail("negative length " + std::to_string(declared) + " of type " + quoted(type_));
  }
  const auto length = static_cast<std::uint64_t>(declared);
  if (length > limits_.max_bulk_length) {
    return fail("bulk length " + std::to_string(length) + " exceeds limit " +
                    std::to_string(limits_.max_bulk_length),
                ParserLimit::kBulkLength);
  }
  const bool verbatim = type_ == '=';
  if (verbatim && length < kVerbatimPrefixBytes) {
    return fail("verbatim string of " + std::to_string(length) +
                " bytes (expected a 3-byte format, ':' and the text)");
  }
  if (reply_bytes + length + 2 > limits_.max_reply_bytes) {
    return fail("reply exceeds limit " + std::to_string(limits_.max_reply_bytes) + " bytes",
                ParserLimit::kReplyBytes);
  }
  const auto string_length = static_cast<std::size_t>(length) - (verbatim ? 4 : 0);
  if (!charge_memory(reply_string_memory(string_length))) return false;
  begin_value(type_ == '$'   ? ReplyType::kBulkString
              : type_ == '!' ? ReplyType::kBulkError
                             : ReplyType::kVerbatimString);
  payload_remaining_ = static_cast<std::size_t>(length);
  verbatim_prefix_remaining_ = verbatim ? kVerbatimPrefixBytes : 0;
  payload_crlf_seen_ = 0;
  state_ = payload_remaining_ == 0 ? State::kPayloadEnd : State::kPayload;
  return true;
}

bool RespParser::start_aggregate(std::int64_t declared) {
  if (declared < 0) {
    return fail("negative length " + std::to_string(declared) + " of type " + quoted(type_));
  }
  const bool pairs = type_ == '%' || type_ == '|';
  const auto declared_count = static_cast<std::uint64_t>(declared);
  if (declared_count > limits_.max_aggregate_length / (pairs ? 2 : 1)) {
    return fail("aggregate length " + std::to_string(declared_count) + (pairs ? " pairs" : "") +
                    " exceeds limit " + std::to_string(limits_.max_aggregate_length) + " elements",
                ParserLimit::kAggregateLength);
  }
  const auto count = static_cast<std::size_t>(declared_count) * (pairs ? 2 : 1);
  const bool is_attribute = type_ == '|';
  if (count == 0) {
    if (is_attribute) return true;  // adds nothing to the pending attributes
    begin_value(aggregate_type(type_));
    end_value();
    return true;
  }
  if (stack_.size() >= limits_.max_depth) {
    return fail("nesting depth exceeds limit " + std::to_string(limits_.max_depth),
                ParserLimit::kDepth);
  }
  // All `count` elements, before a single one is reserved.
  if (!charge_elements(count)) return false;
  Frame& frame = stack_.emplace_back();
  frame.reply.type = aggregate_type(type_);
  if (!pending_attributes_.empty()) {
    if (is_attribute) {
      frame.carried_attributes = std::move(pending_attributes_);
    } else {
      frame.reply.attributes = std::move(pending_attributes_);
    }
    pending_attributes_.clear();
  }
  frame.remaining = count;
  frame.is_attribute = is_attribute;
  const std::size_t affordable =
      std::clamp(bytes_available_ / kMinValueBytes, kMinReservedElements, kMaxReservedElements);
  frame.reply.elements.reserve(std::min(count, affordable));
  return true;
}

Reply& RespParser::begin_value(ReplyType type) {
  Reply* value;
  if (stack_.empty()) {
    // result_ was moved out by take_reply() (or never used): give it a clean state.
    value = &result_;
    value->boolean = false;
    std::memset(value->verbatim_format, 0, sizeof value->verbatim_format);
    value->integer = 0;  // and so `number`, which shares its storage
    value->string.clear();
    value->elements.clear();
    value->attributes.clear();
  } else {
    value = &append_element();
  }
  value->type = type;
  if (!pending_attributes_.empty()) {
    value->attributes = std::move(pending_attributes_);
    pending_attributes_.clear();
  }
  return *value;
}

// A new last element of the innermost open aggregate. Its buffer grows geometrically as
// elements arrive, capped at the aggregate's declared length (elements already there +
// `remaining`, which counts the one being added), so that a full aggregate has no spare slot.
Reply& RespParser::append_element() {
  Frame& frame = stack_.back();
  std::vector<Reply>& elements = frame.reply.elements;
  if (elements.size() == elements.capacity()) {
    const std::size_t declared = elements.size() + frame.remaining;
    elements.reserve(std::min(declared, std::max(kMinReservedElements, 2 * elements.capacity())));
  }
  return elements.emplace_back();
}

Reply& RespParser::current_value() {
  return stack_.empty() ? result_ : stack_.back().reply.elements.back();
}

void RespParser::end_value() {
  for (;;) {
    if (stack_.empty()) {
      state_ = State::kReplyReady;
      reply_bytes_ = 0;
      reply_elements_ = 0;
      reply_memory_ = 0;
      return;
    }
    Frame& frame = stack_.back();
    if (--frame.remaining != 0) {
      state_ = State::kType;
      return;
    }
    if (frame.is_attribute) {
      // Pending: the attributes carried in, then this attribute's own pairs.
      std::vector<Reply>& carried = frame.carried_attributes;
      if (carried.empty()) {
        pending_attributes_ = std::move(frame.reply.elements);
      } else {
        carried.insert(carried.end(), std::make_move_iterator(frame.reply.elements.begin()),
                       std::make_move_iterator(frame.reply.elements.end()));
        pending_attributes_ = std::move(carried);
      }
      stack_.pop_back();
      state_ = State::kType;
      return;
    }
    // The aggregate is full: it takes its place, then is counted by its own parent.
    Reply full = std::move(frame.reply);
    stack_.pop_back();
    if (stack_.empty()) {
      result_ = std::move(full);
    } else {
      append_element() = std::move(full);
    }
  }
}

void RespParser::append_payload(std::string& payload, const char* bytes, std::size_t count) {
  const std::size_t needed = payload.size() + count;
  if (payload.capacity() < needed) {
    // Geometric growth, capped at the declared length. A fresh string is given exactly the
    // capacity it reserves (from 30 bytes up, with libstdc++), where reserve() on a string
    // with a heap buffer would round it up to twice the old capacity, past the cap.
    const std::size_t declared = needed + (payload_remaining_ - count);
    std::string grown;
    grown.reserve(std::min(declared, std::max(needed, 2 * payload.capacity())));
    grown.append(payload);
    payload.swap(grown);
  }
  payload.append(bytes, count);
}

}  // namespace tiercache::redis
