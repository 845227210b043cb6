#include "redis/connection.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "redis/time_left.hpp"

namespace tiercache::redis::detail {

namespace {

// Bytes asked of the socket per read.
constexpr std::size_t kReadChunk = 64 * 1024;
// The connection compacts `unwritten_` (drops requests that timed out before being written)
// once it holds this many more entries than there are pending requests.
constexpr std::size_t kUnwrittenSlack = 1024;
// ClientConfig::stuck_reply_limit is capped here, so that adding it to a time never overflows.
constexpr std::chrono::hours kLongestStuckReplyLimit{24 * 365};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Error replies to HELLO/AUTH that mean "these credentials are not accepted".
bool is_auth_error(std::string_view line) {
  return starts_with(line, "WRONGPASS") || starts_with(line, "NOAUTH") ||
         starts_with(line, "NOPERM") || starts_with(line, "ERR invalid password") ||
         starts_with(line, "ERR AUTH") || starts_with(line, "ERR Client sent AUTH");
}

// Error replies to HELLO that mean "this server does not speak RESP3".
bool is_no_resp3(std::string_view line) {
  return starts_with(line, "NOPROTO") || starts_with(line, "ERR unknown command");
}

bool is_tls_error(const std::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() ||
         ec == asio::ssl::error::stream_truncated;
}

std::string milliseconds_text(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

void ConnectionCounters::add_to(ClientStats& s) const {
  s.requests += requests.load(std::memory_order_relaxed);
  s.commands += commands.load(std::memory_order_relaxed);
  s.writes += writes.load(std::memory_order_relaxed);
  s.timeouts += timeouts.load(std::memory_order_relaxed);
  s.connection_errors += connection_errors.load(std::memory_order_relaxed);
  s.connects += connects.load(std::memory_order_relaxed);
  s.connect_failures += connect_failures.load(std::memory_order_relaxed);
  s.protocol_errors += protocol_errors.load(std::memory_order_relaxed);
  s.push_messages += push_messages.load(std::memory_order_relaxed);
  s.spin_waits += spin_waits.load(std::memory_order_relaxed);
  s.spin_hits += spin_hits.load(std::memory_order_relaxed);
  s.stuck_recycles += stuck_recycles.load(std::memory_order_relaxed);
}

Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const ClientConfig& config) {
  const TlsOptions& tls = config.tls;
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3);
  const int min_version = tls.min_version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(context->native_handle(), min_version);
  std::error_code ec;
  auto failed = [&](std::string what) {
    return make_error(Errc::kTls, std::move(what) + ": " + ec.message());
  };
  if (!tls.ca_file.empty()) {
    context->load_verify_file(tls.ca_file, ec);
    if (ec) return failed("cannot load CA file " + tls.ca_file);
  }
  if (!tls.ca_dir.empty()) {
    context->add_verify_path(tls.ca_dir, ec);
    if (ec) return failed("cannot use CA directory " + tls.ca_dir);
  }
  if (tls.ca_file.empty() && tls.ca_dir.empty()) {
    context->set_default_verify_paths(ec);
    if (ec) return failed("cannot load the system's CA certificates");
  }
  if (!tls.cert_file.empty()) {
    context->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) return failed("cannot load client certificate " + tls.cert_file);
  }
  if (!tls.key_file.empty()) {
    context->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
    if (ec) return failed("cannot load client key " + tls.key_file);
  }
  context->set_verify_mode(tls.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return context;
}

Connection::Connection(asio::io_context& io, const ClientConfig& config,
                       std::shared_ptr<asio::ssl::context> tls, std::uint64_t seed)
    : config_(config),
      strand_(asio::make_strand(io)),
      tls_context_(std::move(tls)),
      resolver_(strand_),
      connect_timer_(strand_),
      reconnect_timer_(strand_),
      deadline_timer_(strand_),
      health_timer_(strand_),
      stuck_timer_(strand_),
      backoff_(config.reconnect_min_delay, config.reconnect_max_delay, config.reconnect_jitter,
               seed),
      parser_(config.limits),
      spin_policy_(config.spin_wait) {}

Connection::~Connection() = default;

void Connection::set_push_handler(PushHandler handler) { push_handler_ = std::move(handler); }
void Connection::set_subscriber_mode() { subscriber_mode_ = true; }
void Connection::set_ready_hook(ReadyHook hook) { ready_hook_ = std::move(hook); }

void Connection::start() {
  asio::post(strand_, [self = shared_from_this()] {
    if (self->state_ == State::kDisconnected) self->connect();
  });
}

// ---- submission (any thread) -------------------------------------------------------------------

void Connection::submit(std::shared_ptr<PendingRequest> request) {
  if (strand_.running_in_this_thread()) {
    // From a completion handler of this connection (a callback issuing the next command):
    // no lock, no post; the write goes out with the rest of the batch.
    submit_on_strand(std::move(request));
    return;
  }
  std::optional<Error> refused;
  bool post = false;
  {
    std::lock_guard lock(incoming_mutex_);
    if (closed_) {
      refused = make_error(Errc::kClosed, "the client is closed");
    } else if (pending_.load(std::memory_order_relaxed) >= config_.max_pending_requests) {
      refused = make_error(Errc::kQueueFull, std::to_string(config_.max_pending_requests) +
                                                 " requests already pending");
    } else {
      pending_.fetch_add(1, std::memory_order_relaxed);
      incoming_.push_back(std::move(request));
      post = !std::exchange(flush_posted_, true);
    }
  }
  if (refused) {
    refuse(std::move(request), std::move(*refused));  // NOLINT(bugprone-use-after-move): not moved
    return;
  }
  if (post) asio::post(strand_, [self = shared_from_this()] { self->flush_incoming(); });
}

void Connection::refuse(std::shared_ptr<PendingRequest> request, Error error) {
  request->finished = true;
  // Never inside the caller's initiating function: a callback may not expect that.
  asio::post(strand_, [request = std::move(request), error = std::move(error)]() mutable {
    request->complete(std::move(error));
  });
}

void Connection::close() {
  {
    std::lock_guard lock(incoming_mutex_);
    if (std::exchange(closed_, true)) return;
  }
  asio::post(strand_, [self = shared_from_this()] { self->close_now(); });
}

// ---- the blocking fast path (calling thread) ----------------------------------------------------

namespace {

// Waits until `fd` is ready for `events` or `deadline` passes; false on timeout.
bool wait_fd(int fd, short events, RequestClock::time_point deadline) {
  for (;;) {
    const std::optional<timespec> timeout = time_left(deadline);
    if (!timeout) return false;
    pollfd p{};
    p.fd = fd;
    p.events = events;
    const int ready = ::ppoll(&p, 1, &*timeout, nullptr);
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return true;  // the next send/recv reports the error
  }
}

// Requests queued by completion handlers during a read that are written before the read's
// remaining replies are handed out (see on_read()). With 64 in flight, 4 to 16 all measured
// 0.85-0.88x of redis-benchmark -P 64 against 0.73-0.75x when writing only after the read.
constexpr std::size_t kEarlyWrite = 16;

}  // namespace

std::optional<Result<std::vector<Reply>>> Connection::try_direct(
    std::string_view payload, std::size_t commands, RequestClock::time_point deadline) {
  int fd = -1;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(owner_mutex_);
    if (!direct_open_ || direct_busy_ || pending_.load(std::memory_order_relaxed) != 0) {
      return std::nullopt;
    }
    direct_open_ = false;
    direct_busy_ = true;
    fd = direct_fd_;
    generation = direct_generation_;
  }
  DirectOutcome outcome;
  // Anything waiting on an idle socket (most likely the server closing it) is the strand's
  // to read; this call goes the normal way.
  pollfd p{};
  p.fd = fd;
  p.events = POLLIN;
  if (::poll(&p, 1, 0) != 0) {
    outcome.needs_read = true;
    hand_back(generation, std::move(outcome));
    return std::nullopt;
  }
  counters_.requests.fetch_add(1, std::memory_order_relaxed);
  counters_.commands.fetch_add(commands, std::memory_order_relaxed);
  counters_.writes.fetch_add(1, std::memory_order_relaxed);

