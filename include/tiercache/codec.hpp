// Codecs: how a value of type V becomes the bytes stored in Redis (L2), and back.
//
// Contract:
//  - A codec is a stateless type with a one-byte id (kId) and two static function templates:
//    encode<V>(v, out) APPENDS the encoding of v to out, decode<V>(bytes) returns the V those
//    bytes encode. The id is written into every L2 envelope (envelope.hpp), so a reader can
//    tell "encoded by another codec" from "corrupt"; ids are part of the storage format and
//    never reused: 1 raw bytes, 2 JSON, 3 MessagePack.
//  - decode() never trusts its input: on bytes that are not a valid encoding of V it throws
//    CodecError (a user's from_json may also throw its own std::exception). It never
//    crashes, hangs, or allocates more than a small multiple of the input's size, whatever
//    the bytes (L2 is shared: other writers, old versions and corruption all end up here).
//  - encode() throws CodecError when v cannot be represented (e.g. a string that is not
//    UTF-8, with JSON); out is then left as it was.
//  - Thread-safety: codecs have no state; call them from any thread.
//
// JsonCodec uses nlohmann::json and the user's to_json/from_json (found by ADL, or
// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE); MsgpackCodec uses msgpack-cxx and MSGPACK_DEFINE.
// msgpack-cxx is used without Boost: this header defines MSGPACK_NO_BOOST unless the includer
// already did, so include it before any other msgpack header (or define MSGPACK_NO_BOOST for
// the whole build).
//
//   struct User { std::int64_t id; std::string name; MSGPACK_DEFINE(id, name) };
//   std::string bytes;
//   tiercache::MsgpackCodec::encode(user, bytes);
//   User copy = tiercache::MsgpackCodec::decode<User>(bytes);

