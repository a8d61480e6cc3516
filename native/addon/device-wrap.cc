#include "device-wrap.hpp"

#include <string>

#include "device.hpp"
#include "errors.hpp"
#include "glmk/status.hpp"
#include "plugin-loader.hpp"

namespace glmk::addon {

namespace {

int resolve(const std::string& kind, const glmk_device_api** api, glmk_status* st) {
  if (kind == "cpu") {
    *api = glmk_cpu_device_api();
    return ok(st);
  }
  Plugin p;
  int rc = plugin_load(kind, &p, st);
  if (rc == GLMK_OK) *api = p.api;
  return rc;
}

// Copies device memory into a fresh ArrayBuffer off the JS thread; resolves after the stream reached it.
// (For devices without sync_notify: a libuv thread waits in sync().)
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, Napi::Object owner, const glmk_device_api* api, glmk_device* dev, void* src,
             size_t bytes)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), api_(api), dev_(dev), src_(src),
        bytes_(bytes) {
    owner_ = Napi::Persistent(owner);
    if (bytes_) {
      auto buf = Napi::ArrayBuffer::New(env, bytes_);
      dst_ = buf.Data();
      buffer_ = Napi::Persistent(buf);
    }
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    st_ = glmk_status{};
    rc_ = bytes_ ? api_->download(dev_, dst_, src_, bytes_, &st_) : GLMK_OK;
    if (rc_ == GLMK_OK) rc_ = api_->sync(dev_, &st_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ != GLMK_OK) {
      deferred_.Reject(make_error(env, rc_, st_.message));
      return;
    }
    deferred_.Resolve(bytes_ ? buffer_.Value() : Napi::ArrayBuffer::New(env, 0));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
  const glmk_device_api* api_;
  glmk_device* dev_;
  void* src_;
  void* dst_ = nullptr;
  size_t bytes_;
  int rc_ = GLMK_OK;
  glmk_status st_{};
};

}  // namespace

void DeviceWrap::Init(Napi::Env env, Napi::Object exports) {
  auto cls = DefineClass(env, "NativeDevice",
                         {StaticMethod("probe", &DeviceWrap::Probe), InstanceMethod("info", &DeviceWrap::Info),
                          InstanceMethod("alloc", &DeviceWrap::Alloc), InstanceMethod("free", &DeviceWrap::Free),
                          InstanceMethod("upload", &DeviceWrap::Upload), InstanceMethod("read", &DeviceWrap::Read),
                          InstanceMethod("readSync", &DeviceWrap::ReadSync), InstanceMethod("sync", &DeviceWrap::Sync),
                          InstanceMethod("syncNow", &DeviceWrap::SyncNow), InstanceMethod("topk", &DeviceWrap::Topk),
                          InstanceMethod("memory", &DeviceWrap::Memory),
                          InstanceMethod("emptyCache", &DeviceWrap::EmptyCache),
                          InstanceMethod("int4", &DeviceWrap::Int4),
                          InstanceMethod("matmul", &DeviceWrap::Matmul), InstanceMethod("fp8", &DeviceWrap::Fp8),
                          InstanceMethod("fp8Matmul", &DeviceWrap::Fp8Matmul),
                          InstanceMethod("moeRoute", &DeviceWrap::MoeRoute),
                          InstanceMethod("moeExperts", &DeviceWrap::MoeExperts)});
  exports.Set("NativeDevice", cls);
}

// probe(kind) -> number of devices of that kind; throws E_PLUGIN / E_DEVICE with the reason.
Napi::Value DeviceWrap::Probe(const Napi::CallbackInfo& info) {
  glmk_status st{};
  const glmk_device_api* api = nullptr;
  check(info.Env(), resolve(info[0].As<Napi::String>().Utf8Value(), &api, &st), st);
  int32_t count = 0;
  check(info.Env(), api->device_count(&count, &st), st);
  return Napi::Number::New(info.Env(), count);
}

