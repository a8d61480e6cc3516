// matmul and int4.matmul kernels for f16 and f32 x (SPEC 4) in the CPU device's written order (devices/cpu/gemm.hpp, gemm.cc
// matmul_execute / gemm_block_scalar):
//   x widened to f32 exactly (bf16, f16, f32); each weight decoded to f32 exactly (dense: widened; int4:
//   bf16(q * s) by glmk_int4_dequant, the value int4.dequantize gives); per output y[m, n]: 16 partial sums
//   p[j] = fma chain over k = j, j + 16, ... (increasing k, from +0; when K is not a multiple of 16 the tail
//   lanes take nothing), then the fixed tree ((p0+p8)+(p4+p12))+((p2+p10)+(p6+p14)) + ... of glmk_reduce16,
//   then one rounding to x's dtype (glmk_bf16_rne / glmk_f16_rne: nearest even, NaN canonical).
// Scheme: 16 lanes of a warp per output, lane j holds p[j]; the tree is four __shfl_down_sync steps
// (8, 4, 2, 1) inside the 16 lanes, each adding the higher index to the lower (the CPU's operand order).
// Every output is one half-warp's work in that fixed order and no other thread touches it: no atomics, no
// split over K, so the bits are the CPU device's whatever the grid, M or the schedule (cuda-sim checks them
// under many seeds), and int4.matmul(x, quantize(w)) == matmul(x, fakeQuant(w)) bit for bit: both decode
// to the same f32 weights and run the same chains.
//
// NOTE: correctness-first SIMT kernels, not tuned, no tensor cores: they serve f16 and f32 x. bf16 x goes to
// the tensor-core kernel (matmul-mma.cuh: within tolerance of the CPU, not its bits).
// Performance model: y = x [M, K] * w [N, K]^T. FLOPs: 2 M N K. Bytes: weights N K b_w (bf16 2, f32 4;
// int4 0.5 + 2 / groupSize for the scales), activations M K b_x, output M N b_x. At decode (M = 1, K = N =
// 6144) the roof is memory: 75.5 MB of bf16 weights = 16 us, 21.2 MB of int4 (group 32) = 4.4 us at the
// H200's 4.8 TB/s (H100: 3.35 TB/s). Here a half-warp reads 16 consecutive weights and x values per step
// (32-64 coalesced bytes, 8 for int4, where 8 lanes load the same word), one fma per two scalar loads, and
// the weight row is read again for each of the M rows (outputs are ordered n-major, m inner, so those
// re-reads are neighbours and mostly hit L1/L2): bound by load instructions, not by bytes or FLOPs. Expect a
// small fraction of the bandwidth roof at decode and of the 67 TFLOP/s f32 (non-tensor) peak at large M,
// far from the 989 TFLOP/s bf16 tensor peak, until measured; nothing here has run on a GPU.
// (bench/gpu/quant-check.mjs checks the bits against the CPU device on one.)
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "glmk/int4-arith.h"

namespace glmk::cuda {

constexpr int kMatmulLanes = 16;     // lanes per output: lane j holds the partial sum p[j]
constexpr int kMatmulThreads = 256;  // 16 outputs per block
static_assert(kMatmulThreads % 32 == 0 && 32 % kMatmulLanes == 0, "an output's lanes never straddle a warp");

// Element i of a bf16 / f16 / f32 array as f32 (exact).
__device__ __forceinline__ float matmul_widen(const void* p, int dtype, int64_t i) {
  if (dtype == GLMK_BF16) return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  if (dtype == GLMK_F16) return glmk_f32_from_bits(glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  return static_cast<const float*>(p)[i];
}

// Section: weight decode, one loader per format: weight (n, kk) as f32 (dense widened, int4 bf16(q * s))
__device__ __forceinline__ float matmul_weight(const glmk_matmul_args& a, int64_t n, int64_t kk) {
  const int64_t i = n * a.k + kk;
  if (a.w_dtype != GLMK_W_INT4) return matmul_widen(a.w, a.w_dtype, i);
  const int q = static_cast<int>((static_cast<uint32_t>(a.packed[i / 8]) >> (4 * (i % 8))) & 0xFu) - 8;
  const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(a.scales[n * (a.k / a.group_size) + kk / a.group_size]));
  return glmk_f32_from_bits(glmk_bf16_to_f32_bits(glmk_int4_dequant(q, s)));
}

// Section: the product, 16 lanes per output (n-major: output o is (m, n) = (o % M, o / M))
__global__ void matmul_kernel(glmk_matmul_args a) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t o = t / kMatmulLanes;
  const int j = static_cast<int>(t % kMatmulLanes);
  // NOTE: lanes past the last output stay in the warp (the shuffles below need every lane) and store nothing
  const bool live = o < a.m * a.n;
  const int64_t m = live ? o % a.m : 0, n = live ? o / a.m : 0;
  float p = 0.0f;
  if (live)
    for (int64_t kk = j; kk < a.k; kk += kMatmulLanes) p = fmaf(matmul_widen(a.x, a.x_dtype, m * a.k + kk), matmul_weight(a, n, kk), p);
  // Section: the fixed tree: q[j] = p[j] + p[j + 8], r[j] = q[j] + q[j + 4], s[j] = r[j] + r[j + 2], y = s0 + s1
  for (int d = kMatmulLanes / 2; d >= 1; d /= 2) p = p + __shfl_down_sync(0xFFFFFFFFu, p, d, kMatmulLanes);
  if (!live || j != 0) return;
  const int64_t at = m * a.n + n;
  // Every NaN out is canonical, as on the CPU device (0x7FC00000 in f32; a GPU's own NaN is 0x7FFFFFFF, and
  // which of two NaNs a sum carries differs between fma implementations).
  if (a.x_dtype == GLMK_F32) static_cast<uint32_t*>(a.y)[at] = p != p ? 0x7FC00000u : glmk_bits_from_f32(p);
  else if (a.x_dtype == GLMK_BF16) static_cast<uint16_t*>(a.y)[at] = glmk_bf16_rne(glmk_bits_from_f32(p));
  else static_cast<uint16_t*>(a.y)[at] = glmk_f16_rne(glmk_bits_from_f32(p));
}

}  // namespace glmk::cuda
