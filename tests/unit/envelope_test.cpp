// The L2 envelope: round trips (values, negative entries, tags, compression, signatures),
// the exact bytes of docs/FORMAT.md, and every way bytes from Redis can be refused.

#include "tiercache/envelope.hpp"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache {
namespace {

constexpr std::size_t kTagCountOffset = 31;
constexpr std::size_t kFlagsOffset = 5;

EnvelopeMeta sample_meta() {
  EnvelopeMeta meta;
  meta.codec = 3;
  meta.created_ms = 1'700'000'000'123;
  meta.fresh_until_ms = 1'700'000'060'123;
  meta.load_ms = 42;
  meta.tags = {"user", "tenant:7", std::string("\0bin", 4), ""};
  return meta;
}

EnvelopeOptions signing(std::string key) {
  EnvelopeOptions options;
  options.hmac_key = std::move(key);
  return options;
}

EnvelopeStatus decode(std::string_view bytes, const EnvelopeOptions& options = {}) {
  DecodedEnvelope out;
  return decode_envelope(bytes, options, out);
}

DecodedEnvelope decode_ok(std::string_view bytes, const EnvelopeOptions& options = {}) {
  DecodedEnvelope out;
  const EnvelopeStatus status = decode_envelope(bytes, options, out);
  EXPECT_EQ(status, EnvelopeStatus::kOk) << to_string(status);
  return out;
}

std::string random_bytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  return bytes;
}

