// FaultProxy: a TCP proxy on 127.0.0.1 that injects network faults between a client and a
// server (Redis, in tiercache's tests and `tiercache chaos`): latency, a bandwidth limit, cut
// connections, refused connections, half-open connections that swallow bytes, connections
// frozen for good, and a reset in the middle of a reply.
//
// Contract. The proxy listens on 127.0.0.1 at an ephemeral port from construction to
// destruction. Every accepted connection gets its own connection to the upstream current at
// accept time, and bytes are forwarded in both directions, in order, unchanged, unless a
// fault says otherwise. A fault setter applies to every byte the proxy reads after the setter
// returned (bytes already read and queued keep the delay they were given). Closing: when one
// side closes its sending half, the proxy forwards what it holds, then closes the same half
// towards the other side; when a socket fails (a reset, a write to a closed peer), both sides
// are reset. If the upstream refuses the connection, the client's connection is closed.
//
// Thread-safety: every member may be called from any thread, concurrently. Each setter has
// taken effect when it returns (cut(): the connections are closed by then). One internal
// thread runs every connection (poll); the destructor closes every socket and joins it.
// Errors: the constructor and set_upstream() throw std::system_error / std::invalid_argument
// when the listener cannot be opened or the host is not an IPv4/IPv6 literal or resolvable
// name. Meant for tests and tools: memory per connection is bounded (kMaxQueuedBytes per
// direction), not tuned for throughput.

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace tiercache::testing {

// Listens on 127.0.0.1:<ephemeral port>; forwards each accepted connection to upstream.
class FaultProxy {
 public:
  // Bytes a connection holds per direction (read and not yet forwarded) before the proxy
  // stops reading that side: a half-open or slow connection pushes back on the sender then.
  static constexpr std::size_t kMaxQueuedBytes = std::size_t{16} << 20;

  FaultProxy(std::string upstream_host, std::uint16_t upstream_port);
  ~FaultProxy();  // closes everything, joins its threads
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // The port it listens on (127.0.0.1).
  std::uint16_t port() const;
  // "redis://127.0.0.1:<port>"
  std::string url() const;

  // Connections accepted from now on go to host:port; open ones keep their upstream.
  void set_upstream(std::string host, std::uint16_t port);
  // Every chunk read from either side is forwarded no earlier than `each_way` after it was
  // read: a request/reply round trip takes at least 2 * each_way. 0 (the default): no delay.
  void set_latency(std::chrono::milliseconds each_way);
  // At most `bytes_per_second` forwarded per direction per connection (sent in slices of
  // 1/20 s worth, so a transfer of N bytes takes at least (N - rate/20) / rate seconds).
  // 0 (the default): unlimited.
  void set_bandwidth(std::size_t bytes_per_second);
  // Closes every open connection now, both sides (frozen ones included). New connections
  // are accepted normally afterwards.
  void cut();
  // While on, each newly accepted connection is closed at once (the listener stays open,
  // so a client sees its connection accepted then closed, not refused by the kernel).
  void set_refuse(bool refuse);
  // While on, every connection (existing and new) keeps reading and holding what it receives,
  // but forwards nothing either way: the client's writes succeed and no reply ever comes.
  // Turning it off forwards what was held, in order: like TCP, the proxy never loses bytes
  // inside a connection it keeps open (a client matching replies to requests in order would
  // otherwise hand out wrong replies).
  void set_half_open(bool on);
  // The connections open now stop forwarding for good: the proxy neither reads nor writes
  // them again (the kernel buffers fill up) and never closes them but in cut() or the
  // destructor, like a hung server that keeps its sockets. Connections accepted later work
  // normally.
  void freeze_existing();
  // Arms a reset: the next upstream->client bytes the proxy forwards (on whichever
  // connection comes first) are cut after `after_bytes` bytes, and both sides of that
  // connection are reset (SO_LINGER 0: RST, not FIN). One reset per call; a second call
  // before the first fired replaces it.
  void reset_mid_reply(std::size_t after_bytes);
  // Latency 0, bandwidth 0, refuse and half-open off. Frozen connections stay frozen; an
  // armed reset stays armed.
  void heal();

  // Connections accepted so far (refused ones included).
  std::size_t accepted() const;
  // Connections open now (frozen ones included; refused ones never count).
  std::size_t open_connections() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace tiercache::testing