// new NativeDevice(kind, ordinal, threads, isa, seed, spinUs)
DeviceWrap::DeviceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceWrap>(info) {
  Napi::Env env = info.Env();
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  std::string isa = info[3].As<Napi::String>().Utf8Value();
  glmk_status st{};
  check(env, resolve(kind, &api_, &st), st);
  glmk_open_options o{};
  o.ordinal = info[1].As<Napi::Number>().Int32Value();
  o.threads = info[2].As<Napi::Number>().Int32Value();
  bool lossless = true;
  o.sim_seed = info[4].As<Napi::BigInt>().Uint64Value(&lossless);
  o.isa = isa.c_str();
  o.spin_us = info[5].As<Napi::Number>().Int32Value();
  check(env, api_->open(&o, &dev_, &st), st);
}

DeviceWrap::~DeviceWrap() {
  if (dev_) api_->close(dev_);
  hub_.reset();  // after close: the stream has drained, so no notify is left to come
}

SyncHub& DeviceWrap::hub(Napi::Env env) {
  if (!hub_) hub_ = std::make_unique<SyncHub>(env);
  return *hub_;
}

Napi::Value DeviceWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  glmk_device_info di{};
  glmk_status st{};
  check(env, api_->info(dev_, &di, &st), st);
  auto o = Napi::Object::New(env);
  o.Set("kind", di.kind);
  o.Set("name", di.name);
  o.Set("isa", di.isa);
  o.Set("build", di.build);
  o.Set("capabilities", di.capabilities);
  o.Set("memory", Napi::Number::New(env, static_cast<double>(di.memory_bytes)));
  o.Set("threads", di.threads);
  o.Set("ordinal", di.ordinal);
  o.Set("abiVersion", api_->abi_version);
  return o;
}

// Each native byte counts twice toward V8's external memory: V8 starts collecting once external memory has
// grown by 64 MiB since its last full collection, so that tensors left to the garbage collector peak near
// 32 MiB of native memory instead of 64 (issue 17's bound: a loop of undisposed tensors within 100 MB of RSS).
constexpr int64_t kExternalWeight = 2;

// alloc(bytes) -> ptr. The bytes are reported to V8 as external memory (until free), so that tensors left
// to the garbage collector are collected as their native memory grows, not only as the JS heap does.
Napi::Value DeviceWrap::Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* p = nullptr;
  glmk_status st{};
  const int64_t bytes = to_i64(info[0]);
  check(env, api_->alloc(dev_, static_cast<size_t>(bytes), &p, &st), st);
  Napi::MemoryManagement::AdjustExternalMemory(env, kExternalWeight * bytes);
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

// free(ptr, bytes): bytes as given to alloc.
Napi::Value DeviceWrap::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  glmk_status st{};
  check(env, api_->free(dev_, to_ptr(info[0]), &st), st);
  Napi::MemoryManagement::AdjustExternalMemory(env, -kExternalWeight * to_i64(info[1]));
  return env.Undefined();
}

// upload(ptr, typedArray, deferFrom) -> undefined, or a Promise once the device reads the source in stream
// order (sizes above deferFrom bytes, on devices with upload_deferred): the source's ArrayBuffer is kept
// alive until the copy is done, and the promise settles then.
Napi::Value DeviceWrap::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ta = info[1].As<Napi::TypedArray>();
  auto* src = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  const size_t bytes = ta.ByteLength();
  void* dst = to_ptr(info[0]);
  glmk_status st{};
  if (api_->upload_deferred && bytes > static_cast<size_t>(to_i64(info[2]))) {
    return hub(env).Start(env, info.This().As<Napi::Object>(), ta.ArrayBuffer(),
                          [&](glmk_done_fn release, void* user, glmk_status* s) {
                            return api_->upload_deferred(dev_, dst, src, bytes, release, user, s);
                          });
  }
  check(env, api_->upload(dev_, dst, src, bytes, &st), st);
  return env.Undefined();
}

// read(ptr, bytes) -> ArrayBuffer when the device already got there (sync_poll), else Promise<ArrayBuffer>.
Napi::Value DeviceWrap::Read(const Napi::CallbackInfo& info) {
  if (api_->sync_notify) {
    Napi::Env env = info.Env();
    const size_t bytes = static_cast<size_t>(to_i64(info[1]));
    auto buf = Napi::ArrayBuffer::New(env, bytes);
    glmk_status st{};
    if (bytes && api_->download(dev_, buf.Data(), to_ptr(info[0]), bytes, &st) != GLMK_OK) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(make_error(env, st.code, st.message));
      return d.Promise();
    }
    if (Napi::Value now = poll(env, buf); !now.IsEmpty()) return now;
    return hub(env).Start(env, info.This().As<Napi::Object>(), buf, notify_arm());
  }
  auto* w = new ReadWorker(info.Env(), info.This().As<Napi::Object>(), api_, dev_, to_ptr(info[0]),
                           static_cast<size_t>(to_i64(info[1])));
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