void put_le(std::string& out, std::uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

// An unsigned envelope written by hand from docs/FORMAT.md: codec 0, times 0, no tags.
std::string hand_made(std::uint8_t flags, std::string_view payload) {
  std::string bytes(kEnvelopeMagic);
  bytes.push_back(static_cast<char>(kEnvelopeVersion));
  bytes.push_back(static_cast<char>(flags));
  bytes.append(1 + 3 * 8 + 2, '\0');  // codec, times, tag count
  put_le(bytes, payload.size(), 4);
  bytes.append(payload);
  return bytes;
}

// A zstd frame header that declares `content_size` bytes, followed by one empty last block.
std::string zstd_frame_declaring(std::uint64_t content_size) {
  std::string frame;
  put_le(frame, ZSTD_MAGICNUMBER, 4);
  frame.push_back('\xE0');  // 8-byte content size, single segment
  put_le(frame, content_size, 8);
  frame.append("\x01\x00\x00", 3);  // last block, raw, 0 bytes
  return frame;
}

TEST(Envelope, ValueWithTagsRoundTrips) {
  const EnvelopeMeta meta = sample_meta();
  const std::string payload("{\"id\":1}\0tail", 13);
  const std::string bytes = encode_envelope(meta, payload, {});
  const DecodedEnvelope decoded = decode_ok(bytes);
  EXPECT_EQ(decoded.meta, meta);
  EXPECT_EQ(decoded.payload, payload);
  EXPECT_EQ(bytes.size(), kEnvelopeMinSize + (2 + 4) + (2 + 8) + (2 + 4) + (2 + 0) + 13);
}

TEST(Envelope, NegativeEntryRoundTripsWithoutPayload) {
  EnvelopeMeta meta = sample_meta();
  meta.negative = true;
  meta.tags.clear();
  const std::string bytes = encode_envelope(meta, "", {});
  EXPECT_EQ(bytes.size(), kEnvelopeMinSize);
  const DecodedEnvelope decoded = decode_ok(bytes);
  EXPECT_TRUE(decoded.meta.negative);
  EXPECT_EQ(decoded.meta, meta);
  EXPECT_EQ(decoded.payload, "");
}

TEST(Envelope, ExtremeTimestampsAndEmptyPayloadRoundTrip) {
  EnvelopeMeta meta;
  meta.created_ms = INT64_MIN;
  meta.fresh_until_ms = INT64_MAX;
  meta.load_ms = -1;
  meta.codec = 255;
  const DecodedEnvelope decoded = decode_ok(encode_envelope(meta, "", {}));
  EXPECT_EQ(decoded.meta, meta);
}

TEST(Envelope, BytesAreExactlyThoseOfTheFormatDocument) {
  EnvelopeMeta meta;
  meta.codec = 2;
  meta.created_ms = 0x0102030405060708;
  meta.fresh_until_ms = -2;
  meta.load_ms = 300;
  meta.tags = {"ab"};
  const std::string expected(
      "\xC1tce"                           // magic
      "\x01"                              // version
      "\x00"                              // flags
      "\x02"                              // codec
      "\x08\x07\x06\x05\x04\x03\x02\x01"  // created_ms
      "\xFE\xFF\xFF\xFF\xFF\xFF\xFF\xFF"  // fresh_until_ms
      "\x2C\x01\x00\x00\x00\x00\x00\x00"  // load_ms
      "\x01\x00"                          // tag count
      "\x02\x00"
      "ab"                // tag
      "\x03\x00\x00\x00"  // payload length
      "xyz",              // payload
      44);
  EXPECT_EQ(encode_envelope(meta, "xyz", {}), expected);
  EXPECT_EQ(decode_ok(expected).meta, meta);
}

TEST(Envelope, CompressesLargeCompressiblePayloads) {
  const std::string payload(100'000, 'a');
  const std::string bytes = encode_envelope(sample_meta(), payload, {});
  EXPECT_LT(bytes.size(), 1000u);
  EXPECT_EQ(bytes[kFlagsOffset] & 0x02, 0x02);
  const DecodedEnvelope decoded = decode_ok(bytes);
  EXPECT_EQ(decoded.payload, payload);
  EXPECT_EQ(decoded.meta, sample_meta());
}

TEST(Envelope, CompressionCanBeTurnedOffAndNeverMakesThingsBigger) {
  const std::string payload(100'000, 'a');
  EnvelopeOptions off;
  off.compress_above = 0;
  const std::string plain = encode_envelope({}, payload, off);
  EXPECT_EQ(plain.size(), kEnvelopeMinSize + payload.size());
  EXPECT_EQ(plain[kFlagsOffset], 0);
  EXPECT_EQ(decode_ok(plain).payload, payload);

  // Random bytes do not compress: stored as they are.
  const std::string noise = random_bytes(50'000, 1);
  const std::string stored = encode_envelope({}, noise, {});
  EXPECT_EQ(stored.size(), kEnvelopeMinSize + noise.size());
  EXPECT_EQ(decode_ok(stored).payload, noise);

  // At the threshold: not compressed; one byte more: compressed.
  EnvelopeOptions small;
  small.compress_above = 64;
  EXPECT_EQ(encode_envelope({}, std::string(64, 'z'), small)[kFlagsOffset], 0);
  EXPECT_EQ(encode_envelope({}, std::string(65, 'z'), small)[kFlagsOffset], 0x02);
  EXPECT_EQ(decode_ok(encode_envelope({}, std::string(65, 'z'), small)).payload,
            std::string(65, 'z'));
}

TEST(Envelope, SignedEnvelopeRoundTripsAndCarriesA32ByteTrailer) {
  const EnvelopeOptions options = signing("secret");
  const std::string payload(5000, 'p');  // compressed and signed
  const std::string bytes = encode_envelope(sample_meta(), payload, options);
  EXPECT_EQ(bytes[kFlagsOffset], 0x06);
  const DecodedEnvelope decoded = decode_ok(bytes, options);
  EXPECT_EQ(decoded.meta, sample_meta());
  EXPECT_EQ(decoded.payload, payload);
  // Without a key the signature is not checked: it still decodes.
  EXPECT_EQ(decode_ok(bytes).payload, payload);
  // The unsigned envelope is the signed one without its trailer.
  EnvelopeOptions unsigned_options;
  std::string unsigned_bytes = encode_envelope(sample_meta(), payload, unsigned_options);
  unsigned_bytes[kFlagsOffset] = 0x06;
  EXPECT_EQ(bytes.substr(0, bytes.size() - kEnvelopeSignatureSize), unsigned_bytes);
}

TEST(Envelope, WithAKeyUnsignedOrWronglySignedEnvelopesAreRefused) {
  const std::string unsigned_bytes = encode_envelope(sample_meta(), "v", {});
  EXPECT_EQ(decode(unsigned_bytes, signing("secret")), EnvelopeStatus::kUnsigned);
  const std::string other_key = encode_envelope(sample_meta(), "v", signing("other"));
  EXPECT_EQ(decode(other_key, signing("secret")), EnvelopeStatus::kBadSignature);
}

TEST(Envelope, AnyFlippedBitOfASignedEnvelopeIsRefused) {
  const EnvelopeOptions options = signing("secret");
  EnvelopeMeta meta = sample_meta();
  meta.tags.clear();
  for (const std::string& payload : {std::string("value"), std::string(3000, 'c')}) {
    const std::string bytes = encode_envelope(meta, payload, options);
    const std::size_t payload_begin = kEnvelopeMinSize;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        const EnvelopeStatus status = decode(flipped, options);
        EXPECT_NE(status, EnvelopeStatus::kOk) << i << ":" << bit;
        // Codec, timestamps, payload and signature: only the signature can tell.
        const bool content = (i >= 6 && i < kTagCountOffset) || i >= payload_begin;
        if (content) {
          EXPECT_EQ(status, EnvelopeStatus::kBadSignature) << i << ":" << bit;
        }
      }
    }
  }
}

TEST(Envelope, KeyBoundSignatureFailsUnderAnotherKey) {
  const EnvelopeOptions options = signing("secret");
  const std::string bytes = encode_envelope(sample_meta(), "v", options, "user:1");
  DecodedEnvelope out;
  EXPECT_EQ(decode_envelope(bytes, options, "user:1", out), EnvelopeStatus::kOk);
  EXPECT_EQ(out.payload, "v");
  EXPECT_EQ(decode_envelope(bytes, options, "user:2", out), EnvelopeStatus::kBadSignature);
  EXPECT_EQ(decode_envelope(bytes, options, out), EnvelopeStatus::kBadSignature);
  // Unsigned envelopes do not depend on the key.
  EXPECT_EQ(encode_envelope(sample_meta(), "v", {}, "user:1"),
            encode_envelope(sample_meta(), "v", {}));
  EXPECT_EQ(decode_envelope(bytes, EnvelopeOptions{}, "user:2", out), EnvelopeStatus::kOk);
}

TEST(Envelope, TruncationAtEveryOffsetIsAnErrorNotACrash) {
  EnvelopeMeta negative = sample_meta();
  negative.negative = true;
  const std::vector<std::pair<std::string, EnvelopeOptions>> cases = {
      {encode_envelope(sample_meta(), "payload", {}), {}},
      {encode_envelope(sample_meta(), std::string(4000, 'x'), {}), {}},
      {encode_envelope(negative, "", {}), {}},
      {encode_envelope(sample_meta(), std::string(4000, 'x'), signing("k")), signing("k")},
      {encode_envelope(sample_meta(), std::string(4000, 'x'), signing("k")), {}},
  };
  for (const auto& [bytes, options] : cases) {
    for (std::size_t size = 0; size < bytes.size(); ++size) {
      const EnvelopeStatus status = decode(std::string(bytes.substr(0, size)), options);
      EXPECT_NE(status, EnvelopeStatus::kOk) << size;
      if (size >= 5 && options.hmac_key.empty()) {
        EXPECT_EQ(status, EnvelopeStatus::kTooShort) << size;
      }
    }
    EXPECT_EQ(decode(bytes, options), EnvelopeStatus::kOk);
  }
}

TEST(Envelope, OtherWritersValuesAreNotEnvelopes) {
  for (const std::string& foreign :
       {std::string("{\"id\":1}"), std::string("plain text"), std::string("\x93\x01\x02\x03"),
        std::string("1"), std::string("\xC1tcX....................................", 40),
        std::string("\xC1", 1).append("x")}) {
    EXPECT_EQ(decode(foreign), EnvelopeStatus::kBadMagic) << foreign;
  }
  // A prefix of the magic is a truncated envelope, as far as anyone can tell.
  EXPECT_EQ(decode(""), EnvelopeStatus::kTooShort);
  EXPECT_EQ(decode("\xC1t"), EnvelopeStatus::kTooShort);
}

TEST(Envelope, EveryStatusIsReachable) {
  std::set<EnvelopeStatus> seen;
  auto expect = [&](EnvelopeStatus expected, std::string_view bytes,
                    const EnvelopeOptions& options = {}) {
    EXPECT_EQ(decode(bytes, options), expected) << to_string(expected);
    seen.insert(decode(bytes, options));
  };
  const std::string good = encode_envelope(sample_meta(), "value", {});
  expect(EnvelopeStatus::kOk, good);
  expect(EnvelopeStatus::kTooShort, good.substr(0, good.size() - 1));
  expect(EnvelopeStatus::kBadMagic, "{\"not\":\"an envelope\"}");
  std::string version2 = good;
  version2[4] = 2;
  expect(EnvelopeStatus::kUnsupportedVersion, version2);
  expect(EnvelopeStatus::kUnsupportedVersion, std::string("\xC1tce\x00", 5));
  expect(EnvelopeStatus::kCorrupt, good + "!");            // bytes after the end
  expect(EnvelopeStatus::kCorrupt, hand_made(0x08, "v"));  // a reserved flag bit
  expect(EnvelopeStatus::kCorrupt, hand_made(0x80, "v"));  // another one
  expect(EnvelopeStatus::kCorrupt, hand_made(0x01, "v"));  // negative with a payload
  expect(EnvelopeStatus::kCorrupt, hand_made(0x03, ""));   // negative and compressed
  std::string forged = encode_envelope(sample_meta(), "value", signing("k"));
  forged[forged.size() - 1] ^= 1;
  expect(EnvelopeStatus::kBadSignature, forged, signing("k"));
  expect(EnvelopeStatus::kUnsigned, good, signing("k"));
  expect(EnvelopeStatus::kDecompressFailed, hand_made(0x02, "not zstd at all"));
  expect(EnvelopeStatus::kTooLarge, hand_made(0x02, zstd_frame_declaring(1ull << 40)));
  EXPECT_EQ(seen.size(), 9u);
}

TEST(Envelope, StatusNamesAreDistinct) {
  std::set<std::string> names;
  for (int s = 0; s <= static_cast<int>(EnvelopeStatus::kTooLarge); ++s) {
    names.insert(to_string(static_cast<EnvelopeStatus>(s)));
  }
  EXPECT_EQ(names.size(), 9u);
  EXPECT_STREQ(to_string(EnvelopeStatus::kOk), "ok");
  EXPECT_STREQ(to_string(EnvelopeStatus::kBadSignature), "bad_signature");
}

TEST(Envelope, ZstdBombIsRefusedBeforeAllocating) {
  // 2 MiB of zeros compress to a few bytes; a reader allowing 1 MiB refuses them.
  const std::string bomb = encode_envelope({}, std::string(2 << 20, '\0'), {});
  ASSERT_LT(bomb.size(), 1000u);
  EnvelopeOptions small;
  small.max_payload_bytes = 1 << 20;
  EXPECT_EQ(decode(bomb, small), EnvelopeStatus::kTooLarge);
  EXPECT_EQ(decode_ok(bomb).payload.size(), 2u << 20);
  // A 16-byte frame declaring 1 TiB, or the most a 64-bit size can say.
  EXPECT_EQ(decode(hand_made(0x02, zstd_frame_declaring(1ull << 40))), EnvelopeStatus::kTooLarge);
  EXPECT_EQ(decode(hand_made(0x02, zstd_frame_declaring(~0ull - 2))), EnvelopeStatus::kTooLarge);
}

TEST(Envelope, CompressedPayloadMustBeOneFrameOfKnownSize) {
  // Declares 100 bytes, holds none.
  EXPECT_EQ(decode(hand_made(0x02, zstd_frame_declaring(100))), EnvelopeStatus::kDecompressFailed);
  // Two frames back to back.
  const std::string frame = zstd_frame_declaring(0);
  EXPECT_EQ(decode(hand_made(0x02, frame)), EnvelopeStatus::kOk);
  EXPECT_EQ(decode(hand_made(0x02, frame + frame)), EnvelopeStatus::kDecompressFailed);
  // A skippable frame.
  std::string skippable;
  put_le(skippable, ZSTD_MAGIC_SKIPPABLE_START, 4);
  put_le(skippable, 0, 4);
  EXPECT_EQ(decode(hand_made(0x02, skippable)), EnvelopeStatus::kDecompressFailed);
  // A frame without a content size (streaming compression).
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ASSERT_NE(context, nullptr);
  ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0);
  const std::string input(2000, 'q');
  std::string output(ZSTD_compressBound(input.size()), '\0');
  const std::size_t size =
      ZSTD_compress2(context, output.data(), output.size(), input.data(), input.size());
  ZSTD_freeCCtx(context);
  ASSERT_FALSE(ZSTD_isError(size));
  output.resize(size);
  ASSERT_EQ(ZSTD_getFrameContentSize(output.data(), output.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_EQ(decode(hand_made(0x02, output)), EnvelopeStatus::kDecompressFailed);
  // The same bytes compressed the usual way decode.
  const std::string usual = encode_envelope({}, input, {});
  ASSERT_EQ(usual[kFlagsOffset], 0x02);
  EXPECT_EQ(decode_ok(usual).payload, input);
}

TEST(Envelope, LimitsAreEnforcedOnDecode) {
  const std::string bytes = encode_envelope(sample_meta(), std::string(500, 'x'), {});
  EnvelopeOptions options;
  options.max_tags = 3;  // sample_meta has 4
  EXPECT_EQ(decode(bytes, options), EnvelopeStatus::kTooLarge);
  options = {};
  options.max_tag_bytes = 7;  // "tenant:7" has 8
  EXPECT_EQ(decode(bytes, options), EnvelopeStatus::kTooLarge);
  options = {};
  options.max_payload_bytes = 499;
  EXPECT_EQ(decode(bytes, options), EnvelopeStatus::kTooLarge);
  options.max_payload_bytes = 500;
  EXPECT_EQ(decode(bytes, options), EnvelopeStatus::kOk);
  // A declared payload of 4 GiB - 1 in a 40-byte envelope.
  std::string huge = hand_made(0, "abc");
  huge[33] = huge[34] = huge[35] = huge[36] = '\xFF';
  EXPECT_EQ(decode(huge), EnvelopeStatus::kTooLarge);
  options.max_payload_bytes = SIZE_MAX;
  EXPECT_EQ(decode(huge, options), EnvelopeStatus::kTooShort);
}

TEST(Envelope, EncodeRefusesWhatItsOwnReaderWouldRefuse) {
  EnvelopeMeta meta;
  meta.negative = true;
  EXPECT_THROW(encode_envelope(meta, "payload", {}), std::invalid_argument);
  meta = {};
  meta.tags.assign(65, "t");
  EXPECT_THROW(encode_envelope(meta, "", {}), std::invalid_argument);
  meta.tags.assign(1, std::string(1025, 't'));
  EXPECT_THROW(encode_envelope(meta, "", {}), std::invalid_argument);
  EnvelopeOptions options;
  options.max_payload_bytes = 10;
  EXPECT_THROW(encode_envelope({}, std::string(11, 'x'), options), std::invalid_argument);
  // The format's own 16-bit fields, whatever the options say.
  options = {};
  options.max_tag_bytes = 1 << 20;
  meta.tags.assign(1, std::string(70'000, 't'));
  EXPECT_THROW(encode_envelope(meta, "", options), std::invalid_argument);
}

TEST(Envelope, OutputIsAssignedOnlyOnSuccess) {
  DecodedEnvelope out;
  out.payload = "before";
  out.meta.codec = 9;
  EXPECT_EQ(decode_envelope("garbage", {}, out), EnvelopeStatus::kBadMagic);
  EXPECT_EQ(decode_envelope(hand_made(0x02, zstd_frame_declaring(100)), {}, out),
            EnvelopeStatus::kDecompressFailed);
  EXPECT_EQ(out.payload, "before");
  EXPECT_EQ(out.meta.codec, 9);
}

}  // namespace
}  // namespace tiercache
