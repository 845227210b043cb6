// libFuzzer target: RespParser on arbitrary bytes.
//
// Input layout: byte 0 chooses the limits (below 0x80: ParserLimits{} defaults; otherwise
// tiny limits from its bits, so every limit path is reached with short inputs); the rest is
// the byte stream from the "server". The seeds in fuzz/corpus/resp_parser/ follow it.
//
// Checked for every input, beyond "no crash, no leak, no UB, no hang" (the sanitizers):
//  - the stream parsed whole, split in three at points derived from the data, and fed one
//    byte at a time gives the same replies, each ending at the same offset, and the same end
//    (the same error message and exceeded limit, or the same partial-reply state);
//  - a parse() that returns kNeedMore consumed everything it was given;
//  - every reply is within max_reply_elements and max_reply_memory as reply_element_count()
//    and reply_memory() measure it, and the parser's accounting is exact: the reply's bytes
//    alone parse to the same reply with those two limits set to exactly its measures, and
//    fail on kReplyElements / kReplyMemory with either set one lower;
//  - an error names a limit (exceeded_limit() != kNone) exactly when its message says
//    "limit";
//  - format_reply renders every reply, as something unless it is an empty plain string;
//  - after reset(), a parser that failed parses a valid reply again.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/redis/reply.hpp"
#include "tiercache/redis/resp_parser.hpp"

