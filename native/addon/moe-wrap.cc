// DeviceWrap's moe entry points (SPEC 5): the JS layer has checked every argument; pointers cross as BigInt.
#include "device-wrap.hpp"
#include "errors.hpp"

namespace glmk::addon {

// moeRoute(hidden, hiddenDtype, gate, gateDtype, bias|null, t, h, e, topK, nGroup, topkGroup, norm, scaling, ids, weights)
Napi::Value DeviceWrap::MoeRoute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  glmk_moe_route_args a{};
  a.hidden = to_ptr(info[0]);
  a.hidden_dtype = info[1].As<Napi::Number>().Int32Value();
  a.gate = to_ptr(info[2]);
  a.gate_dtype = info[3].As<Napi::Number>().Int32Value();
  a.bias = static_cast<const float*>(to_ptr(info[4]));
  a.t = to_i64(info[5]);
  a.h = to_i64(info[6]);
  a.e = to_i64(info[7]);
  a.top_k = info[8].As<Napi::Number>().Int32Value();
  a.n_group = info[9].As<Napi::Number>().Int32Value();
  a.topk_group = info[10].As<Napi::Number>().Int32Value();
  a.norm_topk_prob = info[11].ToBoolean().Value() ? 1 : 0;
  a.routed_scaling_factor = info[12].As<Napi::Number>().FloatValue();
  a.ids = static_cast<int32_t*>(to_ptr(info[13]));
  a.weights = static_cast<float*>(to_ptr(info[14]));
  if (!api_->moe_route) throw_error(env, GLMK_E_UNSUPPORTED, std::string("moe.route is not implemented on device ") + api_->kind);
  glmk_status st{};
  check(env, api_->moe_route(dev_, &a, &st), st);
  return env.Undefined();
}

namespace {
// stacks[3 * j ...] = data, scaleInv, blockN
glmk_fp8_stack stack_at(const Napi::Array& stacks, uint32_t j) {
  glmk_fp8_stack s{};
  s.data = static_cast<const uint8_t*>(to_ptr(stacks.Get(3 * j)));
  s.scale_inv = static_cast<const float*>(to_ptr(stacks.Get(3 * j + 1)));
  s.block_n = to_i64(stacks.Get(3 * j + 2));
  return s;
}
}  // namespace

// moeExperts(hidden, t, h, i, e, topK, ids, weights, stacks [gate, up, down, sharedGate?, sharedUp?, sharedDown?]
// as (data, scaleInv, blockN) triples, sharedI, out)
Napi::Value DeviceWrap::MoeExperts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  glmk_moe_experts_args a{};
  a.hidden = static_cast<const uint16_t*>(to_ptr(info[0]));
  a.t = to_i64(info[1]);
  a.h = to_i64(info[2]);
  a.i = to_i64(info[3]);
  a.e = to_i64(info[4]);
  a.top_k = to_i64(info[5]);
  a.ids = static_cast<const int32_t*>(to_ptr(info[6]));
  a.weights = static_cast<const float*>(to_ptr(info[7]));
  const Napi::Array stacks = info[8].As<Napi::Array>();
  a.gate = stack_at(stacks, 0);
  a.up = stack_at(stacks, 1);
  a.down = stack_at(stacks, 2);
  a.shared_i = to_i64(info[9]);
  if (a.shared_i > 0) {
    a.shared_gate = stack_at(stacks, 3);
    a.shared_up = stack_at(stacks, 4);
    a.shared_down = stack_at(stacks, 5);
  }
  a.out = static_cast<uint16_t*>(to_ptr(info[10]));
  if (!api_->moe_experts) throw_error(env, GLMK_E_UNSUPPORTED, std::string("moe.experts is not implemented on device ") + api_->kind);
  glmk_status st{};
  check(env, api_->moe_experts(dev_, &a, &st), st);
  return env.Undefined();
}

}  // namespace glmk::addon
