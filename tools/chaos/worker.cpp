// A worker process of `tiercache chaos` (worker.hpp): the workload threads, the watchdog and
// the conversation with the coordinator. The loaders are in worker_state.cpp.

#include "chaos/worker.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <asio/use_future.hpp>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "chaos/event_log.hpp"
#include "chaos/row_db.hpp"
#include "chaos/settings.hpp"
#include "chaos/worker_pacing.hpp"
#include "chaos/worker_state.hpp"
#include "demo/stats.hpp"
#include "sim/random.hpp"
#include "sim/zipf.hpp"
#include "stampede/processes.hpp"
#include "tiercache/cache.hpp"
#include "tiercache/redis/client.hpp"

namespace tiercache::cli::chaos {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The threads and their pace (per thread).
constexpr unsigned kReaders = 3;
constexpr unsigned kWriters = 2;
constexpr double kReadsPerSecond = 150;
constexpr double kAsyncReadsPerSecond = 80;
constexpr double kWritesPerSecond = 12;
// A reader's mix: the rest of its calls are get_or_load of an existing row.
constexpr double kGetFraction = 0.10;
constexpr double kManyFraction = 0.10;
constexpr double kAbsentFraction = 0.03;
constexpr std::size_t kManyKeys = 6;
constexpr std::int64_t kAbsentKeys = 20;  // rows keys+1 .. keys+kAbsentKeys never exist
// A writer's mix: the rest of its calls are write_through.
constexpr double kInvalidateFraction = 0.35;
constexpr double kTagFraction = 0.04;
constexpr double kClearsPerSecond = 1.0 / 20;  // writer 0 of each worker
constexpr double kZipfTheta = 0.99;
// Tags below this are invalidated by tag writes; get_or_load_many reads only rows of the
// others (its batch loader cannot tag what it loads: see run_batch_reads()).
constexpr std::int64_t kTagInvalidatedTags = kTags / 2;

constexpr int kWriteErrorsShown = 3;

constexpr milliseconds kWatchdogInterval{200};
constexpr milliseconds kBusWait{3'000};
constexpr milliseconds kStopTimeout{15'000};
// An async read's thread stops waiting for its completion this long after the hang bound.
constexpr milliseconds kAsyncAbandon{5'000};

// The call a thread is in, for the watchdog.
struct CallSlot {
  std::atomic<Micros> start{0};  // 0: not in a call
  std::atomic<const char*> op{""};
  Micros reported = 0;  // the watchdog's: the call it already logged
};

class Worker {
 public:
  Worker(const WorkerConfig& config, std::shared_ptr<WorkerState> state,
         std::shared_ptr<redis::Client> client, const std::shared_ptr<Reporter>& reporter)
      : config_(config),
        state_(std::move(state)),
        cache_(logged_options(cache_options(config.cache_name, config.keys, config.seed), reporter),
               std::move(client)),
        read_ranks_(static_cast<std::uint64_t>(config.keys), kZipfTheta),
        slots_(kReaders + kWriters + 1) {}

  ~Worker() { stop_threads(); }

  // Waits (bounded) for the invalidation bus, so that a run starts from a sane state.
  void wait_for_bus() {
    const SteadyClock::time_point deadline = SteadyClock::now() + kBusWait;
    while (SteadyClock::now() < deadline) {
      if (demo::prometheus_value(cache_.render_prometheus(), "tiercache_bus_connected") > 0) return;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  void start_threads() {
    unsigned thread = 0;
    for (unsigned r = 0; r < kReaders; ++r, ++thread) {
      threads_.emplace_back([this, thread] { run_reads(thread); });
    }
    threads_.emplace_back([this, thread] { run_async_reads(thread); });
    ++thread;
    for (unsigned w = 0; w < kWriters; ++w, ++thread) {
      threads_.emplace_back([this, thread, w] { run_writes(thread, w); });
    }
    watchdog_ = std::thread([this] { run_watchdog(); });
  }

  // Stops and joins the threads; false if some did not finish within kStopTimeout (stuck in
  // a call: the watchdog has logged it).
  bool stop_threads() {
    state_->stop();
    const SteadyClock::time_point deadline = SteadyClock::now() + kStopTimeout;
    {
      std::unique_lock lock(done_mutex_);
      if (!done_cv_.wait_until(lock, deadline, [&] { return done_ == threads_.size(); })) {
        return false;
      }
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    if (watchdog_.joinable()) watchdog_.join();
    return true;
  }

 private:
  // ---- helpers ------------------------------------------------------------------------------

  Pacer pacer(unsigned thread, double per_second) {
    return Pacer(per_second, config_.seed * 1'000'003 + config_.process.index * 1009 +
                                 config_.process.incarnation * 131 + thread);
  }
  std::int64_t read_key(Pacer& p) {
    return static_cast<std::int64_t>(read_ranks_([&p] { return p.uniform(); }));
  }

  void enter(unsigned thread, const char* op, Micros start) {
    slots_[thread].op.store(op, std::memory_order_relaxed);
    slots_[thread].start.store(start, std::memory_order_release);
  }
  void leave(unsigned thread) { slots_[thread].start.store(0, std::memory_order_release); }
  void thread_done() {
    {
      std::lock_guard lock(done_mutex_);
      ++done_;
    }
    done_cv_.notify_all();
  }

  auto loader(std::int64_t key) {
    return [state = state_, key](LoadContext& c) { return state->load(key, c); };
  }

  // ---- readers ------------------------------------------------------------------------------

  void run_reads(unsigned thread) {
    Pacer p = pacer(thread, kReadsPerSecond);
    while (p.wait(*state_)) {
      const double op = p.uniform();
      if (op < kGetFraction) {
        const std::int64_t key = read_key(p);
        const Micros start = now_us();
        enter(thread, "get", start);
        CacheResult<Row> r = cache_.get(row_key(key));
        const Micros end = now_us();
        leave(thread);
        state_->note_read(read_record(r, config_.process, thread, ReadOp::kGet, key, start, end));
      } else if (op < kGetFraction + kManyFraction) {
        run_batch_read(thread, p);
      } else {
        const bool absent = op < kGetFraction + kManyFraction + kAbsentFraction;
        const std::int64_t key =
            absent ? config_.keys + 1 + static_cast<std::int64_t>(p.below(kAbsentKeys))
                   : read_key(p);
        const Micros start = now_us();
        enter(thread, "get_or_load", start);
        CacheResult<Row> r = cache_.get_or_load(row_key(key), loader(key));
        const Micros end = now_us();
        leave(thread);
        state_->note_read(
            read_record(r, config_.process, thread, ReadOp::kGetOrLoad, key, start, end));
      }
    }
    thread_done();
  }

  // get_or_load_many of a few rows. The batch loader has no LoadContext, so what it loads is
  // stored without tags and an invalidate_tag() would not reach it: it reads only rows of tags
  // that are never invalidated by tag (unless --batch-all-rows shows that gap on purpose).
  void run_batch_read(unsigned thread, Pacer& p) {
    std::vector<std::int64_t> numbers;
    std::vector<std::string> keys;
    while (numbers.size() < kManyKeys) {
      std::int64_t key = read_key(p);
      if (!config_.batch_all_rows && key % kTags < kTagInvalidatedTags) {
        key += kTagInvalidatedTags;  // the same rank's row in an untagged-write tag
        if (key > config_.keys) continue;
      }
      numbers.push_back(key);
      keys.push_back(row_key(key));
    }
    const Micros start = now_us();
    enter(thread, "get_or_load_many", start);
    std::vector<CacheResult<Row>> results = cache_.get_or_load_many(
        keys,
        [state = state_](const std::vector<std::string>& ks) { return state->load_many(ks); });
    const Micros end = now_us();
    leave(thread);
    for (std::size_t i = 0; i < results.size() && i < numbers.size(); ++i) {
      state_->note_read(read_record(results[i], config_.process, thread, ReadOp::kGetOrLoadMany,
                                    numbers[i], start, end));
    }
  }

  void run_async_reads(unsigned thread) {
    Pacer p = pacer(thread, kAsyncReadsPerSecond);
    bool callback = false;
    const SteadyClock::duration abandon =
        milliseconds(oracle_config(config_.keys).call_bound / 1000) + kAsyncAbandon;
    while (p.wait(*state_)) {
      callback = !callback;
      const std::int64_t key = read_key(p);
      const Micros start = now_us();
      const SteadyClock::time_point deadline = SteadyClock::now() + abandon;
      if (callback) {
        enter(thread, "async_callback", start);
        // The handler logs the read itself, whenever it comes; this thread waits for it
        // (bounded) so that it has one call at a time.
        struct Done {
          std::mutex mutex;
          std::condition_variable cv;
          bool done = false;
        };
        auto done = std::make_shared<Done>();
        cache_.async_get_or_load(
            row_key(key), loader(key),
            [state = state_, done, process = config_.process, thread, key,
             start](CacheResult<Row> r) {
              const Micros end = now_us();
              state->note_read(
                  read_record(r, process, thread, ReadOp::kAsyncCallback, key, start, end));
              {
                std::lock_guard lock(done->mutex);
                done->done = true;
              }
              done->cv.notify_all();
            });
        std::unique_lock lock(done->mutex);
        done->cv.wait_until(lock, deadline, [&] { return done->done; });
      } else {
        enter(thread, "async_future", start);
        std::future<CacheResult<Row>> f =
            cache_.async_get_or_load(row_key(key), loader(key), asio::use_future);
        if (f.wait_until(deadline) == std::future_status::ready) {
          CacheResult<Row> r = f.get();
          state_->note_read(
              read_record(r, config_.process, thread, ReadOp::kAsyncFuture, key, start, now_us()));
        }
      }
      leave(thread);
    }
    thread_done();
  }

  // ---- writers ------------------------------------------------------------------------------

  // The tags writer `w` of this worker owns: t with t % P == index and (t / P) % kWriters == w.
  std::vector<std::int64_t> owned_tags(unsigned w) const {
    std::vector<std::int64_t> tags;
    for (std::int64_t t = 0; t < kTags; ++t) {
      if (t % config_.processes == config_.process.index &&
          (t / config_.processes) % kWriters == w) {
        tags.push_back(t);
      }
    }
    return tags;
  }

  void run_writes(unsigned thread, unsigned w) {
    const std::vector<std::int64_t> tags = owned_tags(w);
    Pacer p = pacer(thread, kWritesPerSecond);
    const sim::ZipfRankSampler ranks(
        static_cast<std::uint64_t>(std::max<std::int64_t>(1, config_.keys / kTags)), kZipfTheta);
    const double clear_chance = w == 0 ? kClearsPerSecond / kWritesPerSecond : 0;
    while (!tags.empty() && p.wait(*state_)) {
      const std::int64_t tag = tags[p.below(tags.size())];
      // The row of that rank among the tag's rows (tag, tag + kTags, ...; tag 0: kTags, ...).
      const auto rank = static_cast<std::int64_t>(ranks([&p] { return p.uniform(); }));
      const std::int64_t key = tag == 0 ? rank * kTags : tag + (rank - 1) * kTags;
      const double op = p.uniform();
      try {
        if (key > config_.keys) {
          continue;
        } else if (op < kTagFraction && tag < kTagInvalidatedTags) {
          write_tag(thread, tag);
        } else if (op < kTagFraction + kInvalidateFraction) {
          invalidate_on_write(thread, key);
        } else {
          write_through(thread, key, tag);
        }
        if (p.uniform() < clear_chance) clear(thread);
      } catch (const std::exception& e) {
        // A database error of the workload itself (not the cache's): say so, go on.
        std::fprintf(stderr, "tiercache chaos: %s: write: %s\n", config_.process.name().c_str(),
                     e.what());
      }
    }
    if (tags.empty()) {
      while (p.wait(*state_)) {
      }
    }
    thread_done();
  }

  void write_through(unsigned thread, std::int64_t key, std::int64_t tag) {
    const std::optional<std::int64_t> current = state_->db.version(key);
    if (!current) return;
    const Micros start = now_us();
    Row next{
        key,  *current + 1, tag, row_payload(key, *current + 1), config_.process.name() + "/wt",
        start};
    WriteOptions options;
    options.tags = {tag_name(tag)};
    enter(thread, "write_through", start);
    const WriteResult w = cache_.write_through(
        row_key(key), next, [&](const Row& row) { state_->db.compare_and_set(row, *current); },
        options);
    const Micros end = now_us();
    leave(thread);
    state_->log.append(WriteRecord{config_.process, thread, WriteKind::kWriteThrough, key,
                                   next.version, start, end, w.l2_written,
                                   w.ok() ? std::string() : to_string(w.error->code)});
    if (w.l2_written) state_->note_acknowledged_write(key, next.version, end);
    if (!w.ok() && w.error->code == CacheErrc::kWriterFailed) say_why(*w.error);
  }

  // The first few writes whose database writer failed, on stderr: the workload's own problem
  // (its compare-and-set), which deserves its reason on screen.
  void say_why(const CacheError& error) {
    if (write_errors_shown_.fetch_add(1, std::memory_order_relaxed) >= kWriteErrorsShown) return;
    std::string why = error.message;
    if (error.exception) {
      try {
        std::rethrow_exception(error.exception);
      } catch (const std::exception& e) {
        why += ": " + std::string(e.what());
      } catch (...) {
      }
    }
    std::fprintf(stderr, "tiercache chaos: %s: write_through failed (%s): %s\n",
                 config_.process.name().c_str(), to_string(error.code), why.c_str());
  }

  void invalidate_on_write(unsigned thread, std::int64_t key) {
    const std::int64_t version = state_->db.bump(key);
    const Micros start = now_us();
    enter(thread, "invalidate", start);
    const bool told = cache_.invalidate(row_key(key));
    const Micros end = now_us();
    leave(thread);
    state_->log.append(WriteRecord{config_.process, thread, WriteKind::kInvalidate, key, version,
                                   start, end, told, ""});
    if (told) state_->note_acknowledged_write(key, version, end);
  }

  void write_tag(unsigned thread, std::int64_t tag) {
    const std::vector<std::pair<std::int64_t, std::int64_t>> rows = state_->db.bump_tag(tag);
    const Micros start = now_us();
    enter(thread, "invalidate_tag", start);
    const bool told = cache_.invalidate_tag(tag_name(tag));
    const Micros end = now_us();
    leave(thread);
    for (const auto& [key, version] : rows) {
      state_->log.append(WriteRecord{config_.process, thread, WriteKind::kTag, key, version, start,
                                     end, told, ""});
      if (told) state_->note_acknowledged_write(key, version, end);
    }
  }

  void clear(unsigned thread) {
    const Micros start = now_us();
    enter(thread, "clear", start);
    const bool ok = cache_.clear();
    const Micros end = now_us();
    leave(thread);
    state_->log.append(ClearRecord{config_.process, thread, start, end, ok});
  }

  // ---- watchdog -----------------------------------------------------------------------------

  void run_watchdog() {
    const Micros bound = oracle_config(config_.keys).call_bound;
    do {
      const Micros now = now_us();
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        CallSlot& slot = slots_[i];
        const Micros start = slot.start.load(std::memory_order_acquire);
        if (start != 0 && now - start > bound && slot.reported != start) {
          slot.reported = start;
          state_->log.append(HangRecord{config_.process, static_cast<unsigned>(i),
                                        slot.op.load(std::memory_order_relaxed), start});
        }
      }
    } while (state_->sleep_for(kWatchdogInterval));
  }

  const WorkerConfig& config_;
  std::shared_ptr<WorkerState> state_;
  Cache<Row> cache_;
  const sim::ZipfRankSampler read_ranks_;
  std::vector<CallSlot> slots_;
  std::vector<std::thread> threads_;
  std::thread watchdog_;
  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::size_t done_ = 0;
  std::atomic<int> write_errors_shown_{0};
};

// Reads commands until "stop" or EOF.
void serve_commands(const WorkerConfig& config, WorkerState& state) {
  std::string buffer;
  char chunk[256];
  while (true) {
    const ssize_t n = ::read(config.command_fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EOF: the coordinator is gone
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t newline;
    while ((newline = buffer.find('\n')) != std::string::npos) {
      const std::string command = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (command == "stop") return;
      if (command == "loader ok") state.set_mode(LoaderMode::kOk);
      if (command == "loader hang") state.set_mode(LoaderMode::kHang);
      if (command == "loader fail") state.set_mode(LoaderMode::kFail);
      if (command == "die-in-load") state.die_in_next_load();
    }
  }
}

}  // namespace

int run_worker(const WorkerConfig& config) {
  auto reporter = std::make_shared<Reporter>(config.report_fd);
  try {
    redis::Result<redis::ClientConfig> parsed = redis::parse_url(config.redis_url);
    if (!parsed.ok()) throw std::runtime_error("--url: " + parsed.error().message);
    redis::ClientConfig client_config = *parsed;
    tune_client(client_config);
    client_config.client_name = config.cache_name;
    auto client = std::make_shared<redis::Client>(client_config);
    auto state = std::make_shared<WorkerState>(config);
    state->set_redis(client, config.cache_name);
    bool clean = true;
    {
      Worker worker(config, state, client, reporter);
      worker.wait_for_bus();
      worker.start_threads();
      reporter->line("R");
      serve_commands(config, *state);
      clean = worker.stop_threads();
      if (!clean) {
        // A thread is stuck in a call (logged as a hang): destroying the cache under it would
        // be a use-after-free. Leave without destructors.
        reporter->line("X " + config.process.name() +
                       ": threads still in a call at stop (see the hangs)");
        std::_Exit(1);
      }
    }
    reporter->line("E");
    return 0;
  } catch (const std::exception& e) {
    reporter->line("X " + config.process.name() + ": " + e.what());
    return 1;
  }
}

}  // namespace tiercache::cli::chaos