#pragma once

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace tiercache {

// Thrown by decode() on bytes that are not a valid encoding of V, and by encode() on a value
// the codec cannot represent.
class CodecError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

// A Codec turns a V into bytes and back. kId is written into every L2 envelope.
template <class C, class V>
concept Codec = requires(const V& v, std::string& out, std::string_view in) {
  { C::kId } -> std::convertible_to<std::uint8_t>;
  C::template encode<V>(v, out);                     // APPENDS the encoding of v to out
  { C::template decode<V>(in) } -> std::same_as<V>;  // throws CodecError on bad input
};

// Raw bytes: the value IS its encoding. Any byte string round-trips, NUL bytes included, and
// decode() accepts every input. For std::string and other types that convert to
// std::string_view and can be constructed from one.
struct StringCodec {
  static constexpr std::uint8_t kId = 1;

  template <class V>
  static void encode(const V& value, std::string& out) {
    static_assert(std::is_constructible_v<std::string_view, const V&>,
                  "StringCodec: V must convert to std::string_view (e.g. std::string)");
    out.append(std::string_view(value));
  }

  template <class V>
  static V decode(std::string_view bytes) {
    static_assert(std::is_constructible_v<V, std::string_view>,
                  "StringCodec: V must be constructible from std::string_view (e.g. std::string)");
    return V(bytes);
  }
};

// JSON text (nlohmann::json): readable with redis-cli, shareable with other languages.
// Strings must be valid UTF-8 (encode throws CodecError otherwise); binary data belongs in a
// StringCodec or MsgpackCodec value. Decoding is iterative (no recursion on nesting depth).
// Beware: nlohmann converts numbers to narrower integer types without a range check (300
// decodes as std::uint8_t 44); MsgpackCodec refuses that.
struct JsonCodec {
  static constexpr std::uint8_t kId = 2;

  template <class V>
  static void encode(const V& value, std::string& out) {
    std::string text;
    try {
      text = nlohmann::json(value).dump();
    } catch (const nlohmann::json::exception& e) {
      throw CodecError(std::string("JsonCodec: cannot encode: ") + e.what());
    }
    out.append(text);
  }

  template <class V>
  static V decode(std::string_view bytes) {
    try {
      return nlohmann::json::parse(bytes.begin(), bytes.end()).template get<V>();
    } catch (const CodecError&) {
      throw;
    } catch (const std::exception& e) {
      // nlohmann's parse_error/type_error/out_of_range, and whatever a from_json threw.
      throw CodecError(std::string("JsonCodec: cannot decode: ") + e.what());
    }
  }
};

namespace detail {

// msgpack-cxx's output-stream concept: anything with write(const char*, size_t).
struct MsgpackStringWriter {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

// A first pass over untrusted MessagePack that allocates nothing: msgpack-cxx's object
// builder allocates an array's or map's element slots as soon as it reads the header, so a
// 5-byte input declaring 2^32-1 elements would make it allocate 64 GiB. This pass accepts
// only a complete document no deeper than max_depth; after it, every declared element is
// present in the input, so building the objects costs O(input size).
class MsgpackShapeCheck : public msgpack::null_visitor {
 public:
  explicit MsgpackShapeCheck(std::size_t max_depth) : max_depth_(max_depth) {}

  bool start_array(std::uint32_t /*num_elements*/) { return enter(); }
  bool end_array() { return leave(); }
  bool start_map(std::uint32_t /*num_kv_pairs*/) { return enter(); }
  bool end_map() { return leave(); }

 private:
  bool enter() { return ++depth_ <= max_depth_; }
  bool leave() {
    --depth_;
    return true;
  }

  std::size_t max_depth_;
  std::size_t depth_ = 0;
};

}  // namespace detail

// MessagePack (msgpack-cxx), for types with MSGPACK_DEFINE (or msgpack adaptors): compact and
// fast. decode() requires exactly one complete MessagePack object: trailing bytes, truncated
// input, nesting deeper than kMaxDepth and type mismatches all throw CodecError. (As
// msgpack-cxx does, an MSGPACK_DEFINE struct decoded from a shorter array keeps its
// defaults for the missing trailing fields, and ignores extra ones.)
struct MsgpackCodec {
  static constexpr std::uint8_t kId = 3;
  // Deepest nesting of arrays and maps decode() accepts.
  static constexpr std::size_t kMaxDepth = 128;

  template <class V>
  static void encode(const V& value, std::string& out) {
    const std::size_t size_before = out.size();
    try {
      detail::MsgpackStringWriter writer{out};
      msgpack::pack(writer, value);
    } catch (const std::exception& e) {
      out.resize(size_before);
      throw CodecError(std::string("MsgpackCodec: cannot encode: ") + e.what());
    }
  }

  template <class V>
  static V decode(std::string_view bytes) {
    std::size_t end = 0;
    detail::MsgpackShapeCheck shape(kMaxDepth);
    if (!msgpack::parse(bytes.data(), bytes.size(), end, shape)) {
      throw CodecError("MsgpackCodec: truncated, malformed or too deeply nested input");
    }
    if (end != bytes.size()) throw CodecError("MsgpackCodec: trailing bytes after the value");
    try {
      // Limits again, as a second line of defence: no count or length may exceed the input.
      const std::size_t n = bytes.size();
      const msgpack::unpack_limit limit(n, n, n, n, n, kMaxDepth);
      std::size_t offset = 0;
      const msgpack::object_handle handle =
          msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
      return handle.get().as<V>();
    } catch (const std::exception& e) {
      // msgpack::type_error (a std::bad_cast) on a type mismatch, unpack_error on bad bytes.
      throw CodecError(std::string("MsgpackCodec: cannot decode: ") + e.what());
    }
  }
};

// The default codec of Cache<V>: StringCodec for std::string, JsonCodec otherwise.
template <class V>
using DefaultCodec = std::conditional_t<std::is_same_v<V, std::string>, StringCodec, JsonCodec>;

}  // namespace tiercache
