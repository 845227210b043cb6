// RespParser: turns the bytes a Redis server sends (RESP2 or RESP3) into Replies, one
// top-level reply at a time. It does no I/O: the connection feeds it whatever arrived.
//
// Contract:
//  - Incremental: bytes may arrive split anywhere (inside a line, a length, a CRLF or a bulk
//    payload). Feeding a stream one byte at a time gives exactly the replies that feeding it
//    at once gives. Partial state (a half line, a half payload, open aggregates) is kept
//    inside the parser between calls; the caller never re-feeds bytes already consumed.
//  - Strict: anything that is not well-formed RESP is a protocol error, not a guess: bare LF,
//    a missing CRLF after a payload, malformed or out-of-range integers and lengths, unknown
//    type bytes, and the streamed forms (`$?`, `*?`, `;`, `.`) that no Redis sends to a
//    client today. Once in error the parser stays there (it cannot find the next reply
//    boundary in a corrupt stream) until reset(); the connection should be dropped.
//  - Bounded: ParserLimits cap nesting, payload, aggregate and line sizes and the size of one
//    reply, so garbage or a hostile server can make it fail, never crash, hang or allocate
//    without bound. Memory is reserved as bytes arrive, never from a declared length alone,
//    so it is proportional to the bytes received: at most a payload's size for strings, and
//    one Reply (about 100 bytes) per element, however small on the wire (3 bytes at least),
//    so ~35x max_reply_bytes in the worst case: lower that limit to bound memory tighter.
//    Nesting is handled with an explicit stack, not recursion.
//  - Nulls: `_`, and RESP2's `$-1` and `*-1`, are kNull replies; a length of -1 for any
//    other type, like any other negative length, is a protocol error.
//  - Attributes (`|`) are attached, flattened like a map, to the reply that follows them (at
//    any depth); consecutive attributes are merged. They never count as aggregate elements.
//  - Thread-safety: none; one parser per connection, used by one thread at a time.

#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tiercache/redis/errors.hpp"
#include "tiercache/redis/reply.hpp"

namespace tiercache::redis {

// Limits of what one parser accepts; exceeding any is a protocol error naming the limit.
struct ParserLimits {
  // Aggregates (array, map, set, push, attribute) open at once, the outermost included.
  // Default 32.
  std::size_t max_depth = 32;
  // Bytes of one bulk string, bulk error or verbatim string payload (Redis:
  // proto-max-bulk-len). Default 512 MiB.
  std::size_t max_bulk_length = std::size_t{512} << 20;
  // Elements of one aggregate; a map or attribute of N pairs counts 2N. Default 2^24.
  std::size_t max_aggregate_length = std::size_t{1} << 24;
  // Wire bytes of one top-level reply, attributes included. Default 1 GiB.
  std::size_t max_reply_bytes = std::size_t{1} << 30;
  // Bytes of one line (simple string, simple error, number, length), CRLF excluded.
  // Default 64 KiB.
  std::size_t max_line_length = std::size_t{64} << 10;
};

class RespParser {
 public:
  enum class Status : std::uint8_t {
    kNeedMore,  // every byte was consumed and no reply is complete yet
    kReply,     // a top-level reply is complete: take it with take_reply()
    kError,     // a protocol violation (error() says which); sticky until reset()
  };

  explicit RespParser(ParserLimits limits = {});

  // Consumes bytes from the front of `data` and sets `consumed` to how many it used. Stops
  // right after the first complete top-level reply (kReply; the rest of `data` is for the
  // next call), when all of `data` is used without completing one (kNeedMore), or at the
  // first violation (kError; `consumed` then says nothing useful: the stream is unusable).
  // An empty `data` returns kNeedMore (or kError while in error).
  // REQUIRES: the reply of a previous kReply was taken with take_reply().
  Status parse(std::span<const char> data, std::size_t& consumed);

  // The reply completed by the last parse() that returned kReply, moved out.
  // REQUIRES: the last parse() returned kReply, and take_reply() was not called since.
  Reply take_reply();

  // Whether a reply has been started but not completed (bytes are held inside).
  bool mid_reply() const noexcept;

  // The violation, after parse() returned kError: Errc::kProtocol and a message such as
  // "bulk length 600000000 exceeds limit 536870912". Empty code otherwise.
  const Error& error() const noexcept { return error_; }

  // Forgets everything: partial reply, error and untaken reply. Keeps buffer capacity.
  void reset();

  const ParserLimits& limits() const noexcept { return limits_; }

 private:
  enum class State : std::uint8_t {
    kType,        // expecting the type byte of the next value
    kLine,        // reading the line after the type byte (line_ holds any partial part)
    kPayload,     // reading payload_remaining_ bytes of a bulk/verbatim/bulk error
    kPayloadEnd,  // reading the CRLF after a payload (payload_crlf_seen_ of 2 bytes seen)
    kReplyReady,  // a top-level reply is complete in result_, waiting for take_reply()
    kError,
  };

  // One aggregate being filled. An attribute frame keeps in reply.attributes the pending
  // attributes that preceded it, so that consecutive attributes merge in order.
  struct Frame {
    Reply reply;
    std::size_t remaining = 0;  // elements still expected
    bool is_attribute = false;
  };

  bool on_line(const char* line, std::size_t length, std::size_t reply_bytes);
  bool start_payload(std::int64_t declared, std::size_t reply_bytes);
  bool start_aggregate(std::int64_t declared);
  bool on_payload_end();
  Reply& begin_value(ReplyType type);
  Reply& current_value();
  void end_value();
  void append_payload(std::string& payload, const char* bytes, std::size_t count);
  bool line_exceeds_limit(std::size_t bytes) const noexcept;
  std::string line_too_long() const;
  bool fail(std::string message);

  ParserLimits limits_;
  State state_ = State::kType;
  char type_ = 0;  // the type byte of the value being read
  std::uint8_t payload_crlf_seen_ = 0;
  std::size_t payload_remaining_ = 0;
  std::size_t reply_bytes_ = 0;            // bytes of the current top-level reply already used
  std::size_t bytes_available_ = 0;        // bytes of the current parse() not yet used (a hint)
  std::string line_;                       // a line split across parse() calls
  std::vector<Frame> stack_;               // open aggregates, outermost first
  std::vector<Reply> pending_attributes_;  // attributes for the next value to start
  Reply result_;                           // the top-level value, built in place
  Error error_;
};

}  // namespace tiercache::redis
