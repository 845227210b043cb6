// The coordinator's worker processes (worker_pool.hpp).

#include "chaos/worker_pool.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "stampede/processes.hpp"

namespace tiercache::cli::chaos {
namespace {

// Where a worker finds its pipes (worker.hpp: --command-fd, --report-fd).
constexpr int kCommandFd = 3;
constexpr int kReportFd = 4;
// How long a killed worker may take to be reaped.
constexpr std::chrono::milliseconds kReapTimeout{10'000};

std::vector<demo::PodChannel> closed_channels(unsigned n) {
  std::vector<demo::PodChannel> channels(n);
  for (demo::PodChannel& c : channels) c.closed = true;
  return channels;
}

std::string self_executable() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) throw std::runtime_error(std::string("/proc/self/exe: ") + std::strerror(errno));
  return std::string(path, static_cast<std::size_t>(n));
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace

WorkerPool::WorkerPool(WorkerLaunch launch)
    : launch_(std::move(launch)),
      executable_(self_executable()),
      slots_(launch_.processes),
      channels_(closed_channels(launch_.processes)) {}

WorkerPool::~WorkerPool() {
  for (unsigned i = 0; i < slots_.size(); ++i) kill(i);
}

void WorkerPool::start(unsigned index) {
  Slot& slot = slots_[index];
  if (slot.pid > 0) kill(index);
  slot.incarnation = slot.started++;
  slot.expect_exit = false;
  const ProcessId id{index, slot.incarnation};
  const std::string log_path = launch_.log_dir + "/events-" + std::to_string(index) + "-" +
                               std::to_string(slot.incarnation) + ".log";

  // Everything the child needs is prepared before fork().
  std::vector<std::string> args = {executable_,     "chaos-worker",
                                   "--index",       std::to_string(index),
                                   "--incarnation", std::to_string(slot.incarnation),
                                   "--processes",   std::to_string(launch_.processes),
                                   "--keys",        std::to_string(launch_.keys),
                                   "--url",         launch_.redis_url,
                                   "--db",          launch_.db_path,
                                   "--name",        launch_.cache_name,
                                   "--log",         log_path,
                                   "--seed",        std::to_string(launch_.seed),
                                   "--command-fd",  std::to_string(kCommandFd),
                                   "--report-fd",   std::to_string(kReportFd)};
  if (launch_.batch_all_rows) args.emplace_back("--batch-all-rows");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  stampede::Pipe commands = stampede::make_pipe();
  stampede::Pipe reports = stampede::make_pipe();
  const pid_t parent = ::getpid();
  std::fflush(stdout);  // the child must not inherit unwritten output
  std::fflush(stderr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    for (int* fd : {&commands.read, &commands.write, &reports.read, &reports.write}) {
      stampede::close_fd(*fd);
    }
    throw std::runtime_error(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    // Async-signal-safe calls only from here to exec.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGINT, &ignore, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    // Out of the way of 3 and 4 first (either end may be 3 or 4 already), without CLOEXEC.
    const int command = ::fcntl(commands.read, F_DUPFD, 10);
    const int report = ::fcntl(reports.write, F_DUPFD, 10);
    if (command < 0 || report < 0 || ::dup2(command, kCommandFd) < 0 ||
        ::dup2(report, kReportFd) < 0) {
      ::_exit(126);
    }
    if (::close_range(kReportFd + 1, ~0U, 0) != 0) {
      for (int fd = kReportFd + 1; fd < 1024; ++fd) ::close(fd);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  stampede::close_fd(commands.read);
  stampede::close_fd(reports.write);
  slot.pid = pid;
  demo::PodChannel& channel = channels_.pods()[index];
  stampede::close_fd(channel.command_fd);
  stampede::close_fd(channel.report_fd);
  channel = demo::PodChannel{};
  channel.command_fd = commands.write;
  channel.report_fd = reports.read;
  tails_.emplace_back(log_path, id);
  retired_.push_back(false);
}

void WorkerPool::drop_retired_tails() {
  std::vector<LogTail> kept;
  for (std::size_t i = 0; i < tails_.size(); ++i) {
    if (!retired_[i]) kept.push_back(std::move(tails_[i]));
  }
  tails_.swap(kept);  // the retired ones close their files as `kept` goes
  retired_.assign(tails_.size(), false);
}

bool WorkerPool::wait_ready(Clock::time_point deadline) {
  const auto all_ready = [&] {
    for (unsigned i = 0; i < slots_.size(); ++i) {
      const demo::PodChannel& c = channels_.pods()[i];
      if (slots_[i].pid > 0 && !c.ready && !c.closed) return false;
    }
    return true;
  };
  channels_.pump(timeline_, deadline, all_ready, [] { return false; });
  collect_exits();
  for (unsigned i = 0; i < slots_.size(); ++i) {
    if (slots_[i].pid > 0 && !channels_.pods()[i].ready) return false;
  }
  return true;
}

void WorkerPool::pump(Clock::time_point deadline) {
  channels_.pump(
      timeline_, deadline, [] { return false; }, [] { return false; });
  collect_exits();
}

void WorkerPool::send(unsigned index, std::string_view command) {
  demo::PodChannel& c = channels_.pods()[index];
  if (c.closed || c.command_fd < 0) return;
  const std::string line = std::string(command) + "\n";
  stampede::write_all(c.command_fd, line.data(), line.size());
}

void WorkerPool::send_all(std::string_view command) {
  for (unsigned i = 0; i < slots_.size(); ++i) send(i, command);
}

bool WorkerPool::wait_exit(unsigned index, Clock::time_point deadline) {
  slots_[index].expect_exit = true;
  channels_.pump(
      timeline_, deadline, [&] { return channels_.pods()[index].closed; }, [] { return false; });
  if (!channels_.pods()[index].closed) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return !reap(index, std::max(left, std::chrono::milliseconds(0))).empty();
}

void WorkerPool::kill(unsigned index) {
  Slot& slot = slots_[index];
  if (slot.pid <= 0) return;
  slot.expect_exit = true;
  ::kill(slot.pid, SIGKILL);  // never pid -1 or 0: that would be every process of ours
  reap(index, kReapTimeout);
  demo::PodChannel& c = channels_.pods()[index];
  stampede::close_fd(c.command_fd);
  stampede::close_fd(c.report_fd);
  c.closed = true;
}

std::vector<std::string> WorkerPool::stop_all(Clock::time_point deadline) {
  for (Slot& s : slots_) s.expect_exit = true;
  send_all("stop");
  channels_.pump(
      timeline_, deadline,
      [&] {
        return std::all_of(channels_.pods().begin(), channels_.pods().end(),
                           [](const demo::PodChannel& c) { return c.finished || c.closed; });
      },
      [] { return false; });
  std::vector<std::string> problems;
  for (unsigned i = 0; i < slots_.size(); ++i) {
    if (slots_[i].pid <= 0) continue;
    const demo::PodChannel& c = channels_.pods()[i];
    const std::string name = process(i).name();
    if (!c.error.empty()) problems.push_back(c.error);
    if (!c.finished) problems.push_back(name + " did not finish in time");
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const std::string how = reap(i, std::max(left, std::chrono::milliseconds(100)));
    if (how.empty()) {
      kill(i);
      problems.push_back(name + " did not exit: killed");
    } else if (how != describe_status(0)) {
      problems.push_back(name + " " + how);
    }
  }
  return problems;
}

std::vector<std::string> WorkerPool::take_unexpected_exits() {
  std::vector<std::string> out;
  out.swap(unexpected_);
  return out;
}

std::string WorkerPool::reap(unsigned index, std::chrono::milliseconds wait) {
  Slot& slot = slots_[index];
  if (slot.pid <= 0) return "gone";
  const Clock::time_point deadline = Clock::now() + wait;
  int status = 0;
  pid_t done;
  while ((done = ::waitpid(slot.pid, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (done == 0) return {};
  slot.pid = -1;
  const ProcessId gone{index, slot.incarnation};
  for (std::size_t i = 0; i < tails_.size(); ++i) {
    if (tails_[i].process() == gone) retired_[i] = true;
  }
  return done < 0 ? std::string("vanished") : describe_status(status);
}

void WorkerPool::collect_exits() {
  for (unsigned i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    demo::PodChannel& c = channels_.pods()[i];
    if (slot.pid <= 0 || slot.expect_exit || !c.closed) continue;
    const std::string name = process(i).name();
    const std::string how = reap(i, kReapTimeout);
    std::string line = name + " " + (how.empty() ? "closed its pipe" : how);
    if (!c.error.empty()) line += ": " + c.error;
    unexpected_.push_back(line);
    if (how.empty()) kill(i);
  }
}

}  // namespace tiercache::cli::chaos
