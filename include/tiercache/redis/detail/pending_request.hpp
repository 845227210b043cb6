// A request on its way through a connection, and the adapters that complete it through
// an Asio completion handler or a blocking wait. Internal: not part of the public API.
//
// Ownership and threads: a PendingRequest is created by the calling thread, handed to the
// connection (std::shared_ptr), and from then on its fields are touched only on the
// connection's strand. complete() is called exactly once: on the strand, or on the calling
// thread if the connection refuses the request outright (closed, queue full). It must not
// block and must not throw.

#pragma once

#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/prefer.hpp>
#include <asio/system_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "tiercache/redis/errors.hpp"
#include "tiercache/redis/reply.hpp"

namespace tiercache::redis::detail {

using RequestClock = std::chrono::steady_clock;

class PendingRequest {
 public:
  PendingRequest(std::string payload, std::size_t commands, RequestClock::time_point deadline)
      : payload(std::move(payload)), commands(commands), deadline(deadline) {}
  virtual ~PendingRequest() = default;
  PendingRequest(const PendingRequest&) = delete;
  PendingRequest& operator=(const PendingRequest&) = delete;

  // Delivers the outcome: `error`, or else the replies received (add_reply), in order.
  virtual void complete(std::optional<Error> error) noexcept = 0;

  // Strand: one more reply. The first is kept inline (a single command needs no vector).
  void add_reply(Reply&& reply) {
    if (received++ == 0) {
      first_reply = std::move(reply);
    } else {
      more_replies.push_back(std::move(reply));
    }
  }
  // The replies received, in order, moved out.
  std::vector<Reply> take_replies() {
    std::vector<Reply> all;
    all.reserve(received);
    if (received > 0) all.push_back(std::move(first_reply));
    for (Reply& reply : more_replies) all.push_back(std::move(reply));
    return all;
  }
  // `error`, or the replies.
  Result<std::vector<Reply>> outcome(std::optional<Error> error) {
    if (error) return std::move(*error);
    return take_replies();
  }
  // A single command's: `error`, or its reply, an error reply becoming kServerError.
  Result<Reply> single_outcome(std::optional<Error> error) {
    if (error) return std::move(*error);
    if (received == 0) return make_error(Errc::kProtocol, "no reply");
    if (first_reply.is_error())
      return make_error(Errc::kServerError, std::move(first_reply.string));
    return std::move(first_reply);
  }

  // The encoded commands (RESP arrays), written as is.
  std::string payload;
  // How many replies complete the request.
  std::size_t commands;
  // When the caller stops waiting: the request fails with kTimeout (or kConnection when it
  // could not even be written because the server is unreachable).
  RequestClock::time_point deadline;

  // Connection state (strand only).
  std::size_t received = 0;
  Reply first_reply;
  std::vector<Reply> more_replies;
  bool written = false;
  bool finished = false;              // complete() was called
  bool internal = false;              // sent by the connection itself (handshake, health PING)
  std::size_t heap_index = SIZE_MAX;  // position in the connection's deadline heap
};

// A single command's outcome: its reply, with an error reply turned into kServerError.
inline Result<Reply> single_reply(Result<std::vector<Reply>> result) {
  if (!result.ok()) return std::move(result).error();
  std::vector<Reply>& replies = result.value();
  if (replies.empty()) return make_error(Errc::kProtocol, "no reply");
  Reply& reply = replies.front();
  if (reply.is_error()) return make_error(Errc::kServerError, std::move(reply.string));
  return std::move(reply);
}

// Completes through an Asio handler of signature void(Result<T>), T = Reply (single command:
// kSingle) or std::vector<Reply>. A handler with an associated executor (a strand, a
// coroutine's executor, ...) runs there, and that executor is kept busy (outstanding work)
// while the request waits. A handler without one (a plain callback, asio::use_future) runs
// directly on the connection's I/O thread when the reply arrives: no extra hop. complete()
// is never called from inside the initiating function (refusals are posted).
template <class Handler, class Executor, bool kSingle>
class HandlerRequest final : public PendingRequest {
  // Handlers that did not choose an executor: the probe executor comes back.
  static constexpr bool kInline =
      std::is_same_v<asio::associated_executor_t<Handler, asio::system_executor>,
                     asio::system_executor>;
  using Work = std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler, Executor>>(),
      asio::execution::outstanding_work.tracked))>;

 public:
  HandlerRequest(std::string payload, std::size_t commands, RequestClock::time_point deadline,
                 Handler handler, const Executor& fallback)
      : PendingRequest(std::move(payload), commands, deadline),
        handler_(std::move(handler)),
        work_(make_work(handler_, fallback)) {}

  void complete(std::optional<Error> error) noexcept override {
    auto result = [&] {
      if constexpr (kSingle) {
        return single_outcome(std::move(error));
      } else {
        return outcome(std::move(error));
      }
    }();
    if constexpr (kInline) {
      std::move(handler_)(std::move(result));
    } else {
      auto work = std::move(work_);
      asio::dispatch(work, [h = std::move(handler_), r = std::move(result)]() mutable {
        std::move(h)(std::move(r));
      });
    }
  }

  // Whether the handler runs directly on the I/O thread (then `fallback` is not used).
  static constexpr bool runs_inline() { return kInline; }

 private:
  static auto make_work(const Handler& handler, const Executor& fallback) {
    if constexpr (kInline) {
      return std::monostate{};
    } else {
      return asio::prefer(asio::get_associated_executor(handler, fallback),
                          asio::execution::outstanding_work.tracked);
    }
  }

  Handler handler_;
  std::conditional_t<kInline, std::monostate, Work> work_;
};

// Completes through a plain callback, on the strand (the connection's own requests).
class CallbackRequest final : public PendingRequest {
 public:
  using Callback = std::function<void(Result<std::vector<Reply>>)>;
  CallbackRequest(std::string payload, std::size_t commands, RequestClock::time_point deadline,
                  Callback callback)
      : PendingRequest(std::move(payload), commands, deadline), callback_(std::move(callback)) {
    internal = true;
  }
  void complete(std::optional<Error> error) noexcept override {
    auto callback = std::move(callback_);
    callback(outcome(std::move(error)));
  }

 private:
  Callback callback_;
};

}  // namespace tiercache::redis::detail
