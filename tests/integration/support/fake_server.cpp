#include "support/fake_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <exception>
#include <system_error>

namespace tiercache::test {
namespace {

using Clock = std::chrono::steady_clock;

// What one recv() reads at most, and the piece size of a flood.
constexpr std::size_t kChunkBytes = 64 * 1024;

std::system_error errno_error(const char* what) {
  return std::system_error(errno, std::generic_category(), what);
}

// Parses the integer of a RESP header line ("*3", "$5": the digits after the type byte).
bool parse_length(std::string_view digits, long long& value) {
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return error == std::errc() && end == digits.data() + digits.size() && value >= 0;
}

// The length of the first complete command in `bytes` (0 if it is not complete yet), and its
// arguments if `arguments` is not null. A RESP array of bulk strings, or an inline command
// (a line). Bytes that are neither (a bad header) end at the end of that line: one "command",
// so that a test can answer garbage with an error, as Redis does.
std::size_t parse_command(std::string_view bytes, std::vector<std::string>* arguments) {
  if (bytes.empty()) return 0;
  if (bytes[0] != '*') {
    const std::size_t newline = bytes.find('\n');
    if (newline == std::string_view::npos) return 0;
    if (arguments != nullptr) {
      std::string_view line = bytes.substr(0, newline);
      if (line.ends_with('\r')) line.remove_suffix(1);
      while (!line.empty()) {
        const std::size_t space = line.find(' ');
        const std::string_view word = line.substr(0, space);
        if (!word.empty()) arguments->emplace_back(word);
        line.remove_prefix(space == std::string_view::npos ? line.size() : space + 1);
      }
    }
    return newline + 1;
  }
  std::size_t line_end = bytes.find("\r\n");
  if (line_end == std::string_view::npos) return 0;
  long long count = 0;
  if (!parse_length(bytes.substr(1, line_end - 1), count)) return line_end + 2;
  std::size_t position = line_end + 2;
  for (long long index = 0; index < count; ++index) {
    line_end = bytes.find("\r\n", position);
    if (line_end == std::string_view::npos) return 0;
    long long length = 0;
    if (bytes[position] != '$' ||
        !parse_length(bytes.substr(position + 1, line_end - position - 1), length)) {
      return line_end + 2;
    }
    const std::size_t data = line_end + 2;
    if (bytes.size() < data + static_cast<std::size_t>(length) + 2) return 0;
    if (arguments != nullptr) {
      arguments->emplace_back(bytes.substr(data, static_cast<std::size_t>(length)));
    }
    position = data + static_cast<std::size_t>(length) + 2;
  }
  return position;
}

}  // namespace

FakeRedisServer::FakeRedisServer(FakeRedisServerOptions options) : options_(std::move(options)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) throw errno_error("socket");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const auto error = errno_error("eventfd");
    ::close(listen_fd_);
    throw error;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;  // the kernel picks a free port
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listen_fd_, SOMAXCONN) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const auto error = errno_error("bind/listen");
    ::close(listen_fd_);
    ::close(wake_fd_);
    throw error;
  }
  port_ = ntohs(address.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

FakeRedisServerOptions always_reply(std::string reply) {
  return {.respond = [reply = std::move(reply)](std::string_view) { return reply; }};
}

FakeRedisServer::~FakeRedisServer() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
  accept_thread_.join();
  // No new connections now. Each thread ends on its own once it sees wake_fd_ readable; it
  // takes mutex_ to say so, so join without holding it.
  for (Connection& connection : connections_) connection.thread.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

std::string FakeRedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

std::size_t FakeRedisServer::connections_accepted() const {
  std::lock_guard lock(mutex_);
  return connections_accepted_;
}

std::size_t FakeRedisServer::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_connections_;
}

std::size_t FakeRedisServer::commands_received() const {
  std::lock_guard lock(mutex_);
  return commands_received_;
}

bool FakeRedisServer::wait_for_connections_accepted(std::size_t count,
                                                    std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return connections_accepted_ >= count; });
}

bool FakeRedisServer::wait_for_open_connections_at_most(std::size_t count,
                                                        std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return open_connections_ <= count; });
}

bool FakeRedisServer::wait_for_commands_received(std::size_t count,
                                                 std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return commands_received_ >= count; });
}

