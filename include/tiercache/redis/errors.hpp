// Errors of the Redis client, and Result<T>: a value or an Error.
//
// Every failure the client reports carries one of the codes below, so a caller can always
// tell "Redis said no" (kServerError, with Redis's own message) from "Redis could not be
// reached in time" (kConnection, kTimeout, kTls, kAuth) and from "the bytes made no sense"
// (kProtocol). Codes are std::error_code values of redis_category(); `message` adds the
// detail (which server, which limit, the error line Redis sent). Results are values: the
// client throws only for programming errors (e.g. calling value() on an error).

#pragma once

#include <cassert>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace tiercache::redis {

enum class Errc {
  kConnection = 1,   // could not connect, or the connection dropped with the request pending
  kTimeout,          // the request's deadline passed (connect, write or reply)
  kProtocol,         // the server sent bytes that are not RESP, or broke a configured limit
  kServerError,      // Redis answered with an error reply (message: Redis's text)
  kAuth,             // HELLO/AUTH was refused: wrong user or password, or no permission
  kTls,              // TLS handshake or certificate verification failed
  kQueueFull,        // too many requests waiting for a connection (back-pressure)
  kClosed,           // the client was shut down before the request completed
  kInvalidArgument,  // a bad URL, option or command, caught before anything was sent
};

const std::error_category& redis_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// What failed (code) and the detail (message; never holds values or credentials).
struct Error {
  std::error_code code;
  std::string message;

  // "kTimeout: GET timed out after 100 ms"-like text for logs.
  std::string to_string() const;
};

inline Error make_error(Errc code, std::string message) {
  return Error{make_error_code(code), std::move(message)};
}

// A value of T or an Error. T must not be Error.
template <class T>
class Result {
 public:
  static_assert(!std::is_same_v<T, Error>);
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // REQUIRES: ok().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // REQUIRES: !ok().
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  // REQUIRES: !ok().
  const Error& error() const& {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace tiercache::redis

template <>
struct std::is_error_code_enum<tiercache::redis::Errc> : std::true_type {};
