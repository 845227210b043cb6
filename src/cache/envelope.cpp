// The L2 envelope (include/tiercache/envelope.hpp); the format is docs/FORMAT.md.
//
// Layout, version 1 (all integers little-endian):
//   0  magic "\xC1tce"   4  version   5  flags   6  codec   7  created_ms (i64)
//   15 fresh_until_ms (i64)   23 load_ms (i64)   31 tag count (u16)
//   33 tags: (u16 length, bytes)*   then payload length (u32), payload
//   then, when flags has kFlagSigned, HMAC-SHA256 (32 bytes) over everything before it,
//   followed by the bound Redis key (which is not stored).
//
// How decoding stays safe on hostile bytes: the fixed header is checked first (magic,
// version, reserved flag bits); then every length is compared with its limit from
// EnvelopeOptions and with the bytes that remain BEFORE anything is read or allocated; the
// envelope must end exactly after the payload (and signature). Nothing is copied until the
// structure is known to be sound and, with a key, the signature verified -- so a forger
// cannot even make us decompress. A compressed payload must be exactly one zstd frame that
// declares its decompressed size (ZSTD_getFrameContentSize), and that size is checked against
// max_payload_bytes before the output buffer is allocated: a "zstd bomb" costs nothing.

#include "tiercache/envelope.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>
#include <utility>

