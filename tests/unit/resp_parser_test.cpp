// RespParser: RESP2/RESP3 bytes in, Replies out; and Reply's equality and format_reply.
//
// The contract checked here: every type and its RESP2 forms; replies split anywhere across
// reads give what they give in one read; several replies in one buffer come out one per
// parse(); every violation and every limit gives kError with Errc::kProtocol, sticky until
// reset(); declared lengths alone never make the parser allocate; and the limits on one
// reply's values and memory refuse a reply from the header that takes it past them, count
// exactly what reply_element_count() and reply_memory() measure, and give the same verdict
// however the stream is split.

#include "tiercache/redis/resp_parser.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tiercache/redis/errors.hpp"
#include "tiercache/redis/reply.hpp"

// Bytes requested from the global operator new by this test program: lets a test check that
// a parser did not allocate what a declared length asked for.
namespace {
std::atomic<std::size_t> g_bytes_allocated{0};
}  // namespace

// gcc sees malloc/free through the inlined replacements and warns of a mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  g_bytes_allocated.fetch_add(size, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace tiercache::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Status = RespParser::Status;

// ---- expected values ------------------------------------------------------------------------
Reply simple(std::string s) { return Reply::simple_string(std::move(s)); }
Reply bulk(std::string s) { return Reply::bulk_string(std::move(s)); }
Reply error(std::string s) { return Reply::error(std::move(s)); }
Reply integer(std::int64_t v) { return Reply::from_integer(v); }
Reply null() { return Reply::null(); }
Reply number(double v) {
  Reply r;
  r.type = ReplyType::kDouble;
  r.number = v;
  return r;
}
Reply boolean(bool v) {
  Reply r;
  r.type = ReplyType::kBoolean;
  r.boolean = v;
  return r;
}
Reply with_string(ReplyType type, std::string s) {
  Reply r;
  r.type = type;
  r.string = std::move(s);
  return r;
}
Reply verbatim(std::string format, std::string s) {
  Reply r = with_string(ReplyType::kVerbatimString, std::move(s));
  format.copy(r.verbatim_format, 3);
  return r;
}
Reply array(std::vector<Reply> elements) {
  return Reply::aggregate(ReplyType::kArray, std::move(elements));
}
Reply map(std::vector<Reply> keys_and_values) {
  return Reply::aggregate(ReplyType::kMap, std::move(keys_and_values));
}
Reply set(std::vector<Reply> elements) {
  return Reply::aggregate(ReplyType::kSet, std::move(elements));
}
Reply push(std::vector<Reply> elements) {
  return Reply::aggregate(ReplyType::kPush, std::move(elements));
}
Reply with_attributes(Reply r, std::vector<Reply> attributes) {
  r.attributes = std::move(attributes);
  return r;
}

// ---- driving the parser ---------------------------------------------------------------------
struct Outcome {
  std::vector<Reply> replies;
  bool failed = false;
  std::string error_message;
  bool incomplete = false;  // bytes left inside the parser at the end
};

// Feeds `wire` in chunks of at most `chunk` bytes, collecting every reply.
Outcome feed(std::string_view wire, std::size_t chunk = std::string_view::npos,
             ParserLimits limits = {}) {
  RespParser parser(limits);
  Outcome outcome;
  while (!wire.empty()) {
    std::string_view piece = wire.substr(0, chunk);
    while (!piece.empty()) {
      std::size_t consumed = 0;
      const Status status = parser.parse(piece, consumed);
      EXPECT_LE(consumed, piece.size());
      piece.remove_prefix(consumed);
      wire.remove_prefix(consumed);
      if (status == Status::kError) {
        EXPECT_EQ(parser.error().code, make_error_code(Errc::kProtocol));
        outcome.failed = true;
        outcome.error_message = parser.error().message;
        return outcome;
      }
      if (status == Status::kReply) {
        outcome.replies.push_back(parser.take_reply());
      } else {
        EXPECT_TRUE(piece.empty()) << "kNeedMore must consume everything";
      }
    }
  }
  outcome.incomplete = parser.mid_reply();
  return outcome;
}

// The one reply `wire` holds, which must use all of it, in one read.
Reply parse_one(std::string_view wire, ParserLimits limits = {}) {
  RespParser parser(limits);
  std::size_t consumed = 0;
  const Status status = parser.parse(wire, consumed);
  EXPECT_EQ(status, Status::kReply) << parser.error().message;
  EXPECT_EQ(consumed, wire.size());
  return status == Status::kReply ? parser.take_reply() : Reply();
}

// The error message `wire` gives, fed whole and fed byte by byte (which must agree).
std::string parse_error(std::string_view wire, ParserLimits limits = {}) {
  const Outcome whole = feed(wire, std::string_view::npos, limits);
  const Outcome bytewise = feed(wire, 1, limits);
  EXPECT_TRUE(whole.failed) << "no error for " << ::testing::PrintToString(std::string(wire));
  EXPECT_TRUE(bytewise.failed);
  EXPECT_EQ(whole.error_message, bytewise.error_message);
  return whole.error_message;
}

// ---- every type -----------------------------------------------------------------------------
TEST(RespParser, ParsesASimpleString) { EXPECT_EQ(parse_one("+OK\r\n"), simple("OK")); }

TEST(RespParser, ParsesAnEmptySimpleString) { EXPECT_EQ(parse_one("+\r\n"), simple("")); }

TEST(RespParser, ParsesASimpleErrorKeepingTheWholeLine) {
  const Reply reply = parse_one("-ERR unknown command 'foo'\r\n");
  EXPECT_EQ(reply, error("ERR unknown command 'foo'"));
  EXPECT_TRUE(reply.is_error());
}

TEST(RespParser, ParsesIntegersUpToTheInt64Extremes) {
  EXPECT_EQ(parse_one(":0\r\n"), integer(0));
  EXPECT_EQ(parse_one(":-0\r\n"), integer(0));
  EXPECT_EQ(parse_one(":1000\r\n"), integer(1000));
  EXPECT_EQ(parse_one(":-42\r\n"), integer(-42));
  EXPECT_EQ(parse_one(":9223372036854775807\r\n"),
            integer(std::numeric_limits<std::int64_t>::max()));
  EXPECT_EQ(parse_one(":-9223372036854775808\r\n"),
            integer(std::numeric_limits<std::int64_t>::min()));
}

