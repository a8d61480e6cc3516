// MoE on CUDA (SPEC 5): what the device's host code calls (moe.cu).
#pragma once

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Enqueue on `stream` (arguments already checked); the same bits as the CPU device.
int moe_route_enqueue(cudaStream_t stream, const glmk_moe_route_args& a, glmk_status* st);
// error: the device's error record [8] (a bad id lands there; sync() reports it).
int moe_experts_enqueue(cudaStream_t stream, const glmk_moe_experts_args& a, uint32_t* error, glmk_status* st);

}  // namespace glmk::cuda
