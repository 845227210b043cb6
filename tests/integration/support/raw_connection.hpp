// RawConnection: a blocking TCP client connection to 127.0.0.1 for integration tests that
// must look at the bytes on the wire themselves (checking a test server, or a server that the
// Redis client cannot talk to yet). Every operation takes a timeout; nothing waits forever.
//
// Not thread-safe: one thread uses a connection at a time. Errors other than a timeout or the
// peer closing the connection throw std::system_error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tiercache::test {

class RawConnection {
 public:
  // Connects to 127.0.0.1:`port`. Throws std::system_error if the connection is refused or
  // not established within `timeout`.
  static RawConnection connect(std::uint16_t port,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5));

  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&& other) noexcept;
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection();

  // Sends all of `bytes`. Throws std::system_error if the peer is gone or the bytes are not
  // all accepted by the kernel within `timeout`.
  void send(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Reads until what was received (since the last read_*) contains `terminator`, the peer
  // closes the connection, or `timeout` passes. Returns everything received up to and
  // including the first `terminator` (later bytes stay buffered for the next read), or, on
  // timeout or close, everything received: check the result, and peer_closed().
  std::string read_until(std::string_view terminator, std::chrono::milliseconds timeout);

  // Reads until `count` bytes were received, the peer closes, or `timeout` passes; returns
  // at most `count` bytes (fewer on close or timeout).
  std::string read_exactly(std::size_t count, std::chrono::milliseconds timeout);

  // Waits until the peer closes the connection (or resets it), discarding what it sends.
  // Returns false if it is still open after `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

  // True once a read saw the end of the stream (or a reset) from the peer.
  bool peer_closed() const { return peer_closed_; }

 private:
  explicit RawConnection(int fd) : fd_(fd) {}
  // Reads what is available into buffer_, waiting up to `deadline`. False on timeout.
  bool fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  bool peer_closed_ = false;
  std::string buffer_;  // received, not returned yet
};

// Sends `command` (e.g. "PING\r\n") on a new connection to 127.0.0.1:`port` and returns the
// first reply line, "\r\n" included ("+PONG\r\n"), or an empty string if the connection is
// refused, or no full line arrives within `timeout`.
std::string first_reply_line(std::uint16_t port, std::string_view command,
                             std::chrono::milliseconds timeout);

// True if a Redis server on 127.0.0.1:`port` answers PING with +PONG within `timeout`.
bool answers_ping(std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace tiercache::test
