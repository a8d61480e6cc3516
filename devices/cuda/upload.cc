// Deferred uploads and the idle pool trim of the cuda device (see upload.hpp).
#include "upload.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <thread>

#include "glmk/status.hpp"

namespace glmk::cuda {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kIdleAfter = std::chrono::milliseconds(1000);
constexpr auto kDeadPoll = std::chrono::milliseconds(100);

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct Job {
  const char* src;
  size_t bytes;
  uint64_t first, chunks;  // gates [first, first + chunks)
  glmk_done_fn release;
  void* user;
  bool copy;  // false: the enqueue failed part way (the caller got the error): only open the gates
};

}  // namespace

struct Uploader::State {
  int ordinal;
  cudaStream_t stream;
  cudaMemPool_t pool = nullptr;

  std::mutex enqueue_mu;  // one upload enqueues its gates and copies at a time: gate numbers follow stream order
  char* staging[kSlots] = {};
  bool staged = false;
  uint64_t next_seq = 0;

  std::mutex mu;
  std::condition_variable work_cv;  // the helper thread: a job, a gate started, stop, the idle clock armed
  std::condition_variable gate_cv;  // gates: a chunk is in staging, or the stream is dead
  std::deque<Job> jobs;
  uint64_t filled = 0;   // gate i may pass once filled > i
  uint64_t started = 0;  // gates that have started to run (in stream order): the copies before them ran
  bool dead = false;     // the stream failed for good: gates pass, nothing more is copied
  std::string dead_msg;
  std::string failure;   // for the next sync()
  bool stopping = false;

  std::atomic<int64_t> last_touch{0};
  std::atomic<bool> armed{false};  // activity since the last trim
  std::thread thread;

  void loop();
  void run(std::unique_lock<std::mutex>& l, const Job& job);
  void check_dead(std::unique_lock<std::mutex>& l);
  void idle_trim();
};

namespace {

struct Gate {
  std::shared_ptr<Uploader::State> s;
  uint64_t seq;
};

// On CUDA's callback thread: no CUDA call here. Waits only for the helper thread's memcpy of chunk seq,
// which needs no stream work enqueued after this gate.
void CUDART_CB gate_fn(void* p) {
  Gate* g = static_cast<Gate*>(p);
  Uploader::State& s = *g->s;
  {
    std::unique_lock<std::mutex> l(s.mu);
    s.started = std::max(s.started, g->seq + 1);
    s.work_cv.notify_all();
    s.gate_cv.wait(l, [&] { return s.filled > g->seq || s.dead; });
  }
  delete g;
}

}  // namespace

void Uploader::State::check_dead(std::unique_lock<std::mutex>& l) {
  l.unlock();
  const cudaError_t e = cudaStreamQuery(stream);
  l.lock();
  if (e != cudaSuccess && e != cudaErrorNotReady && !dead) {
    dead = true;
    dead_msg = std::string("upload: the stream failed before the source was copied: ") + cudaGetErrorName(e) + ": " +
               cudaGetErrorString(e);
    gate_cv.notify_all();
  }
}

void Uploader::State::run(std::unique_lock<std::mutex>& l, const Job& job) {
  for (uint64_t k = 0; k < job.chunks; k++) {
    const uint64_t seq = job.first + k;
    if (job.copy && !dead) {
      // Slot seq % kSlots was last read by the copy of chunk seq - kSlots, which ran once gate
      // seq - kSlots + 1 started.
      auto free_slot = [&] { return dead || seq < kSlots || started >= seq - kSlots + 2; };
      while (!free_slot())
        if (!work_cv.wait_for(l, kDeadPoll, free_slot)) check_dead(l);
      if (!dead) {
        const size_t off = k * kChunk, n = std::min(kChunk, job.bytes - off);
        char* slot = staging[seq % kSlots];
        l.unlock();
        std::memcpy(slot, job.src + off, n);
        l.lock();
      }
    }
    filled = seq + 1;
    gate_cv.notify_all();
  }
  if (!job.copy) return;
  const bool failed = dead;
  std::string msg = failed ? dead_msg : std::string();
  if (failed && failure.empty()) failure = msg;
  l.unlock();
  job.release(job.user, failed ? GLMK_E_DEVICE : GLMK_OK, msg.c_str());  // the source is not read any more
  l.lock();
}

// The pool gives its cached memory back once nothing was allocated, freed or uploaded for kIdleAfter and
// the stream has nothing left to run (a free enqueued before has run then, and returned its block).
void Uploader::State::idle_trim() {
  armed.store(false);  // a touch() from now on arms the clock again
  const bool quiet = now_ns() - last_touch.load() >= std::chrono::nanoseconds(kIdleAfter).count();
  const cudaError_t e = cudaStreamQuery(stream);
  if (quiet && e == cudaSuccess) {
    if (pool) cudaMemPoolTrimTo(pool, 0);
  } else if (e == cudaErrorNotReady || !quiet) {
    last_touch.store(std::max(last_touch.load(), now_ns() - std::chrono::nanoseconds(kIdleAfter).count() / 2));
    armed.store(true);  // still busy: look again later
  }
}

void Uploader::State::loop() {
  cudaSetDevice(ordinal);
  std::unique_lock<std::mutex> l(mu);
  for (;;) {
    if (!jobs.empty()) {
      const Job job = jobs.front();
      jobs.pop_front();
      run(l, job);
      continue;
    }
    if (stopping) return;
    auto wake = [&] { return !jobs.empty() || stopping || armed.load(); };
    if (!armed.load()) {
      work_cv.wait(l, wake);
      continue;
    }
    const auto due = Clock::time_point(std::chrono::nanoseconds(last_touch.load())) + kIdleAfter;
    if (Clock::now() < due) {
      work_cv.wait_until(l, due, [&] { return !jobs.empty() || stopping; });
      continue;
    }
    l.unlock();
    idle_trim();
    l.lock();
  }
}

