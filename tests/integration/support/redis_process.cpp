// How RedisProcess knows the server on its port is its own: a port found free can be taken by
// someone else (another test, another redis-env.sh) before redis-server binds it. Then our
// server logs "Address already in use" and exits, while PING may well be answered -- by the
// other server. So the server counts as up only when (1) something answers PING on the port,
// (2) our child is still alive, and (3) the part of the log written since this launch says
// "Ready to accept connections" (redis logs it after binding, before serving any command).
#include "support/redis_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "support/raw_connection.hpp"

namespace tiercache::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Ports are picked at random in this range, below Linux's default ephemeral range
// (32768-60999), so that the kernel does not hand "our" port to an outgoing connection while
// the server is down during restart().
constexpr std::uint16_t kPortMin = 20000;
constexpr std::uint16_t kPortMax = 32767;
// How many ports start() tries before it gives up.
constexpr int kStartAttempts = 20;
// How often a waiting loop checks its condition again (readiness, exit).
constexpr auto kPollInterval = 5ms;
// How long one readiness PING may take.
constexpr auto kPingTimeout = 200ms;
// How much of the log an error message quotes.
constexpr std::size_t kLogTailBytes = 2000;

constexpr std::string_view kReadyMessage = "Ready to accept connections";
constexpr std::string_view kPortTakenMessage = "Address already in use";

std::runtime_error failure(const std::string& what) {
  return std::runtime_error("RedisProcess: " + what);
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// `name` if it contains a '/', else the first executable `name` in PATH.
std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::istringstream directories(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string directory;
  while (std::getline(directories, directory, ':')) {
    if (directory.empty()) directory = ".";
    std::string candidate = directory + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw failure(name + " not found in PATH (run scripts/setup.sh)");
}

std::filesystem::path make_temp_directory() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tiercache-redis-test.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw failure(errno_text("mkdtemp"));
  return pattern;
}

// True if a listening socket could bind 127.0.0.1:`port` now (with SO_REUSEADDR, as
// redis-server does).
bool port_is_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

std::uint16_t pick_free_port() {
  static thread_local std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> ports(kPortMin, kPortMax);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<std::uint16_t>(ports(random));
    if (port_is_free(port)) return port;
  }
  throw failure("no free port in " + std::to_string(kPortMin) + "-" + std::to_string(kPortMax));
}

std::uintmax_t file_size_or_zero(const std::filesystem::path& path) {
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  return error ? 0 : size;
}

// The contents of `path` from byte `offset` on.
std::string read_from(const std::filesystem::path& path, std::uintmax_t offset) {
  std::ifstream file(path, std::ios::binary);
  file.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

// In the child, between fork() and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(pid_t parent, int stdin_fd, int log_fd, const char* path,
                             char* const* argv) {
  // Die with the thread that started us, so a crashed test leaves no server behind.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // it died before prctl
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::dup2(stdin_fd, STDIN_FILENO);
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  // Hold none of the test's descriptors (listening sockets of fake servers...).
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 4096; ++fd) ::close(fd);
  }
  ::execv(path, argv);
  static constexpr char kMessage[] = "RedisProcess: execv failed\n";
  [[maybe_unused]] const auto ignored = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  ::_exit(127);
}

}  // namespace

RedisProcess::RedisProcess(RedisProcessOptions options, std::filesystem::path directory)
    : options_(std::move(options)), directory_(std::move(directory)) {}

RedisProcess RedisProcess::start(RedisProcessOptions options) {
  std::string executable = resolve_executable(options.executable);
  RedisProcess process(std::move(options), make_temp_directory());
  process.executable_path_ = std::move(executable);
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    process.port_ = pick_free_port();
    if (process.launch(Clock::now() + process.options_.start_timeout) == Launch::ready) {
      return process;
    }
  }
  throw failure("every port tried was taken before redis-server could bind it; log:\n" +
                process.log_tail());
}

RedisProcess::RedisProcess(RedisProcess&& other) noexcept
    : options_(std::move(other.options_)),
      directory_(std::exchange(other.directory_, {})),
      executable_path_(std::move(other.executable_path_)),
      port_(other.port_),
      pid_(std::exchange(other.pid_, 0)),
      paused_(std::exchange(other.paused_, false)) {}

RedisProcess& RedisProcess::operator=(RedisProcess&& other) noexcept {
  if (this != &other) {
    RedisProcess previous(std::move(*this));  // stops our server when it goes out of scope
    options_ = std::move(other.options_);
    directory_ = std::exchange(other.directory_, {});
    executable_path_ = std::move(other.executable_path_);
    port_ = other.port_;
    pid_ = std::exchange(other.pid_, 0);
    paused_ = std::exchange(other.paused_, false);
  }
  return *this;
}

