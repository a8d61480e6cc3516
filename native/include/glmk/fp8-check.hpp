// The argument checks every device's fp8 entry points share (the JS layer checks first).
#pragma once
#include "glmk/device.h"
#include "glmk/status.hpp"

namespace glmk {

inline int fp8_check(const glmk_fp8_args* a, bool quantize, glmk_status* st) {
  const int dt = quantize ? a->w_dtype : a->out_dtype;
  if (dt != GLMK_F32 && dt != GLMK_F16 && dt != GLMK_BF16)
    return fail(st, GLMK_E_DTYPE, "fp8: Expected a dtype f32, f16 or bf16 but received dtype %d", dt);
  if (a->batch < 0 || a->n < 0 || a->k < 0 || a->block_n < 1 || a->block_k < 1)
    return fail(st, GLMK_E_SHAPE, "fp8: Expected [batch, N, K] >= 0 and blocks >= 1 but received [%lld, %lld, %lld], [%lld, %lld]",
                static_cast<long long>(a->batch), static_cast<long long>(a->n), static_cast<long long>(a->k),
                static_cast<long long>(a->block_n), static_cast<long long>(a->block_k));
  return ok(st);
}

inline int fp8_matmul_check(const glmk_fp8_matmul_args* a, glmk_status* st) {
  if (a->m < 0 || a->n < 0 || a->k < 0 || a->block_n < 1)
    return fail(st, GLMK_E_SHAPE, "fp8.matmul: Expected non-negative M, N, K and blocks >= 1 but received %lld, %lld, %lld, %lld",
                static_cast<long long>(a->m), static_cast<long long>(a->n), static_cast<long long>(a->k),
                static_cast<long long>(a->block_n));
  if (a->y_dtype != GLMK_BF16 && a->y_dtype != GLMK_F32)
    return fail(st, GLMK_E_DTYPE, "fp8.matmul: Expected an output dtype bf16 or f32 but received dtype %d", a->y_dtype);
  return ok(st);
}

}  // namespace glmk
