// Promises that a device settles from its own thread (the ABI's optional sync_notify), for read() and sync().
//
// Without it, a libuv thread sits in sync() for every read() and sync(), and the result takes two thread
// wake-ups to reach JS. With it, the device's stream thread hands the result over through one thread-safe
// function per device: one wake-up. The thread-safe function keeps the event loop alive only while a
// promise is pending.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>

#include "glmk/device.h"

namespace glmk::addon {

class SyncHub {
 public:
  explicit SyncHub(Napi::Env env);
  ~SyncHub();
  SyncHub(const SyncHub&) = delete;
  SyncHub& operator=(const SyncHub&) = delete;
  // JS thread. `arm(done, user, st)` hands the device a callback (sync_notify, upload_deferred); the
  // promise settles when the device calls it: it resolves with `buffer` (or an empty ArrayBuffer when
  // buffer is empty), or rejects with the code and message the device passed. `owner` is kept alive until
  // then, and so is `buffer` (a download into it, or an upload from it, may be in flight).
  using Arm = std::function<int(glmk_done_fn done, void* user, glmk_status* st)>;
  Napi::Promise Start(Napi::Env env, Napi::Object owner, Napi::ArrayBuffer buffer, const Arm& arm);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace glmk::addon
