// fp8.matmul's activation quantization (SPEC 5) in the CPU device's written order (devices/cpu/gemm.cc,
// fp8_matmul_execute): per row and 128-column block, sa = glmk_fp8_scale_inv(amax), a8 = f32(e4m3(x / sa)):
// the CPU's bits (fp8.matmul and moe.experts both use it). The products: fp8-matmul-mma.cuh (tensor cores;
// moe.experts' grouped products reuse its body, moe.cuh).
//
// One thread per (row, block): the quantization reads 2 bytes and writes 4 per activation (M K 6 bytes),
// small next to the weights' N K at the shapes that matter.
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "fp8-dot.cuh"
#include "glmk/fp8-arith.h"

namespace glmk::cuda {

constexpr int kFp8MatmulThreads = 128;
// Section: activation quantization, one thread per (row, 128-column block) of bf16 x [rows, k]; writes the
// values as f32 to xa or as e4m3 codes to xq (the pipelined product's operand), whichever is not null
__global__ void fp8_act_quant_kernel(const uint16_t* x, int64_t rows, int64_t k, float* xa, uint8_t* xq, float* sa) {
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
  for (int64_t c = c0; c < c1; c++) {
    const uint8_t code = glmk_e4m3_from_f32_bits(glmk_bits_from_f32(glmk_f32_from_bits(glmk_bf16_to_f32_bits(row[c])) / s));
    if (xa) xa[m * k + c] = fp8_code_f32(code);
    if (xq) xq[m * k + c] = code;
  }
}

}  // namespace glmk::cuda
