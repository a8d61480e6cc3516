// The CPU device's in-order stream and its worker pool.
//
// One stream thread runs enqueued tasks in order, off the JS thread. Inside a task, Pool::parallel_for
// spreads independent work items over the pool (the stream thread is worker 0). Work items are cut the
// same way whatever the pool size, and each writes only its own outputs, so results never depend on it.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "glmk/device.h"

namespace glmk::cpu {

constexpr int kMaxSpinUs = 1000000;

// Polls ready() (yielding the core between polls) for up to spin_us microseconds; returns ready().
// NOTE: a thread that sleeps on a condition variable leaves its core idle, and on a virtual machine waking
// an idle core costs 50-150 us (measured here): more than a small top-k takes. Polling for a while first
// keeps the handoffs between JS, the stream and the pool off that path when calls come back to back; the
// yield lets any other thread that wants the core have it.
bool spin_until(int spin_us, const std::function<bool()>& ready);

// How long a thread that waits for another that is about to finish polls without yielding (pause_until).
constexpr int kPausePollUs = 20;

// Polls ready() without yielding (a pause instruction between polls) for up to pause_us microseconds;
// returns ready(). For waits that end within microseconds: on oversubscribed cores a yield hands the core
// to another process for a time slice.
bool pause_until(int pause_us, const std::function<bool()>& ready);

class Pool {
 public:
  Pool(int threads, int spin_us);
  ~Pool();
  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs f(item, worker) for every item in [0, n); returns when all are done. If an item throws, the items
  // not yet started are skipped and the first exception is rethrown here once no worker is inside.
  void parallel_for(int64_t n, const std::function<void(int64_t, int)>& f);

 private:
  void worker_main(int id);
  void run_items(int worker, const std::function<void(int64_t, int)>* job, int64_t n);
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> busy_{0};  // workers inside a job; changed under mu_, polled without it
  std::atomic<uint64_t> generation_{0};
  std::mutex error_mu_;
  std::exception_ptr error_;  // the first exception an item threw in the job (error_mu_)
  bool stop_ = false;
  const int spin_us_;
};

class Stream {
 public:
  using Task = std::function<int(glmk_status*)>;
  Stream(int threads, int spin_us);
  ~Stream();
  void enqueue(const char* op, Task task);
  // Waits for every task enqueued before the call; returns and clears the first failure.
  int sync(glmk_status* st);
  // sync() without waiting: once every task enqueued before the call is done, calls done(code, message)
  // on the stream thread with what sync() would return then (and clears that failure).
  void notify(std::function<void(int, const char*)> done);
  // The thread that enqueues (the host's JS thread: the only one that does) runs `task` itself, now, when
  // nothing is queued or running, recording a failure as the stream would; returns false (and does not run
  // it) otherwise. In-order all the same: nothing else can start while the one producer is busy here.
  // NOTE: for small work only. Handing a 20 us op to the stream thread and its result back costs two thread
  // wake-ups, each a scheduler time slice (ms) when the cores are oversubscribed.
  bool run_inline(const char* op, const Task& task);
  // sync() if nothing is queued or running (sets *done and returns what sync() would); else *done = false.
  int poll(bool* done, glmk_status* st);
  // Calls fn on the stream thread once the stream has been idle for `after` (again after every later
  // task, never while work is queued). Set before the first enqueue.
  void on_idle(std::chrono::milliseconds after, std::function<void()> fn);
  Pool& pool() { return pool_; }

 private:
  struct Item {
    const char* op;
    Task task;
  };
  void main();
  void record(const char* op, int rc, const glmk_status& st);
  int take_failure(std::string* message);  // (mu_ held)
  Pool pool_;
  std::mutex mu_;
  std::condition_variable has_work_, progress_;
  std::deque<Item> queue_;
  std::atomic<uint64_t> enqueued_{0};  // tasks enqueued or run inline (sync tickets); changed under mu_
  std::atomic<uint64_t> queued_{0};    // tasks pushed to queue_; read without mu_ by the polling stream thread
  uint64_t completed_ = 0;
  bool stop_ = false;
  int err_code_ = GLMK_OK;
  std::string err_message_;
  const int spin_us_;
  std::chrono::milliseconds idle_after_{0};
  std::function<void()> idle_fn_;
  bool idle_armed_ = false;  // a task ran since the idle hook last did (mu_)
  std::chrono::steady_clock::time_point last_task_end_;  // (mu_)
  std::thread thread_;  // last: started once every other member exists
};

}  // namespace glmk::cpu
