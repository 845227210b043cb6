// The coordinator's side of the pod pipes (pod_channels.hpp).

#include "demo/pod_channels.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "stampede/processes.hpp"

namespace tiercache::cli::demo {

PodChannels::~PodChannels() {
  for (PodChannel& p : pods_) {
    stampede::close_fd(p.command_fd);
    stampede::close_fd(p.report_fd);
  }
}

void PodChannels::send_all(std::string_view command) {
  const std::string line = std::string(command) + "\n";
  for (PodChannel& p : pods_) {
    if (p.closed || p.command_fd < 0) continue;
    // SIGPIPE is ignored: a pod that is gone makes this fail, and its EOF is seen by pump().
    stampede::write_all(p.command_fd, line.data(), line.size());
  }
}

bool PodChannels::all(bool PodChannel::*flag) const {
  return std::all_of(pods_.begin(), pods_.end(), [flag](const PodChannel& p) { return p.*flag; });
}

std::string PodChannels::failure() const {
  for (std::size_t i = 0; i < pods_.size(); ++i) {
    const PodChannel& p = pods_[i];
    if (!p.error.empty()) return p.error;
    if (p.closed && !p.finished) return "pod " + std::to_string(i) + " ended unexpectedly";
  }
  return {};
}

std::vector<std::string> PodChannels::log_lines() const {
  std::vector<std::string> out;
  for (const LogLine& l : log_lines_) {
    std::string pods;
    for (unsigned p : l.pods) pods += (pods.empty() ? "" : ", ") + std::to_string(p);
    out.push_back(l.text + (l.pods.size() == 1 ? " (pod " : " (pods ") + pods + ")");
  }
  return out;
}

void PodChannels::handle(unsigned pod, std::string_view line, Timeline& timeline) {
  PodChannel& p = pods_[pod];
  if (line == "R") {
    p.ready = true;
  } else if (line == "E") {
    p.finished = true;
  } else if (line.starts_with("S ")) {
    if (auto stats = decode(line)) {
      ++p.stats_lines;
      timeline.update(*stats);
    }
  } else if (line.starts_with("P ")) {
    p.prometheus.append(line.substr(2));
    p.prometheus.push_back('\n');
  } else if (line.starts_with("L ")) {
    const std::string_view text = line.substr(2);
    auto same = std::find_if(log_lines_.begin(), log_lines_.end(),
                             [&](const LogLine& l) { return l.text == text; });
    if (same == log_lines_.end()) {
      log_lines_.push_back(LogLine{std::string(text), {pod}});
    } else if (std::find(same->pods.begin(), same->pods.end(), pod) == same->pods.end()) {
      same->pods.push_back(pod);
    }
  } else if (line.starts_with("X ")) {
    p.error = std::string(line.substr(2));
  }
}

bool PodChannels::pump(Timeline& timeline, Clock::time_point deadline,
                       const std::function<bool()>& done, const std::function<bool()>& stop) {
  std::vector<pollfd> fds;
  std::vector<unsigned> owners;
  char chunk[65536];
  while (!done()) {
    if (stop()) return false;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return done();
    fds.clear();
    owners.clear();
    for (unsigned i = 0; i < pods_.size(); ++i) {
      if (pods_[i].closed) continue;
      fds.push_back(pollfd{pods_[i].report_fd, POLLIN, 0});
      owners.push_back(i);
    }
    if (fds.empty()) return done();
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return done();
    if (ready <= 0) continue;  // a timeout, or a signal: look at done() and stop() again
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      PodChannel& p = pods_[owners[k]];
      const ssize_t n = ::read(p.report_fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        p.closed = true;
        continue;
      }
      p.buffer.append(chunk, static_cast<std::size_t>(n));
      std::size_t start = 0;
      std::size_t newline;
      while ((newline = p.buffer.find('\n', start)) != std::string::npos) {
        handle(owners[k], std::string_view(p.buffer).substr(start, newline - start), timeline);
        start = newline + 1;
      }
      p.buffer.erase(0, start);
    }
  }
  return true;
}

}  // namespace tiercache::cli::demo
