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
//  - Bounded: ParserLimits cap nesting, payload, aggregate and line sizes, and the wire
//    bytes, the values and the memory of one reply, so garbage or a hostile server can make it
//    fail, never crash, hang or allocate without bound. A limit is checked when the line that
//    announces what it bounds ends (the line limit even before), before anything is
//    allocated for it: a header that declares more elements or bytes than the reply may
//    still take is refused on the spot.
//    Below the limits, memory is reserved as bytes arrive, never from a declared length
//    alone, so a header costs what its bytes cost until its elements arrive.
//    A reply's memory is what reply_memory() measures (sizeof(Reply), 80 bytes, per value,
//    plus its strings' heap bytes); a value takes 3 wire bytes at least, so per wire byte a
//    reply can cost up to ~27 bytes of memory: max_reply_memory and max_reply_elements, not
//    max_reply_bytes, are what bound it. The estimate leaves out the allocator's overhead
//    per block and, for a moment while an aggregate grows, its previous buffer (smaller than
//    its final one). Nesting is handled with an explicit stack, not recursion.
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
  // Values in one top-level reply below it, as reply_element_count() counts them: elements
  // of its aggregates at every depth, attribute keys and values included (a map of N pairs
  // counts 2N). Bounds the Reply objects one reply builds however few bytes each takes on
  // the wire. Default 2^22 (4,194,304): above what a cache's commands return (MGET and
  // pipelines of thousands, SCAN pages, HGETALL of a hash of 2M fields), and at most 320 MiB
  // of Reply objects. Raise it for KEYS/SMEMBERS/LRANGE of more members than that.
  std::size_t max_reply_elements = std::size_t{1} << 22;
  // Memory one top-level reply may occupy once parsed, as reply_memory() estimates it:
  // sizeof(Reply) per value, the top-level one included, plus the heap bytes of its strings.
  // Default 1 GiB, the same as max_reply_bytes: a reply may take in memory what it may take
  // on the wire. A reply of large strings costs about its wire size; one of small values
  // costs up to ~27x its wire size and is refused here first (or by max_reply_elements).
  // Lower it to bound the memory a connection can be made to allocate.
  std::size_t max_reply_memory = std::size_t{1} << 30;
};

// Which limit of ParserLimits a stream broke (RespParser::exceeded_limit()).
enum class ParserLimit : std::uint8_t {
  kNone,             // no limit: no error, or an error of malformed RESP
  kDepth,            // max_depth
  kBulkLength,       // max_bulk_length
  kAggregateLength,  // max_aggregate_length
  kReplyBytes,       // max_reply_bytes
  kLineLength,       // max_line_length
  kReplyElements,    // max_reply_elements
  kReplyMemory,      // max_reply_memory
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

  // After parse() returned kError, the limit that was exceeded, or kNone if the bytes were
  // not RESP at all. kNone otherwise.
  ParserLimit exceeded_limit() const noexcept { return exceeded_limit_; }

  // Forgets everything: partial reply, error and untaken reply. Keeps buffer capacity.
  void reset();

  const ParserLimits& limits() const noexcept { return limits_; }

 private:
  enum class State : std::uint8_t {
    kType,        // expecting the type byte of the next value
    kLine,        // reading the line after the type byte (line_ holds any partial part)
    kPayload,     // reading payload_remaining_ bytes of a bulk/verbatim/bulk error (a verbatim
                  // string's first verbatim_prefix_remaining_ go to verbatim_format)
    kPayloadEnd,  // reading the CRLF after a payload (payload_crlf_seen_ of 2 bytes seen)
    kReplyReady,  // a top-level reply is complete in result_, waiting for take_reply()
    kError,
  };

  // One aggregate being filled. An attribute frame keeps in carried_attributes the pending
  // attributes that preceded it, so that consecutive attributes merge in order.
  struct Frame {
    Reply reply;
    std::size_t remaining = 0;  // elements still expected
    bool is_attribute = false;
    std::vector<Reply> carried_attributes;
  };

  bool on_line(const char* line, std::size_t length, std::size_t reply_bytes);
  bool start_payload(std::int64_t declared, std::size_t reply_bytes);
  bool start_aggregate(std::int64_t declared);
  bool charge_elements(std::size_t count);
  bool charge_memory(std::size_t bytes);
  Reply& begin_value(ReplyType type);
  Reply& append_element();
  Reply& current_value();
  void end_value();
  void append_payload(std::string& payload, const char* bytes, std::size_t count);
  bool line_exceeds_limit(std::size_t bytes) const noexcept;
  std::string line_too_long() const;
  bool fail(std::string message, ParserLimit limit = ParserLimit::kNone);

  ParserLimits limits_;
  State state_ = State::kType;
  char type_ = 0;  // the type byte of the value being read
  std::uint8_t payload_crlf_seen_ = 0;
  std::uint8_t verbatim_prefix_remaining_ = 0;  // bytes of "txt:" still to read
  ParserLimit exceeded_limit_ = ParserLimit::kNone;
  std::size_t payload_remaining_ = 0;
  std::size_t reply_bytes_ = 0;            // bytes of the current top-level reply already used
  std::size_t reply_elements_ = 0;         // values announced so far in the current top-level reply
  std::size_t reply_memory_ = 0;           // its reply_memory(), as far as announced so far
  std::size_t bytes_available_ = 0;        // bytes of the current parse() not yet used (a hint)
  std::string line_;                       // a line split across parse() calls
  std::vector<Frame> stack_;               // open aggregates, outermost first
  std::vector<Reply> pending_attributes_;  // attributes for the next value to start
  Reply result_;                           // the top-level value, built in place
  Error error_;
};

}  // namespace tiercache::redis