  auto fail = [&](Errc code, std::string what) -> Result<std::vector<Reply>> {
    Error error = make_error(code, config_.endpoint() + ": " + std::move(what));
    if (code == Errc::kTimeout) {
      counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
    } else if (code == Errc::kConnection) {
      counters_.connection_errors.fetch_add(1, std::memory_order_relaxed);
    } else if (code == Errc::kProtocol) {
      counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    }
    hand_back(generation, std::move(outcome));
    return error;
  };

  // Write it all. A partial write that cannot finish by the deadline leaves half a command on
  // the connection: it must be dropped.
  std::size_t sent = 0;
  while (sent < payload.size()) {
    const ssize_t n = ::send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        outcome.drop = make_error(Errc::kTimeout, "a write timed out half-way");
        return fail(Errc::kTimeout, "write timed out");
      }
    } else {
      const std::string why = std::strerror(errno);
      outcome.drop = make_error(Errc::kConnection, "write failed: " + why);
      return fail(Errc::kConnection, "write failed: " + why);
    }
  }

  // Read until every command has its reply. The socket is non-blocking: while spinning, a
  // read that finds nothing yields the core (to the server, when it runs on this one) and is
  // retried until the spin ends; then the call sleeps in ppoll.
  std::vector<Reply> replies;
  replies.reserve(commands);
  std::vector<char>& buffer = *read_buffer_;
  const bool spun = spin_policy_.spin_next();
  const RequestClock::time_point written = RequestClock::now();
  outcome.written = written;
  const RequestClock::time_point spin_until = std::min(deadline, written + spin_policy_.budget());
  bool spinning = spun;
  if (spun) counters_.spin_waits.fetch_add(1, std::memory_order_relaxed);
  // Without a spin the reply cannot be there yet: wait first rather than try a read that fails.
  bool wait_first = !spun;
  while (replies.size() < commands) {
    if (std::exchange(wait_first, false) && !wait_fd(fd, POLLIN, deadline)) {
      outcome.unanswered = commands - replies.size();
      return fail(Errc::kTimeout, "no reply by the deadline");
    }
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (spinning && RequestClock::now() < spin_until) {
        ::sched_yield();
        continue;
      }
      spinning = false;
      if (!wait_fd(fd, POLLIN, deadline)) {
        outcome.unanswered = commands - replies.size();
        return fail(Errc::kTimeout, "no reply by the deadline");
      }
      continue;
    }
    if (n <= 0) {
      const std::string why = n == 0 ? "the server closed the connection"
                                     : std::string("read failed: ") + std::strerror(errno);
      outcome.drop = make_error(Errc::kConnection, why);
      return fail(Errc::kConnection, "connection lost before the reply (" + why + ")");
    }
    touch_read();
    std::span<const char> data(buffer.data(), static_cast<std::size_t>(n));
    while (!data.empty()) {
      std::size_t used = 0;
      const RespParser::Status status = parser_.parse(data, used);
      data = data.subspan(used);
      if (status == RespParser::Status::kNeedMore) break;
      if (status == RespParser::Status::kError) {
        outcome.drop = parser_.error();
        return fail(Errc::kProtocol, parser_.error().message);
      }
      Reply reply = parser_.take_reply();
      if (reply.type == ReplyType::kPush) {
        counters_.push_messages.fetch_add(1, std::memory_order_relaxed);
        outcome.pushes.push_back(std::move(reply));
      } else if (replies.size() < commands) {
        replies.push_back(std::move(reply));
      } else {
        outcome.drop = make_error(Errc::kProtocol, "a reply nobody asked for");
        return fail(Errc::kProtocol, "a reply nobody asked for");
      }
    }
  }
  if (spinning) counters_.spin_hits.fetch_add(1, std::memory_order_relaxed);
  spin_policy_.record(spun, RequestClock::now() - written);
  hand_back(generation, std::move(outcome));
  return Result<std::vector<Reply>>(std::move(replies));
}

