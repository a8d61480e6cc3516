// What the CUDA fp8 kernels share: kFp8KBlock and the e4m3 decode, as device functions only (no kernels:
// included by fp8-matmul.cuh, fp8-matmul-mma.cuh and moe.cuh, which live in different objects). (The dot
// products themselves run on tensor cores since issue 21: fp8-matmul-mma.cuh.)
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/fp8-arith.h"
#include "glmk/gemm-order.h"

namespace glmk::cuda {

constexpr int64_t kFp8KBlock = 128;  // the activations' and weights' block columns

__device__ __forceinline__ float fp8_code_f32(uint8_t c) { return glmk_f32_from_bits(glmk_e4m3_to_f32_bits(c)); }

}  // namespace glmk::cuda