// What read() and sync() return when the device is already done: `buf` (or a rejected promise with the
// pending failure); an empty value when it is still busy or cannot tell (no sync_poll).
Napi::Value DeviceWrap::poll(Napi::Env env, Napi::ArrayBuffer buf) {
  if (!api_->sync_poll) return Napi::Value();
  int32_t done = 0;
  glmk_status st{};
  const int rc = api_->sync_poll(dev_, &done, &st);
  if (!done && rc == GLMK_OK) return Napi::Value();
  if (rc != GLMK_OK) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(make_error(env, rc, st.message));
    return d.Promise();
  }
  return buf;
}

SyncHub::Arm DeviceWrap::notify_arm() {
  return [this](glmk_done_fn done, void* user, glmk_status* st) { return api_->sync_notify(dev_, done, user, st); };
}

// memory() -> { liveBytes, cachedBytes } as the device counts them ({} without memory_stats).
Napi::Value DeviceWrap::Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  if (!api_->memory_stats) return o;
  glmk_memory_stats m{};
  glmk_status st{};
  check(env, api_->memory_stats(dev_, &m, &st), st);
  o.Set("liveBytes", Napi::Number::New(env, static_cast<double>(m.live_bytes)));
  o.Set("cachedBytes", Napi::Number::New(env, static_cast<double>(m.cached_bytes)));
  return o;
}

Napi::Value DeviceWrap::EmptyCache(const Napi::CallbackInfo& info) {
  glmk_status st{};
  if (api_->empty_cache) check(info.Env(), api_->empty_cache(dev_, &st), st);
  return info.Env().Undefined();
}

Napi::Value DeviceWrap::ReadSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t bytes = static_cast<size_t>(to_i64(info[1]));
  auto buf = Napi::ArrayBuffer::New(env, bytes);
  glmk_status st{};
  if (bytes) check(env, api_->download(dev_, buf.Data(), to_ptr(info[0]), bytes, &st), st);
  check(env, api_->sync(dev_, &st), st);
  return buf;
}

// sync() -> Promise, or an empty ArrayBuffer when the device is already done (sync_poll).
Napi::Value DeviceWrap::Sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (Napi::Value now = poll(env, Napi::ArrayBuffer::New(env, 0)); !now.IsEmpty()) return now;
  if (api_->sync_notify) return hub(env).Start(env, info.This().As<Napi::Object>(), {}, notify_arm());
  auto* w = new ReadWorker(info.Env(), info.This().As<Napi::Object>(), api_, dev_, nullptr, 0);
  auto promise = w->Promise();
  w->Queue();
  return promise;
}

Napi::Value DeviceWrap::SyncNow(const Napi::CallbackInfo& info) {
  glmk_status st{};
  check(info.Env(), api_->sync(dev_, &st), st);
  return info.Env().Undefined();
}

// topk(scores, dtype, rows, cols, k, lengths|null, rowStarts|null, indices, values)
Napi::Value DeviceWrap::Topk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!api_->topk) throw_error(env, GLMK_E_UNSUPPORTED, std::string("topk is not implemented on device ") + api_->kind);
  glmk_topk_args a{};
  a.scores = to_ptr(info[0]);
  a.dtype = info[1].As<Napi::Number>().Int32Value();
  a.rows = to_i64(info[2]);
  a.cols = to_i64(info[3]);
  a.k = to_i64(info[4]);
  a.lengths = static_cast<const int32_t*>(to_ptr(info[5]));
  a.row_starts = static_cast<const int32_t*>(to_ptr(info[6]));
  a.indices = static_cast<int32_t*>(to_ptr(info[7]));
  a.values = static_cast<float*>(to_ptr(info[8]));
  glmk_status st{};
  check(env, api_->topk(dev_, &a, &st), st);
  return env.Undefined();
}

}  // namespace glmk::addon
