#include "support/raw_connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace tiercache::test {
namespace {

using Clock = std::chrono::steady_clock;

std::system_error errno_error(const char* what) {
  return std::system_error(errno, std::generic_category(), what);
}

// Milliseconds from now until `deadline` for poll(): rounded up, never negative.
int poll_timeout(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

// Waits for `events` on `fd` until `deadline`; false on timeout. Retries on EINTR.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, poll_timeout(deadline));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) throw errno_error("poll");
  }
}

}  // namespace

RawConnection RawConnection::connect(std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw errno_error("socket");
  RawConnection connection(fd);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    return connection;
  }
  if (errno != EINPROGRESS) throw errno_error("connect");
  if (!wait_for(fd, POLLOUT, deadline)) {
    throw std::system_error(ETIMEDOUT, std::generic_category(), "connect");
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
    throw errno_error("getsockopt(SO_ERROR)");
  }
  if (error != 0) throw std::system_error(error, std::generic_category(), "connect");
  return connection;
}

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      peer_closed_(other.peer_closed_),
      buffer_(std::move(other.buffer_)) {}

RawConnection& RawConnection::operator=(RawConnection&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    peer_closed_ = other.peer_closed_;
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void RawConnection::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(sent));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw errno_error("send");
    if (!wait_for(fd_, POLLOUT, deadline)) {
      throw std::system_error(ETIMEDOUT, std::generic_category(), "send");
    }
  }
}

bool RawConnection::fill(Clock::time_point deadline) {
  char chunk[64 * 1024];
  for (;;) {
    const ssize_t received = ::recv(fd_, chunk, sizeof chunk, 0);
    if (received > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(received));
      return true;
    }
    if (received == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw errno_error("recv");
    if (!wait_for(fd_, POLLIN, deadline)) return false;
  }
}

std::string RawConnection::read_until(std::string_view terminator,
                                      std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::size_t searched = 0;  // bytes of buffer_ known not to start the terminator
  for (;;) {
    const std::size_t found = buffer_.find(terminator, searched);
    if (found != std::string::npos) {
      const std::size_t end = found + terminator.size();
      std::string result = buffer_.substr(0, end);
      buffer_.erase(0, end);
      return result;
    }
    if (buffer_.size() >= terminator.size()) searched = buffer_.size() - terminator.size() + 1;
    if (peer_closed_ || !fill(deadline)) return std::exchange(buffer_, {});
  }
}

std::string RawConnection::read_exactly(std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (buffer_.size() < count && !peer_closed_ && fill(deadline)) {
  }
  if (buffer_.size() <= count) return std::exchange(buffer_, {});
  std::string result = buffer_.substr(0, count);
  buffer_.erase(0, count);
  return result;
}

bool RawConnection::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!peer_closed_) {
    buffer_.clear();
    if (!fill(deadline)) return false;
  }
  return true;
}

std::string first_reply_line(std::uint16_t port, std::string_view command,
                             std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  try {
    RawConnection connection = RawConnection::connect(port, timeout);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    connection.send(command, left);
    std::string line = connection.read_until(
        "\r\n", std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line.ends_with("\r\n")) return {};
    return line;
  } catch (const std::system_error&) {
    return {};
  }
}

bool answers_ping(std::uint16_t port, std::chrono::milliseconds timeout) {
  return first_reply_line(port, "PING\r\n", timeout) == "+PONG\r\n";
}

}  // namespace tiercache::test
