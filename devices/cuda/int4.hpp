// The int4 quantizer on CUDA (SPEC 4): what the device's host code calls (int4.cu).
#pragma once

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Enqueue on `stream` (arguments already checked); the same bits as the CPU device (glmk/int4-arith.h).
int int4_quantize_enqueue(cudaStream_t stream, const glmk_int4_args& a, glmk_status* st);
int int4_dequantize_enqueue(cudaStream_t stream, const glmk_int4_args& a, glmk_status* st);
int int4_fake_quant_grad_enqueue(cudaStream_t stream, const glmk_int4_args& a, glmk_status* st);

}  // namespace glmk::cuda
