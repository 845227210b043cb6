// libFuzzer target: decode_envelope on arbitrary bytes (what a hostile or broken Redis
// could hand us), and encode_envelope on whatever decoding accepts.
//
// Input layout: byte 0 chooses the limits (below 0x80: EnvelopeOptions{} defaults, except a
// 1 MiB payload limit so that runs stay fast; otherwise tiny limits from its bits, so every
// limit path is reached with short inputs); the rest is the value read from Redis. The seeds
// in fuzz/corpus/envelope/ follow it; the signed ones are signed with kFuzzKey.
//
// Checked for every input, beyond "no crash, no leak, no UB, no hang" (the sanitizers), once
// without an HMAC key and once with kFuzzKey:
//  - a refusal leaves the output untouched and has a name (to_string);
//  - an accepted envelope respects the limits it was decoded with (tag count, tag length,
//    payload size) and a negative one has no payload;
//  - re-encoding what was decoded (compressed or not, signed when the key is set, bound to a
//    Redis key or not) and decoding that again gives the same meta and payload;
//  - an accepted envelope that is not compressed is canonical: re-encoding it unsigned and
//    uncompressed gives back exactly the input (less its signature and signed flag).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tiercache/envelope.hpp"

namespace {

using tiercache::decode_envelope;
using tiercache::DecodedEnvelope;
using tiercache::encode_envelope;
using tiercache::EnvelopeOptions;
using tiercache::EnvelopeStatus;

constexpr std::string_view kFuzzKey = "tiercache-fuzz-key";
constexpr std::size_t kFlagsOffset = 5;
constexpr std::uint8_t kFlagCompressed = 0x02;
constexpr std::uint8_t kFlagSigned = 0x04;

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "envelope_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

EnvelopeOptions options_from(std::uint8_t selector) {
  EnvelopeOptions options;
  options.max_payload_bytes = 1 << 20;
  if (selector < 0x80) return options;
  options.max_tags = selector & 0x03;
  options.max_tag_bytes = (selector & 0x04) != 0 ? 0 : 8;
  options.max_payload_bytes = (selector & 0x08) != 0 ? 16 : 300;
  // These two only matter when re-encoding.
  options.compress_above = (selector & 0x10) != 0 ? 0 : 8;
  options.zstd_level = (selector & 0x20) != 0 ? -5 : 3;
  return options;
}

bool same(const DecodedEnvelope& a, const DecodedEnvelope& b) {
  return a.meta == b.meta && a.payload == b.payload;
}

void round_trip(const DecodedEnvelope& decoded, const EnvelopeOptions& options,
                std::string_view key) {
  const std::string bytes = encode_envelope(decoded.meta, decoded.payload, options, key);
  DecodedEnvelope again;
  check(decode_envelope(bytes, options, key, again) == EnvelopeStatus::kOk,
        "a re-encoded envelope does not decode");
  check(same(decoded, again), "a re-encoded envelope decodes to something else");
}

void run(std::string_view input, const EnvelopeOptions& options) {
  DecodedEnvelope decoded;
  decoded.payload = "untouched";
  decoded.meta.codec = 77;
  const EnvelopeStatus status = decode_envelope(input, options, decoded);
  check(to_string(status) != nullptr && std::string_view(to_string(status)) != "unknown",
        "status without a name");
  if (status != EnvelopeStatus::kOk) {
    check(decoded.payload == "untouched" && decoded.meta.codec == 77 && decoded.meta.tags.empty(),
          "a refused envelope changed the output");
    return;
  }

  check(decoded.meta.tags.size() <= options.max_tags, "more tags than allowed");
  for (const std::string& tag : decoded.meta.tags) {
    check(tag.size() <= options.max_tag_bytes, "a tag longer than allowed");
  }
  check(decoded.payload.size() <= options.max_payload_bytes, "a payload larger than allowed");
  check(!decoded.meta.negative || decoded.payload.empty(), "a negative entry with a payload");

  round_trip(decoded, options, {});
  round_trip(decoded, options, "user:42");
  EnvelopeOptions compressing = options;
  compressing.compress_above = 1;
  round_trip(decoded, compressing, {});

  const auto flags = static_cast<std::uint8_t>(input[kFlagsOffset]);
  if ((flags & kFlagCompressed) == 0) {
    std::string expected(input);
    if ((flags & kFlagSigned) != 0) {
      expected.resize(expected.size() - tiercache::kEnvelopeSignatureSize);
      expected[kFlagsOffset] = static_cast<char>(flags & ~kFlagSigned);
    }
    EnvelopeOptions plain = options;
    plain.hmac_key.clear();
    plain.compress_above = 0;
    check(encode_envelope(decoded.meta, decoded.payload, plain) == expected,
          "an uncompressed envelope is not canonical");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  EnvelopeOptions options = options_from(data[0]);
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  run(input, options);
  options.hmac_key = std::string(kFuzzKey);
  run(input, options);
  return 0;
}
