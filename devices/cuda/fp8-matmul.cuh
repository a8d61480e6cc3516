// fp8.matmul kernels (SPEC 5) in the CPU device's written order (devices/cpu/gemm.cc, fp8_matmul_execute):
//   activations, per row and 128-column block: sa = glmk_fp8_scale_inv(amax), a8 = f32(e4m3(x / sa));
//   per output (m, n), per 128-K block j increasing: 16 fma chains over k mod 16 (increasing k, from +0),
//   the fixed tree of devices/cpu/gemm.hpp, then acc = acc + (partial * sa[m, j]) * scaleInv[n / block_n, j].
// Every output is one thread's sequential work and no thread combines another's results, so the bits are
// the CPU device's whatever the grid or the schedule (cuda-sim checks them under many seeds).
//
// NOTE: correctness-first SIMT kernels, not tuned; the tensor-core (e4m3 mma, m16n8k32) version is to come.
// Performance model: y = x [M, K] bf16 * w [N, K] e4m3. Bytes: N K (weights) + 10 M K (activations: bf16
// in, their e4m3 values written as f32 and read back) + M N (2 or 4); FLOPs: 2 M N K. One thread per output
// re-reads its weight row from L2 for each of the M rows and reads K bytes strided across the warp (threads
// hold different rows), so at decode (M <= 16) it is bound by uncoalesced weight loads, well below the
// 4.8 TB/s of an H200, and at large M by scalar f32 FMA throughput (no tensor cores): expect a small
// fraction of either roof until measured (bench/gpu/quant-check.mjs checks the bits on a GPU; nothing here has run on one).
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "fp8-dot.cuh"
#include "glmk/fp8-arith.h"

namespace glmk::cuda {

constexpr int kFp8MatmulThreads = 128;
// Section: activation quantization, one thread per (row, 128-column block) of bf16 x [rows, k]
__global__ void fp8_act_quant_kernel(const uint16_t* x, int64_t rows, int64_t k, float* xa, float* sa) {
  const int64_t blocks = (k + kFp8KBlock - 1) / kFp8KBlock;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= rows * blocks) return;
  const int64_t m = t / blocks, j = t % blocks;
  const int64_t c0 = j * kFp8KBlock, c1 = c0 + kFp8KBlock < k ? c0 + kFp8KBlock : k;
  const uint16_t* row = x + m * k;
  float amax = 0.0f;
  for (int64_t c = c0; c < c1 && amax == amax; c++) {
    const float v = fabsf(glmk_f32_from_bits(glmk_bf16_to_f32_bits(row[c])));
    amax = v != v ? v : (v > amax ? v : amax);
  }
  const float s = glmk_fp8_scale_inv(amax);
  sa[t] = s;
  for (int64_t c = c0; c < c1; c++)
    xa[m * k + c] = fp8_code_f32(glmk_e4m3_from_f32_bits(glmk_bits_from_f32(glmk_f32_from_bits(glmk_bf16_to_f32_bits(row[c])) / s)));
}

// Section: the product, one thread per output (m, n)
__global__ void fp8_matmul_kernel(glmk_fp8_matmul_args a, const float* xa, const float* sa) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.m * a.n) return;
  const int64_t m = t / a.n, n = t % a.n, blocks = (a.k + kFp8KBlock - 1) / kFp8KBlock;
  const float acc = fp8_row_dot(xa + m * a.k, sa + m * blocks, a.data + n * a.k, a.scale_inv + (n / a.block_n) * blocks, a.k);
  // NOTE: a GPU writes every NaN result as 0x7FFFFFFF where x86 passes the operand's NaN on; the NaNs here
  // come from e4m3 NaN codes and NaN activation scales, both 0x7FC00000, which is what the CPU device
  // writes. (Only an invalid operation on infinities, from infinite scales, gives x86's 0xFFC00000 there.)
  if (a.y_dtype == GLMK_F32) static_cast<uint32_t*>(a.y)[t] = acc != acc ? 0x7FC00000u : glmk_bits_from_f32(acc);
  else static_cast<uint16_t*>(a.y)[t] = glmk_bf16_rne(glmk_bits_from_f32(acc));
}

}  // namespace glmk::cuda
