// FaultProxy's implementation: one thread, one poll() loop over the listener, a wake pipe
// and both sockets of every connection.
//
// Invariants.
// - Only the loop thread touches sockets and connections. The public setters change
//   `settings_` under `mutex_`, take a ticket (`requested_`), wake the loop and wait until
//   the loop has copied the settings of that ticket (`applied_`). The loop copies them at the
//   top of every iteration, before it reads anything, so every byte read after a setter
//   returned is handled with the new settings, and cut()/freeze_existing() have acted on
//   the connections by the time they return.
// - A connection has two directions (client->upstream "up", upstream->client "down"). Each
//   holds the chunks read from its `from` socket and not yet written to its `to` socket, in
//   order; a chunk may not be written before its release time (read time + latency), nor
//   faster than the bandwidth allows (`next_send`). Reading a side stops while its direction
//   holds kMaxQueuedBytes. A direction whose last write hit EAGAIN is `blocked` until poll
//   reports its socket writable.
// - A frozen connection is never polled nor pumped; it only closes in cut() or at the end.
// - An armed reset belongs to the loop (`pending_reset_`) until a connection is about to
//   write down-bytes; that connection takes it over (`reset_budget`) and is reset when the
//   budget is spent.

#include "fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace tiercache::testing {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes asked of a socket per read.
constexpr std::size_t kReadChunk = 64 * 1024;
// With a bandwidth limit, one write sends at most this fraction of a second's worth.
constexpr std::size_t kSlicesPerSecond = 20;

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), std::string("FaultProxy: ") + what);
}

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

