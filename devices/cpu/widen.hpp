// Element i of a bf16 / f16 / f32 array as an f32 (exact), for the CPU kernels' scalar paths.
#pragma once
#include <cstdint>

#include "glmk/device.h"
#include "glmk/int4-arith.h"

namespace glmk::cpu {

inline float widen(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case GLMK_BF16: return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
    case GLMK_F16: return glmk_f32_from_bits(glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
    default: return static_cast<const float*>(p)[i];
  }
}

}  // namespace glmk::cpu
