// RedisProcess: a private redis-server child process for integration tests that restart,
// pause or kill their server, so they never disturb the shared servers of
// scripts/redis-env.sh (which other tests use at the same time).
//
// start() picks a free loopback port, makes a temporary directory (the server's --dir and its
// log, redis.log), runs
//   redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --daemonize no
//                --dir <temp dir> --enable-debug-command local <extra args>
// and returns once that server (and not something else that took the port first) answers
// PING. Nothing is persisted: a restarted server is empty. DEBUG is enabled (DEBUG SLEEP makes
// a slow server).
//
// The server is a child of the thread that called start()/restart(), and is SIGKILLed by the
// kernel when that thread exits (PR_SET_PDEATHSIG), so a crashing test leaves no redis-server
// behind: call them from the test's main thread, or one that outlives the server.
//
// Failures (no redis-server in PATH, no free port, the server does not come up before the
// deadline) throw std::runtime_error with the end of the server's log. Not thread-safe: one
// thread drives a RedisProcess at a time. The destructor stops the server and removes the
// temporary directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tiercache::test {

struct RedisProcessOptions {
  // Appended to the default arguments above (later arguments override earlier ones), e.g.
  // {"--maxmemory", "1mb"}. Keep --loglevel at notice or more verbose: start() reads the log
  // to know that the server on the port is its own.
  std::vector<std::string> extra_args;
  // The server program: a path, or a name looked up in PATH.
  std::string executable = "redis-server";
  // How long start()/restart() wait for the server to answer PING (restart(): also for its
  // port to be free again).
  std::chrono::milliseconds start_timeout = std::chrono::seconds(10);
  // How long stop() waits after SIGTERM before it sends SIGKILL.
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(10);
};

class RedisProcess {
 public:
  // Starts a server on a free port of 127.0.0.1 (retrying with other ports if one turns out to
  // be taken). Throws std::runtime_error if it cannot.
  static RedisProcess start(RedisProcessOptions options = {});

  RedisProcess(RedisProcess&& other) noexcept;
  RedisProcess& operator=(RedisProcess&& other) noexcept;
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;
  // stop(), then removes the temporary directory.
  ~RedisProcess();

  // The port; the same for the whole life of this object (restart() keeps it).
  std::uint16_t port() const { return port_; }
  // "redis://127.0.0.1:<port>".
  std::string url() const;
  // The temporary directory, and the server's log in it (kept across restarts).
  const std::filesystem::path& directory() const { return directory_; }
  std::filesystem::path log_file() const { return directory_ / "redis.log"; }
  // The server's process id; 0 when it is not running (stopped, killed, or exited by itself).
  pid_t pid() const { return pid_; }
  // True if the server process exists (paused counts as running). Reaps it if it exited.
  bool running();

  // SIGSTOP: the server stops answering; connections stay open, and the kernel still
  // accepts new ones (it answers them after resume()). REQUIRES: running().
  void pause();
  // SIGCONT. REQUIRES: running().
  void resume();
  // SIGTERM (and SIGCONT, in case it is paused), waits up to stop_timeout for it to exit,
  // then SIGKILL. Does nothing if the server is not running.
  void stop();
  // SIGKILL, as in a crash (no shutdown, connections reset), and waits for it to be gone.
  // Does nothing if the server is not running.
  void kill();
  // stop() if running, then starts the server again on the SAME port, retrying while the port
  // is not free yet, until start_timeout. Throws std::runtime_error if it cannot.
  void restart();

 private:
  RedisProcess(RedisProcessOptions options, std::filesystem::path directory);
  enum class Launch { ready, port_taken };
  // Runs the server on port_ and waits until it answers; port_taken if it exited because the
  // port was in use. Throws on other failures.
  Launch launch(std::chrono::steady_clock::time_point deadline);
  // Waits for the child to exit until `deadline`; true if it did (and was reaped).
  bool wait_exit(std::chrono::steady_clock::time_point deadline);
  std::string log_tail() const;

  RedisProcessOptions options_;
  std::filesystem::path directory_;
  std::string executable_path_;  // options_.executable resolved through PATH
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
  bool paused_ = false;  // SIGSTOPped by pause(), not resumed yet
};

}  // namespace tiercache::test