namespace tiercache {

namespace {

// Offsets of the fixed header.
constexpr std::size_t kVersionOffset = 4;
constexpr std::size_t kFlagsOffset = 5;
constexpr std::size_t kCodecOffset = 6;
constexpr std::size_t kCreatedOffset = 7;
constexpr std::size_t kFreshUntilOffset = 15;
constexpr std::size_t kLoadMsOffset = 23;
constexpr std::size_t kTagCountOffset = 31;
constexpr std::size_t kFixedHeaderSize = 33;
static_assert(kFixedHeaderSize + 4 == kEnvelopeMinSize);

// Flag bits; the others are reserved and must be zero in version 1.
constexpr std::uint8_t kFlagNegative = 0x01;
constexpr std::uint8_t kFlagCompressed = 0x02;
constexpr std::uint8_t kFlagSigned = 0x04;
constexpr std::uint8_t kKnownFlags = kFlagNegative | kFlagCompressed | kFlagSigned;

// What the widths of the format's count and length fields allow.
constexpr std::size_t kFormatMaxTags = 0xFFFF;
constexpr std::size_t kFormatMaxTagBytes = 0xFFFF;
constexpr std::size_t kFormatMaxPayloadBytes = 0xFFFF'FFFF;

// ---- little-endian integers ------------------------------------------------------------------

void put_le(std::string& out, std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

void patch_le(std::string& out, std::size_t offset, std::uint64_t value, std::size_t width) {
  for (std::size_t i = 0; i < width; ++i) out[offset + i] = static_cast<char>(value >> (8 * i));
}

// REQUIRES: bytes.size() >= offset + width.
std::uint64_t get_le(std::string_view bytes, std::size_t offset, std::size_t width) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= std::uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

// Bounds-checked forward reading of the variable part.
class Reader {
 public:
  Reader(std::string_view bytes, std::size_t offset) : bytes_(bytes), offset_(offset) {}

  std::size_t offset() const { return offset_; }
  bool read_le(std::size_t width, std::uint64_t& value) {
    if (bytes_.size() - offset_ < width) return false;
    value = get_le(bytes_, offset_, width);
    offset_ += width;
    return true;
  }
  bool read_bytes(std::size_t size, std::string_view& value) {
    if (bytes_.size() - offset_ < size) return false;
    value = bytes_.substr(offset_, size);
    offset_ += size;
    return true;
  }

 private:
  std::string_view bytes_;
  std::size_t offset_;  // <= bytes_.size()
};

// ---- HMAC-SHA256 (OpenSSL 3 EVP_MAC) ---------------------------------------------------------

using Mac = std::array<unsigned char, kEnvelopeSignatureSize>;

struct MacContextDeleter {
  void operator()(EVP_MAC_CTX* context) const { EVP_MAC_CTX_free(context); }
};

// HMAC-SHA256 under `secret` of `body` followed by `key`. Throws std::runtime_error if
// OpenSSL fails (out of memory, or a provider that refuses the key, e.g. FIPS and a short key).
Mac hmac_sha256(std::string_view secret, std::string_view body, std::string_view key) {
  // Fetched once; EVP_MAC objects may be shared by threads.
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  if (hmac == nullptr) throw std::runtime_error("tiercache envelope: OpenSSL has no HMAC");
  std::unique_ptr<EVP_MAC_CTX, MacContextDeleter> context(EVP_MAC_CTX_new(hmac));
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  Mac mac{};
  std::size_t mac_size = 0;
  const auto* secret_bytes = reinterpret_cast<const unsigned char*>(secret.data());
  const auto* body_bytes = reinterpret_cast<const unsigned char*>(body.data());
  const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.data());
  if (context == nullptr || EVP_MAC_init(context.get(), secret_bytes, secret.size(), params) != 1 ||
      EVP_MAC_update(context.get(), body_bytes, body.size()) != 1 ||
      EVP_MAC_update(context.get(), key_bytes, key.size()) != 1 ||
      EVP_MAC_final(context.get(), mac.data(), &mac_size, mac.size()) != 1 ||
      mac_size != mac.size()) {
    throw std::runtime_error("tiercache envelope: HMAC-SHA256 failed in OpenSSL");
  }
  return mac;
}

// ---- zstd ------------------------------------------------------------------------------------

struct ZstdDeleter {
  void operator()(ZSTD_CCtx* context) const { ZSTD_freeCCtx(context); }
  void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
};

// One context of each kind per thread, reused: creating one costs more than compressing a
// few kilobytes. nullptr only when out of memory.
ZSTD_CCtx* compression_context() {
  thread_local std::unique_ptr<ZSTD_CCtx, ZstdDeleter> context(ZSTD_createCCtx());
  return context.get();
}
ZSTD_DCtx* decompression_context() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDeleter> context(ZSTD_createDCtx());
  return context.get();
}

// Appends payload compressed to `out` and returns true if that is smaller than payload;
// otherwise leaves `out` as it was and returns false.
bool append_compressed(std::string& out, std::string_view payload, int level) {
  ZSTD_CCtx* context = compression_context();
  if (context == nullptr) return false;
  const std::size_t start = out.size();
  const std::size_t bound = ZSTD_compressBound(payload.size());
  out.resize(start + bound);
  const std::size_t size =
      ZSTD_compressCCtx(context, out.data() + start, bound, payload.data(), payload.size(), level);
  if (ZSTD_isError(size) || size >= payload.size()) {
    out.resize(start);
    return false;
  }
  out.resize(start + size);
  return true;
}

EnvelopeStatus decompress(std::string_view frame, std::size_t max_size, std::string& out) {
  // Exactly one regular frame (not a skippable one, not several), which says how much it
  // holds. ZSTD_compress always writes the content size.
  if (frame.size() < 4 || get_le(frame, 0, 4) != ZSTD_MAGICNUMBER) {
    return EnvelopeStatus::kDecompressFailed;
  }
  const std::size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size) || frame_size != frame.size()) {
    return EnvelopeStatus::kDecompressFailed;
  }
  const unsigned long long content_size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (content_size == ZSTD_CONTENTSIZE_UNKNOWN || content_size == ZSTD_CONTENTSIZE_ERROR) {
    return EnvelopeStatus::kDecompressFailed;
  }
  if (content_size > max_size) return EnvelopeStatus::kTooLarge;
  ZSTD_DCtx* context = decompression_context();
  if (context == nullptr) return EnvelopeStatus::kDecompressFailed;
  out.resize(static_cast<std::size_t>(content_size));
  const std::size_t size =
      ZSTD_decompressDCtx(context, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(size) || size != out.size()) return EnvelopeStatus::kDecompressFailed;
  return EnvelopeStatus::kOk;
}

void require(bool condition, const char* what) {
  if (!condition) throw std::invalid_argument(std::string("encode_envelope: ") + what);
}

}  // namespace

