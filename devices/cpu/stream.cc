#include "stream.hpp"

#include "glmk/status.hpp"

namespace glmk::cpu {

Pool::Pool(int threads) {
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

void Pool::run_items(int worker) {
  for (;;) {
    int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_) return;
    (*job_)(i, worker);
  }
}

void Pool::worker_main(int id) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      busy_++;
    }
    run_items(id);
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
    generation_++;
  }
  wake_.notify_all();
  run_items(0);
  // NOTE: a worker that wakes late finds next_ >= n_ and leaves at once; wait until none is inside.
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return busy_ == 0; });
  job_ = nullptr;
  n_ = 0;
}

Stream::Stream(int threads) : pool_(threads) { thread_ = std::thread([this] { main(); }); }

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
    enqueued_++;
  }
  has_work_.notify_one();
}

void Stream::main() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      has_work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    glmk_status st{};
    int rc;
    try {
      rc = item.task(&st);
    } catch (const std::bad_alloc&) {
      rc = fail(&st, GLMK_E_OOM, "out of host memory");
    } catch (const std::exception& e) {
      rc = fail(&st, GLMK_E_DEVICE, "%s", e.what());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (rc != GLMK_OK && err_code_ == GLMK_OK) {
        err_code_ = rc;
        err_message_ = std::string(item.op) + ": " + st.message;
      }
      completed_++;
    }
    progress_.notify_all();
  }
}

int Stream::sync(glmk_status* st) {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t ticket = enqueued_;
  progress_.wait(lock, [&] { return completed_ >= ticket; });
  if (err_code_ != GLMK_OK) {
    int code = err_code_;
    std::string msg = err_message_;
    err_code_ = GLMK_OK;
    err_message_.clear();
    return fail(st, code, "%s", msg.c_str());
  }
  return ok(st);
}

}  // namespace glmk::cpu