Address resolve(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    throw std::invalid_argument("FaultProxy: cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  Address address;
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.length = found->ai_addrlen;
  ::freeaddrinfo(found);
  return address;
}

void no_delay(int fd) {
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// Closes `fd` with an RST instead of a FIN.
void close_with_reset(int fd) {
  const linger abort{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  ::close(fd);
}

struct Chunk {
  std::string bytes;
  std::size_t offset = 0;  // bytes already written
  Clock::time_point release;
};

struct Direction {
  int from = -1;  // the sockets belong to the Connection
  int to = -1;
  std::deque<Chunk> queue;
  std::size_t queued = 0;         // unwritten bytes in `queue`
  bool read_closed = false;       // `from` sent its FIN
  bool write_shut = false;        // ... and it was forwarded to `to`
  bool blocked = false;           // the last write to `to` would have blocked
  Clock::time_point next_send{};  // bandwidth: no write before this
};

struct Connection {
  int client = -1;
  int upstream = -1;
  bool connecting = true;  // the upstream connect() is in progress
  bool frozen = false;
  bool dead = false;                        // closed; removed at the end of the iteration
  Direction up;                             // client -> upstream
  Direction down;                           // upstream -> client
  std::optional<std::size_t> reset_budget;  // down-bytes left before the reset
};

struct Settings {
  Address upstream;
  std::chrono::milliseconds latency{0};
  std::size_t bandwidth = 0;
  bool refuse = false;
  bool half_open = false;
  std::uint64_t cuts = 0;       // cut() calls so far
  std::uint64_t freezes = 0;    // freeze_existing() calls so far
  std::uint64_t resets = 0;     // reset_mid_reply() calls so far
  std::size_t reset_after = 0;  // of the last one
};

}  // namespace

class FaultProxy::Loop {
 public:
  explicit Loop(Address upstream) {
    settings_.upstream = upstream;
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener_ < 0) throw_errno("socket");
    const int on = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    local.sin_port = 0;
    socklen_t length = sizeof local;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::listen(listener_, 128) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&local), &length) != 0) {
      const int saved = errno;
      ::close(listener_);
      errno = saved;
      throw_errno("bind/listen on 127.0.0.1");
    }
    port_ = ntohs(local.sin_port);
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      const int saved = errno;
      ::close(listener_);
      errno = saved;
      throw_errno("pipe2");
    }
    wake_read_ = fds[0];
    wake_write_ = fds[1];
    thread_ = std::thread([this] { run(); });
  }

  ~Loop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake();
    thread_.join();
    ::close(listener_);
    ::close(wake_read_);
    ::close(wake_write_);
  }

  // Applies `change` to the settings; returns once the loop runs with them.
  template <class F>
  void change(F&& apply) {
    std::unique_lock lock(mutex_);
    apply(settings_);
    const std::uint64_t ticket = ++requested_;
    wake();
    applied_changed_.wait(lock, [&] { return applied_ >= ticket; });
  }

  std::uint16_t port() const { return port_; }
  std::size_t accepted() const { return accepted_.load(); }
  std::size_t open_connections() const { return open_.load(); }

 private:
  void wake() {
    const char byte = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_write_, &byte, 1);  // full: already woken
  }

  void run() {
    std::vector<pollfd> polled;
    for (;;) {
      if (!take_settings()) break;
      polled.clear();
      polled.push_back({wake_read_, POLLIN, 0});
      polled.push_back({listener_, POLLIN, 0});
      for (const auto& c : connections_) {
        polled.push_back({-1, 0, 0});
        polled.push_back({-1, 0, 0});
        if (c->frozen) continue;
        const short client_events =
            static_cast<short>((reading(*c, c->up) ? POLLIN : 0) | (c->down.blocked ? POLLOUT : 0));
        const short upstream_events = c->connecting
                                          ? short{POLLOUT}
                                          : static_cast<short>((reading(*c, c->down) ? POLLIN : 0) |
                                                               (c->up.blocked ? POLLOUT : 0));
        if (client_events != 0) polled[polled.size() - 2] = {c->client, client_events, 0};
        if (upstream_events != 0) polled.back() = {c->upstream, upstream_events, 0};
      }
      const int ready = ::poll(polled.data(), polled.size(), poll_timeout_ms());
      if (ready < 0 && errno != EINTR) throw_errno("poll");
      if (ready > 0) {
        if (polled[0].revents != 0) drain_wake_pipe();
        if (polled[1].revents != 0) accept_all();
        // accept_all() appends: connections_[i] matches polled[2 + 2i] for i < the old count.
        const std::size_t polled_connections = (polled.size() - 2) / 2;
        for (std::size_t i = 0; i < polled_connections; ++i) {
          Connection& c = *connections_[i];
          const pollfd& client = polled[2 + 2 * i];
          const pollfd& upstream = polled[3 + 2 * i];
          if (!c.dead && upstream.revents != 0 && c.connecting) finish_connect(c);
          if (!c.dead && client.revents != 0) on_events(c, client.revents, c.up, c.down);
          if (!c.dead && upstream.revents != 0 && !c.connecting) {
            on_events(c, upstream.revents, c.down, c.up);
          }
        }
      }
      for (const auto& c : connections_) {
        if (!c->dead && !c->frozen) pump_both(*c);
      }
      remove_dead();
    }
    for (const auto& c : connections_) close_connection(*c);
    remove_dead();
  }

  // Copies the settings for this iteration and acts on cut/freeze/reset requests; false when
  // the proxy is being destroyed.
  bool take_settings() {
    std::uint64_t ticket = 0;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return false;
      if (settings_.resets != now_.resets) pending_reset_ = settings_.reset_after;
      const bool cut = settings_.cuts != now_.cuts;
      const bool freeze = settings_.freezes != now_.freezes;
      now_ = settings_;
      ticket = requested_;
      if (cut) {
        for (const auto& c : connections_) close_connection(*c);
        remove_dead();
      }
      if (freeze) {
        for (const auto& c : connections_) c->frozen = true;
      }
      applied_ = ticket;
    }
    applied_changed_.notify_all();
    return true;
  }

  bool reading(const Connection& c, const Direction& d) const {
    return !c.frozen && !d.read_closed && d.queued < kMaxQueuedBytes;
  }

  // Whether `d` may write now (all but the release time and the bandwidth).
  bool may_write(const Connection& c, const Direction& d) const {
    return !c.frozen && !c.dead && !now_.half_open && !d.blocked && !d.queue.empty() &&
           !(c.connecting && &d == &c.up);
  }

  // Until the earliest release or bandwidth slot of a direction that may write; -1: none.
  int poll_timeout_ms() const {
    std::optional<Clock::time_point> earliest;
    for (const auto& c : connections_) {
      for (const Direction* d : {&c->up, &c->down}) {
        if (!may_write(*c, *d)) continue;
        Clock::time_point at = d->queue.front().release;
        if (now_.bandwidth != 0) at = std::max(at, d->next_send);
        if (!earliest || at < *earliest) earliest = at;
      }
    }
    if (!earliest) return -1;
    const auto wait = *earliest - Clock::now();
    if (wait <= Clock::duration::zero()) return 0;
    // Rounded up: waking early would only spin.
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
  }

  void drain_wake_pipe() {
    char buffer[64];
    while (::read(wake_read_, buffer, sizeof buffer) > 0) {
    }
  }

  void accept_all() {
    for (;;) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;  // EAGAIN, or an aborted connection: nothing to do
      accepted_.fetch_add(1);
      if (now_.refuse) {
        ::close(client);
        continue;
      }
      const Address& to = now_.upstream;
      const int upstream =
          ::socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (upstream < 0) {
        ::close(client);
        continue;
      }
      no_delay(client);
      no_delay(upstream);
      auto c = std::make_unique<Connection>();
      c->client = client;
      c->upstream = upstream;
      c->up.from = c->down.to = client;
      c->up.to = c->down.from = upstream;
      if (::connect(upstream, reinterpret_cast<const sockaddr*>(&to.storage), to.length) == 0) {
        c->connecting = false;
      } else if (errno != EINPROGRESS) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      connections_.push_back(std::move(c));
      open_.fetch_add(1);
    }
  }

  void finish_connect(Connection& c) {
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      close_connection(c);  // the upstream refused: so does the proxy
      return;
    }
    c.connecting = false;
  }

  // Events on the socket that `reads` reads from and `writes` writes to.
  void on_events(Connection& c, short revents, Direction& reads, Direction& writes) {
    if ((revents & (POLLOUT | POLLERR | POLLHUP)) != 0) writes.blocked = false;
    if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0 && reading(c, reads)) read_from(c, reads);
  }

  void read_from(Connection& c, Direction& d) {
    std::string bytes(kReadChunk, '\0');
    const ssize_t n = ::recv(d.from, bytes.data(), bytes.size(), 0);
    if (n > 0) {
      bytes.resize(static_cast<std::size_t>(n));
      d.queued += bytes.size();
      d.queue.push_back(Chunk{std::move(bytes), 0, Clock::now() + now_.latency});
    } else if (n == 0) {
      d.read_closed = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      reset_connection(c);  // ECONNRESET and the like: passed on as a reset
    }
  }

  void pump_both(Connection& c) {
    pump(c, c.up);
    if (!c.dead) pump(c, c.down);
    if (!c.dead && c.up.write_shut && c.down.write_shut) close_connection(c);
  }

  // Writes what `d` may write now.
  void pump(Connection& c, Direction& d) {
    const bool down = &d == &c.down;
    while (may_write(c, d)) {
      const Clock::time_point now = Clock::now();
      Chunk& chunk = d.queue.front();
      if (chunk.release > now) return;
      if (now_.bandwidth != 0 && d.next_send > now) return;
      std::size_t n = chunk.bytes.size() - chunk.offset;
      if (now_.bandwidth != 0)
        n = std::min(n, std::max<std::size_t>(1, now_.bandwidth / kSlicesPerSecond));
      if (down && !c.reset_budget && pending_reset_)
        c.reset_budget = std::exchange(pending_reset_, std::nullopt);
      if (down && c.reset_budget) {
        if (*c.reset_budget == 0) {
          reset_connection(c);
          return;
        }
        n = std::min(n, *c.reset_budget);
      }
      const ssize_t written = ::send(d.to, chunk.bytes.data() + chunk.offset, n, MSG_NOSIGNAL);
      if (written < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          d.blocked = true;
          return;
        }
        reset_connection(c);
        return;
      }
      const auto sent = static_cast<std::size_t>(written);
      chunk.offset += sent;
      d.queued -= sent;
      if (now_.bandwidth != 0) {
        d.next_send = std::max(d.next_send, now) +
                      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                          static_cast<double>(sent) / static_cast<double>(now_.bandwidth)));
      }
      if (chunk.offset == chunk.bytes.size()) d.queue.pop_front();
      if (down && c.reset_budget) {
        *c.reset_budget -= sent;
        if (*c.reset_budget == 0) {
          reset_connection(c);
          return;
        }
      }
    }
    // The sender's FIN, once everything before it is written (half-open: not even that).
    if (!c.dead && !c.frozen && !now_.half_open && !(c.connecting && !down) && d.queue.empty() &&
        d.read_closed && !d.write_shut) {
      ::shutdown(d.to, SHUT_WR);
      d.write_shut = true;
    }
  }

  void close_connection(Connection& c) {
    if (c.dead) return;
    ::close(c.client);
    ::close(c.upstream);
    c.dead = true;
  }

  void reset_connection(Connection& c) {
    if (c.dead) return;
    close_with_reset(c.client);
    close_with_reset(c.upstream);
    c.dead = true;
  }

  void remove_dead() {
    const auto removed = std::erase_if(connections_, [](const auto& c) { return c->dead; });
    open_.fetch_sub(removed);
  }

  int listener_ = -1;
  std::uint16_t port_ = 0;
  int wake_read_ = -1;
  int wake_write_ = -1;

  // Shared with the setters.
  std::mutex mutex_;
  std::condition_variable applied_changed_;
  Settings settings_;
  std::uint64_t requested_ = 0;
  std::uint64_t applied_ = 0;
  bool stopping_ = false;
  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> open_{0};

  // Loop thread only.
  Settings now_;
  std::optional<std::size_t> pending_reset_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::thread thread_;  // started at the end of the constructor, once the rest is built
};

