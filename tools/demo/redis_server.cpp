// The demo's private redis-server (redis_server.hpp).

#include "demo/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

namespace tiercache::cli::demo {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a starting server may take to answer PING.
constexpr milliseconds kStartTimeout{10'000};
// How long a stopping server may take to exit after SIGTERM before SIGKILL.
constexpr milliseconds kStopTimeout{5'000};
// Ports tried at the first start (another process may take a free port before the server).
constexpr int kStartAttempts = 5;

std::string find_executable(const char* name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const std::size_t colon = rest.find(':');
      dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  dirs.emplace_back("/usr/bin");
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/usr/local/bin");
  for (const std::string& dir : dirs) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// A port nothing listens on right now (the kernel's pick for a bind to port 0).
std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + std::strerror(error));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// True if a server on 127.0.0.1:port answers "PING" with "+PONG" within `timeout`.
bool answers_ping(std::uint16_t port, milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const char ping[] = "PING\r\n";
    if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == sizeof ping - 1) {
      pollfd pfd{fd, POLLIN, 0};
      char reply[16] = {};
      if (::poll(&pfd, 1, static_cast<int>(timeout.count())) == 1 &&
          ::recv(fd, reply, sizeof reply - 1, 0) > 0) {
        ok = std::strncmp(reply, "+PONG", 5) == 0;
      }
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

PrivateRedis::PrivateRedis(std::string dir) : dir_(std::move(dir)) {
  executable_ = find_executable("redis-server");
  if (executable_.empty()) {
    throw std::runtime_error(
        "redis-server not found (install it: scripts/setup.sh, or apt-get install "
        "redis-server), or give --redis URL of a running server");
  }
  std::filesystem::create_directories(dir_);
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = free_loopback_port();
    if (launch()) return;
  }
  throw std::runtime_error("redis-server would not start (see " + dir_ + "/redis.log)");
}

PrivateRedis::~PrivateRedis() { stop(); }

bool PrivateRedis::launch() {
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe
  // calls (this process may have threads).
  const std::vector<std::string> args = {executable_, "--port",       std::to_string(port_),
                                         "--bind",    "127.0.0.1",    "--save",
                                         "",          "--appendonly", "no",
                                         "--dir",     dir_,           "--daemonize",
                                         "no",        "--logfile",    ""};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string log_path = dir_ + "/redis.log";
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    ::setpgid(0, 0);                     // not in the terminal's foreground group: no Ctrl-C
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // gone with the demo, whatever happens to it
    if (::getppid() != parent) ::_exit(1);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  pid_ = pid;

  const Clock::time_point deadline = Clock::now() + kStartTimeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // exited: the port was taken, or the server refused its arguments
      return false;
    }
    if (answers_ping(port_, milliseconds(200))) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  stop();
  return false;
}

void PrivateRedis::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const Clock::time_point deadline = Clock::now() + kStopTimeout;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  pid_ = -1;
}

void PrivateRedis::restart() {
  stop();
  if (!launch()) {
    throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) +
                             " (see " + dir_ + "/redis.log)");
  }
}

}  // namespace tiercache::cli::demo