void Connection::hand_back(std::uint64_t generation, DirectOutcome outcome) {
  bool post =
      outcome.needs_read || outcome.drop || outcome.unanswered > 0 || !outcome.pushes.empty();
  {
    std::lock_guard lock(owner_mutex_);
    direct_busy_ = false;
    post = post || std::exchange(strand_waiting_, false) || generation != direct_generation_;
    // Still idle and nobody else waits: the next blocking call may go straight on.
    if (!post) direct_open_ = true;
  }
  if (post) {
    asio::post(strand_,
               [self = shared_from_this(), generation, outcome = std::move(outcome)]() mutable {
                 self->after_direct(generation, std::move(outcome));
               });
  }
}

void Connection::after_direct(std::uint64_t generation, DirectOutcome outcome) {
  if (generation != generation_) {
    // close_now() ran while the caller held the socket and left the closing to us.
    if (state_ == State::kClosed) close_socket();
    return;
  }
  for (Reply& push : outcome.pushes) {
    if (push_handler_) push_handler_(std::move(push));  // counted by try_direct()
  }
  if (outcome.drop) {
    drop(*outcome.drop);
    return;
  }
  if (outcome.unanswered > 0) {
    // The replies the caller gave up on: matched and dropped when they come.
    auto late = std::make_shared<CallbackRequest>(std::string(), outcome.unanswered,
                                                  RequestClock::time_point::max(),
                                                  [](const Result<std::vector<Reply>>&) {});
    late->written = true;
    late->finished = true;
    await(std::move(late), outcome.written);
    ++timeouts_in_a_row_;  // the caller timed out with nothing owed before its request
    if (recycle_after_timeouts_reached() &&
        recycle(std::to_string(timeouts_in_a_row_) + " requests in a row timed out")) {
      return;
    }
  }
  if (outcome.needs_read) probing_read_ = true;
  if (outcome.needs_read || keep_reading()) ensure_reading();
  write_more();
  maybe_open_direct();
}

void Connection::submit_on_strand(std::shared_ptr<PendingRequest> request) {
  std::optional<Error> refused;
  if (state_ == State::kClosed) {
    refused = make_error(Errc::kClosed, "the client is closed");
  } else if (pending_.load(std::memory_order_relaxed) >= config_.max_pending_requests) {
    refused = make_error(Errc::kQueueFull, std::to_string(config_.max_pending_requests) +
                                               " requests already pending");
  }
  if (refused) {
    refuse(std::move(request), std::move(*refused));
    return;
  }
  pending_.fetch_add(1, std::memory_order_relaxed);
  counters_.requests.fetch_add(1, std::memory_order_relaxed);
  counters_.commands.fetch_add(request->commands, std::memory_order_relaxed);
  track_deadline(request);
  unwritten_.push_back(std::move(request));
  arm_deadline_timer();
  if (!parsing_) write_more();  // on_read() writes when it is done with the batch
}

// ---- strand: queues and writes -----------------------------------------------------------------

void Connection::flush_incoming() {
  std::vector<std::shared_ptr<PendingRequest>> batch;
  {
    std::lock_guard lock(incoming_mutex_);
    batch.swap(incoming_);
    flush_posted_ = false;
  }
  if (state_ == State::kClosed) return;  // close_now() fails what it finds in incoming_
  for (auto& request : batch) {
    counters_.requests.fetch_add(1, std::memory_order_relaxed);
    counters_.commands.fetch_add(request->commands, std::memory_order_relaxed);
    track_deadline(request);
    unwritten_.push_back(std::move(request));
  }
  arm_deadline_timer();
  write_more();
}

void Connection::write_more() {
  if (write_in_flight_ || !socket_ready_for_writing()) return;
  std::string& buffer = *write_buffer_;
  buffer.clear();
  if (state_ == State::kHandshaking) {
    if (handshake_ && !handshake_->written) {
      handshake_->written = true;
      buffer = handshake_->payload;
      awaiting_.push_back(handshake_);
    }
  } else if (state_ == State::kReady) {
    buffer.swap(ready_bytes_);
    while (!unwritten_.empty() && buffer.size() < config_.max_write_batch_bytes) {
      std::shared_ptr<PendingRequest> request = std::move(unwritten_.front());
      unwritten_.pop_front();
      if (request->finished) continue;  // timed out before its turn
      request->written = true;
      buffer += request->payload;
      if (request->commands == 0) {
        written_without_reply_.push_back(std::move(request));
      } else {
        await(std::move(request));
      }
    }
  }
  if (buffer.empty()) return;
  if (!awaiting_.empty() && !parsing_) ensure_reading();  // on_read() reads again at its end
  write_in_flight_ = true;
  counters_.writes.fetch_add(1, std::memory_order_relaxed);
  with_stream([&](auto& stream) {
    asio::async_write(
        stream, asio::buffer(buffer),
        asio::bind_executor(strand_,
                            [self = shared_from_this(), gen = generation_, keep = write_buffer_](
                                std::error_code ec, std::size_t) { self->on_written(gen, ec); }));
  });
}

