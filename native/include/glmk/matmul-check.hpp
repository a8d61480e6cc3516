// The argument checks every device's matmul / int4.matmul entry points share (the JS layer checks first;
// these keep a plugin's other callers out of trouble).
#pragma once
#include "glmk/device.h"
#include "glmk/status.hpp"

namespace glmk {

// The op's name in messages: "int4.matmul" for int4 weights, else "matmul".
inline const char* matmul_op_name(const glmk_matmul_args* a) { return a->w_dtype == GLMK_W_INT4 ? "int4.matmul" : "matmul"; }

inline int matmul_check(const glmk_matmul_args* a, glmk_status* st) {
  auto dense = [](int t) { return t == GLMK_F32 || t == GLMK_F16 || t == GLMK_BF16; };
  if (!dense(a->x_dtype))
    return fail(st, GLMK_E_DTYPE, "matmul: Expected x dtype f32, f16 or bf16 but received dtype %d", a->x_dtype);
  if (!dense(a->w_dtype) && a->w_dtype != GLMK_W_INT4)
    return fail(st, GLMK_E_DTYPE, "matmul: Expected w dtype f32, f16, bf16 or int4 but received dtype %d", a->w_dtype);
  if (a->m < 0 || a->n < 0 || a->k < 0)
    return fail(st, GLMK_E_SHAPE, "matmul: Expected non-negative M, N, K but received %lld, %lld, %lld",
                static_cast<long long>(a->m), static_cast<long long>(a->n), static_cast<long long>(a->k));
  // (the kernels take a step of 64 codes in whole groups, or two groups of 32: SPEC 4's sizes only)
  if (a->w_dtype == GLMK_W_INT4 && a->group_size != 32 && a->group_size != 64 && a->group_size != 128)
    return fail(st, GLMK_E_ARG, "int4.matmul: Expected group size 32, 64 or 128 but received %lld",
                static_cast<long long>(a->group_size));
  if (a->w_dtype == GLMK_W_INT4 && a->k % a->group_size != 0)
    return fail(st, GLMK_E_SHAPE, "int4.matmul: Expected K a multiple of the group size %lld but received %lld",
                static_cast<long long>(a->group_size), static_cast<long long>(a->k));
  return ok(st);
}

}  // namespace glmk
