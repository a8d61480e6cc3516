// The argument checks every device's moe entry points share (the JS layer checks first, with names).
#pragma once
#include "glmk/device.h"
#include "glmk/status.hpp"

namespace glmk {

inline bool moe_float_dtype(int32_t d) { return d == GLMK_F32 || d == GLMK_F16 || d == GLMK_BF16; }

inline int moe_route_check(const glmk_moe_route_args* a, glmk_status* st) {
  if (!moe_float_dtype(a->hidden_dtype) || !moe_float_dtype(a->gate_dtype))
    return fail(st, GLMK_E_DTYPE, "moe.route: Expected hidden and gate dtypes f32, f16 or bf16 but received %d and %d",
                a->hidden_dtype, a->gate_dtype);
  if (a->t < 0 || a->h < 1 || a->e < 1 || a->e > (1 << 20))
    return fail(st, GLMK_E_SHAPE, "moe.route: Expected T >= 0, H >= 1, 1 <= E <= 2^20 but received %lld, %lld, %lld",
                static_cast<long long>(a->t), static_cast<long long>(a->h), static_cast<long long>(a->e));
  const int64_t e = a->e;
  if (a->n_group < 1 || e % a->n_group != 0 || (a->n_group > 1 && e / a->n_group < 2))
    return fail(st, GLMK_E_ARG, "moe.route: Expected nGroup to divide E = %lld into groups of 2 or more experts but received %d",
                static_cast<long long>(e), a->n_group);
  if (a->topk_group < 1 || a->topk_group > a->n_group)
    return fail(st, GLMK_E_ARG, "moe.route: Expected topkGroup in [1, nGroup = %d] but received %d", a->n_group, a->topk_group);
  const int64_t allowed = a->topk_group * (e / a->n_group);
  if (a->top_k < 1 || a->top_k > allowed)
    return fail(st, GLMK_E_ARG, "moe.route: Expected topK in [1, %lld] (the experts of topkGroup groups) but received %d",
                static_cast<long long>(allowed), a->top_k);
  return ok(st);
}

inline int moe_stack_check(const glmk_fp8_stack& s, const char* what, glmk_status* st) {
  if (s.block_n != 1 && s.block_n != 128)
    return fail(st, GLMK_E_ARG, "moe.experts: Expected %s blocks [1, 128] or [128, 128] but received [%lld, 128]", what,
                static_cast<long long>(s.block_n));
  return ok(st);
}

inline int moe_experts_check(const glmk_moe_experts_args* a, glmk_status* st) {
  if (a->t < 0 || a->h < 1 || a->i < 1 || a->e < 1 || a->top_k < 1 || a->shared_i < 0)
    return fail(st, GLMK_E_SHAPE, "moe.experts: Expected T >= 0, H, I, E, topK >= 1, shared I >= 0 but received %lld, %lld, %lld, %lld, %lld, %lld",
                static_cast<long long>(a->t), static_cast<long long>(a->h), static_cast<long long>(a->i),
                static_cast<long long>(a->e), static_cast<long long>(a->top_k), static_cast<long long>(a->shared_i));
  if (moe_stack_check(a->gate, "gateProj", st) || moe_stack_check(a->up, "upProj", st) ||
      moe_stack_check(a->down, "downProj", st))
    return st->code;
  if (a->shared_i > 0 && (moe_stack_check(a->shared_gate, "shared.gateProj", st) ||
                          moe_stack_check(a->shared_up, "shared.upProj", st) ||
                          moe_stack_check(a->shared_down, "shared.downProj", st)))
    return st->code;
  return ok(st);
}

}  // namespace glmk
