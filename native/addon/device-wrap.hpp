// One opened device as a JS object: memory, copies, sync and op entry points. Pointers cross as BigInt.
#pragma once
#include <napi.h>

#include <memory>

#include "glmk/device.h"
#include "sync-hub.hpp"

namespace glmk::addon {

// A device pointer from JS (BigInt; null or undefined: nullptr).
inline void* to_ptr(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  bool lossless = true;
  uint64_t p = v.As<Napi::BigInt>().Uint64Value(&lossless);
  return reinterpret_cast<void*>(static_cast<uintptr_t>(p));
}

inline int64_t to_i64(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

class DeviceWrap : public Napi::ObjectWrap<DeviceWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit DeviceWrap(const Napi::CallbackInfo& info);
  ~DeviceWrap() override;

  const glmk_device_api* api() const { return api_; }
  glmk_device* dev() const { return dev_; }

 private:
  static Napi::Value Probe(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Alloc(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value ReadSync(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value SyncNow(const Napi::CallbackInfo& info);
  Napi::Value Topk(const Napi::CallbackInfo& info);
  Napi::Value Memory(const Napi::CallbackInfo& info);
  Napi::Value EmptyCache(const Napi::CallbackInfo& info);
  Napi::Value Int4(const Napi::CallbackInfo& info);    // ops-wrap.cc
  Napi::Value Matmul(const Napi::CallbackInfo& info);  // ops-wrap.cc
  Napi::Value Fp8(const Napi::CallbackInfo& info);     // ops-wrap.cc
  Napi::Value Fp8Matmul(const Napi::CallbackInfo& info);  // ops-wrap.cc
  Napi::Value MoeRoute(const Napi::CallbackInfo& info);    // moe-wrap.cc
  Napi::Value MoeExperts(const Napi::CallbackInfo& info);  // moe-wrap.cc
  Napi::Value poll(Napi::Env env, Napi::ArrayBuffer buf);
  SyncHub::Arm notify_arm();

  SyncHub& hub(Napi::Env env);

  const glmk_device_api* api_ = nullptr;
  glmk_device* dev_ = nullptr;
  std::unique_ptr<SyncHub> hub_;  // made on the first read() or sync(), if the device has sync_notify
};

}  // namespace glmk::addon
