// Codecs: round trips of a user struct through each codec, binary strings, and hostile
// input (truncated, trailing garbage, wrong types, huge declared sizes) -> CodecError.

#include "tiercache/codec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache {
namespace {

struct User {
  std::int64_t id = 0;
  std::string name;
  std::vector<std::string> tags;

  bool operator==(const User&) const = default;
  MSGPACK_DEFINE(id, name, tags)
};

void to_json(nlohmann::json& j, const User& user) {
  j = nlohmann::json{{"id", user.id}, {"name", user.name}, {"tags", user.tags}};
}
void from_json(const nlohmann::json& j, User& user) {
  j.at("id").get_to(user.id);
  j.at("name").get_to(user.name);
  j.at("tags").get_to(user.tags);
}

static_assert(Codec<StringCodec, std::string>);
static_assert(Codec<JsonCodec, User>);
static_assert(Codec<MsgpackCodec, User>);
static_assert(Codec<JsonCodec, int>);
static_assert(std::is_same_v<DefaultCodec<std::string>, StringCodec>);
static_assert(std::is_same_v<DefaultCodec<User>, JsonCodec>);
static_assert(StringCodec::kId == 1 && JsonCodec::kId == 2 && MsgpackCodec::kId == 3);

const User kAda{42, "Ada Lovelace", {"admin", "eu-west", ""}};

template <class C, class V>
std::string encode(const V& value) {
  std::string out;
  C::encode(value, out);
  return out;
}

template <class C, class V>
V round_trip(const V& value) {
  return C::template decode<V>(encode<C>(value));
}

TEST(Codec, EncodeAppendsToWhatIsAlreadyThere) {
  std::string out = "prefix";
  JsonCodec::encode(kAda, out);
  ASSERT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(JsonCodec::decode<User>(std::string_view(out).substr(6)), kAda);

  out = "prefix";
  MsgpackCodec::encode(kAda, out);
  ASSERT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(MsgpackCodec::decode<User>(std::string_view(out).substr(6)), kAda);

  out = "prefix";
  StringCodec::encode(std::string("value"), out);
  EXPECT_EQ(out, "prefixvalue");
}

TEST(Codec, UserRoundTripsThroughJson) {
  EXPECT_EQ(round_trip<JsonCodec>(kAda), kAda);
  EXPECT_EQ(round_trip<JsonCodec>(User{}), User{});
  // Readable text, as other languages would write it.
  EXPECT_EQ(encode<JsonCodec>(kAda),
            R"({"id":42,"name":"Ada Lovelace","tags":["admin","eu-west",""]})");
}

TEST(Codec, UserRoundTripsThroughMsgpack) {
  EXPECT_EQ(round_trip<MsgpackCodec>(kAda), kAda);
  EXPECT_EQ(round_trip<MsgpackCodec>(User{}), User{});
  const User extremes{INT64_MIN, std::string(70'000, 'x'), std::vector<std::string>(1000, "t")};
  EXPECT_EQ(round_trip<MsgpackCodec>(extremes), extremes);
}

TEST(Codec, StringsWithNulBytesRoundTripThroughEveryCodec) {
  const std::string binary("a\0b\0\0c\xff\xfe", 8);
  EXPECT_EQ(encode<StringCodec>(binary), binary);  // raw: the value is its encoding
  EXPECT_EQ(round_trip<StringCodec>(binary), binary);
  EXPECT_EQ(round_trip<MsgpackCodec>(binary), binary);
  const std::string nul_text("a\0b\0\0c", 6);  // JSON: \u0000 escapes, still valid UTF-8
  EXPECT_EQ(round_trip<JsonCodec>(nul_text), nul_text);
  User user = kAda;
  user.name = nul_text;
  EXPECT_EQ(round_trip<JsonCodec>(user), user);
  user.name = binary;
  EXPECT_EQ(round_trip<MsgpackCodec>(user), user);
}

TEST(Codec, StringCodecAcceptsEveryInputIncludingEmpty) {
  EXPECT_EQ(StringCodec::decode<std::string>(""), "");
  EXPECT_EQ(round_trip<StringCodec>(std::string()), "");
}

TEST(Codec, JsonCannotEncodeInvalidUtf8AndLeavesTheOutputAlone) {
  std::string out = "kept";
  User user = kAda;
  user.name = "\xff\xfe";
  EXPECT_THROW(JsonCodec::encode(user, out), CodecError);
  EXPECT_EQ(out, "kept");
}

TEST(Codec, JsonRejectsBadInputWithCodecError) {
  const std::string good = encode<JsonCodec>(kAda);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_THROW(JsonCodec::decode<User>(good.substr(0, cut)), CodecError) << cut;
  }
  EXPECT_THROW(JsonCodec::decode<User>(good + "garbage"), CodecError);
  EXPECT_THROW(JsonCodec::decode<User>(good + "{}"), CodecError);
  EXPECT_THROW(JsonCodec::decode<User>(R"({"id":"42","name":"x","tags":[]})"), CodecError);
  EXPECT_THROW(JsonCodec::decode<User>(R"({"id":42,"tags":[]})"), CodecError);  // no name
  EXPECT_THROW(JsonCodec::decode<User>(R"([1,2,3])"), CodecError);
  EXPECT_THROW(JsonCodec::decode<int>("1e999"), CodecError);
  EXPECT_THROW(JsonCodec::decode<User>(encode<MsgpackCodec>(kAda)), CodecError);
  EXPECT_THROW(JsonCodec::decode<User>(std::string("\0", 1)), CodecError);
}

TEST(Codec, JsonSurvivesDeepNestingWithoutRecursing) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_THROW(JsonCodec::decode<User>(deep), CodecError);  // parses, then is not a User
  EXPECT_THROW(JsonCodec::decode<User>(std::string(100'000, '[')), CodecError);
}

TEST(Codec, MsgpackRejectsTruncatedInputAtEveryLength) {
  const std::string good = encode<MsgpackCodec>(kAda);
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_THROW(MsgpackCodec::decode<User>(good.substr(0, cut)), CodecError) << cut;
  }
}

TEST(Codec, MsgpackRejectsTrailingGarbage) {
  EXPECT_THROW(MsgpackCodec::decode<User>(encode<MsgpackCodec>(kAda) + "x"), CodecError);
  EXPECT_THROW(MsgpackCodec::decode<int>(encode<MsgpackCodec>(1) + encode<MsgpackCodec>(2)),
               CodecError);
}

TEST(Codec, MsgpackRejectsTypeMismatches) {
  EXPECT_THROW(MsgpackCodec::decode<User>(encode<MsgpackCodec>(std::string("x"))), CodecError);
  EXPECT_THROW(MsgpackCodec::decode<std::string>(encode<MsgpackCodec>(42)), CodecError);
  EXPECT_THROW(MsgpackCodec::decode<std::uint8_t>(encode<MsgpackCodec>(300)), CodecError);
  EXPECT_THROW(MsgpackCodec::decode<int>(encode<MsgpackCodec>(-1.5)), CodecError);
  // id is a string, name an integer.
  EXPECT_THROW(MsgpackCodec::decode<User>("\x93\xa1x\x01\x90"), CodecError);
  EXPECT_THROW(MsgpackCodec::decode<User>(encode<JsonCodec>(kAda)), CodecError);
}

TEST(Codec, MsgpackRejectsReservedBytes) {
  EXPECT_THROW(MsgpackCodec::decode<int>("\xc1"), CodecError);  // "never used"
}

TEST(Codec, MsgpackTinyInputDeclaringHugeContainersAllocatesNothingBig) {
  // array32 / map32 / str32 / bin32 of 2^32-1 elements or bytes, and nothing after.
  EXPECT_THROW(MsgpackCodec::decode<std::vector<int>>(std::string("\xdd\xff\xff\xff\xff", 5)),
               CodecError);
  EXPECT_THROW(MsgpackCodec::decode<User>(std::string("\xdf\xff\xff\xff\xff", 5)), CodecError);
  EXPECT_THROW(MsgpackCodec::decode<std::string>(std::string("\xdb\xff\xff\xff\xff", 5)),
               CodecError);
  EXPECT_THROW(MsgpackCodec::decode<std::string>(std::string("\xc6\xff\xff\xff\xff", 5)),
               CodecError);
  // 1000 nested array32 headers, each declaring 2^32-1 elements: 5000 bytes.
  std::string nested;
  for (int i = 0; i < 1000; ++i) nested += std::string("\xdd\xff\xff\xff\xff", 5);
  EXPECT_THROW(MsgpackCodec::decode<std::vector<int>>(nested), CodecError);
}

TEST(Codec, MsgpackRejectsNestingDeeperThanTheLimit) {
  using Nested = std::vector<std::vector<int>>;
  EXPECT_EQ(MsgpackCodec::decode<Nested>("\x91\x91\x01"), (Nested{{1}}));
  const std::string at_limit = std::string(MsgpackCodec::kMaxDepth, '\x91') + std::string("\x01");
  try {
    MsgpackCodec::decode<int>(at_limit);  // deep enough to pass, but not an int
    FAIL() << "accepted";
  } catch (const CodecError& e) {
    EXPECT_EQ(std::string(e.what()).find("deeply"), std::string::npos) << e.what();
  }
  const std::string too_deep = std::string(MsgpackCodec::kMaxDepth + 1, '\x91') + "\x01";
  try {
    MsgpackCodec::decode<int>(too_deep);
    FAIL() << "accepted";
  } catch (const CodecError& e) {
    EXPECT_NE(std::string(e.what()).find("deeply"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tiercache
