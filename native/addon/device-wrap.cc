#include "device-wrap.hpp"

#include <string>

#include "device.hpp"
#include "errors.hpp"
#include "glmk/status.hpp"
#include "plugin-loader.hpp"

namespace glmk::addon {

namespace {

void* to_ptr(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  bool lossless = true;
  uint64_t p = v.As<Napi::BigInt>().Uint64Value(&lossless);
  return reinterpret_cast<void*>(static_cast<uintptr_t>(p));
}

int64_t to_i64(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

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
                          InstanceMethod("syncNow", &DeviceWrap::SyncNow), InstanceMethod("topk", &DeviceWrap::Topk)});
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

Napi::Value DeviceWrap::Alloc(const Napi::CallbackInfo& info) {
  void* p = nullptr;
  glmk_status st{};
  check(info.Env(), api_->alloc(dev_, static_cast<size_t>(to_i64(info[0])), &p, &st), st);
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

Napi::Value DeviceWrap::Free(const Napi::CallbackInfo& info) {
  glmk_status st{};
  check(info.Env(), api_->free(dev_, to_ptr(info[0]), &st), st);
  return info.Env().Undefined();
}

// upload(ptr, typedArray)
Napi::Value DeviceWrap::Upload(const Napi::CallbackInfo& info) {
  auto ta = info[1].As<Napi::TypedArray>();
  auto* src = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  glmk_status st{};
  check(info.Env(), api_->upload(dev_, to_ptr(info[0]), src, ta.ByteLength(), &st), st);
  return info.Env().Undefined();
}

// read(ptr, bytes) -> Promise<ArrayBuffer>
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
    return hub(env).Start(env, api_, dev_, info.This().As<Napi::Object>(), buf);
  }
  auto* w = new ReadWorker(info.Env(), info.This().As<Napi::Object>(), api_, dev_, to_ptr(info[0]),
                           static_cast<size_t>(to_i64(info[1])));
  auto promise = w->Promise();
  w->Queue();
  return promise;
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

Napi::Value DeviceWrap::Sync(const Napi::CallbackInfo& info) {
  if (api_->sync_notify) return hub(info.Env()).Start(info.Env(), api_, dev_, info.This().As<Napi::Object>(), {});
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