void Connection::on_written(std::uint64_t generation, std::error_code ec) {
  if (generation != generation_) return;
  write_in_flight_ = false;
  if (ec) {
    lost(ec, "write failed: " + ec.message());
    return;
  }
  touch();
  for (auto& request : written_without_reply_) {
    if (!request->finished) finish(*request, std::nullopt);
  }
  written_without_reply_.clear();
  write_more();
  maybe_open_direct();
}

bool Connection::has_unwritten() {
  while (!unwritten_.empty() && unwritten_.front()->finished) unwritten_.pop_front();
  return !unwritten_.empty();
}

bool Connection::socket_ready_for_writing() {
  if (state_ != State::kReady) return true;  // handshakes: the strand owns the socket
  if (ready_bytes_.empty() && !has_unwritten()) return false;
  if (!claim_socket()) return false;
  // An idle plain socket has no read pending: if the server sent something meanwhile (it
  // closed the connection, most likely), read that first rather than write into it.
  if (!reading_ && !after_read_ && socket_readable_now()) probing_read_ = true;
  if (probing_read_) {
    ensure_reading();
    return false;  // on_read() calls write_more() again
  }
  return true;
}

bool Connection::claim_socket() {
  std::lock_guard lock(owner_mutex_);
  if (direct_busy_) {
    strand_waiting_ = true;
    return false;
  }
  direct_open_ = false;
  if (released_fd_ >= 0) {
    // Back under Asio's reactor (see maybe_open_direct()).
    std::error_code ec;
    socket_->assign(released_protocol_, released_fd_, ec);
    if (ec) ::close(released_fd_);  // the socket stays closed: the next I/O fails and drops
    released_fd_ = -1;
  }
  return true;
}

bool Connection::socket_readable_now() {
  if (tls_stream_ || !socket_ || !socket_->is_open()) return false;
  pollfd p{};
  p.fd = socket_->native_handle();
  p.events = POLLIN;
  return ::poll(&p, 1, 0) > 0;
}

void Connection::maybe_open_direct() {
  if (state_ != State::kReady || tls_stream_ || !socket_ || subscriber_mode_ || write_in_flight_ ||
      reading_ || !awaiting_.empty() || !ready_bytes_.empty()) {
    return;
  }
  if (has_unwritten()) return;
  std::lock_guard lock(owner_mutex_);
  if (direct_busy_) return;
  if (released_fd_ < 0) {
    // Take the socket out of Asio's reactor while callers drive it: epoll would otherwise
    // wake the I/O thread for every reply a caller reads itself.
    std::error_code ec;
    const asio::ip::tcp::endpoint local = socket_->local_endpoint(ec);
    if (ec) return;
    released_protocol_ = local.protocol();
    const int fd = socket_->release(ec);
    if (ec) return;
    released_fd_ = fd;
  }
  direct_open_ = true;
  direct_fd_ = released_fd_;
  direct_generation_ = generation_;
}

void Connection::lost(std::error_code ec, const std::string& what) {
  if (state_ == State::kReady) {
    drop(make_error(Errc::kConnection, config_.endpoint() + ": " + what));
    return;
  }
  // During the handshakes: a TLS alert here is the server refusing our certificate (TLS 1.3
  // sends it after the client's side of the handshake is done).
  connect_failed(make_error(is_tls_error(ec) ? Errc::kTls : Errc::kConnection,
                            config_.endpoint() + ": " + what));
}

// ---- strand: reads and replies -----------------------------------------------------------------

void Connection::ensure_reading() {
  if (reading_ || (!socket_ && !tls_stream_)) return;
  if (state_ == State::kReady && !claim_socket()) return;  // a caller holds it; it hands back
  reading_ = true;
  read_more();
}

bool Connection::keep_reading() const {
  return state_ != State::kReady || tls_stream_.has_value() || subscriber_mode_ ||
         push_handler_ != nullptr || !awaiting_.empty();
}

void Connection::read_more() {
  std::vector<char>& buffer = *read_buffer_;
  with_stream([&](auto& stream) {
    stream.async_read_some(
        asio::buffer(buffer),
        asio::bind_executor(strand_,
                            [self = shared_from_this(), gen = generation_, keep = read_buffer_](
                                std::error_code ec, std::size_t n) { self->on_read(gen, ec, n); }));
  });
}

void Connection::on_read(std::uint64_t generation, std::error_code ec, std::size_t bytes) {
  if (generation != generation_) return;
  reading_ = false;
  probing_read_ = false;
  if (ec) {
    lost(ec, ec == asio::error::eof ? "the server closed the connection"
                                    : "read failed: " + ec.message());
    return;
  }
  touch_read();
  std::span<const char> data(read_buffer_->data(), bytes);
  parsing_ = true;
  while (!data.empty()) {
    std::size_t used = 0;
    const RespParser::Status status = parser_.parse(data, used);
    data = data.subspan(used);
    if (status == RespParser::Status::kReply) {
      on_reply(parser_.take_reply());
      if (generation != generation_) {  // the reply made us drop the connection
        parsing_ = false;
        return;
      }
      // Handlers issue their next commands as their replies arrive (an async caller keeping
      // K in flight). Writing the first kEarlyWrite of them now rather than after the whole
      // read lets the server work while the rest of the replies are handed out; the others
      // follow when that write completes. (write_more() starts no read while parsing_: the
      // read buffer still holds this read's bytes.)
      if (unwritten_.size() >= kEarlyWrite && !write_in_flight_) write_more_after_read();
    } else if (status == RespParser::Status::kError) {
      parsing_ = false;
      counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      Error error = parser_.error();
      error.message = config_.endpoint() + ": " + error.message;
      drop(error);
      return;
    } else {
      break;
    }
  }
  parsing_ = false;
  if (keep_reading()) ensure_reading();
  write_more_after_read();
  maybe_open_direct();
}