FaultProxy::FaultProxy(std::string upstream_host, std::uint16_t upstream_port)
    : loop_(std::make_unique<Loop>(resolve(upstream_host, upstream_port))) {}

FaultProxy::~FaultProxy() = default;

std::uint16_t FaultProxy::port() const { return loop_->port(); }

std::string FaultProxy::url() const { return "redis://127.0.0.1:" + std::to_string(port()); }

void FaultProxy::set_upstream(std::string host, std::uint16_t port) {
  const Address address = resolve(host, port);
  loop_->change([&](Settings& s) { s.upstream = address; });
}

void FaultProxy::set_latency(std::chrono::milliseconds each_way) {
  loop_->change([&](Settings& s) { s.latency = std::max(each_way, std::chrono::milliseconds(0)); });
}

void FaultProxy::set_bandwidth(std::size_t bytes_per_second) {
  loop_->change([&](Settings& s) { s.bandwidth = bytes_per_second; });
}

void FaultProxy::cut() {
  loop_->change([](Settings& s) { ++s.cuts; });
}

void FaultProxy::set_refuse(bool refuse) {
  loop_->change([&](Settings& s) { s.refuse = refuse; });
}

void FaultProxy::set_half_open(bool on) {
  loop_->change([&](Settings& s) { s.half_open = on; });
}

void FaultProxy::freeze_existing() {
  loop_->change([](Settings& s) { ++s.freezes; });
}

void FaultProxy::reset_mid_reply(std::size_t after_bytes) {
  loop_->change([&](Settings& s) {
    ++s.resets;
    s.reset_after = after_bytes;
  });
}

void FaultProxy::heal() {
  loop_->change([](Settings& s) {
    s.latency = std::chrono::milliseconds(0);
    s.bandwidth = 0;
    s.refuse = false;
    s.half_open = false;
  });
}

std::size_t FaultProxy::accepted() const { return loop_->accepted(); }

std::size_t FaultProxy::open_connections() const { return loop_->open_connections(); }

}  // namespace tiercache::testing
