// FakeRedisServer: a scripted TCP server on 127.0.0.1 that stands in for Redis in tests of
// what the client does with replies no real server sends: malformed or oversized replies, a
// server that hangs, trickles bytes, floods, or drops the connection.
//
// It accepts any number of connections. On each, it splits what it receives into commands
// (RESP arrays "*N\r\n$len\r\n...", or inline commands ending in "\n"), and for every complete
// command calls `respond` with that command's bytes and sends back what it returns, as the
// options say (slowly, followed by a flood, then closing the connection...). Pipelined
// commands get one reply each, in order.
//
// Threads: one accepts, one serves each connection. `respond` is called on those threads,
// but never concurrently (calls are serialised), so it may use plain captured state. The
// destructor closes every connection and joins every thread, even while a connection is
// hanging or flooding. The accessors are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tiercache::test {

struct FakeRedisServerOptions {
  // Gets the bytes of one received command; returns the bytes to send back (may be empty).
  std::function<std::string(std::string_view command)> respond;
  // Close the connection after the reply (and the flood, if any) to the first command.
  bool close_after_reply = false;
  // Never reply: read and discard everything, keep the connection open (a hung server).
  // `respond` is not called.
  bool never_reply = false;
  // When not zero: send every reply in pieces of this many bytes, waiting
  // `slow_chunk_interval` before each piece after the first.
  std::size_t slow_chunk_bytes = 0;
  std::chrono::milliseconds slow_chunk_interval{10};
  // After each reply, send this many bytes of `flood_byte` (a huge reply: e.g. respond with
  // "$999999999999\r\n" or "+" and let the flood follow). max() floods until the client closes
  // the connection or the server is destroyed.
  std::size_t flood_bytes = 0;
  char flood_byte = 'x';
};

// Options of a server that answers every command with `reply`.
FakeRedisServerOptions always_reply(std::string reply);

class FakeRedisServer {
 public:
  // Starts listening on a free port of 127.0.0.1. Throws std::system_error on failure.
  explicit FakeRedisServer(FakeRedisServerOptions options);
  FakeRedisServer(const FakeRedisServer&) = delete;
  FakeRedisServer& operator=(const FakeRedisServer&) = delete;
  // Closes the listening socket and every connection; joins all threads.
  ~FakeRedisServer();

  std::uint16_t port() const { return port_; }
  // "redis://127.0.0.1:<port>".
  std::string url() const;

  // Connections accepted so far, and those still open (on the server side).
  std::size_t connections_accepted() const;
  std::size_t open_connections() const;
  // Complete commands received so far, on all connections (never_reply included).
  std::size_t commands_received() const;

  // Wait until at least `count` connections were accepted / at most `count` are open / at
  // least `count` commands were received; false if that did not happen within `timeout`.
  bool wait_for_connections_accepted(std::size_t count, std::chrono::milliseconds timeout) const;
  bool wait_for_open_connections_at_most(std::size_t count,
                                         std::chrono::milliseconds timeout) const;
  bool wait_for_commands_received(std::size_t count, std::chrono::milliseconds timeout) const;

  // Closes every open connection now (as a server restart or a proxy would); the server keeps
  // accepting new ones.
  void close_all_connections();

  // The arguments of one command as `respond` gets it: {"SET", "k", "v"} for
  // "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n" or for "SET k v\r\n" (inline, split on
  // spaces). Empty if `command` is not one complete command.
  static std::vector<std::string> arguments(std::string_view command);

 private:
  struct Connection {
    int fd = -1;
    bool done = false;  // its thread has finished; join it
    std::thread thread;
  };

  void accept_loop();
  void serve(Connection& connection);
  // Sends `bytes` as the options say; false if the connection is gone or we are stopping.
  bool send_reply(int fd, std::string_view bytes);
  bool send_flood(int fd);
  // Sends all of `bytes`, waiting for the socket as needed; false if the connection is gone
  // or we are stopping.
  bool send_all(int fd, std::string_view bytes);
  // Waits until `fd` is ready for `events` (or has an error); false if we are stopping.
  bool wait_ready(int fd, short events);
  // Waits for `duration`; false if we are stopping.
  bool pause_for(std::chrono::milliseconds duration);
  void add_commands_received(std::size_t count);
  // Joins the threads of finished connections. REQUIRES: mutex_ held.
  void reap_finished_locked();

  FakeRedisServerOptions options_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd, readable once the server stops
  std::uint16_t port_ = 0;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::list<Connection> connections_;  // stable addresses: threads refer to their entry
  std::size_t connections_accepted_ = 0;
  std::size_t open_connections_ = 0;
  std::size_t commands_received_ = 0;
  std::mutex respond_mutex_;  // serialises calls to options_.respond

  std::thread accept_thread_;
};

}  // namespace tiercache::test
