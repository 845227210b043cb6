// What every multi-process subcommand (demo, chaos, stampede) needs around its run: an
// interrupt flag set by SIGINT/SIGTERM, a run directory, and removing a run's keys from a
// Redis that is not its own. Header-only; used by the coordinator process of each run.

#pragma once

#include <signal.h>
#include <stdlib.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "tiercache/redis/client.hpp"

namespace tiercache::cli {

// Set by SIGINT or SIGTERM while an InterruptGuard lives.
inline volatile std::sig_atomic_t g_interrupted = 0;
extern "C" inline void tiercache_cli_on_interrupt(int) { g_interrupted = 1; }

inline bool interrupted() { return g_interrupted != 0; }

// Installs the SIGINT/SIGTERM handler (no SA_RESTART: poll() returns) and ignores SIGPIPE (a
// child that is gone makes writes to its pipe fail, not the coordinator die); restores all
// three when destroyed.
class InterruptGuard {
 public:
  InterruptGuard() {
    struct sigaction action {};
    action.sa_handler = tiercache_cli_on_interrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, &old_pipe_);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGPIPE, &old_pipe_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_pipe_ {};
};

// A new directory "<temp dir>/<prefix>-XXXXXX", removed with everything in it when destroyed
// unless keep() was called. Throws std::runtime_error if it cannot be made.
class RunDir {
 public:
  explicit RunDir(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp: " + std::string(std::strerror(errno)));
    }
    path_ = pattern;
  }
  ~RunDir() {
    if (keep_) return;
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// Deletes the keys matching `pattern` (SCAN + UNLINK); returns how many.
inline std::uint64_t delete_keys(redis::Client& client, const std::string& pattern) {
  std::uint64_t deleted = 0;
  std::string cursor = "0";
  do {
    redis::Result<redis::Reply> page =
        client.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
    if (!page.ok() || page->elements.size() != 2) break;
    cursor = page->elements[0].string;
    for (const redis::Reply& key : page->elements[1].elements) {
      redis::Result<redis::Reply> gone = client.command("UNLINK", key.string);
      if (gone.ok()) deleted += static_cast<std::uint64_t>(gone->integer);
    }
  } while (cursor != "0");
  return deleted;
}

}  // namespace tiercache::cli
