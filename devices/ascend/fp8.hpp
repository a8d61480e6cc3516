// fp8 quantize / dequantize (SPEC 5) on the ascend device: host-computed in stream order (host-step.hpp)
// with glmk/fp8-arith.h, so that the bits are the CPU device's.
#pragma once

#include "glmk/device.h"

namespace glmk::ascend {

int fp8_quantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st);
int fp8_dequantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st);

}  // namespace glmk::ascend
