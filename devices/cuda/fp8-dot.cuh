// The fp8 dot product in the CPU device's written order (devices/cpu/gemm.cc fp8_matmul_execute), as device
// functions only (no kernels: included by fp8-matmul.cuh and moe.cuh, which live in different objects), and
// kFp8KBlock. NOTE: since issue 21 no kernel calls fp8_row_dot (fp8.matmul and moe.experts run tensor cores);
// kept as the written order's device-side statement.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/fp8-arith.h"
#include "glmk/gemm-order.h"

namespace glmk::cuda {

constexpr int64_t kFp8KBlock = 128;  // the activations' and weights' block columns


__device__ __forceinline__ float fp8_code_f32(uint8_t c) { return glmk_f32_from_bits(glmk_e4m3_to_f32_bits(c)); }

// One row's quantized activations xa [k] (their scales sa [ceil(k / 128)]) against one weight row w [k]
// (its block scales ws [ceil(k / 128)]): the f32 sum in the written order.
__device__ __forceinline__ float fp8_row_dot(const float* xa, const float* sa, const uint8_t* w, const float* ws, int64_t k) {
  float acc = 0.0f;
  for (int64_t j = 0, c0 = 0; c0 < k; j++, c0 += kFp8KBlock) {
    const int64_t c1 = c0 + kFp8KBlock < k ? c0 + kFp8KBlock : k;
    float p[16];
    for (int l = 0; l < 16; l++) p[l] = 0.0f;
    // NOTE: c0 is a multiple of 16, so lane l takes k = c0 + l, c0 + l + 16, ...: the CPU's p[k % 16]
    for (int64_t c = c0; c < c1; c += 16)
      for (int l = 0; l < 16; l++)
        if (c + l < c1) p[l] = fmaf(xa[c + l], fp8_code_f32(w[c + l]), p[l]);
    acc = acc + (glmk_reduce16(p) * sa[j]) * ws[j];
  }
  return acc;
}

}  // namespace glmk::cuda
