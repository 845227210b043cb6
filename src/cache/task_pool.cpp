// TaskPool (detail/cache_core.hpp). Threads are detached and share the pool's State, so a
// thread stuck in a user's loader can outlive the pool without touching freed memory. A
// thread is started only when a task arrives and no thread is idle, up to max_threads.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "tiercache/detail/cache_core.hpp"

namespace tiercache::detail {

struct TaskPool::State {
  std::string name;
  std::uint32_t max_threads = 1;
  std::mutex mutex;
  std::condition_variable work;     // a task was queued, or stopping
  std::condition_variable drained;  // a thread exited
  std::deque<std::function<void()>> queue;
  std::uint32_t threads = 0;
  std::uint32_t idle = 0;
  bool stopping = false;
};

namespace {

// The pool whose task the current thread runs, if any: a pool shut down from one of its own
// tasks does not wait for that task's thread.
thread_local const TaskPool::State* current_pool = nullptr;

void run_worker(const std::shared_ptr<TaskPool::State>& s) {
  current_pool = s.get();
  std::unique_lock lock(s->mutex);
  while (true) {
    if (!s->queue.empty()) {
      std::function<void()> task = std::move(s->queue.front());
      s->queue.pop_front();
      lock.unlock();
      try {
        task();
      } catch (...) {
        // Tasks report their own failures; nothing may escape a pool thread.
      }
      task = nullptr;  // release what it captured outside the lock
      lock.lock();
      continue;
    }
    if (s->stopping) break;
    ++s->idle;
    s->work.wait(lock);
    --s->idle;
  }
  --s->threads;
  s->drained.notify_all();
}

}  // namespace

TaskPool::TaskPool(std::string name, std::uint32_t max_threads)
    : state_(std::make_shared<State>()) {
  state_->name = std::move(name);
  state_->max_threads = max_threads == 0 ? 1 : max_threads;
}

TaskPool::~TaskPool() { shutdown(std::chrono::milliseconds(1000)); }

bool TaskPool::submit(std::function<void()> task) {
  std::lock_guard lock(state_->mutex);
  if (state_->stopping) return false;
  state_->queue.push_back(std::move(task));
  if (state_->idle > state_->queue.size() - 1) {
    state_->work.notify_one();
  } else if (state_->threads < state_->max_threads) {
    ++state_->threads;
    std::thread([s = state_] { run_worker(s); }).detach();
  }
  return true;
}

void TaskPool::shutdown(std::chrono::milliseconds grace) {
  std::deque<std::function<void()>> dropped;
  std::unique_lock lock(state_->mutex);
  state_->stopping = true;
  dropped.swap(state_->queue);
  state_->work.notify_all();
  const std::uint32_t self = current_pool == state_.get() ? 1 : 0;
  state_->drained.wait_for(lock, grace, [&] { return state_->threads <= self; });
  lock.unlock();
  // `dropped` is destroyed here, outside the lock: its tasks may hold the last references to
  // objects whose destructors take other locks.
}

}  // namespace tiercache::detail
