// The N-API addon: the CPU device, the plugin loader and the error class seam.
#include <napi.h>

#include "device-wrap.hpp"
#include "errors.hpp"
#include "plugin-loader.hpp"

namespace glmk::addon {

const char* code_name(int code) {
  switch (code) {
    case GLMK_E_ARG: return "E_ARG";
    case GLMK_E_DTYPE: return "E_DTYPE";
    case GLMK_E_SHAPE: return "E_SHAPE";
    case GLMK_E_DEVICE: return "E_DEVICE";
    case GLMK_E_OOM: return "E_OOM";
    case GLMK_E_UNSUPPORTED: return "E_UNSUPPORTED";
    case GLMK_E_PLUGIN: return "E_PLUGIN";
    default: return "E_DEVICE";
  }
}

Napi::Value make_error(Napi::Env env, int code, const std::string& message) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->error_class.IsEmpty())
    return data->error_class.New({Napi::String::New(env, code_name(code)), Napi::String::New(env, message)});
  auto e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code_name(code)));
  return e.Value();
}

void throw_error(Napi::Env env, int code, const std::string& message) {
  throw Napi::Error(env, make_error(env, code, message));
}

Napi::Value MeasureBandwidth(const Napi::CallbackInfo& info);
Napi::Value ReadPass(const Napi::CallbackInfo& info);
Napi::Value MeasureClockGHz(const Napi::CallbackInfo& info);

namespace {

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  auto* data = info.Env().GetInstanceData<AddonData>();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value PluginDirs(const Napi::CallbackInfo& info) {
  auto dirs = plugin_dirs();
  auto arr = Napi::Array::New(info.Env(), dirs.size());
  for (size_t i = 0; i < dirs.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), dirs[i]));
  return arr;
}

}  // namespace
}  // namespace glmk::addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace glmk::addon;
  env.SetInstanceData(new AddonData());
  exports.Set("abiVersion", Napi::Number::New(env, GLMK_ABI_VERSION));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("pluginDirs", Napi::Function::New(env, PluginDirs));
  exports.Set("measureBandwidth", Napi::Function::New(env, MeasureBandwidth));
  exports.Set("readPass", Napi::Function::New(env, ReadPass));
  exports.Set("measureClockGHz", Napi::Function::New(env, MeasureClockGHz));
  DeviceWrap::Init(env, exports);
  return exports;
}

NODE_API_MODULE(glm_kernels, Init)