RedisProcess::~RedisProcess() {
  try {
    stop();
  } catch (...) {
    // A destructor cannot report it; stop() only throws if waitpid fails.
  }
  if (!directory_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
}

std::string RedisProcess::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

bool RedisProcess::running() {
  if (pid_ == 0) return false;
  int status = 0;
  const pid_t result = ::waitpid(pid_, &status, WNOHANG);
  if (result == 0) return true;
  pid_ = 0;  // exited (reaped now), or not our child any more
  paused_ = false;
  return false;
}

void RedisProcess::pause() {
  if (!running()) throw failure("pause(): the server is not running");
  if (paused_) return;
  ::kill(pid_, SIGSTOP);
  // Return only once it is stopped, so that the caller's next request is not served.
  int status = 0;
  while (::waitpid(pid_, &status, WUNTRACED) < 0) {
    if (errno != EINTR) throw failure(errno_text("waitpid"));
  }
  if (!WIFSTOPPED(status)) {
    pid_ = 0;
    throw failure("pause(): the server " + describe_status(status));
  }
  paused_ = true;
}

void RedisProcess::resume() {
  if (!running()) throw failure("resume(): the server is not running");
  if (!paused_) return;
  ::kill(pid_, SIGCONT);
  int status = 0;
  while (::waitpid(pid_, &status, WCONTINUED) < 0) {
    if (errno != EINTR) throw failure(errno_text("waitpid"));
  }
  paused_ = false;
  if (!WIFCONTINUED(status)) {
    pid_ = 0;
    throw failure("resume(): the server " + describe_status(status));
  }
}

void RedisProcess::stop() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  ::kill(pid_, SIGCONT);  // a stopped process acts on SIGTERM only once continued
  if (wait_exit(Clock::now() + options_.stop_timeout)) return;
  kill();
}

void RedisProcess::kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) throw failure(errno_text("waitpid"));
  }
  pid_ = 0;
  paused_ = false;
}

void RedisProcess::restart() {
  stop();
  const auto deadline = Clock::now() + options_.start_timeout;
  while (launch(deadline) == Launch::port_taken) {
    if (Clock::now() >= deadline) {
      throw failure("restart(): port " + std::to_string(port_) + " still taken after " +
                    std::to_string(options_.start_timeout.count()) + " ms; log:\n" + log_tail());
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

RedisProcess::Launch RedisProcess::launch(Clock::time_point deadline) {
  std::vector<std::string> arguments = {executable_path_};
  const std::pair<std::string, std::string> defaults[] = {
      {"--port", std::to_string(port_)},
      {"--bind", "127.0.0.1"},
      {"--save", ""},
      {"--appendonly", "no"},
      {"--daemonize", "no"},
      {"--dir", directory_.string()},
      {"--enable-debug-command", "local"},
  };
  for (const auto& [name, value] : defaults) {
    arguments.push_back(name);
    arguments.push_back(value);
  }
  arguments.insert(arguments.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);

  const std::filesystem::path log = log_file();
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw failure(errno_text("open(redis.log)"));
  const std::string banner =
      "---- RedisProcess: starting redis-server on 127.0.0.1:" + std::to_string(port_) + "\n";
  [[maybe_unused]] const auto written = ::write(log_fd, banner.data(), banner.size());
  const std::uintmax_t log_offset = file_size_or_zero(log);
  const int stdin_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (stdin_fd < 0) {
    ::close(log_fd);
    throw failure(errno_text("open(/dev/null)"));
  }

  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) exec_child(parent, stdin_fd, log_fd, executable_path_.c_str(), argv.data());
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(stdin_fd);
  if (child < 0) {
    errno = fork_errno;
    throw failure(errno_text("fork"));
  }
  pid_ = child;
  paused_ = false;

  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != 0) {  // exited (or, -1, cannot be waited for)
      pid_ = 0;
      if (read_from(log, log_offset).find(kPortTakenMessage) != std::string::npos) {
        return Launch::port_taken;
      }
      throw failure("redis-server " + describe_status(status) + "; log:\n" + log_tail());
    }
    const std::string reply = first_reply_line(port_, "PING\r\n", kPingTimeout);
    // +PONG, or an error such as -NOAUTH when extra_args set a password: it is up.
    const bool answers = reply.starts_with('+') || reply.starts_with('-');
    if (answers && read_from(log, log_offset).find(kReadyMessage) != std::string::npos) {
      return Launch::ready;
    }
    if (Clock::now() >= deadline) {
      kill();
      throw failure("redis-server on port " + std::to_string(port_) +
                    " did not answer PING in time; log:\n" + log_tail());
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

bool RedisProcess::wait_exit(Clock::time_point deadline) {
  for (;;) {
    if (!running()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string RedisProcess::log_tail() const {
  const std::filesystem::path log = log_file();
  const std::uintmax_t size = file_size_or_zero(log);
  return read_from(log, size > kLogTailBytes ? size - kLogTailBytes : 0);
}

}  // namespace tiercache::test
