// FP8 block quantization kernels (SPEC 5): quantize is one thread per block (its amax is an exact max, and
// the thread that finds it also writes the block's codes), dequantize one thread per element; no thread
// combines another's results, so the bits are those of glmk/fp8-arith.h whatever the grid or schedule.
//
// Performance model: quantize reads each weight twice and writes a byte; dequantize reads a byte and
// writes 2-4. Memory-bound, done once per checkpoint load or per training step; one thread per
// 128 x 128 block is simple rather than coalesced (not tuned: the expert matmuls are what run per token).
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "glmk/fp8-arith.h"

namespace glmk::cuda {

constexpr int kFp8Threads = 128;

__device__ __forceinline__ float fp8_widen(const void* p, int dtype, int64_t i) {
  if (dtype == GLMK_BF16) return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  if (dtype == GLMK_F16) return glmk_f32_from_bits(glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  return static_cast<const float*>(p)[i];
}

__global__ void fp8_quantize_kernel(glmk_fp8_args a) {
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.batch * rows * cols) return;
  const int64_t b = t / (rows * cols), rb = (t / cols) % rows, cb = t % cols;
  const int64_t r0 = rb * a.block_n, c0 = cb * a.block_k;
  const int64_t r1 = r0 + a.block_n < a.n ? r0 + a.block_n : a.n, c1 = c0 + a.block_k < a.k ? c0 + a.block_k : a.k;
  float amax = 0.0f;
  for (int64_t r = r0; r < r1 && amax == amax; r++)
    for (int64_t c = c0; c < c1; c++) {
      const float v = fabsf(fp8_widen(a.w, a.w_dtype, (b * a.n + r) * a.k + c));
      if (v != v) {
        amax = v;
        break;
      }
      amax = v > amax ? v : amax;
    }
  const float s = glmk_fp8_scale_inv(amax);
  a.scale_inv[t] = s;
  for (int64_t r = r0; r < r1; r++)
    for (int64_t c = c0; c < c1; c++) {
      const int64_t i = (b * a.n + r) * a.k + c;
      a.data[i] = glmk_e4m3_from_f32_bits(glmk_bits_from_f32(fp8_widen(a.w, a.w_dtype, i) / s));
    }
}

__global__ void fp8_dequantize_kernel(glmk_fp8_args a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.batch * a.n * a.k) return;
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  const int64_t b = i / (a.n * a.k), r = (i / a.k) % a.n, c = i % a.k;
  const uint32_t bits = glmk_fp8_dequant_bits(a.data[i], a.scale_inv[(b * rows + r / a.block_n) * cols + c / a.block_k]);
  if (a.out_dtype == GLMK_F32) static_cast<uint32_t*>(a.out)[i] = bits;
  else if (a.out_dtype == GLMK_BF16) static_cast<uint16_t*>(a.out)[i] = glmk_bf16_rne(bits);
  else static_cast<uint16_t*>(a.out)[i] = glmk_f16_rne(bits);
}

}  // namespace glmk::cuda
