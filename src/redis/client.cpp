#include "tiercache/redis/client.hpp"

#include <openssl/evp.h>

#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "redis/connection.hpp"
#include "redis/sync_request.hpp"

namespace tiercache::redis {

namespace detail {

// Delivers pushes to ClientConfig::push_handler on a thread of its own. enqueue() (the I/O
// thread) never blocks: a full queue drops the push and counts it.
class PushDispatcher {
 public:
  PushDispatcher(std::function<void(Reply&&)> handler, std::size_t max_queued)
      : handler_(std::move(handler)), max_queued_(max_queued), thread_([this] { run(); }) {}
  ~PushDispatcher() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  PushDispatcher(const PushDispatcher&) = delete;
  PushDispatcher& operator=(const PushDispatcher&) = delete;

  void enqueue(Reply&& push) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= max_queued_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.push_back(std::move(push));
    }
    wake_.notify_one();
  }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      Reply push = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      handler_(std::move(push));
      lock.lock();
    }
  }

  std::function<void(Reply&&)> handler_;
  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Reply> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> dropped_{0};
  std::thread thread_;  // last: starts once the rest is built
};

// What a Client owns: the io_context and thread (if its own), the TLS context and the
// connections. Shared with nothing else; connections outlive it only through their handlers.
class ClientCore {
 public:
  ClientCore(ClientConfig config, asio::io_context* external)
      : config_(std::move(config)),
        owned_io_(external == nullptr ? std::make_unique<asio::io_context>(1) : nullptr),
        io_(external != nullptr ? *external : *owned_io_) {
    std::shared_ptr<asio::ssl::context> tls;
    if (config_.use_tls) {
      Result<std::shared_ptr<asio::ssl::context>> made = make_tls_context(config_);
      if (made.ok()) {
        tls = std::move(made.value());
      } else {
        config_error_ = std::move(made).error();  // every request fails with it
      }
    }
    const std::size_t count = config_error_ ? 0 : std::max<std::size_t>(1, config_.connections);
    std::random_device random;
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint64_t seed = (std::uint64_t{random()} << 32) ^ random();
      connections_.push_back(std::make_shared<Connection>(io_, config_, tls, seed));
    }
    if (config_.push_handler && !connections_.empty()) {
      pushes_ = std::make_shared<PushDispatcher>(config_.push_handler, config_.max_queued_pushes);
      for (auto& connection : connections_) {
        // Shared: with a caller's io_context a connection may outlive the client.
        connection->set_push_handler(
            [pushes = pushes_](Reply&& push) { pushes->enqueue(std::move(push)); });
      }
    }
    for (auto& connection : connections_) connection->start();
    if (owned_io_) {
      work_.emplace(owned_io_->get_executor());
      thread_ = std::thread([this] { owned_io_->run(); });
    }
  }

  ~ClientCore() {
    for (auto& connection : connections_) connection->close();
    if (owned_io_) {
      work_.reset();
      if (thread_.joinable()) thread_.join();
    }
  }

  void submit(std::shared_ptr<PendingRequest> request) {
    if (config_error_ || request->commands == 0) {
      // Completed at once, but never inside the caller's initiating function.
      request->finished = true;
      asio::post(executor(), [request = std::move(request), error = config_error_]() mutable {
        request->complete(std::move(error));
      });
      return;
    }
    const std::size_t n = connections_.size();
    Connection& connection = n == 1
                                 ? *connections_.front()
                                 : *connections_[next_.fetch_add(1, std::memory_order_relaxed) % n];
    connection.submit(std::move(request));
  }

  // The blocking fast path on the first idle connection, if any (see Connection::try_direct).
  std::optional<Result<std::vector<Reply>>> try_direct(std::string_view payload,
                                                       std::size_t commands,
                                                       RequestClock::time_point deadline) {
    if (config_error_ || commands == 0) return std::nullopt;
    for (auto& connection : connections_) {
      if (auto result = connection->try_direct(payload, commands, deadline)) return result;
    }
    return std::nullopt;
  }

  bool connected() const {
    for (const auto& connection : connections_) {
      if (connection->ready()) return true;
    }
    return false;
  }

  ClientStats stats() const {
    ClientStats s;
    for (const auto& connection : connections_) connection->counters().add_to(s);
    if (pushes_) s.pushes_dropped = pushes_->dropped();
    return s;
  }

  asio::any_io_executor executor() const {
    if (!connections_.empty()) return connections_.front()->strand();
    return io_.get_executor();
  }

  const ClientConfig& config() const { return config_; }

 private:
  ClientConfig config_;
  std::unique_ptr<asio::io_context> owned_io_;
  asio::io_context& io_;
  std::optional<Error> config_error_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<PushDispatcher> pushes_;  // with ClientConfig::push_handler
  std::atomic<std::size_t> next_{0};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
};

}  // namespace detail

