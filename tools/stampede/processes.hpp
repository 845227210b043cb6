// The plumbing of `tiercache stampede` (stampede_command.cpp): pipes between the parent and the
// processes it forks, and the set of forked processes.
//
// Pipes carry small fixed-size messages: a write() of less than PIPE_BUF bytes is atomic, so
// many processes may share one pipe. A reader sees EOF once every copy of the write end is
// closed -- the parent uses that both as a start signal (it closes "go") and to notice that
// processes are gone without having written.

#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tiercache::cli::stampede {

using Clock = std::chrono::steady_clock;

struct Pipe {
  int read = -1;
  int write = -1;
};

inline Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  return Pipe{fds[0], fds[1]};
}

inline void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

inline bool write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Reads into [data, data + size) until it is full, the pipe's writers are all gone (EOF) or
// `deadline`; returns the bytes read.
inline std::size_t read_until(int fd, void* data, std::size_t size, Clock::time_point deadline) {
  char* p = static_cast<char*>(data);
  std::size_t got = 0;
  while (got < size) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fd, p + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF (or an error): no writer left
    got += static_cast<std::size_t>(n);
  }
  return got;
}

// The forked processes: kills what is left when destroyed.
class Processes {
 public:
  // How long kill_all() waits for killed processes to be reaped.
  static constexpr std::chrono::milliseconds kKillGrace{10'000};

  ~Processes() { kill_all(); }
  void add(pid_t pid) { pids_.push_back(pid); }

  void kill_all() {
    for (pid_t pid : pids_) {
      if (pid > 0) ::kill(pid, SIGKILL);  // never pid -1: that would be every process of ours
    }
    reap(Clock::now() + kKillGrace);
  }

  // Waits for every process until `deadline`, then kills those left. Returns how many did not
  // exit with status 0 on their own.
  unsigned reap(Clock::time_point deadline) {
    unsigned abnormal = 0;
    for (pid_t& pid : pids_) {
      if (pid < 0) continue;
      int status = 0;
      pid_t done = 0;
      while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (done == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ++abnormal;
      } else if (done < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ++abnormal;
      }
      pid = -1;
    }
    return abnormal;
  }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace tiercache::cli::stampede