void FakeRedisServer::close_all_connections() {
  std::lock_guard lock(mutex_);
  // shutdown(), not close(): the connection's thread wakes up (end of stream, or a failed
  // send), and closes the descriptor itself, so it is never reused under its feet.
  for (Connection& connection : connections_) {
    if (connection.fd >= 0) ::shutdown(connection.fd, SHUT_RDWR);
  }
}

std::vector<std::string> FakeRedisServer::arguments(std::string_view command) {
  std::vector<std::string> result;
  if (parse_command(command, &result) != command.size()) result.clear();
  return result;
}

void FakeRedisServer::accept_loop() {
  for (;;) {
    if (!wait_ready(listen_fd_, POLLIN)) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // EAGAIN, ECONNABORTED, EMFILE...: poll again
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(mutex_);
    reap_finished_locked();
    Connection& connection = connections_.emplace_back();
    connection.fd = fd;
    connection.thread = std::thread([this, &connection] { serve(connection); });
    ++connections_accepted_;
    ++open_connections_;
    changed_.notify_all();
  }
}

void FakeRedisServer::reap_finished_locked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done) {
      it->thread.join();  // it has finished: only its return is left
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void FakeRedisServer::add_commands_received(std::size_t count) {
  if (count == 0) return;
  std::lock_guard lock(mutex_);
  commands_received_ += count;
  changed_.notify_all();
}

void FakeRedisServer::serve(Connection& connection) {
  const int fd = connection.fd;  // set before this thread started; only this thread closes it
  std::string received;
  std::vector<char> chunk(kChunkBytes);
  bool open = true;
  while (open && wait_ready(fd, POLLIN)) {
    const ssize_t count = ::recv(fd, chunk.data(), chunk.size(), 0);
    if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    if (count <= 0) break;  // closed by the client, or reset
    received.append(chunk.data(), static_cast<std::size_t>(count));

    std::size_t length = 0;
    while (open && (length = parse_command(received, nullptr)) > 0) {
      const std::string command = received.substr(0, length);
      received.erase(0, length);
      add_commands_received(1);
      if (options_.never_reply) continue;

      std::string reply;
      if (options_.respond) {
        std::lock_guard lock(respond_mutex_);
        try {
          reply = options_.respond(command);
        } catch (const std::exception& error) {
          std::fprintf(stderr, "FakeRedisServer: respond threw (closing the connection): %s\n",
                       error.what());
          open = false;
          break;
        }
      }
      open = send_reply(fd, reply) && (options_.flood_bytes == 0 || send_flood(fd)) &&
             !options_.close_after_reply;
    }
  }
  std::lock_guard lock(mutex_);
  ::close(fd);
  connection.fd = -1;
  connection.done = true;
  --open_connections_;
  changed_.notify_all();
}

bool FakeRedisServer::send_reply(int fd, std::string_view bytes) {
  if (options_.slow_chunk_bytes == 0) return send_all(fd, bytes);
  bool first = true;
  while (!bytes.empty()) {
    if (!first && !pause_for(options_.slow_chunk_interval)) return false;
    first = false;
    const std::size_t size = std::min(bytes.size(), options_.slow_chunk_bytes);
    if (!send_all(fd, bytes.substr(0, size))) return false;
    bytes.remove_prefix(size);
  }
  return true;
}

bool FakeRedisServer::send_flood(int fd) {
  const std::string chunk(kChunkBytes, options_.flood_byte);
  const bool endless = options_.flood_bytes == std::numeric_limits<std::size_t>::max();
  std::size_t left = options_.flood_bytes;
  while (left > 0) {
    const std::size_t size = std::min(left, chunk.size());
    if (!send_all(fd, std::string_view(chunk).substr(0, size))) return false;
    if (!endless) left -= size;
  }
  return true;
}

bool FakeRedisServer::send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_ready(fd, POLLOUT)) return false;
    } else if (errno != EINTR) {
      return false;  // EPIPE, ECONNRESET: the client is gone
    }
  }
  return true;
}

bool FakeRedisServer::wait_ready(int fd, short events) {
  pollfd entries[2] = {{fd, events, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    const int ready = ::poll(entries, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return false;
    if (entries[1].revents != 0) return false;
    if (entries[0].revents != 0) return true;
  }
}

bool FakeRedisServer::pause_for(std::chrono::milliseconds duration) {
  pollfd entry{wake_fd_, POLLIN, 0};
  const auto deadline = Clock::now() + duration;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    const int ready = ::poll(&entry, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
    if (ready > 0) return false;
    if (ready == 0) return true;
    if (errno != EINTR) return false;
  }
}

}  // namespace tiercache::test
