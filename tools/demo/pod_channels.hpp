// The coordinator's side of the pipes to the pods of `tiercache demo` (the protocol is in
// pod.hpp): commands out, lines in, read with poll() on all pods at once.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "demo/timeline.hpp"

namespace tiercache::cli::demo {

struct PodChannel {
  int command_fd = -1;    // the write end of the pod's command pipe
  int report_fd = -1;     // the read end of its report pipe
  std::string buffer;     // a partial line
  bool ready = false;     // "R" came
  bool finished = false;  // "E" came
  bool closed = false;    // EOF: the pod is gone
  std::string error;      // "X ..." (or why it is gone)
  std::uint64_t stats_lines = 0;
  std::string prometheus;  // the final "P" lines
};

class PodChannels {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PodChannels(std::vector<PodChannel> pods) : pods_(std::move(pods)) {}
  ~PodChannels();
  PodChannels(const PodChannels&) = delete;
  PodChannels& operator=(const PodChannels&) = delete;

  // Sends one command line to every pod still there.
  void send_all(std::string_view command);
  // Reads what the pods send until `done()` is true or `deadline` (or an interruption: `stop()`
  // true). Stats lines go to `timeline`. Returns done().
  bool pump(Timeline& timeline, Clock::time_point deadline, const std::function<bool()>& done,
            const std::function<bool()>& stop);

  std::vector<PodChannel>& pods() { return pods_; }
  bool all(bool PodChannel::*flag) const;
  // A pod that failed or vanished before finishing: its message, or "".
  std::string failure() const;
  // The library's log lines the pods forwarded, each once: "<level> <message> (pods I, J)".
  std::vector<std::string> log_lines() const;

 private:
  void handle(unsigned pod, std::string_view line, Timeline& timeline);

  std::vector<PodChannel> pods_;
  struct LogLine {
    std::string text;
    std::vector<unsigned> pods;
  };
  std::vector<LogLine> log_lines_;
};

}  // namespace tiercache::cli::demo