TEST(RespParser, ParsesABulkString) { EXPECT_EQ(parse_one("$6\r\nfoobar\r\n"), bulk("foobar")); }

TEST(RespParser, ParsesAnEmptyBulkString) { EXPECT_EQ(parse_one("$0\r\n\r\n"), bulk("")); }

TEST(RespParser, ParsesABulkStringHoldingCrlfAndNulBytes) {
  EXPECT_EQ(parse_one(std::string_view("$6\r\na\r\n\0\nb\r\n", 12)),
            bulk(std::string("a\r\n\0\nb", 6)));
}

TEST(RespParser, ParsesTheResp2NullBulkAndNullArrayAsNull) {
  EXPECT_EQ(parse_one("$-1\r\n"), null());
  EXPECT_EQ(parse_one("*-1\r\n"), null());
}

TEST(RespParser, ParsesTheResp3Null) { EXPECT_EQ(parse_one("_\r\n"), null()); }

TEST(RespParser, ParsesAnArrayOfMixedTypes) {
  EXPECT_EQ(parse_one("*4\r\n:1\r\n$3\r\nfoo\r\n$-1\r\n+OK\r\n"),
            array({integer(1), bulk("foo"), null(), simple("OK")}));
}

TEST(RespParser, ParsesAnEmptyArray) { EXPECT_EQ(parse_one("*0\r\n"), array({})); }

TEST(RespParser, ParsesNestedArrays) {
  EXPECT_EQ(parse_one("*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n"),
            array({array({integer(1), integer(2), integer(3)}),
                   array({simple("Hello"), error("World")})}));
  EXPECT_EQ(parse_one("*1\r\n*1\r\n*1\r\n*0\r\n"), array({array({array({array({})})})}));
}

