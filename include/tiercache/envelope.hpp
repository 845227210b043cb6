// The L2 envelope: the bytes tiercache stores in Redis for one cache entry -- a small
// self-describing header (format version, negative/compressed/signed flags, codec id,
// timestamps, tags) around the encoded value, optionally zstd-compressed and signed with
// HMAC-SHA256. docs/FORMAT.md describes the format byte by byte.
//
// Contract:
//  - decode_envelope() is the only way bytes read from Redis reach a codec. It never throws
//    on bad bytes, never reads outside them, and allocates at most what the limits in
//    EnvelopeOptions allow (tags, declared and decompressed payload sizes). Anything that is
//    not a well-formed envelope of a known version -- another writer's value, a truncated or
//    corrupted one, a newer format -- comes back as a status other than kOk, which the cache
//    treats as a miss (and counts); it is never handed to the user.
//  - Signing: with a non-empty EnvelopeOptions::hmac_key, every envelope written carries an
//    HMAC-SHA256 over all its preceding bytes (and the Redis key it is bound to, if given),
//    and decode REJECTS envelopes that carry none (kUnsigned) or a wrong one (kBadSignature):
//    whoever can write to Redis but does not hold the key cannot make tiercache serve a
//    value it did not write, nor move a value from one key to another if the key-bound
//    overloads are used. With an empty hmac_key nothing is verified: signed envelopes
//    decode too, their signature skipped (a reader without the key cannot check it).
//  - Thread-safety: free functions without shared mutable state; call from any thread.
//
// REQUIRES (encode): the meta and payload fit the limits of the options it is given, so that
// a reader with the same options accepts the envelope; otherwise encode_envelope throws
// std::invalid_argument (a programming error, not a runtime condition).

#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tiercache {

// What an envelope says about its value.
struct EnvelopeMeta {
  bool negative = false;            // "not found" entry: no payload
  std::uint8_t codec = 0;           // Codec::kId of the payload
  std::int64_t created_ms = 0;      // unix milliseconds when the value was loaded
  std::int64_t fresh_until_ms = 0;  // logical expiry (unix ms); after it the value is stale
                                    // (served only by fail-safe)
  std::int64_t load_ms = 0;         // how long the load took (ms), for probabilistic early
                                    // refresh
  std::vector<std::string> tags;    // any bytes; order kept

  bool operator==(const EnvelopeMeta&) const = default;
};

struct EnvelopeOptions {
  // Payloads larger than this many bytes are zstd-compressed when that makes them smaller.
  // 0: never compress. Readers decompress whatever the writer chose.
  std::size_t compress_above = 1024;
  // zstd compression level (1 = fastest; negative levels are faster still).
  int zstd_level = 1;
  // Non-empty: envelopes written are signed with HMAC-SHA256 under this key, and envelopes
  // read must carry a valid signature (kUnsigned / kBadSignature otherwise). Empty: written
  // unsigned; signatures of envelopes read are not checked.
  std::string hmac_key;
  // The largest payload accepted, as stored (compressed) and as decompressed; at most
  // 4 GiB - 1 (the format's 32-bit length field).
  std::size_t max_payload_bytes = 64 << 20;
  // The most tags one envelope may carry (at most 65535), and the longest tag in bytes (at
  // most 65535): the format's 16-bit count and length fields.
  std::size_t max_tags = 64;
  std::size_t max_tag_bytes = 1024;
};

// Why decode_envelope() refused the bytes (kOk: it did not).
enum class EnvelopeStatus : std::uint8_t {
  kOk,
  kTooShort,            // the bytes end before a field they declare (truncated)
  kBadMagic,            // not an envelope at all (another writer's value)
  kUnsupportedVersion,  // an envelope of a format version this build does not know
  kCorrupt,             // structurally invalid: reserved flag bits, bytes after the end, ...
  kBadSignature,        // hmac_key set and the signature does not match
  kUnsigned,            // hmac_key set and the envelope carries no signature
  kDecompressFailed,    // the compressed payload is not one valid zstd frame of known size
  kTooLarge,            // a declared or decompressed size exceeds EnvelopeOptions' limits
};

// "ok", "too_short", "bad_magic", ...: stable names, fit for metric labels.
const char* to_string(EnvelopeStatus status);

// A decoded envelope; payload is decompressed, ready for the codec named by meta.codec.
struct DecodedEnvelope {
  EnvelopeMeta meta;
  std::string payload;
};

// Returns the bytes to store for `payload` (the codec's output; empty when meta.negative)
// described by `meta`. Compresses and signs according to `options`.
// REQUIRES: meta.negative implies payload.empty(); meta.tags.size() <= options.max_tags and
// each tag <= options.max_tag_bytes; payload.size() <= options.max_payload_bytes; all <= the
// format's limits (see EnvelopeOptions). Throws std::invalid_argument otherwise.
std::string encode_envelope(const EnvelopeMeta& meta, std::string_view payload,
                            const EnvelopeOptions& options);

// Decodes `bytes` into `out`, assigned only when the result is kOk. Never throws on bad
// bytes, never reads out of bounds, never allocates more than the limits allow (it may
// throw std::bad_alloc when memory runs out within them).
EnvelopeStatus decode_envelope(std::string_view bytes, const EnvelopeOptions& options,
                               DecodedEnvelope& out);

// The same, with the signature also covering `key` (the Redis key the envelope is stored
// under): a signed envelope copied by someone else to another key fails verification there
// (kBadSignature). An empty key is the overload above. Without an hmac_key the key plays no
// part, and these produce and accept the same bytes as the overloads above.
std::string encode_envelope(const EnvelopeMeta& meta, std::string_view payload,
                            const EnvelopeOptions& options, std::string_view key);
EnvelopeStatus decode_envelope(std::string_view bytes, const EnvelopeOptions& options,
                               std::string_view key, DecodedEnvelope& out);

// Format constants, for tools and tests (docs/FORMAT.md).
inline constexpr std::string_view kEnvelopeMagic{"\xC1tce", 4};
inline constexpr std::uint8_t kEnvelopeVersion = 1;
// The size of an envelope with no tags and an empty payload, unsigned.
inline constexpr std::size_t kEnvelopeMinSize = 37;
inline constexpr std::size_t kEnvelopeSignatureSize = 32;

}  // namespace tiercache