namespace {

// How long a blocking call waits past its deadline for the connection to report it. The
// connection enforces deadlines itself; this only bounds the wait if its io_context is not
// running.
constexpr std::chrono::milliseconds kBlockingBackstop{250};

std::string sha1_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

}  // namespace

Script::Script(std::string source) : source_(std::move(source)), sha1_(sha1_hex(source_)) {}

Client::Client(ClientConfig config)
    : core_(std::make_shared<detail::ClientCore>(std::move(config), nullptr)) {}

Client::Client(ClientConfig config, asio::io_context& io)
    : core_(std::make_shared<detail::ClientCore>(std::move(config), &io)) {}

Client::~Client() = default;

void Client::submit(std::shared_ptr<detail::PendingRequest> request) {
  core_->submit(std::move(request));
}

detail::RequestClock::time_point Client::deadline(const CallOptions& options) const {
  return detail::RequestClock::now() + options.timeout.value_or(core_->config().command_timeout);
}

Result<std::vector<Reply>> Client::exec(const Request& request, CallOptions options) {
  const auto until = deadline(options);
  if (auto direct = core_->try_direct(request.payload(), request.size(), until)) {
    return std::move(*direct);
  }
  auto pending =
      std::make_shared<detail::SyncRequest>(std::string(request.payload()), request.size(), until);
  submit(pending);
  return pending->wait_until(until + kBlockingBackstop);
}

Result<Reply> Client::exec_one(const Request& request, CallOptions options) {
  return detail::single_reply(exec(request, options));
}

Result<Reply> Client::eval(const Script& script, const std::vector<std::string_view>& keys,
                           const std::vector<std::string_view>& args, CallOptions options) {
  const auto make = [&](std::string_view command, std::string_view body) {
    Request request;
    std::vector<std::string_view> words;
    words.reserve(keys.size() + args.size() + 3);
    words.push_back(body);
    const std::string key_count = std::to_string(keys.size());
    words.push_back(key_count);
    words.insert(words.end(), keys.begin(), keys.end());
    words.insert(words.end(), args.begin(), args.end());
    request.push_range(command, words);
    return request;
  };
  Result<Reply> reply = exec_one(make("EVALSHA", script.sha1()), options);
  if (!reply.ok() && reply.error().code == Errc::kServerError &&
      reply.error().message.starts_with("NOSCRIPT")) {
    return exec_one(make("EVAL", script.source()), options);
  }
  return reply;
}

Result<void> Client::ping(CallOptions options) {
  Request request;
  request.push("PING");
  Result<Reply> reply = exec_one(request, options);
  if (!reply.ok()) return std::move(reply).error();
  return {};
}

bool Client::connected() const { return core_->connected(); }
ClientStats Client::stats() const { return core_->stats(); }
const ClientConfig& Client::config() const { return core_->config(); }
asio::any_io_executor Client::executor() const { return core_->executor(); }

}  // namespace tiercache::redis