TEST(RespParser, ParsesDoublesInEveryForm) {
  EXPECT_EQ(parse_one(",1.5\r\n"), number(1.5));
  EXPECT_EQ(parse_one(",-2.5\r\n"), number(-2.5));
  EXPECT_EQ(parse_one(",10\r\n"), number(10));
  EXPECT_EQ(parse_one(",+3.25\r\n"), number(3.25));
  EXPECT_EQ(parse_one(",1.5e3\r\n"), number(1500));
  EXPECT_EQ(parse_one(",1E-2\r\n"), number(0.01));
  EXPECT_EQ(parse_one(",-1.25e+2\r\n"), number(-125));
  EXPECT_EQ(parse_one(",3.141592653589793\r\n"), number(3.141592653589793));
  EXPECT_EQ(parse_one(",inf\r\n"), number(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(parse_one(",-inf\r\n"), number(-std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(std::isnan(parse_one(",nan\r\n").number));
  EXPECT_TRUE(std::signbit(parse_one(",-0\r\n").number));
}

TEST(RespParser, ParsesBooleans) {
  EXPECT_EQ(parse_one("#t\r\n"), boolean(true));
  EXPECT_EQ(parse_one("#f\r\n"), boolean(false));
}

TEST(RespParser, ParsesABulkError) {
  const Reply reply = parse_one("!21\r\nSYNTAX invalid syntax\r\n");
  EXPECT_EQ(reply, with_string(ReplyType::kBulkError, "SYNTAX invalid syntax"));
  EXPECT_TRUE(reply.is_error());
}

TEST(RespParser, ParsesAVerbatimStringSplittingOffItsFormat) {
  const Reply reply = parse_one("=15\r\ntxt:Some string\r\n");
  EXPECT_EQ(reply, verbatim("txt", "Some string"));
  EXPECT_EQ(std::string_view(reply.verbatim_format, 3), "txt");
  EXPECT_EQ(parse_one("=4\r\nmkd:\r\n"), verbatim("mkd", ""));
}

TEST(RespParser, ParsesBigNumbersAsTheirText) {
  EXPECT_EQ(parse_one("(3492890328409238509324850943850943825024385\r\n"),
            with_string(ReplyType::kBigNumber, "3492890328409238509324850943850943825024385"));
  EXPECT_EQ(parse_one("(-12\r\n"), with_string(ReplyType::kBigNumber, "-12"));
  EXPECT_EQ(parse_one("(+7\r\n"), with_string(ReplyType::kBigNumber, "+7"));
}

TEST(RespParser, ParsesAMapAsAlternatingKeysAndValues) {
  EXPECT_EQ(parse_one("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"),
            map({simple("first"), integer(1), simple("second"), integer(2)}));
  EXPECT_EQ(parse_one("%0\r\n"), map({}));
}

TEST(RespParser, ParsesASet) {
  EXPECT_EQ(parse_one("~3\r\n+a\r\n:2\r\n#f\r\n"), set({simple("a"), integer(2), boolean(false)}));
}

TEST(RespParser, ParsesAPush) {
  EXPECT_EQ(parse_one(">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n"),
            push({bulk("message"), bulk("chan"), bulk("hello")}));
}

TEST(RespParser, ParsesAggregatesNestedInEveryCombination) {
  EXPECT_EQ(parse_one("%1\r\n~1\r\n*1\r\n:1\r\n>1\r\n%1\r\n_\r\n,2\r\n"),
            map({set({array({integer(1)})}), push({map({null(), number(2)})})}));
}

// ---- attributes -----------------------------------------------------------------------------
TEST(RespParser, AttachesAnAttributeToTheReplyThatFollowsIt) {
  EXPECT_EQ(parse_one("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
                      "*2\r\n:2039123\r\n:9543892\r\n"),
            with_attributes(array({integer(2039123), integer(9543892)}),
                            {simple("key-popularity"),
                             map({bulk("a"), number(0.1923), bulk("b"), number(0.0012)})}));
}

TEST(RespParser, AttachesAnAttributeToANestedElementWithoutCountingIt) {
  EXPECT_EQ(parse_one("*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n"),
            array({integer(1), with_attributes(integer(2), {simple("ttl"), integer(3600)})}));
}

TEST(RespParser, MergesConsecutiveAttributesInOrder) {
  EXPECT_EQ(parse_one("|1\r\n+a\r\n:1\r\n|0\r\n|1\r\n+b\r\n:2\r\n$1\r\nx\r\n"),
            with_attributes(bulk("x"), {simple("a"), integer(1), simple("b"), integer(2)}));
}

TEST(RespParser, KeepsTheAttributeOfAnAttributeKeyOnThatKey) {
  const Reply key = with_attributes(simple("k"), {simple("inner"), integer(1)});
  EXPECT_EQ(parse_one("|1\r\n|1\r\n+inner\r\n:1\r\n+k\r\n:2\r\n:3\r\n"),
            with_attributes(integer(3), {key, integer(2)}));
  // The same after an attribute already pending: it stays first, and is not given to "k".
  EXPECT_EQ(parse_one("|1\r\n+a\r\n:0\r\n|1\r\n|1\r\n+inner\r\n:1\r\n+k\r\n:2\r\n:3\r\n"),
            with_attributes(integer(3), {simple("a"), integer(0), key, integer(2)}));
}

TEST(RespParser, NeedsMoreAfterAnAttributeWithoutItsReply) {
  const Outcome outcome = feed("|1\r\n+a\r\n:1\r\n");
  EXPECT_FALSE(outcome.failed);
  EXPECT_TRUE(outcome.replies.empty());
  EXPECT_TRUE(outcome.incomplete);
}

// ---- reads split anywhere, several replies per read ----------------------------------------
TEST(RespParser, StopsRightAfterEachReplyWhenSeveralArriveTogether) {
  const std::string wire = "+OK\r\n:5\r\n$3\r\nabc\r\n*1\r\n_\r\n";
  RespParser parser;
  std::string_view rest = wire;
  std::vector<std::size_t> used;
  std::vector<Reply> replies;
  while (!rest.empty()) {
    std::size_t consumed = 0;
    ASSERT_EQ(parser.parse(rest, consumed), Status::kReply);
    used.push_back(consumed);
    replies.push_back(parser.take_reply());
    rest.remove_prefix(consumed);
  }
  EXPECT_THAT(used, ElementsAre(5u, 4u, 9u, 7u));
  EXPECT_THAT(replies, ElementsAre(simple("OK"), integer(5), bulk("abc"), array({null()})));
}

TEST(RespParser, ParsesABulkStringSplitAcrossManyReads) {
  const std::string payload(100'000, 'x');
  const std::string wire = "$100000\r\n" + payload + "\r\n";
  for (const std::size_t chunk : {1u, 2u, 3u, 7u, 4096u, 65536u}) {
    const Outcome outcome = feed(wire, chunk);
    ASSERT_FALSE(outcome.failed) << outcome.error_message;
    ASSERT_THAT(outcome.replies, ElementsAre(bulk(payload))) << "chunk " << chunk;
  }
}

TEST(RespParser, KeepsAPartialLineAcrossReadsIncludingACrSplitFromItsLf) {
  RespParser parser;
  std::size_t consumed = 0;
  EXPECT_EQ(parser.parse(std::string_view(":12"), consumed), Status::kNeedMore);
  EXPECT_EQ(consumed, 3u);
  EXPECT_TRUE(parser.mid_reply());
  EXPECT_EQ(parser.parse(std::string_view("34\r"), consumed), Status::kNeedMore);
  EXPECT_EQ(parser.parse(std::string_view("\n+next"), consumed), Status::kReply);
  EXPECT_EQ(consumed, 1u);
  EXPECT_EQ(parser.take_reply(), integer(1234));
  EXPECT_FALSE(parser.mid_reply());
}

TEST(RespParser, NeedsMoreOnAnEmptyRead) {
  RespParser parser;
  std::size_t consumed = 7;
  EXPECT_EQ(parser.parse({}, consumed), Status::kNeedMore);
  EXPECT_EQ(consumed, 0u);
  EXPECT_FALSE(parser.mid_reply());
}

// Every reply of every type, back to back; used by the equivalence test below.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> wires = {
      "+OK\r\n",
      "-ERR wrong\r\n",
      ":-9223372036854775808\r\n",
      "$5\r\nhello\r\n",
      "$0\r\n\r\n",
      std::string("$4\r\n\r\n\0\n\r\n", 10),
      "$-1\r\n",
      "*-1\r\n",
      "_\r\n",
      ",-1.5e-3\r\n",
      ",inf\r\n",
      "#t\r\n",
      "!10\r\nERR failed\r\n",
      "=8\r\ntxt:text\r\n",
      "(-123456789012345678901234567890\r\n",
      "*3\r\n$3\r\nfoo\r\n*0\r\n*2\r\n:1\r\n$-1\r\n",
      "%2\r\n+a\r\n*1\r\n:1\r\n+b\r\n%1\r\n_\r\n#f\r\n",
      "~2\r\n+x\r\n,2\r\n",
      ">3\r\n+invalidate\r\n*1\r\n$3\r\nkey\r\n_\r\n",
      "|1\r\n+ttl\r\n:10\r\n*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n$2\r\nab\r\n",
  };
  return wires;
}

TEST(RespParser, GivesTheSameRepliesWhenFedOneByteAtATime) {
  std::string stream;
  for (const std::string& wire : corpus()) stream += wire;
  const Outcome whole = feed(stream);
  ASSERT_FALSE(whole.failed) << whole.error_message;
  ASSERT_EQ(whole.replies.size(), corpus().size());
  EXPECT_FALSE(whole.incomplete);
  for (const std::size_t chunk : {1u, 2u, 3u, 5u, 11u}) {
    const Outcome split = feed(stream, chunk);
    ASSERT_FALSE(split.failed) << split.error_message;
    EXPECT_EQ(split.replies, whole.replies) << "chunk " << chunk;
  }
}

// ---- protocol violations --------------------------------------------------------------------
TEST(RespParser, RejectsABareLfEndingALine) {
  EXPECT_THAT(parse_error("+OK\n"), HasSubstr("bare LF"));
  EXPECT_THAT(parse_error(":1\n"), HasSubstr("bare LF"));
  EXPECT_THAT(parse_error("$3\n"), HasSubstr("bare LF"));
}

TEST(RespParser, RejectsAPayloadNotFollowedByCrlf) {
  EXPECT_THAT(parse_error("$3\r\nfoox\r\n"), HasSubstr("not followed by CRLF"));
  EXPECT_THAT(parse_error("$3\r\nfoo\n"), HasSubstr("not followed by CRLF"));
  EXPECT_THAT(parse_error("$3\r\nfoo\rx"), HasSubstr("not followed by CRLF"));
}

TEST(RespParser, RejectsACrInsideASimpleStringOrError) {
  EXPECT_THAT(parse_error("+a\rb\r\n"), HasSubstr("contains a CR"));
  EXPECT_THAT(parse_error("-a\r\r\n"), HasSubstr("contains a CR"));
}

TEST(RespParser, RejectsMalformedIntegers) {
  for (const char* wire :
       {":\r\n", ":+1\r\n", ":1a\r\n", ": 1\r\n", ":1 \r\n", ":-\r\n", ":9223372036854775808\r\n",
        ":-9223372036854775809\r\n", ":99999999999999999999999\r\n", ":0x10\r\n", ":1.0\r\n"}) {
    EXPECT_THAT(parse_error(wire), HasSubstr("malformed integer")) << wire;
  }
}

TEST(RespParser, RejectsMalformedLengths) {
  for (const char* wire : {"$\r\n", "$+3\r\n", "$3x\r\n", "*\r\n", "*1.0\r\n", "%a\r\n",
                           "$99999999999999999999\r\n"}) {
    EXPECT_THAT(parse_error(wire), HasSubstr("malformed length")) << wire;
  }
}

TEST(RespParser, RejectsNegativeLengthsOtherThanTheResp2Nulls) {
  for (const char* wire : {"$-2\r\n", "*-2\r\n", "%-1\r\n", "~-1\r\n", ">-1\r\n", "|-1\r\n",
                           "!-1\r\n", "=-1\r\n", "*-9223372036854775808\r\n"}) {
    EXPECT_THAT(parse_error(wire), HasSubstr("negative length")) << wire;
  }
}

TEST(RespParser, RejectsUnknownTypeBytes) {
  EXPECT_EQ(parse_error("x"), "unknown RESP type byte 0x78");
  EXPECT_EQ(parse_error("\r\n"), "unknown RESP type byte 0x0d");
  EXPECT_EQ(parse_error(std::string_view("\0", 1)), "unknown RESP type byte 0x00");
  EXPECT_EQ(parse_error("*1\r\n@\r\n"), "unknown RESP type byte 0x40");
}

TEST(RespParser, RejectsStreamedStringsAndAggregates) {
  EXPECT_THAT(parse_error("$?\r\n;4\r\nHell\r\n;0\r\n"), HasSubstr("streamed"));
  EXPECT_THAT(parse_error("*?\r\n:1\r\n.\r\n"), HasSubstr("streamed"));
  EXPECT_THAT(parse_error("%?\r\n"), HasSubstr("streamed"));
  EXPECT_THAT(parse_error(";4\r\nHell\r\n"), HasSubstr("streamed"));
  EXPECT_THAT(parse_error("*2\r\n:1\r\n.\r\n"), HasSubstr("streamed"));
}

TEST(RespParser, RejectsBooleansOtherThanTOrF) {
  for (const char* wire : {"#\r\n", "#T\r\n", "#true\r\n", "#1\r\n", "#tt\r\n"}) {
    EXPECT_THAT(parse_error(wire), HasSubstr("boolean")) << wire;
  }
}

TEST(RespParser, RejectsMalformedDoubles) {
  for (const char* wire : {",\r\n", ",+\r\n", ",1.5x\r\n", ", 1\r\n", ",+-1\r\n", ",0x10\r\n",
                           ",1e\r\n", ",--1\r\n", ",1,5\r\n"}) {
    EXPECT_THAT(parse_error(wire), HasSubstr("double")) << wire;
  }
  EXPECT_THAT(parse_error(",1e999\r\n"), HasSubstr("out of range"));
}

TEST(RespParser, RejectsMalformedBigNumbers) {
  for (const char* wire : {"(\r\n", "(-\r\n", "(+\r\n", "(12a\r\n", "(1.5\r\n", "(--1\r\n"}) {
    EXPECT_THAT(parse_error(wire), HasSubstr("big number")) << wire;
  }
}

TEST(RespParser, RejectsAVerbatimStringWithoutItsFormat) {
  EXPECT_THAT(parse_error("=3\r\ntxt\r\n"), HasSubstr("verbatim"));
  EXPECT_THAT(parse_error("=8\r\ntxt-text\r\n"), HasSubstr("verbatim"));
}

TEST(RespParser, RejectsANullWithText) { EXPECT_THAT(parse_error("_x\r\n"), HasSubstr("null")); }

TEST(RespParser, StaysInErrorUntilReset) {
  RespParser parser;
  std::size_t consumed = 0;
  ASSERT_EQ(parser.parse(std::string_view("?garbage"), consumed), Status::kError);
  EXPECT_EQ(parser.error().code, make_error_code(Errc::kProtocol));
  EXPECT_EQ(parser.parse(std::string_view("+OK\r\n"), consumed), Status::kError);
  EXPECT_EQ(consumed, 0u);
  parser.reset();
  EXPECT_FALSE(parser.error().code);
  ASSERT_EQ(parser.parse(std::string_view("+OK\r\n"), consumed), Status::kReply);
  EXPECT_EQ(parser.take_reply(), simple("OK"));
}

TEST(RespParser, ResetDropsAHalfReadReply) {
  RespParser parser;
  std::size_t consumed = 0;
  ASSERT_EQ(parser.parse(std::string_view("*2\r\n$5\r\nhel"), consumed), Status::kNeedMore);
  parser.reset();
  EXPECT_FALSE(parser.mid_reply());
  ASSERT_EQ(parser.parse(std::string_view(":1\r\n"), consumed), Status::kReply);
  EXPECT_EQ(parser.take_reply(), integer(1));
}

// ---- limits ---------------------------------------------------------------------------------
TEST(RespParser, RejectsABulkLongerThanTheLimitNamingBoth) {
  EXPECT_EQ(parse_error("$600000000\r\n"), "bulk length 600000000 exceeds limit 536870912");
  ParserLimits limits;
  limits.max_bulk_length = 4;
  EXPECT_EQ(parse_one("$4\r\nabcd\r\n", limits), bulk("abcd"));
  EXPECT_EQ(parse_error("$5\r\nabcde\r\n", limits), "bulk length 5 exceeds limit 4");
  EXPECT_EQ(parse_error("!5\r\nERR x\r\n", limits), "bulk length 5 exceeds limit 4");
  EXPECT_EQ(parse_error("=9\r\ntxt:abcde\r\n", limits), "bulk length 9 exceeds limit 4");
}

TEST(RespParser, RejectsAnAggregateLongerThanTheLimit) {
  ParserLimits limits;
  limits.max_aggregate_length = 4;
  EXPECT_EQ(parse_one("*4\r\n_\r\n_\r\n_\r\n_\r\n", limits),
            array({null(), null(), null(), null()}));
  EXPECT_THAT(parse_error("*5\r\n", limits), HasSubstr("aggregate length 5 exceeds limit 4"));
  EXPECT_THAT(parse_error("~5\r\n", limits), HasSubstr("exceeds limit 4"));
  EXPECT_THAT(parse_error(">5\r\n", limits), HasSubstr("exceeds limit 4"));
  // A map or an attribute of N pairs has 2N elements.
  EXPECT_EQ(parse_one("%2\r\n_\r\n_\r\n_\r\n_\r\n", limits), map({null(), null(), null(), null()}));
  EXPECT_THAT(parse_error("%3\r\n", limits), HasSubstr("aggregate length 3 pairs exceeds limit 4"));
  EXPECT_THAT(parse_error("|3\r\n", limits), HasSubstr("aggregate length 3 pairs exceeds limit 4"));
  EXPECT_THAT(parse_error("%9223372036854775807\r\n"), HasSubstr("exceeds limit 16777216"));
}

TEST(RespParser, AcceptsNestingUpToTheDepthLimitAndRejectsDeeper) {
  ParserLimits limits;
  limits.max_depth = 3;
  EXPECT_EQ(parse_one("*1\r\n*1\r\n*1\r\n:1\r\n", limits), array({array({array({integer(1)})})}));
  // Empty aggregates are complete at once: they never open a level.
  EXPECT_EQ(parse_one("*1\r\n*1\r\n*1\r\n*0\r\n", limits), array({array({array({array({})})})}));
  EXPECT_EQ(parse_error("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits), "nesting depth exceeds limit 3");
  // Attributes are aggregates too.
  EXPECT_EQ(parse_error("*1\r\n*1\r\n|1\r\n%1\r\n", limits), "nesting depth exceeds limit 3");
}

TEST(RespParser, RejectsDeepNestingWithTheDefaultLimitWithoutRecursing) {
  std::string wire;
  for (int i = 0; i < 100'000; ++i) wire += "*1\r\n";
  EXPECT_EQ(parse_error(wire), "nesting depth exceeds limit 32");
}

TEST(RespParser, RejectsALineLongerThanTheLimitEvenBeforeItEnds) {
  ParserLimits limits;
  limits.max_line_length = 8;
  EXPECT_EQ(parse_one("+12345678\r\n", limits), simple("12345678"));
  EXPECT_THAT(parse_error("+123456789\r\n", limits), HasSubstr("exceeds limit 8 bytes"));
  EXPECT_THAT(parse_error("-1234567890", limits), HasSubstr("exceeds limit 8 bytes"));
  EXPECT_THAT(parse_error(":1234567890", limits), HasSubstr("exceeds limit 8 bytes"));
  EXPECT_THAT(parse_error("$1234567890", limits), HasSubstr("exceeds limit 8 bytes"));
}

TEST(RespParser, RejectsAReplyLargerThanTheLimit) {
  ParserLimits limits;
  limits.max_reply_bytes = 18;
  EXPECT_EQ(parse_one("$11\r\nhello world\r\n", limits), bulk("hello world"));  // 18 bytes
  // Announced too long: refused at its header, before the payload arrives.
  EXPECT_THAT(parse_error("$12\r\n", limits), HasSubstr("reply exceeds limit 18 bytes"));
  // Many small elements.
  EXPECT_THAT(parse_error("*9\r\n_\r\n_\r\n_\r\n_\r\n_\r\n_\r\n", limits),
              HasSubstr("reply exceeds limit 18 bytes"));
  // The limit is per reply: several replies may add up to more.
  const Outcome outcome = feed("$11\r\nhello world\r\n$11\r\nhello world\r\n", 3, limits);
  EXPECT_FALSE(outcome.failed) << outcome.error_message;
  EXPECT_EQ(outcome.replies.size(), 2u);
}

// Declared lengths alone must not allocate: a hostile header costs what its bytes cost.
TEST(RespParser, DoesNotAllocateForDeclaredLengthsThatHaveNotArrived) {
  // Limits on the whole reply lifted: the headers below are accepted, and still cost nothing.
  ParserLimits limits;
  limits.max_reply_elements = std::numeric_limits<std::size_t>::max();
  limits.max_reply_memory = std::numeric_limits<std::size_t>::max();
  RespParser parser(limits);
  std::size_t consumed = 0;
  const std::size_t before = g_bytes_allocated.load();
  ASSERT_EQ(parser.parse(std::string_view("*16777216\r\n"), consumed), Status::kNeedMore);
  ASSERT_EQ(parser.parse(std::string_view("%8388608\r\n~16777216\r\n"), consumed),
            Status::kNeedMore);
  ASSERT_EQ(parser.parse(std::string_view("$536870912\r\nabc"), consumed), Status::kNeedMore);
  const std::size_t allocated = g_bytes_allocated.load() - before;
  EXPECT_LT(allocated, std::size_t{1} << 20);
}

TEST(RespParser, GrowsALargeBulkWithTheBytesThatArrive) {
  RespParser parser;
  std::size_t consumed = 0;
  ASSERT_EQ(parser.parse(std::string_view("$100000000\r\n"), consumed), Status::kNeedMore);
  const std::string chunk(4096, 'z');
  const std::size_t before = g_bytes_allocated.load();
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(parser.parse(chunk, consumed), Status::kNeedMore);
  }
  // 64 KiB arrived: at most twice that reserved (geometric growth), not 100 MB.
  EXPECT_LT(g_bytes_allocated.load() - before, std::size_t{256} << 10);
}

// ---- limits on the values and the memory of one reply --------------------------------------
// A reply's cost in memory is its count of Replies (sizeof(Reply) each), not its wire size:
// these limits bound what 3-byte elements can make the parser allocate.

// `count` copies of `element` in an array.
std::string array_of(std::size_t count, std::string_view element) {
  std::string wire = "*" + std::to_string(count) + "\r\n";
  for (std::size_t i = 0; i < count; ++i) wire += element;
  return wire;
}

// `outer` arrays of `inner` integers each, in an array: outer + outer * inner elements.
std::string nested_arrays(std::size_t outer, std::size_t inner) {
  std::string wire = "*" + std::to_string(outer) + "\r\n";
  for (std::size_t i = 0; i < outer; ++i) wire += array_of(inner, ":1\r\n");
  return wire;
}

// The limit that `wire` exceeds, fed whole and fed byte by byte (which must agree).
ParserLimit exceeded_limit(std::string_view wire, ParserLimits limits) {
  ParserLimit exceeded[2] = {};
  for (const std::size_t chunk : {std::string_view::npos, std::size_t{1}}) {
    RespParser parser(limits);
    std::string_view rest = wire;
    Status status = Status::kNeedMore;
    while (!rest.empty() && status == Status::kNeedMore) {
      std::size_t consumed = 0;
      status = parser.parse(rest.substr(0, chunk), consumed);
      rest.remove_prefix(consumed);
    }
    EXPECT_EQ(status, Status::kError);
    EXPECT_EQ(parser.error().code, make_error_code(Errc::kProtocol));
    exceeded[chunk == 1] = parser.exceeded_limit();
  }
  EXPECT_EQ(exceeded[0], exceeded[1]);
  return exceeded[0];
}

TEST(RespParserReplyLimits, DefaultsBoundElementsAndMemory) {
  const ParserLimits limits;
  EXPECT_EQ(limits.max_reply_elements, std::size_t{1} << 22);
  EXPECT_EQ(limits.max_reply_memory, std::size_t{1} << 30);
  EXPECT_EQ(limits.max_reply_memory, limits.max_reply_bytes);
}

TEST(RespParserReplyLimits, MeasuresAReplyAsTheLimitsDo) {
  // 3 Replies; the 20-byte string does not fit inside its std::string, the 2-byte one does.
  const Reply reply = parse_one("*2\r\n$20\r\n01234567890123456789\r\n$2\r\nab\r\n");
  EXPECT_EQ(reply_element_count(reply), 2u);
  EXPECT_EQ(reply_memory(reply), 3 * sizeof(Reply) + 21);
  EXPECT_EQ(reply_string_memory(2), 0u);
  EXPECT_EQ(reply_string_memory(20), 21u);
  // Attributes are values too; a map of N pairs has 2N elements.
  const Reply attributed = parse_one("|1\r\n+ttl\r\n:5\r\n%1\r\n+k\r\n*1\r\n_\r\n");
  EXPECT_EQ(reply_element_count(attributed), 5u);  // ttl, 5, k, the array, _
  EXPECT_EQ(reply_memory(attributed), 6 * sizeof(Reply));
  EXPECT_EQ(reply_element_count(integer(1)), 0u);
  EXPECT_EQ(reply_memory(integer(1)), sizeof(Reply));
}

// The defect this guards against: "*2147483648" must not reserve 2^31 Replies (ASan would
// abort on the size; the counting operator new above sees any reservation).
TEST(RespParserReplyLimits, RefusesAnArrayHeaderOf2To31ElementsWithoutAllocating) {
  const std::string_view header = "*2147483648\r\n";
  ParserLimits no_aggregate_limit;
  no_aggregate_limit.max_aggregate_length = std::numeric_limits<std::size_t>::max();
  ParserLimits only_memory_limit = no_aggregate_limit;
  only_memory_limit.max_reply_elements = std::numeric_limits<std::size_t>::max();
  const struct {
    ParserLimits limits;
    ParserLimit exceeded;
    std::string message;
  } cases[] = {
      {ParserLimits{}, ParserLimit::kAggregateLength,
       "aggregate length 2147483648 exceeds limit 16777216 elements"},
      {no_aggregate_limit, ParserLimit::kReplyElements, "reply exceeds limit 4194304 elements"},
      {only_memory_limit, ParserLimit::kReplyMemory, "reply exceeds memory limit 1073741824 bytes"},
  };
  for (const auto& c : cases) {
    RespParser parser(c.limits);
    std::size_t consumed = 0;
    const std::size_t before = g_bytes_allocated.load();
    ASSERT_EQ(parser.parse(header, consumed), Status::kError);
    EXPECT_LT(g_bytes_allocated.load() - before, std::size_t{4096});  // the message, no more
    EXPECT_EQ(parser.error().code, make_error_code(Errc::kProtocol));
    EXPECT_EQ(parser.exceeded_limit(), c.exceeded);
    EXPECT_EQ(parser.error().message, c.message);
  }
}

TEST(RespParserReplyLimits, RefusesAHeaderThatAnnouncesMoreElementsThanTheDefaultLimit) {
  // Within max_aggregate_length (2^24), beyond max_reply_elements (2^22): refused on the
  // header, before any of its 4M elements is sent or reserved.
  EXPECT_EQ(parse_error("*4194305\r\n"), "reply exceeds limit 4194304 elements");
  EXPECT_EQ(exceeded_limit("*4194305\r\n", {}), ParserLimit::kReplyElements);
  EXPECT_EQ(exceeded_limit("%2097153\r\n", {}), ParserLimit::kReplyElements);  // 2N elements
}

TEST(RespParserReplyLimits, RefusesManyTinyElementsPastTheElementLimitCountedAtEveryDepth) {
  ParserLimits limits;
  limits.max_reply_elements = 1000;
  // One array too long.
  EXPECT_EQ(parse_error(array_of(1001, "_\r\n"), limits), "reply exceeds limit 1000 elements");
  // Arrays that each fit, nested: 10 + 10 * 100 = 1010 values, refused at the 10th inner
  // header, after 9 complete inner arrays arrived.
  const std::string wire = nested_arrays(10, 100);
  EXPECT_EQ(parse_error(wire, limits), "reply exceeds limit 1000 elements");
  EXPECT_EQ(exceeded_limit(wire, limits), ParserLimit::kReplyElements);
  // Attribute pairs are values too, and count for the reply they precede.
  EXPECT_EQ(exceeded_limit("|1\r\n+a\r\n:1\r\n" + array_of(999, "_\r\n"), limits),
            ParserLimit::kReplyElements);
}

TEST(RespParserReplyLimits, RefusesANestedReplyWhoseMemoryPassesTheLimitUnderTheByteLimit) {
  // 100 arrays of 10 integers: 4,506 wire bytes but 1,101 Replies (88 KB with 80-byte ones).
  const std::string wire = nested_arrays(100, 10);
  ASSERT_EQ(wire.size(), 4506u);
  ParserLimits limits;
  limits.max_reply_bytes = 8192;
  limits.max_reply_memory = 1101 * sizeof(Reply) - 1;
  EXPECT_EQ(parse_error(wire, limits),
            "reply exceeds memory limit " + std::to_string(limits.max_reply_memory) + " bytes");
  EXPECT_EQ(exceeded_limit(wire, limits), ParserLimit::kReplyMemory);
  // Strings count by what they hold outside their Reply: 4 bulk strings of 100 bytes.
  const std::string bulk100 = "$100\r\n" + std::string(100, 'x') + "\r\n";
  limits.max_reply_memory = 5 * sizeof(Reply) + 4 * 101 - 1;
  EXPECT_EQ(exceeded_limit(array_of(4, bulk100), limits), ParserLimit::kReplyMemory);
  // Refused when the 4th string's length arrives, before its payload: the payload never
  // comes here, yet the error is the same.
  EXPECT_EQ(exceeded_limit("*4\r\n" + bulk100 + bulk100 + bulk100 + "$100\r\n", limits),
            ParserLimit::kReplyMemory);
}

TEST(RespParserReplyLimits, ParsesAReplyExactlyAtTheLimits) {
  // Every kind of value that costs something: aggregates, attributes, long and short
  // strings, a verbatim string (its "txt:" is not stored), a long simple string and error
  // and a long big number (their lines), and the top-level value itself.
  const std::string long_text(40, 'y');
  const std::string wire = "|1\r\n+ttl\r\n:5\r\n*7\r\n" + nested_arrays(3, 4) + "$40\r\n" +
                           long_text + "\r\n" + "$3\r\nabc\r\n" + "=44\r\ntxt:" + long_text +
                           "\r\n" + "+" + long_text + "\r\n" + "-" + long_text + "\r\n" + "(" +
                           std::string(40, '7') + "\r\n";
  // Elements: ttl, 5; the 7 of the outer array; 3 + 12 in the nested arrays.
  const std::size_t elements = 2 + 7 + 3 + 12;
  const std::size_t memory = (1 + elements) * sizeof(Reply) + 5 * 41;
  const Reply reply = parse_one(wire);
  ASSERT_EQ(reply_element_count(reply), elements);
  ASSERT_EQ(reply_memory(reply), memory);

  ParserLimits limits;
  limits.max_reply_elements = elements;
  limits.max_reply_memory = memory;
  for (const std::size_t chunk : {std::string_view::npos, std::size_t{1}, std::size_t{7}}) {
    const Outcome outcome = feed(wire, chunk, limits);
    ASSERT_FALSE(outcome.failed) << outcome.error_message;
    EXPECT_THAT(outcome.replies, ElementsAre(reply)) << "chunk " << chunk;
  }
  ParserLimits one_element_less = limits;
  one_element_less.max_reply_elements = elements - 1;
  EXPECT_EQ(exceeded_limit(wire, one_element_less), ParserLimit::kReplyElements);
  ParserLimits one_byte_less = limits;
  one_byte_less.max_reply_memory = memory - 1;
  EXPECT_EQ(exceeded_limit(wire, one_byte_less), ParserLimit::kReplyMemory);
  // Even a lone "+OK" is one Reply.
  ParserLimits under_one_reply;
  under_one_reply.max_reply_memory = sizeof(Reply) - 1;
  EXPECT_EQ(exceeded_limit("+OK\r\n", under_one_reply), ParserLimit::kReplyMemory);
}

TEST(RespParserReplyLimits, CountEachReplyAfreshHoweverTheStreamIsSplit) {
  // Three replies of 600 elements under a limit of 1000: each fits, and the count of one
  // does not leak into the next, whether they arrive whole, byte by byte, or in odd pieces
  // that end in the middle of a reply and start the next one.
  ParserLimits limits;
  limits.max_reply_elements = 1000;
  limits.max_reply_memory = 601 * sizeof(Reply);
  const std::string one = array_of(600, ":7\r\n");
  const std::string stream = one + one + one;
  for (const std::size_t chunk : {std::string_view::npos, std::size_t{1}, std::size_t{1000}}) {
    const Outcome outcome = feed(stream, chunk, limits);
    ASSERT_FALSE(outcome.failed) << outcome.error_message << " chunk " << chunk;
    EXPECT_EQ(outcome.replies.size(), 3u);
  }
  // reset() forgets a partial count: ~500 elements read, then reset, then a whole reply.
  RespParser parser(limits);
  std::size_t consumed = 0;
  ASSERT_EQ(parser.parse(std::string_view(one).substr(0, 2000), consumed), Status::kNeedMore);
  parser.reset();
  ASSERT_EQ(parser.parse(one, consumed), Status::kReply);
  EXPECT_EQ(consumed, one.size());
}

TEST(RespParserReplyLimits, CompleteAggregatesHoldNoSpareSlots) {
  // Growth is geometric but capped at the declared length: 1000 elements fed in small
  // pieces end in a buffer of exactly 1000.
  const Outcome outcome = feed(array_of(1000, ":1\r\n"), 64);
  ASSERT_EQ(outcome.replies.size(), 1u);
  EXPECT_EQ(outcome.replies[0].elements.capacity(), 1000u);
}

TEST(RespParserReplyLimits, KeepsAVerbatimFormatOutOfTheStringSplitAnywhere) {
  const std::string text(100, 't');
  const std::string wire = "=104\r\nmkd:" + text + "\r\n";
  for (const std::size_t chunk :
       {std::string_view::npos, std::size_t{1}, std::size_t{2}, std::size_t{5}, std::size_t{11}}) {
    const Outcome outcome = feed(wire, chunk);
    ASSERT_FALSE(outcome.failed) << outcome.error_message;
    ASSERT_THAT(outcome.replies, ElementsAre(verbatim("mkd", text))) << "chunk " << chunk;
    EXPECT_EQ(outcome.replies[0].string.capacity(), 100u);  // what reply_memory() charged
  }
  // The missing ':' is seen at the 4th payload byte, without waiting for the rest.
  EXPECT_THAT(parse_error("=104\r\nmkd-"), HasSubstr("without ':'"));
}

// ---- Reply equality -------------------------------------------------------------------------
TEST(ReplyEquality, ComparesDeeplyIncludingAttributes) {
  EXPECT_EQ(array({bulk("a"), map({integer(1), null()})}),
            array({bulk("a"), map({integer(1), null()})}));
  EXPECT_NE(array({bulk("a")}), array({bulk("b")}));
  EXPECT_NE(array({bulk("a")}), set({bulk("a")}));
  EXPECT_NE(bulk("a"), simple("a"));
  EXPECT_NE(with_attributes(integer(1), {simple("k"), integer(1)}), integer(1));
  EXPECT_NE(verbatim("txt", "a"), verbatim("mkd", "a"));
}

TEST(ReplyEquality, ComparesDoublesBitwiseWithAllNansEqual) {
  EXPECT_EQ(number(std::nan("")), number(-std::nan("")));
  EXPECT_NE(number(0.0), number(-0.0));
  EXPECT_NE(number(std::nan("")), number(1));
  EXPECT_EQ(number(1.5), number(1.5));
}

TEST(ReplyEquality, IgnoresFieldsTheTypeDoesNotUse) {
  Reply a = integer(7);
  a.string = "left over";
  EXPECT_EQ(a, integer(7));
}

TEST(ReplyType, HasAName) {
  EXPECT_EQ(to_string(ReplyType::kBulkString), "bulk_string");
  EXPECT_EQ(to_string(ReplyType::kPush), "push");
}

// ---- format_reply ---------------------------------------------------------------------------
std::string format(std::string_view wire) { return format_reply(parse_one(wire)); }

TEST(FormatReply, PrintsScalarsLikeRedisCli) {
  EXPECT_EQ(format("$3\r\nbar\r\n"), "\"bar\"");
  EXPECT_EQ(format("+OK\r\n"), "OK");
  EXPECT_EQ(format(":1\r\n"), "(integer) 1");
  EXPECT_EQ(format(":-9223372036854775808\r\n"), "(integer) -9223372036854775808");
  EXPECT_EQ(format("$-1\r\n"), "(nil)");
  EXPECT_EQ(format("_\r\n"), "(nil)");
  EXPECT_EQ(format("-ERR unknown command\r\n"), "(error) ERR unknown command");
  EXPECT_EQ(format("!9\r\nERR bulky\r\n"), "(error) ERR bulky");
  EXPECT_EQ(format(",1.5\r\n"), "(double) 1.5");
  EXPECT_EQ(format(",-inf\r\n"), "(double) -inf");
  EXPECT_EQ(format("#t\r\n"), "(true)");
  EXPECT_EQ(format("#f\r\n"), "(false)");
  EXPECT_EQ(format("(123\r\n"), "(big number) 123");
  EXPECT_EQ(format("=15\r\ntxt:Some string\r\n"), "Some string");
}

TEST(FormatReply, QuotesBulkStringsWithRedisCliEscapes) {
  EXPECT_EQ(format(std::string_view("$12\r\na\"b\\c\n\r\t\0\x7f\xff\a\r\n", 19)),
            R"("a\"b\\c\n\r\t\x00\x7f\xff\a")");
  EXPECT_EQ(format("$0\r\n\r\n"), "\"\"");
}

TEST(FormatReply, NumbersAggregateElementsAndIndentsNestedOnes) {
  EXPECT_EQ(format("*3\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n$-1\r\n"),
            "1) \"a\"\n"
            "2) 1) (integer) 1\n"
            "   2) (integer) 2\n"
            "3) (nil)");
  EXPECT_EQ(format("*1\r\n*1\r\n*2\r\n+a\r\n+b\r\n"),
            "1) 1) 1) a\n"
            "      2) b");
}

TEST(FormatReply, AlignsIndexesToTheWidestOne) {
  std::string wire = "*10\r\n";
  for (int i = 0; i < 9; ++i) wire += ":0\r\n";
  wire += "*2\r\n:1\r\n:2\r\n";
  EXPECT_EQ(format(wire),
            " 1) (integer) 0\n 2) (integer) 0\n 3) (integer) 0\n 4) (integer) 0\n"
            " 5) (integer) 0\n 6) (integer) 0\n 7) (integer) 0\n 8) (integer) 0\n"
            " 9) (integer) 0\n"
            "10) 1) (integer) 1\n"
            "    2) (integer) 2");
}

TEST(FormatReply, PrintsMapsAsKeyArrowValueAndSetsWithTilde) {
  EXPECT_EQ(format("%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n*2\r\n:2\r\n:3\r\n"),
            "1# \"a\" => (integer) 1\n"
            "2# \"b\" => \n"  // a value of several lines starts on its own line (redis-cli 7)
            "   1) (integer) 2\n"
            "   2) (integer) 3");
  EXPECT_EQ(format("~2\r\n+x\r\n+y\r\n"), "1~ x\n2~ y");
  EXPECT_EQ(format(">2\r\n+message\r\n+hi\r\n"), "1) message\n2) hi");
}

TEST(FormatReply, NamesEmptyAggregates) {
  EXPECT_EQ(format("*0\r\n"), "(empty array)");
  EXPECT_EQ(format("%0\r\n"), "(empty hash)");
  EXPECT_EQ(format("~0\r\n"), "(empty set)");
  EXPECT_EQ(format(">0\r\n"), "(empty push)");
}

TEST(FormatReply, PrintsAttributesBeforeTheValue) {
  EXPECT_EQ(format("|1\r\n+ttl\r\n:5\r\n$1\r\nv\r\n"),
            "(attributes) 1# ttl => (integer) 5\n"
            "\"v\"");
  EXPECT_EQ(format("*2\r\n|2\r\n+a\r\n:1\r\n+b\r\n:2\r\n:7\r\n:8\r\n"),
            "1) (attributes) 1# a => (integer) 1\n"
            "                2# b => (integer) 2\n"
            "   (integer) 7\n"
            "2) (integer) 8");
}

}  // namespace
}  // namespace tiercache::redis
