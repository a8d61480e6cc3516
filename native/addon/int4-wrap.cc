// DeviceWrap's int4 entry points (SPEC 4): the JS layer has checked every argument; pointers cross as BigInt.
#include "device-wrap.hpp"
#include "errors.hpp"

namespace glmk::addon {

// int4(op, w|null, wDtype, levels, n, k, groupSize, packed, scales, out|null, outDtype, clip, grad|null)
// with op "quantize" | "dequantize" | "fakeQuantGrad".
Napi::Value DeviceWrap::Int4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string op = info[0].As<Napi::String>().Utf8Value();
  glmk_int4_args a{};
  a.w = to_ptr(info[1]);
  a.w_dtype = info[2].As<Napi::Number>().Int32Value();
  a.levels = info[3].As<Napi::Number>().Int32Value();
  a.n = to_i64(info[4]);
  a.k = to_i64(info[5]);
  a.group_size = to_i64(info[6]);
  a.packed = static_cast<int32_t*>(to_ptr(info[7]));
  a.scales = static_cast<uint16_t*>(to_ptr(info[8]));
  a.out = to_ptr(info[9]);
  a.out_dtype = info[10].As<Napi::Number>().Int32Value();
  a.clip = info[11].ToBoolean().Value() ? 1 : 0;
  a.grad = to_ptr(info[12]);
  auto entry = op == "quantize" ? api_->int4_quantize
               : op == "dequantize" ? api_->int4_dequantize
                                    : api_->int4_fake_quant_grad;
  if (!entry) throw_error(env, GLMK_E_UNSUPPORTED, "int4." + op + " is not implemented on device " + api_->kind);
  glmk_status st{};
  check(env, entry(dev_, &a, &st), st);
  return env.Undefined();
}

}  // namespace glmk::addon
