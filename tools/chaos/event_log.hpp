// The event log of `tiercache chaos`: how a worker process hands its records (records.hpp) to
// the coordinator, and survives the worker being killed with SIGKILL at any instant.
//
// One append-only text file per worker incarnation, one line per record:
//   W <thread> <wt|inv|tag> <key> <version> <start> <end> <l2_written 0|1> <error|->
//   R <thread> <op> <key> <v|n|m|e> <value_key> <version> <stale 0|1> <source> <start> <end>
//     <error|-> <origin|-> <origin_us>
//   T <key> <start> <end> <f|s>
//   H <thread> <op> <start>
//   C <thread> <start> <end> <ok 0|1>
//   D <key> <time> <text: the rest of the line>
// (times: records.hpp). Each line is written by ONE write(2) on an O_APPEND descriptor, after
// the call it describes returned: a line is in the file whole or not at all (a write to a
// regular file is not interrupted by a signal; appends from several threads do not
// interleave). A process killed between a call's return and its line simply never reports
// that call: a write whose completion was not logged is not counted. The reader still ignores
// a last line without its newline, and lines that do not parse (counted).
//
// The coordinator tails every file while the run goes on (LogTail), so the oracle checks
// reads a few seconds after they happen, with bounded memory.

#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "chaos/records.hpp"

namespace tiercache::cli::chaos {

using Event =
    std::variant<WriteRecord, ReadRecord, TroubleRecord, HangRecord, ClearRecord, DiagnosticRecord>;

// The line of a record, with its newline. The record's process is not written: it is the
// file's.
std::string format_event(const Event& event);
// The record of a line (without its newline), attributed to `process`; nullopt if the line is
// not one format_event() writes.
std::optional<Event> parse_event(std::string_view line, ProcessId process);

// A worker's side: appends lines to its file. Thread-safe.
class EventLog {
 public:
  // Creates (or appends to) `path`. Throws std::runtime_error if it cannot be opened.
  explicit EventLog(const std::string& path);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // One write(2) of format_event(event). A failed write is counted, not thrown: losing a
  // record only makes the oracle know less.
  void append(const Event& event);
  std::uint64_t failed_appends() const;

 private:
  int fd_ = -1;
  std::atomic<std::uint64_t> failed_{0};
};

// The coordinator's side: reads what was appended to one file since the last call.
class LogTail {
 public:
  LogTail(std::string path, ProcessId process);
  ~LogTail();
  LogTail(LogTail&& other) noexcept;
  LogTail& operator=(LogTail&&) = delete;
  LogTail(const LogTail&) = delete;

  // Calls on_event(event) for each complete new line (in file order); returns how many lines
  // did not parse. A file that does not exist yet has no lines.
  template <class F>
  std::uint64_t read_new(F&& on_event) {
    std::uint64_t bad = 0;
    read_lines([&](std::string_view line) {
      if (std::optional<Event> e = parse_event(line, process_)) {
        on_event(std::move(*e));
      } else {
        ++bad;
      }
    });
    return bad;
  }

  const std::string& path() const { return path_; }
  ProcessId process() const { return process_; }

 private:
  template <class F>
  void read_lines(F&& on_line);
  bool fill();  // appends new bytes to buffer_; false if there were none

  std::string path_;
  ProcessId process_;
  int fd_ = -1;
  std::string buffer_;  // bytes read but not yet consumed (a partial last line)
};

template <class F>
void LogTail::read_lines(F&& on_line) {
  while (fill()) {
    std::size_t start = 0;
    std::size_t newline;
    while ((newline = buffer_.find('\n', start)) != std::string::npos) {
      on_line(std::string_view(buffer_).substr(start, newline - start));
      start = newline + 1;
    }
    buffer_.erase(0, start);
  }
}

}  // namespace tiercache::cli::chaos
