// The argument checks every device's int4 entry points share (the JS layer checks first; these keep a
// plugin's other callers out of trouble).
#pragma once
#include "glmk/device.h"
#include "glmk/status.hpp"

namespace glmk {

inline int int4_check(const glmk_int4_args* a, bool need_w, bool need_out, glmk_status* st) {
  if (need_w && a->w_dtype != GLMK_F32 && a->w_dtype != GLMK_BF16)
    return fail(st, GLMK_E_DTYPE, "int4: Expected w dtype f32 or bf16 but received dtype %d", a->w_dtype);
  if (need_out && a->out_dtype != GLMK_F32 && a->out_dtype != GLMK_BF16)
    return fail(st, GLMK_E_DTYPE, "int4: Expected an output dtype f32 or bf16 but received dtype %d", a->out_dtype);
  if (a->levels != 15 && a->levels != 16)
    return fail(st, GLMK_E_ARG, "int4: Expected levels 15 or 16 but received %d", a->levels);
  if (a->group_size != 32 && a->group_size != 64 && a->group_size != 128)
    return fail(st, GLMK_E_ARG, "int4: Expected groupSize 32, 64 or 128 but received %lld",
                static_cast<long long>(a->group_size));
  if (a->n < 0 || a->k < 0 || a->k % a->group_size != 0)
    return fail(st, GLMK_E_SHAPE, "int4: Expected [N, K] with K a multiple of groupSize %lld but received [%lld, %lld]",
                static_cast<long long>(a->group_size), static_cast<long long>(a->n), static_cast<long long>(a->k));
  return ok(st);
}

}  // namespace glmk
