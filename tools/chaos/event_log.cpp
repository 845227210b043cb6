// The event log of `tiercache chaos` (event_log.hpp) and the records' small helpers.

#include "chaos/event_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace tiercache::cli::chaos {
namespace {

constexpr std::array<const char*, 3> kWriteKinds = {"wt", "inv", "tag"};
constexpr std::array<const char*, 5> kReadOps = {"get_or_load", "get", "get_or_load_many",
                                                 "async_future", "async_callback"};
constexpr std::array<char, 4> kOutcomes = {'v', 'n', 'm', 'e'};

// The space-separated fields of a line.
std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (start <= line.size()) {
    const std::size_t space = line.find(' ', start);
    const std::size_t end = space == std::string_view::npos ? line.size() : space;
    fields.push_back(line.substr(start, end - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  return fields;
}

template <class T>
bool number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

bool flag(std::string_view text, bool& out) {
  if (text != "0" && text != "1") return false;
  out = text == "1";
  return true;
}

template <std::size_t N>
bool index_of(const std::array<const char*, N>& names, std::string_view text, std::size_t& out) {
  for (std::size_t i = 0; i < N; ++i) {
    if (text == names[i]) {
      out = i;
      return true;
    }
  }
  return false;
}

void append_fields(std::string&) {}
template <class T, class... Rest>
void append_fields(std::string& out, const T& first, const Rest&... rest) {
  out.push_back(' ');
  if constexpr (std::is_same_v<T, bool>) {
    out.push_back(first ? '1' : '0');
  } else if constexpr (std::is_same_v<T, char>) {
    out.push_back(first);
  } else if constexpr (std::is_arithmetic_v<T>) {
    out.append(std::to_string(first));
  } else {
    out.append(first);
  }
  append_fields(out, rest...);
}

template <class... Fields>
std::string line(char type, const Fields&... fields) {
  std::string out(1, type);
  append_fields(out, fields...);
  out.push_back('\n');
  return out;
}

std::optional<Event> parse_write(const std::vector<std::string_view>& f, ProcessId process) {
  WriteRecord w;
  w.process = process;
  std::size_t kind = 0;
  if (f.size() != 9 || !number(f[1], w.thread) || !index_of(kWriteKinds, f[2], kind) ||
      !number(f[3], w.key) || !number(f[4], w.version) || !number(f[5], w.start) ||
      !number(f[6], w.end) || !flag(f[7], w.l2_written) || f[8].empty()) {
    return std::nullopt;
  }
  w.kind = static_cast<WriteKind>(kind);
  if (f[8] != "-") w.error = std::string(f[8]);
  return w;
}

std::optional<Event> parse_read(const std::vector<std::string_view>& f, ProcessId process) {
  ReadRecord r;
  r.process = process;
  std::size_t op = 0;
  if (f.size() != 14 || !number(f[1], r.thread) || !index_of(kReadOps, f[2], op) ||
      !number(f[3], r.key) || f[4].size() != 1 || !number(f[5], r.value_key) ||
      !number(f[6], r.version) || !flag(f[7], r.stale) || f[8].size() != 1 ||
      !number(f[9], r.start) || !number(f[10], r.end) || f[11].empty() || f[12].empty() ||
      !number(f[13], r.origin_us)) {
    return std::nullopt;
  }
  r.op = static_cast<ReadOp>(op);
  std::size_t outcome = kOutcomes.size();
  for (std::size_t i = 0; i < kOutcomes.size(); ++i) {
    if (f[4][0] == kOutcomes[i]) outcome = i;
  }
  if (outcome == kOutcomes.size()) return std::nullopt;
  r.outcome = static_cast<Outcome>(outcome);
  r.source = f[8][0];
  if (f[11] != "-") r.error = std::string(f[11]);
  r.origin = std::string(f[12]);
  return r;
}

}  // namespace

Micros now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ProcessId::name() const {
  std::string out = "w" + std::to_string(index);
  if (incarnation > 0) out += "." + std::to_string(incarnation);
  return out;
}

const char* to_string(WriteKind kind) {
  switch (kind) {
    case WriteKind::kWriteThrough:
      return "write_through";
    case WriteKind::kInvalidate:
      return "invalidate-on-write";
    case WriteKind::kTag:
      return "invalidate_tag";
  }
  return "?";
}

const char* to_string(ReadOp op) { return kReadOps[static_cast<std::size_t>(op)]; }

std::string format_event(const Event& event) {
  struct Formatter {
    std::string operator()(const WriteRecord& w) const {
      return line('W', w.thread, kWriteKinds[static_cast<std::size_t>(w.kind)], w.key, w.version,
                  w.start, w.end, w.l2_written, w.error.empty() ? std::string("-") : w.error);
    }
    std::string operator()(const ReadRecord& r) const {
      return line('R', r.thread, kReadOps[static_cast<std::size_t>(r.op)], r.key,
                  kOutcomes[static_cast<std::size_t>(r.outcome)], r.value_key, r.version, r.stale,
                  r.source, r.start, r.end, r.error.empty() ? std::string("-") : r.error,
                  r.origin.empty() ? std::string("-") : r.origin, r.origin_us);
    }
    std::string operator()(const TroubleRecord& t) const {
      return line('T', t.key, t.start, t.end, t.what);
    }
    std::string operator()(const HangRecord& h) const { return line('H', h.thread, h.op, h.start); }
    std::string operator()(const ClearRecord& c) const {
      return line('C', c.thread, c.start, c.end, c.ok);
    }
    std::string operator()(const DiagnosticRecord& d) const {
      std::string text = d.text;
      for (char& ch : text) {
        if (ch == '\n' || ch == '\r') ch = ' ';
      }
      return line('D', d.key, d.time, text);
    }
  };
  return std::visit(Formatter{}, event);
}

std::optional<Event> parse_event(std::string_view text, ProcessId process) {
  if (text.starts_with("D ")) {  // free text after the third field
    DiagnosticRecord d;
    d.process = process;
    const std::size_t a = text.find(' ', 2);
    const std::size_t b = a == std::string_view::npos ? a : text.find(' ', a + 1);
    if (b == std::string_view::npos || !number(text.substr(2, a - 2), d.key) ||
        !number(text.substr(a + 1, b - a - 1), d.time)) {
      return std::nullopt;
    }
    d.text = std::string(text.substr(b + 1));
    return d;
  }
  const std::vector<std::string_view> f = split(text);
  if (f.empty() || f[0].size() != 1) return std::nullopt;
  switch (f[0][0]) {
    case 'W':
      return parse_write(f, process);
    case 'R':
      return parse_read(f, process);
    case 'T': {
      TroubleRecord t;
      t.process = process;
      if (f.size() != 5 || !number(f[1], t.key) || !number(f[2], t.start) || !number(f[3], t.end) ||
          (f[4] != "f" && f[4] != "s")) {
        return std::nullopt;
      }
      t.what = f[4][0];
      return t;
    }
    case 'H': {
      HangRecord h;
      h.process = process;
      if (f.size() != 4 || !number(f[1], h.thread) || f[2].empty() || !number(f[3], h.start)) {
        return std::nullopt;
      }
      h.op = std::string(f[2]);
      return h;
    }
    case 'C': {
      ClearRecord c;
      c.process = process;
      if (f.size() != 5 || !number(f[1], c.thread) || !number(f[2], c.start) ||
          !number(f[3], c.end) || !flag(f[4], c.ok)) {
        return std::nullopt;
      }
      return c;
    }
    default:
      return std::nullopt;
  }
}

// ---- EventLog -----------------------------------------------------------------------------------

EventLog::EventLog(const std::string& path)
    : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {
  if (fd_ < 0) {
    throw std::runtime_error("event log " + path + ": " + std::strerror(errno));
  }
}

EventLog::~EventLog() {
  if (fd_ >= 0) ::close(fd_);
}

void EventLog::append(const Event& event) {
  const std::string text = format_event(event);
  ssize_t n;
  do {
    n = ::write(fd_, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(text.size())) failed_.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t EventLog::failed_appends() const { return failed_.load(std::memory_order_relaxed); }

// ---- LogTail ------------------------------------------------------------------------------------

LogTail::LogTail(std::string path, ProcessId process) : path_(std::move(path)), process_(process) {}

LogTail::~LogTail() {
  if (fd_ >= 0) ::close(fd_);
}

LogTail::LogTail(LogTail&& other) noexcept
    : path_(std::move(other.path_)),
      process_(other.process_),
      fd_(other.fd_),
      buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

bool LogTail::fill() {
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return false;  // not created yet
  }
  char chunk[1 << 16];
  ssize_t n;
  do {
    n = ::read(fd_, chunk, sizeof chunk);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

}  // namespace tiercache::cli::chaos