void Connection::write_more_after_read() {
  after_read_ = true;  // the socket was just read: no need to probe it before writing
  write_more();
  after_read_ = false;
}

bool Connection::is_resp2_pubsub_message(const Reply& reply) {
  if (reply.type != ReplyType::kArray || reply.elements.empty()) return false;
  const Reply& kind = reply.elements.front();
  if (!kind.is_string()) return false;
  static constexpr std::string_view kKinds[] = {"message",     "pmessage",     "smessage",
                                                "subscribe",   "psubscribe",   "ssubscribe",
                                                "unsubscribe", "punsubscribe", "sunsubscribe"};
  return std::find(std::begin(kKinds), std::end(kKinds), kind.string) != std::end(kKinds);
}

void Connection::on_reply(Reply&& reply) {
  const bool push = reply.type == ReplyType::kPush ||
                    (subscriber_mode_ && is_resp2_pubsub_message(reply)) ||
                    (subscriber_mode_ && awaiting_.empty());
  if (push) {
    counters_.push_messages.fetch_add(1, std::memory_order_relaxed);
    if (push_handler_) push_handler_(std::move(reply));
    return;
  }
  if (awaiting_.empty()) {
    counters_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    drop(make_error(Errc::kProtocol, config_.endpoint() + ": a reply nobody asked for"));
    return;
  }
  timeouts_in_a_row_ = 0;  // the server answers
  PendingRequest& front = *awaiting_.front();
  front.add_reply(std::move(reply));
  if (front.received < front.commands) return;
  std::shared_ptr<PendingRequest> done = std::move(awaiting_.front());
  awaiting_.pop_front();
  if (!done->finished) finish(*done, std::nullopt);
}

void Connection::finish(PendingRequest& request, std::optional<Error> error) {
  request.finished = true;
  heap_remove(&request);
  if (!request.internal) {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    if (error) {
      const std::error_code code = error->code;
      if (code == Errc::kTimeout) counters_.timeouts.fetch_add(1, std::memory_order_relaxed);
      if (code == Errc::kConnection) {
        counters_.connection_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  request.complete(std::move(error));
}

// ---- strand: connecting ------------------------------------------------------------------------

void Connection::connect() {
  state_ = State::kConnecting;
  const std::uint64_t gen = ++generation_;
  parser_.reset();
  // Fresh buffers per socket: a cancelled operation of the old socket may still hold the old.
  read_buffer_ = std::make_shared<std::vector<char>>(kReadChunk);
  write_buffer_ = std::make_shared<std::string>();
  write_in_flight_ = false;
  reading_ = false;
  probing_read_ = false;
  tls_stream_.reset();
  socket_.emplace(strand_);
  arm_connect_timer();

  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(config_.host, ec);
  if (!ec) {
    socket_->async_connect(
        asio::ip::tcp::endpoint(address, config_.port),
        asio::bind_executor(strand_, [self = shared_from_this(), gen](std::error_code e) {
          self->on_connected(gen, e);
        }));
    return;
  }
  resolver_.async_resolve(
      config_.host, std::to_string(config_.port),
      asio::bind_executor(
          strand_, [self = shared_from_this(), gen](
                       std::error_code e, const asio::ip::tcp::resolver::results_type& endpoints) {
            self->on_resolved(gen, e, endpoints);
          }));
}

void Connection::on_resolved(std::uint64_t generation, std::error_code ec,
                             const asio::ip::tcp::resolver::results_type& endpoints) {
  if (generation != generation_) return;
  if (ec) {
    connect_failed(
        make_error(Errc::kConnection, "cannot resolve " + config_.host + ": " + ec.message()));
    return;
  }
  asio::async_connect(
      *socket_, endpoints,
      asio::bind_executor(strand_, [self = shared_from_this(), generation](
                                       std::error_code e, const asio::ip::tcp::endpoint&) {
        self->on_connected(generation, e);
      }));
}

void Connection::on_connected(std::uint64_t generation, std::error_code ec) {
  if (generation != generation_) return;
  if (ec) {
    connect_failed(make_error(Errc::kConnection,
                              "cannot connect to " + config_.endpoint() + ": " + ec.message()));
    return;
  }
  socket_->set_option(asio::ip::tcp::no_delay(true), ec);
  if (!config_.use_tls) {
    send_handshake(config_.protocol != Protocol::kResp2);
    return;
  }
  tls_stream_.emplace(std::move(*socket_), *tls_context_);
  socket_.reset();
  const std::string& name =
      config_.tls.server_name.empty() ? config_.host : config_.tls.server_name;
  std::error_code not_ip;
  asio::ip::make_address(name, not_ip);
  if (not_ip) {
    // SNI carries host names only, never IP addresses (RFC 6066, section 3).
    SSL_set_tlsext_host_name(tls_stream_->native_handle(), name.c_str());
  }
  if (config_.tls.verify_peer) {
    tls_stream_->set_verify_callback(asio::ssl::host_name_verification(name));
  }
  tls_stream_->async_handshake(
      asio::ssl::stream_base::client,
      asio::bind_executor(strand_, [self = shared_from_this(), generation](std::error_code e) {
        self->on_tls_handshake(generation, e);
      }));
}

void Connection::on_tls_handshake(std::uint64_t generation, std::error_code ec) {
  if (generation != generation_) return;
  if (ec) {
    std::string why = ec.message();
    const long verify = SSL_get_verify_result(tls_stream_->native_handle());
    if (verify != X509_V_OK) {
      why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
    }
    connect_failed(
        make_error(Errc::kTls, "TLS handshake with " + config_.endpoint() + " failed: " + why));
    return;
  }
  send_handshake(config_.protocol != Protocol::kResp2);
}

void Connection::send_handshake(bool resp3) {
  std::string username = config_.username;
  std::string password = config_.password;
  if (config_.credentials_provider) {
    Result<Credentials> credentials = config_.credentials_provider();
    if (!credentials.ok()) {
      connect_failed(
          make_error(Errc::kAuth, "credentials provider failed: " + credentials.error().message));
      return;
    }
    username = std::move(credentials->username);
    password = std::move(credentials->password);
  }
  Request request;
  if (resp3) {
    if (!password.empty() && !config_.client_name.empty()) {
      request.push("HELLO", "3", "AUTH", username.empty() ? "default" : username, password,
                   "SETNAME", config_.client_name);
    } else if (!password.empty()) {
      request.push("HELLO", "3", "AUTH", username.empty() ? "default" : username, password);
    } else if (!config_.client_name.empty()) {
      request.push("HELLO", "3", "SETNAME", config_.client_name);
    } else {
      request.push("HELLO", "3");
    }
  } else {
    if (!password.empty() && !username.empty()) {
      request.push("AUTH", username, password);
    } else if (!password.empty()) {
      request.push("AUTH", password);
    }
    if (!config_.client_name.empty()) request.push("CLIENT", "SETNAME", config_.client_name);
  }
  if (config_.database != 0) request.push("SELECT", config_.database);
  if (request.size() == 0) request.push("PING");

  state_ = State::kHandshaking;
  handshake_ = std::make_shared<CallbackRequest>(
      std::string(request.payload()), request.size(), RequestClock::time_point::max(),
      [self = shared_from_this(), resp3, gen = generation_](Result<std::vector<Reply>> result) {
        if (gen == self->generation_) self->on_handshake(resp3, std::move(result));
      });
  ensure_reading();
  write_more();
}

void Connection::on_handshake(bool resp3, Result<std::vector<Reply>> result) {
  if (state_ != State::kHandshaking) return;
  handshake_.reset();
  if (!result.ok()) return;  // the connection dropped; drop() handled it
  const std::vector<Reply>& replies = result.value();
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].is_error()) continue;
    const std::string& line = replies[i].string;
    if (i == 0 && resp3 && config_.protocol == Protocol::kResp3WithFallback && is_no_resp3(line)) {
      send_handshake(false);  // a Redis before 6: RESP2 and AUTH
      return;
    }
    if (is_auth_error(line)) {
      connect_failed(make_error(Errc::kAuth, config_.endpoint() + " refused the credentials: " +
                                                 line.substr(0, line.find(' '))));
    } else {
      connect_failed(
          make_error(Errc::kServerError, config_.endpoint() + ": handshake failed: " + line));
    }
    return;
  }
  state_ = State::kReady;
  ready_.store(true, std::memory_order_release);
  backoff_.reset();
  counters_.connects.fetch_add(1, std::memory_order_relaxed);
  connect_timer_.cancel();
  arm_health_check();
  if (ready_hook_) ready_bytes_ = ready_hook_(std::exchange(was_ready_, true));
  write_more();
  maybe_open_direct();
}

