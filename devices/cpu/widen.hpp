// Element i of a bf16 / f16 / f32 array as an f32 (exact), for the CPU kernels' scalar paths: the one
// definition in glmk/host-rows.hpp; and a whole array so.
#pragma once
#include <cstdint>
#include <cstring>

#include "glmk/host-rows.hpp"

namespace glmk::cpu {

using glmk::widen;

// The n values of p as f32 (exact), the dtype's loop chosen once (bf16 and f32 loops the compiler vectorizes).
inline void widen_all(const void* p, int dtype, int64_t n, float* out) {
  if (dtype == GLMK_BF16) {
    const uint16_t* h = static_cast<const uint16_t*>(p);
    for (int64_t i = 0; i < n; i++) out[i] = glmk_f32_from_bits(glmk_bf16_to_f32_bits(h[i]));
  } else if (dtype == GLMK_F32) {
    if (n > 0) std::memcpy(out, p, static_cast<size_t>(n) * sizeof(float));  // (out may be null when n is 0)
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = widen(p, dtype, i);
  }
}

}  // namespace glmk::cpu
