// PrivateRedis: the redis-server `tiercache demo` starts for itself when no --redis URL is
// given, so that it can really stop and restart it in the Redis-outage phase.
//
//   redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --dir DIR
//
// P is a free loopback port picked at start and kept across restarts (the pods reconnect to
// the same address). Nothing is persisted: a restarted server is empty, as after a failover to
// a cold replica. The server runs in its own process group (a Ctrl-C at the terminal reaches
// the demo, which stops it in order) and dies with the demo if the demo is killed
// (PR_SET_PDEATHSIG). Its output goes to DIR/redis.log.
//
// Not thread-safe: one thread (the coordinator's) drives it. Forking from a process with
// threads is safe here: the child only calls async-signal-safe functions before exec.

#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace tiercache::cli::demo {

class PrivateRedis {
 public:
  // Finds redis-server (PATH), picks a port, starts it in `dir` (created if missing) and waits
  // until it answers PING. Throws std::runtime_error (not installed, would not start).
  explicit PrivateRedis(std::string dir);
  // Stops the server if it runs.
  ~PrivateRedis();
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  // SIGTERM, then SIGKILL if it has not exited within a few seconds. No-op if not running.
  void stop();
  // Starts it again on the same port. Throws std::runtime_error if it does not come up.
  void restart();

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  const std::string& executable() const { return executable_; }

 private:
  // Starts the server on port_; false if it exited before answering (e.g. the port was taken).
  bool launch();

  std::string dir_;
  std::string executable_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tiercache::cli::demo