void Connection::connect_failed(const Error& error) {
  counters_.connect_failures.fetch_add(1, std::memory_order_relaxed);
  last_connect_error_ = error;
  // A refusal of the credentials or of the certificates is not going away by itself within a
  // request's deadline: say so now rather than with a timeout.
  if (error.code == Errc::kAuth || error.code == Errc::kTls) fail_unwritten(error);
  drop(error);
}

void Connection::arm_connect_timer() {
  connect_timer_.expires_after(config_.connect_timeout);
  connect_timer_.async_wait(asio::bind_executor(
      strand_, [self = shared_from_this(), gen = generation_](std::error_code ec) {
        if (ec || gen != self->generation_) return;
        if (self->state_ == State::kConnecting || self->state_ == State::kHandshaking) {
          self->connect_failed(make_error(
              Errc::kConnection, "connecting to " + self->config_.endpoint() + " timed out after " +
                                     milliseconds_text(self->config_.connect_timeout)));
        }
      }));
}

// ---- strand: failures, reconnects, closing -----------------------------------------------------

void Connection::drop(const Error& error) {
  if (state_ == State::kClosed || state_ == State::kDisconnected) return;
  if (state_ == State::kConnecting || state_ == State::kHandshaking) last_connect_error_ = error;
  state_ = State::kDisconnected;
  ready_.store(false, std::memory_order_release);
  ++generation_;
  close_socket();
  write_in_flight_ = false;
  reading_ = false;
  probing_read_ = false;
  health_ping_in_flight_ = false;
  handshake_.reset();
  connect_timer_.cancel();
  health_timer_.cancel();
  stuck_timer_.cancel();
  stuck_armed_ = false;
  timeouts_in_a_row_ = 0;
  // Requests written on this connection: the server may or may not have run them.
  const Errc code = error.code == Errc::kProtocol ? Errc::kProtocol : Errc::kConnection;
  std::deque<std::shared_ptr<PendingRequest>> written(awaiting_.begin(), awaiting_.end());
  written.insert(written.end(), written_without_reply_.begin(), written_without_reply_.end());
  awaiting_.clear();
  written_without_reply_.clear();
  ready_bytes_.clear();
  for (auto& request : written) {
    if (!request->finished) {
      finish(*request,
             make_error(code, "connection lost before the reply (" + error.message + ")"));
    }
  }
  schedule_reconnect();
}

void Connection::fail_unwritten(const Error& error) {
  std::deque<std::shared_ptr<PendingRequest>> queued;
  queued.swap(unwritten_);
  for (auto& request : queued) {
    if (!request->finished) finish(*request, error);
  }
}

