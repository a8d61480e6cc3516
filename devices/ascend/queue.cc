#include "queue.hpp"

#include <exception>

namespace glmk::ascend {

TaskQueue::TaskQueue(Start start, Drain drain) : start_(std::move(start)), drain_(std::move(drain)) {
  thread_ = std::thread([this] { run(); });
}

TaskQueue::~TaskQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TaskQueue::push(Task t) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(t));
  }
  work_cv_.notify_one();
}

int TaskQueue::wait(std::string& message) {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return tasks_.empty() && !busy_ && !dirty_; });
  const int code = error_code_;
  message = std::move(error_message_);
  error_code_ = 0;
  error_message_.clear();
  return code;
}

void TaskQueue::run() {
  if (start_) start_();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stop_ || !tasks_.empty() || dirty_; });
    int code = 0;
    std::string msg;
    if (!tasks_.empty()) {
      Task t = std::move(tasks_.front());
      tasks_.pop_front();
      busy_ = true;
      lock.unlock();
      // NOTE: nothing may escape into the host: an exception (e.g. bad_alloc) becomes the task's failure.
      try {
        code = t(msg);
      } catch (const std::exception& e) {
        code = 7, msg = std::string("internal error: ") + e.what();
      } catch (...) {
        code = 7, msg = "internal error";
      }
      lock.lock();
      dirty_ = true;
    } else if (dirty_) {
      busy_ = true;
      lock.unlock();
      try {
        code = drain_(msg);
      } catch (...) {
        code = 7, msg = "internal error while waiting for the device";
      }
      lock.lock();
      dirty_ = false;
    } else if (stop_) {
      break;
    }
    if (code && !error_code_) error_code_ = code, error_message_ = std::move(msg);
    busy_ = false;
    if (tasks_.empty() && !dirty_) idle_cv_.notify_all();
  }
}

}  // namespace glmk::ascend
