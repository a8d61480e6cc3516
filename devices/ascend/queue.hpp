// The ascend device's in-order stream: one host thread runs the device's tasks in call order. A task
// launches ACL work on the device's ACL stream (or does a host step: top-k reads the row windows back);
// when the queue runs dry the thread waits for the ACL stream, frees what was freed in stream order, and
// wakes sync(). The first failure since the last sync is kept for it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace glmk::ascend {

class TaskQueue {
 public:
  // A task returns a glmk_code (0 = ok) and fills message when it fails.
  using Task = std::function<int(std::string& message)>;
  // Called on the queue's thread when it runs dry after work: waits for the device, returns a glmk_code.
  using Drain = std::function<int(std::string& message)>;
  using Start = std::function<void()>;

  TaskQueue(Start start, Drain drain);
  ~TaskQueue();  // runs what is queued, then stops the thread

  void push(Task t);
  // Waits until every task pushed before is done and drained; returns the first failure since the last
  // wait (and clears it).
  int wait(std::string& message);

 private:
  void run();

  Start start_;
  Drain drain_;
  std::mutex mu_;
  std::condition_variable work_cv_, idle_cv_;
  std::deque<Task> tasks_;
  bool stop_ = false;
  bool busy_ = false;   // a task is running, or the drain after it
  bool dirty_ = false;  // tasks ran since the last drain
  int error_code_ = 0;
  std::string error_message_;
  std::thread thread_;
};

}  // namespace glmk::ascend
