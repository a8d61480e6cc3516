// matmul and int4.matmul on CUDA (SPEC 4): what the device's host code calls (matmul.cu).
#pragma once

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Enqueue on `stream` (arguments already checked by glmk/matmul-check.hpp). f16 and f32 x: the CPU device's bits
// (matmul.cuh); bf16 x: tensor cores, within tolerance of the CPU, int4 == fakeQuant bit for bit (matmul-mma.cuh;
// with pipe, bf16 and int4 w whose shapes fit take matmul-pipe.cuh: the same bits).
int matmul_enqueue(cudaStream_t stream, const glmk_matmul_args& a, bool pipe, glmk_status* st);

}  // namespace glmk::cuda
