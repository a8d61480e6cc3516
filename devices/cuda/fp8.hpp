// FP8 block quantization on CUDA (SPEC 5): what the device's host code calls (fp8.cu).
#pragma once

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Enqueue on `stream` (arguments already checked); the same bits as the CPU device (glmk/fp8-arith.h).
int fp8_quantize_enqueue(cudaStream_t stream, const glmk_fp8_args& a, glmk_status* st);
int fp8_dequantize_enqueue(cudaStream_t stream, const glmk_fp8_args& a, glmk_status* st);

}  // namespace glmk::cuda