void Connection::schedule_reconnect() {
  reconnect_timer_.expires_after(backoff_.next());
  reconnect_timer_.async_wait(
      asio::bind_executor(strand_, [self = shared_from_this()](std::error_code ec) {
        if (!ec && self->state_ == State::kDisconnected) self->connect();
      }));
}

void Connection::close_socket() {
  std::error_code ignored;
  resolver_.cancel();
  {
    std::lock_guard lock(owner_mutex_);
    direct_open_ = false;
    // A caller is using the socket (only close_now() gets here then): after_direct() closes it.
    if (direct_busy_) return;
    if (released_fd_ >= 0) {
      ::close(released_fd_);
      released_fd_ = -1;
    }
  }
  if (tls_stream_) {
    tls_stream_->lowest_layer().close(ignored);
    tls_stream_.reset();
  }
  if (socket_) {
    socket_->close(ignored);
    socket_.reset();
  }
}

void Connection::close_now() {
  state_ = State::kClosed;
  ready_.store(false, std::memory_order_release);
  ++generation_;
  close_socket();
  connect_timer_.cancel();
  reconnect_timer_.cancel();
  deadline_timer_.cancel();
  health_timer_.cancel();
  stuck_timer_.cancel();
  handshake_.reset();
  std::vector<std::shared_ptr<PendingRequest>> incoming;
  {
    std::lock_guard lock(incoming_mutex_);
    incoming.swap(incoming_);
  }
  const Error closed = make_error(Errc::kClosed, "the client was closed");
  for (auto& request : incoming) {
    request->finished = true;
    pending_.fetch_sub(1, std::memory_order_relaxed);
    request->complete(closed);
  }
  std::deque<std::shared_ptr<PendingRequest>> written(awaiting_.begin(), awaiting_.end());
  written.insert(written.end(), written_without_reply_.begin(), written_without_reply_.end());
  awaiting_.clear();
  written_without_reply_.clear();
  for (auto& request : written) {
    if (!request->finished) finish(*request, closed);
  }
  fail_unwritten(closed);
  heap_.clear();
  deadline_fifo_.clear();
}

// ---- strand: health check ----------------------------------------------------------------------

void Connection::arm_health_check() {
  if (config_.health_check_interval <= std::chrono::milliseconds::zero()) return;
  health_timer_.expires_after(config_.health_check_interval);
  health_timer_.async_wait(asio::bind_executor(
      strand_, [self = shared_from_this(), gen = generation_](std::error_code ec) {
        if (!ec) self->on_health_check(gen);
      }));
}

void Connection::on_health_check(std::uint64_t generation) {
  if (generation != generation_ || state_ != State::kReady) return;
  const auto now = RequestClock::now();
  const RequestClock::time_point last_activity{
      RequestClock::duration(last_activity_ns_.load(std::memory_order_relaxed))};
  bool busy = false;
  {
    std::lock_guard lock(owner_mutex_);
    busy = direct_busy_;
  }
  if (!busy && !health_ping_in_flight_ && now - last_activity >= config_.health_check_interval) {
    health_ping_in_flight_ = true;
    const auto timeout =
        std::min<std::chrono::nanoseconds>(config_.health_check_interval, config_.command_timeout);
    auto ping = std::make_shared<CallbackRequest>(
        "*1\r\n$4\r\nPING\r\n", 1, now + timeout,
        [self = shared_from_this(), generation, timeout](const Result<std::vector<Reply>>& result) {
          if (generation != self->generation_) return;
          self->health_ping_in_flight_ = false;
          if (!result.ok() && result.error().code == Errc::kTimeout) {
            self->drop(make_error(Errc::kTimeout, self->config_.endpoint() +
                                                      ": no answer to the health-check PING in " +
                                                      milliseconds_text(timeout)));
          }
        });
    track_deadline(ping);
    unwritten_.push_front(std::move(ping));
    arm_deadline_timer();
    write_more();
  }
  arm_health_check();
}

// ---- strand: recycling a connection that stopped answering --------------------------------------

void Connection::await(std::shared_ptr<PendingRequest> request,
                       std::optional<RequestClock::time_point> since) {
  if (awaiting_.empty()) {
    owed_since_ = since.value_or(RequestClock::now());
    if (!stuck_armed_ && state_ == State::kReady &&
        config_.stuck_reply_limit > std::chrono::milliseconds::zero()) {
      arm_stuck_check(owed_since_ + stuck_reply_limit());
    }
  }
  awaiting_.push_back(std::move(request));
}

bool Connection::front_expired(RequestClock::time_point now) const {
  if (awaiting_.empty()) return false;
  const PendingRequest& front = *awaiting_.front();
  return front.finished || front.deadline <= now;
}

bool Connection::recycle_after_timeouts_reached() const {
  return config_.recycle_after_timeouts > 0 && timeouts_in_a_row_ >= config_.recycle_after_timeouts;
}

std::chrono::milliseconds Connection::stuck_reply_limit() const {
  return std::min<std::chrono::milliseconds>(config_.stuck_reply_limit, kLongestStuckReplyLimit);
}

RequestClock::time_point Connection::silent_since() const {
  const RequestClock::time_point last_read{
      RequestClock::duration(last_read_ns_.load(std::memory_order_relaxed))};
  return std::max(owed_since_, last_read);
}

RequestClock::time_point Connection::overdue_at() const {
  const PendingRequest& front = *awaiting_.front();
  RequestClock::time_point at = silent_since() + stuck_reply_limit();
  // A request with a longer deadline of its own (a blocking command) keeps it.
  if (!front.finished && front.deadline != RequestClock::time_point::max()) {
    at = std::max(at, front.deadline);
  }
  return at;
}