const char* to_string(EnvelopeStatus status) {
  switch (status) {
    case EnvelopeStatus::kOk:
      return "ok";
    case EnvelopeStatus::kTooShort:
      return "too_short";
    case EnvelopeStatus::kBadMagic:
      return "bad_magic";
    case EnvelopeStatus::kUnsupportedVersion:
      return "unsupported_version";
    case EnvelopeStatus::kCorrupt:
      return "corrupt";
    case EnvelopeStatus::kBadSignature:
      return "bad_signature";
    case EnvelopeStatus::kUnsigned:
      return "unsigned";
    case EnvelopeStatus::kDecompressFailed:
      return "decompress_failed";
    case EnvelopeStatus::kTooLarge:
      return "too_large";
  }
  return "unknown";
}

std::string encode_envelope(const EnvelopeMeta& meta, std::string_view payload,
                            const EnvelopeOptions& options, std::string_view key) {
  require(!meta.negative || payload.empty(), "a negative entry has no payload");
  require(meta.tags.size() <= std::min(options.max_tags, kFormatMaxTags), "too many tags");
  std::size_t tag_bytes = 0;
  for (const std::string& tag : meta.tags) {
    require(tag.size() <= std::min(options.max_tag_bytes, kFormatMaxTagBytes), "tag too long");
    tag_bytes += 2 + tag.size();
  }
  require(payload.size() <= std::min(options.max_payload_bytes, kFormatMaxPayloadBytes),
          "payload too large");

  const bool sign = !options.hmac_key.empty();
  const bool try_compression =
      options.compress_above != 0 && payload.size() > options.compress_above;
  std::string out;
  out.reserve(kEnvelopeMinSize + tag_bytes + payload.size() +
              (try_compression ? ZSTD_compressBound(payload.size()) : 0) +
              (sign ? kEnvelopeSignatureSize : 0));
  out.append(kEnvelopeMagic);
  out.push_back(static_cast<char>(kEnvelopeVersion));
  out.push_back(0);  // flags, set below
  out.push_back(static_cast<char>(meta.codec));
  put_le(out, static_cast<std::uint64_t>(meta.created_ms), 8);
  put_le(out, static_cast<std::uint64_t>(meta.fresh_until_ms), 8);
  put_le(out, static_cast<std::uint64_t>(meta.load_ms), 8);
  put_le(out, meta.tags.size(), 2);
  for (const std::string& tag : meta.tags) {
    put_le(out, tag.size(), 2);
    out.append(tag);
  }
  const std::size_t length_offset = out.size();
  put_le(out, 0, 4);  // payload length, set below
  const bool compressed = try_compression && append_compressed(out, payload, options.zstd_level);
  if (!compressed) out.append(payload);
  patch_le(out, length_offset, out.size() - length_offset - 4, 4);

  std::uint8_t flags = 0;
  if (meta.negative) flags |= kFlagNegative;
  if (compressed) flags |= kFlagCompressed;
  if (sign) flags |= kFlagSigned;
  out[kFlagsOffset] = static_cast<char>(flags);
  if (sign) {
    const Mac mac = hmac_sha256(options.hmac_key, out, key);
    out.append(reinterpret_cast<const char*>(mac.data()), mac.size());
  }
  return out;
}

std::string encode_envelope(const EnvelopeMeta& meta, std::string_view payload,
                            const EnvelopeOptions& options) {
  return encode_envelope(meta, payload, options, std::string_view());
}

