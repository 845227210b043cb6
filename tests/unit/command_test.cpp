// Request and encode_command: commands as RESP arrays of bulk strings, byte for byte.

#include "tiercache/redis/command.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include "tiercache/redis/resp_parser.hpp"

namespace tiercache::redis {
namespace {

using namespace std::string_literals;

TEST(Request, EncodesACommandAsAnArrayOfBulkStrings) {
  Request request;
  request.push("GET", "key");
  EXPECT_EQ(request.payload(), "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
  EXPECT_EQ(request.size(), 1u);
}

TEST(Request, TakesStringsStringViewsAndLiteralsAlike) {
  const std::string key = "user:1";
  const std::string_view value = "v";
  const char* px = "PX";
  Request request;
  request.push("SET", key, value, px, 1500);
  EXPECT_EQ(request.payload(),
            "*5\r\n$3\r\nSET\r\n$6\r\nuser:1\r\n$1\r\nv\r\n$2\r\nPX\r\n$4\r\n1500\r\n");
}

TEST(Request, EncodesIntegersInDecimalIncludingTheExtremes) {
  Request request;
  request.push("X", 0, -1, std::numeric_limits<std::int64_t>::min(),
               std::numeric_limits<std::uint64_t>::max(), std::uint8_t{255}, short{-7});
  EXPECT_EQ(request.payload(),
            "*7\r\n$1\r\nX\r\n$1\r\n0\r\n$2\r\n-1\r\n$20\r\n-9223372036854775808\r\n"
            "$20\r\n18446744073709551615\r\n$3\r\n255\r\n$2\r\n-7\r\n");
}

TEST(Request, KeepsBinaryArgumentsIntactIncludingNulAndCrlf) {
  const std::string binary("a\0b\r\nc", 6);
  Request request;
  request.push("SET", binary, "\r\n"s);
  EXPECT_EQ(request.payload(), "*3\r\n$3\r\nSET\r\n$6\r\na\0b\r\nc\r\n$2\r\n\r\n\r\n"s);
}

TEST(Request, EncodesEmptyArguments) {
  Request request;
  request.push("SET", "", std::string());
  EXPECT_EQ(request.payload(), "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n");
}

TEST(Request, PipelinesCommandsBackToBackAndCountsThem) {
  Request request;
  request.push("PING").push("INCR", "n");
  EXPECT_EQ(request.size(), 2u);
  EXPECT_EQ(request.payload(), "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n");
}

TEST(Request, PushesARangeOfArguments) {
  const std::vector<std::string> keys = {"a", "bb"};
  const std::vector<std::string_view> views = {"c"};
  const std::list<int> numbers = {1, -2};
  Request request;
  request.push_range("MGET", keys);
  request.push_range("DEL", views);
  request.push_range({"ZADD", "z"}, numbers);
  request.push_range("PING", std::vector<std::string>{});
  EXPECT_EQ(request.size(), 4u);
  EXPECT_EQ(request.payload(),
            "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$2\r\nbb\r\n"
            "*2\r\n$3\r\nDEL\r\n$1\r\nc\r\n"
            "*4\r\n$4\r\nZADD\r\n$1\r\nz\r\n$1\r\n1\r\n$2\r\n-2\r\n"
            "*1\r\n$4\r\nPING\r\n");
}

TEST(Request, EncodesLongArgumentsWithMultiDigitLengths) {
  const std::string value(12345, 'x');
  Request request;
  request.push("SET", "k", value);
  EXPECT_EQ(request.payload(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12345\r\n" + value + "\r\n");
}

TEST(Request, ClearsCommandsButKeepsItsBuffer) {
  Request request;
  request.push("SET", "k", std::string(1000, 'v'));
  request.clear();
  EXPECT_TRUE(request.empty());
  EXPECT_EQ(request.payload(), "");
  request.push("PING");
  EXPECT_EQ(request.payload(), "*1\r\n$4\r\nPING\r\n");
}

TEST(Request, IsReadBackByTheParserAsTheSameArguments) {
  const std::string binary("\0\r\n\xff", 4);
  Request request;
  request.push("HSET", "h", binary, -12);
  RespParser parser;
  std::size_t consumed = 0;
  ASSERT_EQ(parser.parse(request.payload(), consumed), RespParser::Status::kReply);
  EXPECT_EQ(consumed, request.payload().size());
  EXPECT_EQ(
      parser.take_reply(),
      Reply::aggregate(ReplyType::kArray, {Reply::bulk_string("HSET"), Reply::bulk_string("h"),
                                           Reply::bulk_string(binary), Reply::bulk_string("-12")}));
}

TEST(EncodeCommand, EncodesOneCommand) {
  EXPECT_EQ(encode_command({"GET", "key"}), "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
  EXPECT_EQ(encode_command({"ECHO", ""}), "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
}

}  // namespace
}  // namespace tiercache::redis
