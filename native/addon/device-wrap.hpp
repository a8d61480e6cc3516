// One opened device as a JS object: memory, copies, sync and op entry points. Pointers cross as BigInt.
#pragma once
#include <napi.h>

#include "glmk/device.h"

namespace glmk::addon {

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

  const glmk_device_api* api_ = nullptr;
  glmk_device* dev_ = nullptr;
};

}  // namespace glmk::addon
