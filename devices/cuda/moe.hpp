// MoE on CUDA (SPEC 5): what the device's host code calls (moe.cu).
#pragma once

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Enqueue on `stream` (arguments already checked). moe.route: the same bits as the CPU device.
int moe_route_enqueue(cudaStream_t stream, const glmk_moe_route_args& a, glmk_status* st);
// error: the device's error record [8] (a bad id lands there; sync() reports it). The products on tensor
// cores, each exactly fp8.matmul's (fp8-matmul-mma.cuh; e4m3_mma and allow_pipe as for fp8_matmul_enqueue).
int moe_experts_enqueue(cudaStream_t stream, const glmk_moe_experts_args& a, bool e4m3_mma, bool allow_pipe, uint32_t* error, glmk_status* st);

}  // namespace glmk::cuda