Uploader::Uploader(int ordinal, cudaStream_t stream) : s_(std::make_shared<State>()) {
  s_->ordinal = ordinal;
  s_->stream = stream;
  if (cudaDeviceGetDefaultMemPool(&s_->pool, ordinal) != cudaSuccess) s_->pool = nullptr;
  State* s = s_.get();
  s_->thread = std::thread([s] { s->loop(); });  // may throw std::system_error: the caller catches it
}

Uploader::~Uploader() { stop(); }

void Uploader::touch() {
  s_->last_touch.store(now_ns(), std::memory_order_relaxed);
  if (!s_->armed.load(std::memory_order_relaxed) && !s_->armed.exchange(true)) {
    std::lock_guard<std::mutex> l(s_->mu);
    s_->work_cv.notify_all();
  }
}

// A failed upload also fails the next sync(): dev.tensor() leaves its promise to that (never silent).
static int upload_fail(Uploader::State& s, glmk_status* st, int code, const std::string& msg) {
  cudaGetLastError();  // reported here, not by the next kernel launch's check
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (s.failure.empty()) s.failure = msg;
  }
  return fail(st, code, "%s", msg.c_str());
}

int Uploader::upload(void* dst, const void* src, size_t bytes, glmk_done_fn release, void* user, glmk_status* st) {
  State& s = *s_;
  std::lock_guard<std::mutex> eq(s.enqueue_mu);
  {
    std::unique_lock<std::mutex> l(s.mu);
    if (s.dead) {
      const std::string msg = s.dead_msg;
      l.unlock();
      return upload_fail(s, st, GLMK_E_DEVICE, msg);
    }
  }
  if (!s.staged) {  // once per device: kSlots x 4 MiB of pinned memory
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < kSlots && e == cudaSuccess; i++)
      if ((e = cudaMallocHost(reinterpret_cast<void**>(&s.staging[i]), kChunk)) != cudaSuccess) s.staging[i] = nullptr;
    if (e != cudaSuccess) {
      cudaGetLastError();  // not the next kernel launch's error
      for (char*& p : s.staging)
        if (p) cudaFreeHost(p), p = nullptr;
      // No pinned memory to be had: copy during the call, as upload() does (correct, only not deferred).
      if ((e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s.stream)) != cudaSuccess)
        return upload_fail(s, st, GLMK_E_DEVICE,
                           std::string("upload (cudaMemcpyAsync): ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
      {
        std::lock_guard<std::mutex> l(s.mu);
        s.jobs.push_back(Job{static_cast<const char*>(src), bytes, s.next_seq, 0, release, user, true});
        s.work_cv.notify_all();
      }
      touch();
      return ok(st);
    }
    s.staged = true;
  }
  const uint64_t chunks = (bytes + kChunk - 1) / kChunk;
  const uint64_t first = s.next_seq;
  uint64_t gates = 0;
  cudaError_t e = cudaSuccess;
  const char* what = "";
  for (uint64_t k = 0; k < chunks && e == cudaSuccess; k++) {
    Gate* g = new (std::nothrow) Gate{s_, first + k};
    if (!g) {
      e = cudaErrorMemoryAllocation, what = "upload";
      break;
    }
    if ((e = cudaLaunchHostFunc(s.stream, gate_fn, g)) != cudaSuccess) {
      delete g;
      what = "upload (cudaLaunchHostFunc)";
      break;
    }
    gates++;
    const size_t off = k * kChunk, n = std::min(kChunk, bytes - off);
    if ((e = cudaMemcpyAsync(static_cast<char*>(dst) + off, s.staging[(first + k) % kSlots], n,
                             cudaMemcpyHostToDevice, s.stream)) != cudaSuccess)
      what = "upload (cudaMemcpyAsync)";
  }
  s.next_seq = first + gates;
  {
    std::lock_guard<std::mutex> l(s.mu);
    if (e == cudaSuccess || gates > 0)
      s.jobs.push_back(Job{static_cast<const char*>(src), bytes, first, gates, release, user, e == cudaSuccess});
    s.work_cv.notify_all();
  }
  touch();
  if (e != cudaSuccess)
    return upload_fail(s, st, e == cudaErrorMemoryAllocation ? GLMK_E_OOM : GLMK_E_DEVICE,
                       std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
  return ok(st);
}

int Uploader::take_failure(glmk_status* st) {
  std::lock_guard<std::mutex> l(s_->mu);
  if (s_->failure.empty()) return ok(st);
  fail(st, GLMK_E_DEVICE, "%s", s_->failure.c_str());
  s_->failure.clear();
  return GLMK_E_DEVICE;
}

void Uploader::stop() {
  State& s = *s_;
  if (!s.thread.joinable()) return;
  {
    std::lock_guard<std::mutex> l(s.mu);
    s.stopping = true;
    s.work_cv.notify_all();
  }
  s.thread.join();  // after every pending job (a dead stream is found by cudaStreamQuery while it waits)
  std::lock_guard<std::mutex> eq(s.enqueue_mu);
  if (s.staged) {
    for (char*& p : s.staging) cudaFreeHost(p), p = nullptr;
    s.staged = false;
  }
}

}  // namespace glmk::cuda
