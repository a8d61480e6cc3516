#include "stream.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>

#include "glmk/status.hpp"

namespace glmk::cpu {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

bool spin_until(int spin_us, const std::function<bool()>& ready) {
  if (spin_us <= 0) return ready();
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    sched_yield();
  }
}

bool pause_until(int pause_us, const std::function<bool()>& ready) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(pause_us);
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    cpu_relax();
  }
}

Pool::Pool(int threads, int spin_us) : spin_us_(spin_us) {
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, i] { worker_main(i); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void Pool::run_items(int worker, const std::function<void(int64_t, int)>* job, int64_t n) {
  for (;;) {
    int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) return;
    // NOTE: an exception must not leave an item: on a worker thread it would terminate the process, and on
    // the calling thread it would unwind parallel_for while workers still run items on its stack. The first
    // one is kept for parallel_for to rethrow once every worker is out; items not started are skipped.
    try {
      (*job)(i, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(n, std::memory_order_relaxed);
    }
  }
}

void Pool::worker_main(int id) {
  uint64_t seen = 0;
  const std::function<void(int64_t, int)>* job = nullptr;
  int64_t n = 0;
  for (;;) {
    spin_until(spin_us_, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_relaxed);
      busy_++;
      // The job as of now, read under the lock (parallel_for changes it under the lock, and only once busy_
      // is back to 0). A worker that wakes after its job was done and reset (n_ = 0) must not touch next_:
      // the caller may already have started the next job, whose items it would take and drop.
      job = job_;
      n = n_;
    }
    if (n > 0) run_items(id, job, n);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--busy_ == 0) done_.notify_all();
    }
  }
}

void Pool::parallel_for(int64_t n, const std::function<void(int64_t, int)>& f) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; i++) f(i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &f;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  run_items(0, &f, n);
  // NOTE: a worker that wakes late finds next_ >= n or the job reset and leaves at once; wait until none
  // is inside. Poll first: the last items end within microseconds of each other, and sleeping on done_
  // costs a wake-up (tens of microseconds on a virtual machine) on the calling thread. And poll without
  // yielding for the first microseconds: on oversubscribed cores sched_yield hands this thread's core to
  // another process for a time slice (a 1x131072 top-k split over 2 threads beside 6 busy processes: p99
  // up to 4 ms, against 0.2 ms alone).
  const auto idle = [&] { return busy_.load(std::memory_order_acquire) == 0; };
  if (!pause_until(std::min(spin_us_, kPausePollUs), idle)) spin_until(spin_us_, idle);
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return busy_.load(std::memory_order_relaxed) == 0; });
  job_ = nullptr;
  n_ = 0;
  lock.unlock();
  std::exception_ptr failed;
  {
    std::lock_guard<std::mutex> error_lock(error_mu_);
    failed.swap(error_);
  }
  if (failed) std::rethrow_exception(failed);
}

Stream::Stream(int threads, int spin_us) : pool_(threads, spin_us), spin_us_(spin_us) {
  thread_ = std::thread([this] { main(); });
}

Stream::~Stream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  has_work_.notify_all();
  thread_.join();
}

void Stream::enqueue(const char* op, Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(Item{op, std::move(task)});
    enqueued_.fetch_add(1, std::memory_order_relaxed);
    queued_.fetch_add(1, std::memory_order_release);
  }
  has_work_.notify_one();
}

namespace {

// A task's status, with the exceptions a task may throw turned into one (nothing escapes into the host).
int run_guarded(const Stream::Task& task, glmk_status* st) {
  try {
    return task(st);
  } catch (const std::bad_alloc&) {
    return fail(st, GLMK_E_OOM, "out of host memory");
  } catch (const std::exception& e) {
    return fail(st, GLMK_E_DEVICE, "%s", e.what());
  }
}

}  // namespace

void Stream::main() {
  uint64_t taken = 0;
  for (;;) {
    Item item;
    spin_until(spin_us_, [&] { return queued_.load(std::memory_order_acquire) != taken; });
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return stop_ || !queue_.empty(); };
      if (!ready() && idle_armed_) {
        // Idle: wait for work, or until `idle_after_` has passed since the last task (queued or inline)
        // ended, then run the hook.
        if (!has_work_.wait_until(lock, last_task_end_ + idle_after_, ready)) {
          if (std::chrono::steady_clock::now() >= last_task_end_ + idle_after_) {
            idle_armed_ = false;
            lock.unlock();
            idle_fn_();  // (tasks may run inline meanwhile: the hook must be safe with them)
          }
          continue;
        }
      }
      has_work_.wait(lock, [&] { return ready() || idle_armed_; });
      if (queue_.empty()) {
        if (stop_) return;  // stop_ and drained
        continue;           // armed by an inline task: wait idle
      }
      item = std::move(queue_.front());
      queue_.pop_front();
      taken++;
    }
    glmk_status st{};
    const int rc = run_guarded(item.task, &st);
    record(item.op, rc, st);
    progress_.notify_all();
  }
}

void Stream::record(const char* op, int rc, const glmk_status& st) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rc != GLMK_OK && err_code_ == GLMK_OK) {
    err_code_ = rc;
    err_message_ = std::string(op) + ": " + st.message;
  }
  completed_++;
  if (idle_fn_) {
    idle_armed_ = true;
    last_task_end_ = std::chrono::steady_clock::now();
  }
}

bool Stream::run_inline(const char* op, const Task& task) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (completed_ != enqueued_.load(std::memory_order_relaxed)) return false;
    enqueued_.fetch_add(1, std::memory_order_relaxed);  // counted as a task, so sync() tickets stay right
    wake = idle_fn_ && !idle_armed_;  // the stream thread sleeps untimed: start its idle clock (once)
  }
  glmk_status st{};
  const int rc = run_guarded(task, &st);
  record(op, rc, st);  // (arms the idle clock)
  if (wake) has_work_.notify_one();
  return true;
}

int Stream::poll(bool* done, glmk_status* st) {
  std::unique_lock<std::mutex> lock(mu_);
  *done = completed_ == enqueued_.load(std::memory_order_relaxed);
  if (!*done) return ok(st);
  std::string msg;
  const int code = take_failure(&msg);
  lock.unlock();
  return code == GLMK_OK ? ok(st) : fail(st, code, "%s", msg.c_str());
}

void Stream::on_idle(std::chrono::milliseconds after, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_after_ = after;
  idle_fn_ = std::move(fn);
}

int Stream::take_failure(std::string* message) {
  const int code = err_code_;
  message->swap(err_message_);
  err_code_ = GLMK_OK;
  err_message_.clear();
  return code;
}

int Stream::sync(glmk_status* st) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = enqueued_.load(std::memory_order_relaxed);
  progress_.wait(lock, [&] { return completed_ >= ticket; });
  std::string msg;
  const int code = take_failure(&msg);
  lock.unlock();
  return code == GLMK_OK ? ok(st) : fail(st, code, "%s", msg.c_str());
}

void Stream::notify(std::function<void(int, const char*)> done) {
  // NOTE: a task like any other, so it runs after everything enqueued before it; it reports GLMK_OK itself,
  // so the failure it hands over is not recorded again.
  enqueue("notify", [this, done = std::move(done)](glmk_status* s) {
    std::string msg;
    int code;
    {
      std::lock_guard<std::mutex> lock(mu_);
      code = take_failure(&msg);
    }
    done(code, msg.c_str());
    return ok(s);
  });
}

}  // namespace glmk::cpu