namespace {

using tiercache::redis::format_reply;
using tiercache::redis::ParserLimit;
using tiercache::redis::ParserLimits;
using tiercache::redis::Reply;
using tiercache::redis::reply_element_count;
using tiercache::redis::reply_memory;
using tiercache::redis::RespParser;

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "resp_parser_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

ParserLimits limits_from(std::uint8_t selector) {
  ParserLimits limits;
  if (selector < 0x80) return limits;
  limits.max_depth = 1 + (selector & 0x03) * 2;              // 1, 3, 5, 7
  limits.max_bulk_length = (selector & 0x04) != 0 ? 8 : 64;  //
  limits.max_aggregate_length = (selector & 0x08) != 0 ? 4 : 33;
  limits.max_reply_bytes = (selector & 0x10) != 0 ? 48 : 600;
  limits.max_line_length = (selector & 0x20) != 0 ? 6 : 40;
  if ((selector & 0x40) != 0) limits.max_aggregate_length += 1;  // odd: map pairs round down
  // The limits of the whole reply, from the same bits (every combination of tight and loose
  // is still reached with the others).
  limits.max_reply_elements = (selector & 0x01) != 0 ? 7 : 45;
  limits.max_reply_memory =
      sizeof(Reply) * ((selector & 0x02) != 0 ? 6 : 40) + ((selector & 0x40) != 0 ? 0 : 100);
  return limits;
}

struct Outcome {
  std::vector<Reply> replies;
  std::vector<std::size_t> reply_ends;  // stream offset right after each reply
  bool failed = false;
  std::string error;
  ParserLimit exceeded = ParserLimit::kNone;
  bool mid_reply = false;
};

// Feeds `stream` cut at `cuts` (ascending offsets), collecting what the parser says.
Outcome run(std::string_view stream, const ParserLimits& limits,
            const std::vector<std::size_t>& cuts) {
  RespParser parser(limits);
  Outcome outcome;
  std::size_t offset = 0;
  std::size_t cut_index = 0;
  while (offset < stream.size()) {
    std::size_t piece_end = stream.size();
    while (cut_index < cuts.size() && cuts[cut_index] <= offset) ++cut_index;
    if (cut_index < cuts.size()) piece_end = cuts[cut_index];
    std::string_view piece = stream.substr(offset, piece_end - offset);
    while (!piece.empty()) {
      std::size_t consumed = 0;
      const RespParser::Status status = parser.parse(piece, consumed);
      check(consumed <= piece.size(), "consumed more than given");
      piece.remove_prefix(consumed);
      offset += consumed;
      if (status == RespParser::Status::kError) {
        outcome.failed = true;
        outcome.error = parser.error().message;
        outcome.exceeded = parser.exceeded_limit();
        check(!outcome.error.empty(), "an error without a message");
        check((outcome.exceeded != ParserLimit::kNone) ==
                  (outcome.error.find("limit") != std::string::npos),
              "exceeded_limit() and the message disagree");
        std::size_t again = 1;
        check(parser.parse(std::string_view("+OK\r\n"), again) == RespParser::Status::kError &&
                  again == 0,
              "error not sticky");
        parser.reset();
        check(parser.parse(std::string_view("+OK\r\n"), again) == RespParser::Status::kReply &&
                  parser.take_reply() == Reply::simple_string("OK"),
              "no reply after reset()");
        return outcome;
      }
      if (status == RespParser::Status::kReply) {
        outcome.replies.push_back(parser.take_reply());
        outcome.reply_ends.push_back(offset);
      } else {
        check(piece.empty(), "kNeedMore without consuming everything");
      }
    }
  }
  outcome.mid_reply = parser.mid_reply();
  return outcome;
}

void check_same(const Outcome& a, const Outcome& b) {
  check(a.replies == b.replies, "different replies for different splits");
  check(a.reply_ends == b.reply_ends, "replies end at different offsets for different splits");
  check(a.failed == b.failed, "an error for one split only");
  check(a.error == b.error, "different errors for different splits");
  check(a.exceeded == b.exceeded, "different exceeded limits for different splits");
  check(a.mid_reply == b.mid_reply, "different partial state for different splits");
}

// Parses `wire`, the bytes of one reply, alone under `limits`: the reply, or the limit broken.
bool parse_alone(std::string_view wire, const ParserLimits& limits, Reply& reply,
                 ParserLimit& exceeded) {
  RespParser parser(limits);
  std::size_t consumed = 0;
  const RespParser::Status status = parser.parse(wire, consumed);
  exceeded = parser.exceeded_limit();
  if (status != RespParser::Status::kReply) return false;
  check(consumed == wire.size(), "a reply alone ends elsewhere than in the stream");
  reply = parser.take_reply();
  return true;
}

// The reply-wide limits hold for `reply` (the bytes `wire`, parsed under `limits`), and the
// parser charges exactly what reply_element_count() and reply_memory() measure.
void check_reply_limits(const Reply& reply, std::string_view wire, const ParserLimits& limits) {
  const std::size_t elements = reply_element_count(reply);
  const std::size_t memory = reply_memory(reply);
  check(elements <= limits.max_reply_elements, "a reply beyond max_reply_elements");
  check(memory <= limits.max_reply_memory, "a reply beyond max_reply_memory");
  ParserLimits exact = limits;
  exact.max_reply_elements = elements;
  exact.max_reply_memory = memory;
  Reply again;
  ParserLimit exceeded = ParserLimit::kNone;
  check(parse_alone(wire, exact, again, exceeded) && again == reply,
        "a reply refused with limits set to exactly its measures");
  ParserLimits less_memory = exact;
  less_memory.max_reply_memory = memory - 1;
  check(!parse_alone(wire, less_memory, again, exceeded) && exceeded == ParserLimit::kReplyMemory,
        "a reply accepted with max_reply_memory below its reply_memory()");
  if (elements != 0) {
    ParserLimits fewer_elements = exact;
    fewer_elements.max_reply_elements = elements - 1;
    check(!parse_alone(wire, fewer_elements, again, exceeded) &&
              exceeded == ParserLimit::kReplyElements,
          "a reply accepted with max_reply_elements below its reply_element_count()");
  }
}

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325u;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3u;
  }
  return hash;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ParserLimits limits = limits_from(data[0]);
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = run(stream, limits, {});
  std::size_t reply_start = 0;
  for (std::size_t i = 0; i < whole.replies.size(); ++i) {
    const std::size_t reply_end = whole.reply_ends[i];
    check_reply_limits(whole.replies[i], stream.substr(reply_start, reply_end - reply_start),
                       limits);
    reply_start = reply_end;
  }
  for (const Reply& reply : whole.replies) {
    const std::string text = format_reply(reply);
    // Only an empty simple or verbatim string renders as nothing (as in redis-cli).
    check(!text.empty() || reply.type == tiercache::redis::ReplyType::kSimpleString ||
              reply.type == tiercache::redis::ReplyType::kVerbatimString,
          "format_reply rendered nothing");
  }

  const std::uint64_t hash = fnv1a(stream);
  const std::size_t first_cut = hash % (stream.size() + 1);
  const std::size_t second_cut = first_cut + (hash >> 32) % (stream.size() - first_cut + 1);
  check_same(whole, run(stream, limits, {first_cut, second_cut}));

  std::vector<std::size_t> every_byte(stream.size());
  for (std::size_t i = 0; i < every_byte.size(); ++i) every_byte[i] = i + 1;
  check_same(whole, run(stream, limits, every_byte));
  return 0;
}
