// Client: tiercache's Redis client for one server (standalone Redis, or one node of a
// cluster for the routing layer above it).
//
// Thread-safety: every method may be called from any number of threads at once.
// Connection: one multiplexed connection (ClientConfig::connections = 1, the default)
// carries the commands of all threads. Commands submitted while a write is in progress are
// queued and written together in the next write (auto-pipelining), and replies are matched
// to requests in order; a request of several commands (a pipeline, or MULTI ... EXEC) is
// written contiguously and completes when its last reply arrives.
// I/O runs on an io_context: one the client owns and runs on its own thread (first
// constructor), or the caller's (second constructor; the caller runs it).
// Failures are values (Result, see errors.hpp), never exceptions:
//   - every request completes by its deadline (ClientConfig::command_timeout unless the
//     call gives one): kTimeout if the server did not answer, kConnection if it could not
//     be reached at all;
//   - a request already written when the connection drops fails with kConnection and is
//     never retried (the server may have run it); requests not yet written wait for the
//     reconnection, each until its deadline (bounded by max_pending_requests, kQueueFull);
//   - a connection that stops answering while replies are awaited (a hung server or proxy)
//     is recycled even while traffic flows (ClientConfig::recycle_after_timeouts,
//     stuck_reply_limit): closed, its awaited requests failed with kConnection, replaced;
//   - reconnection runs in the background with exponential backoff and jitter;
//     credentials are asked from ClientConfig::credentials_provider at every connect;
//   - a reply that is not valid RESP or breaks a limit (ClientConfig::limits) is a
//     kProtocol error: the connection is closed and its pending requests fail;
//   - an error *reply* ("ERR ...", "WRONGTYPE ...") of a single command is kServerError with
//     Redis's message; inside a pipeline it is a Reply of an error type, in its place.
// Destruction fails the requests still pending with kClosed and waits for the client's
// own thread; with a caller's io_context, handlers still queued there run later with
// kClosed and must not use the destroyed client.

#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tiercache/redis/command.hpp"
#include "tiercache/redis/config.hpp"
#include "tiercache/redis/detail/pending_request.hpp"
#include "tiercache/redis/errors.hpp"
#include "tiercache/redis/reply.hpp"

namespace tiercache::redis {

// Per-call options.
struct CallOptions {
  // How long the call may take, from submission to the last reply. Unset: the client's
  // ClientConfig::command_timeout.
  std::optional<std::chrono::milliseconds> timeout;
};

// A Lua script run with EVALSHA; the client falls back to EVAL when the server does not
// know the script yet (NOSCRIPT), after which EVALSHA works again.
class Script {
 public:
  explicit Script(std::string source);
  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // lower-case hex

 private:
  std::string source_;
  std::string sha1_;
};

// Counters since the client was created.
struct ClientStats {
  std::uint64_t requests = 0;           // requests submitted (a pipeline counts once)
  std::uint64_t commands = 0;           // commands submitted
  std::uint64_t writes = 0;             // socket writes: commands / writes = pipelining at work
  std::uint64_t timeouts = 0;           // requests failed with kTimeout
  std::uint64_t connection_errors = 0;  // requests failed with kConnection
  std::uint64_t connects = 0;           // successful (re)connections, handshake included
  std::uint64_t connect_failures = 0;   // failed connection attempts
  std::uint64_t protocol_errors = 0;    // connections closed because of bad replies
  std::uint64_t push_messages = 0;      // RESP3 pushes received
  std::uint64_t pushes_dropped = 0;     // not delivered: the push handler's queue was full
  std::uint64_t spin_waits = 0;  // blocking calls that polled for their reply before sleeping
  std::uint64_t spin_hits = 0;   // ... and got it without sleeping (ClientConfig::spin_wait)
  // Connections closed and replaced because they stopped answering while replies were awaited
  // (ClientConfig::recycle_after_timeouts, stuck_reply_limit).
  std::uint64_t stuck_recycles = 0;
};

namespace detail {
class ClientCore;
}

class Client {
 public:
  // A client with its own io_context and I/O thread. Connects in the background right
  // away; the first commands wait for the connection (up to their deadline).
  explicit Client(ClientConfig config);
  // A client on the caller's io_context, which the caller runs (on any number of threads).
  Client(ClientConfig config, asio::io_context& io);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- blocking calls (any thread; never past their deadline) -------------------------------

  // One command, e.g. client.command("SET", key, value, "PX", 1500). Arguments are string-like
  // or integers. An error reply is Errc::kServerError.
  template <class... Args>
  Result<Reply> command(Args&&... args) {
    Request request;
    request.push(std::forward<Args>(args)...);
    return exec_one(request, {});
  }
  // The first command of `request` only if it holds one; see exec() for several.
  Result<Reply> exec_one(const Request& request, CallOptions options = {});
  // All commands of `request`, written together; one reply per command, in order.
  Result<std::vector<Reply>> exec(const Request& request, CallOptions options = {});

  // EVALSHA script (NOSCRIPT -> EVAL). Keys and args as EVAL takes them.
  Result<Reply> eval(const Script& script, const std::vector<std::string_view>& keys,
                     const std::vector<std::string_view>& args, CallOptions options = {});

  // PING; ok when the server answered.
  Result<void> ping(CallOptions options = {});

  // ---- asynchronous calls (Asio completion tokens) ---------------------------------------

  // Completes with void(Result<std::vector<Reply>>): callbacks, asio::use_future,
  // asio::use_awaitable, ... The handler runs on its associated executor, else on the
  // client's (its I/O thread).
  template <class CompletionToken>
  auto async_exec(const Request& request, CompletionToken&& token, CallOptions options = {}) {
    // The payload is copied now: a deferred token (use_awaitable) may start the operation
    // after `request` is gone.
    return asio::async_initiate<CompletionToken, void(Result<std::vector<Reply>>)>(
        [this](auto handler, std::string payload, std::size_t commands,
               detail::RequestClock::time_point deadline) {
          using R =
              detail::HandlerRequest<std::decay_t<decltype(handler)>, asio::any_io_executor, false>;
          submit(std::make_shared<R>(std::move(payload), commands, deadline, std::move(handler),
                                     R::runs_inline() ? asio::any_io_executor() : executor()));
        },
        token, std::string(request.payload()), request.size(), deadline(options));
  }

  // One command: void(Result<Reply>), an error reply being kServerError.
  template <class CompletionToken>
  auto async_exec_one(const Request& request, CompletionToken&& token, CallOptions options = {}) {
    // The payload is copied now: a deferred token (use_awaitable) may start the operation
    // after `request` is gone.
    return asio::async_initiate<CompletionToken, void(Result<Reply>)>(
        [this](auto handler, std::string payload, std::size_t commands,
               detail::RequestClock::time_point deadline) {
          using R =
              detail::HandlerRequest<std::decay_t<decltype(handler)>, asio::any_io_executor, true>;
          submit(std::make_shared<R>(std::move(payload), commands, deadline, std::move(handler),
                                     R::runs_inline() ? asio::any_io_executor() : executor()));
        },
        token, std::string(request.payload()), request.size(), deadline(options));
  }

  // ---- state ------------------------------------------------------------------------------

  // True while the connection is up and its handshake done.
  bool connected() const;
  ClientStats stats() const;
  const ClientConfig& config() const;
  // The executor completions run on by default (the client's strand).
  asio::any_io_executor executor() const;

 private:
  void submit(std::shared_ptr<detail::PendingRequest> request);
  detail::RequestClock::time_point deadline(const CallOptions& options) const;

  std::shared_ptr<detail::ClientCore> core_;
};

}  // namespace tiercache::redis
