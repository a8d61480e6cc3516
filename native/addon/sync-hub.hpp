// Promises that a device settles from its own thread (the ABI's optional sync_notify), for read() and sync().
//
// Without it, a libuv thread sits in sync() for every read() and sync(), and the result takes two thread
// wake-ups to reach JS. With it, the device's stream thread hands the result over through one thread-safe
// function per device: one wake-up. The thread-safe function keeps the event loop alive only while a
// promise is pending.
#pragma once
#include <napi.h>

#include <memory>

#include "glmk/device.h"

namespace glmk::addon {

class SyncHub {
 public:
  explicit SyncHub(Napi::Env env);
  ~SyncHub();
  SyncHub(const SyncHub&) = delete;
  SyncHub& operator=(const SyncHub&) = delete;
  // JS thread. A promise that settles once all work enqueued so far is done: it resolves with `buffer` (or
  // an empty ArrayBuffer when buffer is empty), or rejects with what sync() would have returned. `owner`
  // is kept alive until then, and so is `buffer` (a download into it may be in flight).
  Napi::Promise Start(Napi::Env env, const glmk_device_api* api, glmk_device* dev, Napi::Object owner,
                      Napi::ArrayBuffer buffer);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace glmk::addon