EnvelopeStatus decode_envelope(std::string_view bytes, const EnvelopeOptions& options,
                               std::string_view key, DecodedEnvelope& out) {
  // Fixed header: what it is, which version, which flags.
  const std::size_t magic_seen = std::min(bytes.size(), kEnvelopeMagic.size());
  if (bytes.substr(0, magic_seen) != kEnvelopeMagic.substr(0, magic_seen)) {
    return EnvelopeStatus::kBadMagic;
  }
  if (bytes.size() <= kVersionOffset) return EnvelopeStatus::kTooShort;
  if (static_cast<std::uint8_t>(bytes[kVersionOffset]) != kEnvelopeVersion) {
    return EnvelopeStatus::kUnsupportedVersion;
  }
  if (bytes.size() < kFixedHeaderSize) return EnvelopeStatus::kTooShort;
  const auto flags = static_cast<std::uint8_t>(bytes[kFlagsOffset]);
  if ((flags & ~kKnownFlags) != 0) return EnvelopeStatus::kCorrupt;
  const bool negative = (flags & kFlagNegative) != 0;
  const bool compressed = (flags & kFlagCompressed) != 0;
  const bool is_signed = (flags & kFlagSigned) != 0;
  const bool verify = !options.hmac_key.empty();
  if (verify && !is_signed) return EnvelopeStatus::kUnsigned;

  // Variable part: check every length against its limit and the bytes left; copy nothing.
  const std::size_t tag_count = get_le(bytes, kTagCountOffset, 2);
  if (tag_count > options.max_tags) return EnvelopeStatus::kTooLarge;
  Reader reader(bytes, kFixedHeaderSize);
  for (std::size_t i = 0; i < tag_count; ++i) {
    std::uint64_t size = 0;
    std::string_view tag;
    if (!reader.read_le(2, size)) return EnvelopeStatus::kTooShort;
    if (size > options.max_tag_bytes) return EnvelopeStatus::kTooLarge;
    if (!reader.read_bytes(size, tag)) return EnvelopeStatus::kTooShort;
  }
  std::uint64_t payload_size = 0;
  std::string_view payload;
  if (!reader.read_le(4, payload_size)) return EnvelopeStatus::kTooShort;
  if (payload_size > options.max_payload_bytes) return EnvelopeStatus::kTooLarge;
  if (!reader.read_bytes(payload_size, payload)) return EnvelopeStatus::kTooShort;
  const std::size_t body_end = reader.offset();
  const std::size_t trailer = is_signed ? kEnvelopeSignatureSize : 0;
  if (bytes.size() - body_end < trailer) return EnvelopeStatus::kTooShort;
  if (bytes.size() - body_end > trailer) return EnvelopeStatus::kCorrupt;
  if (negative && (compressed || !payload.empty())) return EnvelopeStatus::kCorrupt;

  if (verify) {
    const Mac expected = hmac_sha256(options.hmac_key, bytes.substr(0, body_end), key);
    if (CRYPTO_memcmp(expected.data(), bytes.data() + body_end, expected.size()) != 0) {
      return EnvelopeStatus::kBadSignature;
    }
  }

  // Sound (and authentic): materialise.
  DecodedEnvelope decoded;
  if (compressed) {
    const EnvelopeStatus status = decompress(payload, options.max_payload_bytes, decoded.payload);
    if (status != EnvelopeStatus::kOk) return status;
  } else {
    decoded.payload.assign(payload);
  }
  EnvelopeMeta& meta = decoded.meta;
  meta.negative = negative;
  meta.codec = static_cast<std::uint8_t>(bytes[kCodecOffset]);
  meta.created_ms = static_cast<std::int64_t>(get_le(bytes, kCreatedOffset, 8));
  meta.fresh_until_ms = static_cast<std::int64_t>(get_le(bytes, kFreshUntilOffset, 8));
  meta.load_ms = static_cast<std::int64_t>(get_le(bytes, kLoadMsOffset, 8));
  meta.tags.reserve(tag_count);
  Reader tags(bytes, kFixedHeaderSize);
  for (std::size_t i = 0; i < tag_count; ++i) {
    std::uint64_t size = 0;
    std::string_view tag;
    tags.read_le(2, size);  // cannot fail: checked above
    tags.read_bytes(size, tag);
    meta.tags.emplace_back(tag);
  }
  out = std::move(decoded);
  return EnvelopeStatus::kOk;
}

EnvelopeStatus decode_envelope(std::string_view bytes, const EnvelopeOptions& options,
                               DecodedEnvelope& out) {
  return decode_envelope(bytes, options, std::string_view(), out);
}

}  // namespace tiercache
