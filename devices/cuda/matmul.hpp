// matmul and int4.matmul on CUDA (SPEC 4): what the device's host code calls (matmul.cu).
#pragma once

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Enqueue on `stream` (arguments already checked by glmk/matmul-check.hpp). f16 and f32 x: the CPU device's bits
// (matmul.cuh); bf16 x: tensor cores, within tolerance of the CPU, int4 == fakeQuant bit for bit (matmul-mma.cuh;
// with pipe, bf16 and int4 w whose shapes fit take matmul-pipe.cuh: the same bits; int4 there decodes by
// fma.rn.bf16x2 with int4_fma_decode, else by f32 and cvt).
int matmul_enqueue(cudaStream_t stream, const glmk_matmul_args& a, bool pipe, bool int4_fma_decode, glmk_status* st);

// Whether int4's fast decode (two fma.rn.bf16x2, mma.cuh int4_pair_fma) gives glmk_int4_dequant's bits on
// this device: every pair of codes times every s_step-th bf16 scale (1: all of them, ~1 ms on a GPU).
// Synchronizes `stream`.
bool int4_fma_decode_exact(cudaStream_t stream, unsigned s_step);

}  // namespace glmk::cuda
