// FP8 block quantization on the CPU device (SPEC 5): quantize and dequantize, rows of blocks as work items.
#pragma once
#include "glmk/device.h"
#include "stream.hpp"

namespace glmk::cpu {

int fp8_quantize_execute(Pool& pool, const glmk_fp8_args& a, glmk_status* st);
int fp8_dequantize_execute(Pool& pool, const glmk_fp8_args& a, glmk_status* st);

}  // namespace glmk::cpu
