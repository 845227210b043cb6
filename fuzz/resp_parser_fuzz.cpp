// libFuzzer target: RespParser on arbitrary bytes.
//
// Input layout: byte 0 chooses the limits (below 0x80: ParserLimits{} defaults; otherwise
// tiny limits from its bits, so every limit path is reached with short inputs); the rest is
// the byte stream from the "server". The seeds in fuzz/corpus/resp_parser/ follow it.
//
// Checked for every input, beyond "no crash, no leak, no UB, no hang" (the sanitizers):
//  - the stream parsed whole, split in three at points derived from the data, and fed one
//    byte at a time gives the same replies, each ending at the same offset, and the same end
//    (the same error message, or the same partial-reply state);
//  - a parse() that returns kNeedMore consumed everything it was given;
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
using tiercache::redis::ParserLimits;
using tiercache::redis::Reply;
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
  return limits;
}

struct Outcome {
  std::vector<Reply> replies;
  std::vector<std::size_t> reply_ends;  // stream offset right after each reply
  bool failed = false;
  std::string error;
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
        check(!outcome.error.empty(), "an error without a message");
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
  check(a.mid_reply == b.mid_reply, "different partial state for different splits");
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