void Connection::arm_stuck_check(RequestClock::time_point at) {
  stuck_armed_ = true;
  stuck_timer_.expires_at(at);
  stuck_timer_.async_wait(asio::bind_executor(
      strand_, [self = shared_from_this(), gen = generation_](std::error_code ec) {
        if (!ec) self->on_stuck_check(gen);  // cancelled: drop() or close_now() reset the state
      }));
}

void Connection::on_stuck_check(std::uint64_t generation) {
  if (generation != generation_) return;  // drop() reset the state
  stuck_armed_ = false;
  if (state_ != State::kReady || awaiting_.empty()) return;  // armed again by the next await()
  const RequestClock::time_point now = RequestClock::now();
  const RequestClock::time_point at = overdue_at();
  if (now < at) {
    arm_stuck_check(at);
    return;
  }
  if (!recycle("nothing received for " + milliseconds_text(now - silent_since()) +
               " while a reply was awaited")) {
    arm_stuck_check(now + stuck_reply_limit());
  }
}

bool Connection::recycle(const std::string& why) {
  if (state_ != State::kReady) return false;
  {
    std::lock_guard lock(owner_mutex_);
    if (direct_busy_) return false;  // cannot happen while replies are awaited; never drop then
  }
  counters_.stuck_recycles.fetch_add(1, std::memory_order_relaxed);
  drop(make_error(Errc::kConnection, config_.endpoint() + ": the connection stopped answering (" +
                                         why + "), recycled"));
  return true;
}

// ---- strand: deadlines -------------------------------------------------------------------------

void Connection::track_deadline(const std::shared_ptr<PendingRequest>& request) {
  if (request->deadline == RequestClock::time_point::max()) return;
  if (deadline_fifo_.empty() || request->deadline >= deadline_fifo_.back()->deadline) {
    deadline_fifo_.push_back(request);  // the usual case: one timeout for every request
  } else {
    heap_push(request.get());
  }
}

PendingRequest* Connection::earliest_deadline() {
  while (!deadline_fifo_.empty() && deadline_fifo_.front()->finished) deadline_fifo_.pop_front();
  PendingRequest* fifo = deadline_fifo_.empty() ? nullptr : deadline_fifo_.front().get();
  PendingRequest* heap = heap_.empty() ? nullptr : heap_.front();
  if (fifo == nullptr) return heap;
  if (heap == nullptr) return fifo;
  return heap->deadline < fifo->deadline ? heap : fifo;
}

void Connection::heap_push(PendingRequest* request) {
  request->heap_index = heap_.size();
  heap_.push_back(request);
  heap_sift_up(request->heap_index);
}

void Connection::heap_remove(PendingRequest* request) {
  const std::size_t i = request->heap_index;
  if (i == SIZE_MAX) return;
  const std::size_t last = heap_.size() - 1;
  if (i != last) heap_swap(i, last);
  heap_.pop_back();
  request->heap_index = SIZE_MAX;
  if (i < heap_.size()) {
    heap_sift_up(i);
    heap_sift_down(heap_[i]->heap_index == i ? i : heap_[i]->heap_index);
  }
}

void Connection::heap_swap(std::size_t a, std::size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->heap_index = a;
  heap_[b]->heap_index = b;
}

void Connection::heap_sift_up(std::size_t i) {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!(heap_[i]->deadline < heap_[parent]->deadline)) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void Connection::heap_sift_down(std::size_t i) {
  for (;;) {
    std::size_t smallest = i;
    for (std::size_t child = 2 * i + 1; child <= 2 * i + 2 && child < heap_.size(); ++child) {
      if (heap_[child]->deadline < heap_[smallest]->deadline) smallest = child;
    }
    if (smallest == i) return;
    heap_swap(i, smallest);
    i = smallest;
  }
}

void Connection::arm_deadline_timer() {
  const PendingRequest* first = earliest_deadline();
  if (first == nullptr) return;
  const RequestClock::time_point earliest = first->deadline;
  if (deadline_armed_ && *deadline_armed_ <= earliest) return;
  deadline_armed_ = earliest;
  deadline_timer_.expires_at(earliest);
  deadline_timer_.async_wait(
      asio::bind_executor(strand_, [self = shared_from_this()](std::error_code ec) {
        if (ec == asio::error::operation_aborted) return;
        self->deadline_armed_.reset();
        self->on_deadline_timer();
      }));
}

void Connection::on_deadline_timer() {
  if (state_ == State::kClosed) return;
  const auto now = RequestClock::now();
  for (PendingRequest* next = earliest_deadline(); next != nullptr && next->deadline <= now;
       next = earliest_deadline()) {
    PendingRequest& request = *next;
    if (request.written) {
      const bool counts = !request.internal && front_expired(now);
      finish(request, make_error(Errc::kTimeout,
                                 "no reply from " + config_.endpoint() + " by the deadline"));
      if (counts) ++timeouts_in_a_row_;
    } else if (state_ != State::kReady) {
      std::string why = "not connected to " + config_.endpoint() + " by the deadline";
      if (!last_connect_error_.message.empty()) why += " (" + last_connect_error_.message + ")";
      finish(request, make_error(Errc::kConnection, std::move(why)));
    } else {
      finish(request, make_error(Errc::kTimeout, "not written to " + config_.endpoint() +
                                                     " by the deadline (queue too long)"));
    }
  }
  if (recycle_after_timeouts_reached()) {
    recycle(std::to_string(timeouts_in_a_row_) + " requests in a row timed out");
  }
  // Requests that timed out before being written: drop them from the queue (has_unwritten()
  // drops those at the front; a compaction, rarely, the rest).
  has_unwritten();
  if (unwritten_.size() > pending_.load(std::memory_order_relaxed) + kUnwrittenSlack) {
    std::erase_if(unwritten_, [](const auto& request) { return request->finished; });
  }
  arm_deadline_timer();
}

}  // namespace tiercache::redis::detail
