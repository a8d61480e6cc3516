// DeviceWrap's int4, matmul and fp8 entry points (SPEC 4): the JS layer has checked every argument; pointers cross as BigInt.
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

// matmul(x, xDtype, m, k, w|null, wDtype, n, packed|null, scales|null, groupSize, y): dense or int4 weights.
Napi::Value DeviceWrap::Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  glmk_matmul_args a{};
  a.x = to_ptr(info[0]);
  a.x_dtype = info[1].As<Napi::Number>().Int32Value();
  a.m = to_i64(info[2]);
  a.k = to_i64(info[3]);
  a.w = to_ptr(info[4]);
  a.w_dtype = info[5].As<Napi::Number>().Int32Value();
  a.n = to_i64(info[6]);
  a.packed = static_cast<const int32_t*>(to_ptr(info[7]));
  a.scales = static_cast<const uint16_t*>(to_ptr(info[8]));
  a.group_size = to_i64(info[9]);
  a.y = to_ptr(info[10]);
  if (!api_->matmul)
    throw_error(env, GLMK_E_UNSUPPORTED, std::string(a.w_dtype == GLMK_W_INT4 ? "int4.matmul" : "matmul") +
                                             " is not implemented on device " + api_->kind);
  glmk_status st{};
  check(env, api_->matmul(dev_, &a, &st), st);
  return env.Undefined();
}

// fp8(op, w|null, wDtype, outDtype, batch, n, k, blockN, blockK, data, scaleInv, out|null), op "quantize" |
// "dequantize".
Napi::Value DeviceWrap::Fp8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string op = info[0].As<Napi::String>().Utf8Value();
  glmk_fp8_args a{};
  a.w = to_ptr(info[1]);
  a.w_dtype = info[2].As<Napi::Number>().Int32Value();
  a.out_dtype = info[3].As<Napi::Number>().Int32Value();
  a.batch = to_i64(info[4]);
  a.n = to_i64(info[5]);
  a.k = to_i64(info[6]);
  a.block_n = to_i64(info[7]);
  a.block_k = to_i64(info[8]);
  a.data = static_cast<uint8_t*>(to_ptr(info[9]));
  a.scale_inv = static_cast<float*>(to_ptr(info[10]));
  a.out = to_ptr(info[11]);
  auto entry = op == "quantize" ? api_->fp8_quantize : api_->fp8_dequantize;
  if (!entry) throw_error(env, GLMK_E_UNSUPPORTED, "fp8." + op + " is not implemented on device " + api_->kind);
  glmk_status st{};
  check(env, entry(dev_, &a, &st), st);
  return env.Undefined();
}

// fp8Matmul(x, m, k, data, scaleInv, blockN, n, y, yDtype)
Napi::Value DeviceWrap::Fp8Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  glmk_fp8_matmul_args a{};
  a.x = static_cast<const uint16_t*>(to_ptr(info[0]));
  a.m = to_i64(info[1]);
  a.k = to_i64(info[2]);
  a.data = static_cast<const uint8_t*>(to_ptr(info[3]));
  a.scale_inv = static_cast<const float*>(to_ptr(info[4]));
  a.block_n = to_i64(info[5]);
  a.n = to_i64(info[6]);
  a.y = to_ptr(info[7]);
  a.y_dtype = info[8].As<Napi::Number>().Int32Value();
  if (!api_->fp8_matmul) throw_error(env, GLMK_E_UNSUPPORTED, std::string("fp8.matmul is not implemented on device ") + api_->kind);
  glmk_status st{};
  check(env, api_->fp8_matmul(dev_, &a, &st), st);
  return env.Undefined();
}

}  // namespace glmk::addon
