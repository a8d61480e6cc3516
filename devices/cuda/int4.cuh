// The int4 quantizer's kernels (SPEC 4): elementwise over groups, so no thread ever combines another's
// results: the bits are those of glmk/int4-arith.h whatever the grid or the schedule.
//
// Performance model: quantize and fakeQuantGrad read each weight twice (amax, then codes) and write half a
// byte (or the gradient) per weight; dequantize reads half a byte and writes 2 or 4 bytes per weight. All
// memory-bound at a one-time (load) or once-per-step (QAT) cost; one thread per group of 32-128 weights
// keeps them simple rather than coalesced (measured on the GPU acceptance run, not tuned).
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "glmk/int4-arith.h"

namespace glmk::cuda {

constexpr int kInt4Threads = 256;

__device__ __forceinline__ float int4_weight(const void* w, int dtype, int64_t i) {
  if (dtype == GLMK_BF16) return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(w)[i]));
  return static_cast<const float*>(w)[i];
}

// The group's scale as bf16 bits: amax exact, a NaN anywhere gives NaN.
__device__ __forceinline__ uint16_t int4_group_scale(const void* w, int dtype, int64_t b, int64_t g, int levels) {
  float amax = 0.0f;
  for (int64_t i = 0; i < g; i++) {
    const float a = fabsf(int4_weight(w, dtype, b + i));
    if (a != a) return glmk_int4_scale(a, levels);
    if (a > amax) amax = a;
  }
  return glmk_int4_scale(amax, levels);
}

// One thread per group.
__global__ void int4_quantize_kernel(glmk_int4_args a) {
  const int64_t groups = a.k / a.group_size;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.n * groups) return;
  const int64_t r = t / groups, gi = t % groups, b = r * a.k + gi * a.group_size;
  const uint16_t sb = int4_group_scale(a.w, a.w_dtype, b, a.group_size, a.levels);
  a.scales[t] = sb;
  const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(sb));
  for (int64_t j = 0; j < a.group_size; j += 8) {
    uint32_t word = 0;
    for (int i = 0; i < 8; i++) {
      int clamped;
      const int q = glmk_int4_code(int4_weight(a.w, a.w_dtype, b + j + i), s, a.levels, &clamped);
      word |= static_cast<uint32_t>(q + 8) << (4 * i);
    }
    a.packed[(b + j) / 8] = static_cast<int32_t>(word);
  }
}

// One thread per packed word (8 weights).
__global__ void int4_dequantize_kernel(glmk_int4_args a) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.n * a.k / 8) return;
  const int64_t i0 = t * 8, r = i0 / a.k, kk = i0 % a.k;
  const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(a.scales[r * (a.k / a.group_size) + kk / a.group_size]));
  const uint32_t word = static_cast<uint32_t>(a.packed[t]);
  for (int i = 0; i < 8; i++) {
    const uint16_t v = glmk_int4_dequant(static_cast<int>((word >> (4 * i)) & 0xFu) - 8, s);
    if (a.out_dtype == GLMK_BF16) static_cast<uint16_t*>(a.out)[i0 + i] = v;
    else static_cast<uint32_t*>(a.out)[i0 + i] = glmk_bf16_to_f32_bits(v);
  }
}

// One thread per group: the gradient, +0 where the code was clamped (clip), else unchanged.
__global__ void int4_fake_quant_grad_kernel(glmk_int4_args a) {
  const int64_t groups = a.k / a.group_size;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.n * groups) return;
  const int64_t r = t / groups, gi = t % groups, b = r * a.k + gi * a.group_size;
  const float s = a.clip ? glmk_f32_from_bits(glmk_bf16_to_f32_bits(int4_group_scale(a.w, a.w_dtype, b, a.group_size, a.levels))) : 0.0f;
  for (int64_t i = b; i < b + a.group_size; i++) {
    int clamped = 0;
    if (a.clip) glmk_int4_code(int4_weight(a.w, a.w_dtype, i), s, a.levels, &clamped);
    if (a.out_dtype == GLMK_BF16) static_cast<uint16_t*>(a.out)[i] = clamped ? 0 : static_cast<const uint16_t*>(a.grad)[i];
    else static_cast<uint32_t*>(a.out)[i] = clamped ? 0u : static_cast<const uint32_t*>(a.grad)[i];
  }
}

}  // namespace glmk::cuda
