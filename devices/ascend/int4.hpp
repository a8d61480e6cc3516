// int4 quantize / dequantize / fakeQuantGrad (SPEC 4) on the ascend device: host-computed in stream order
// (host-step.hpp) with glmk/int4-arith.h, so that the bits are the CPU device's. fakeQuant is quantize then
// dequantize (lib/ops/int4.ts).
#pragma once

#include "glmk/device.h"

namespace glmk::ascend {

int int4_quantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st);
int int4_dequantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st);
int int4_fake_quant_grad(glmk_device* d, const glmk_int4_args* a, glmk_status* st);

// Decodes int4 weights (SPEC 4 layout, host copies) to the f32 values of bf16(q * s): [n, k] row-major.
void int4_decode_f32(const int32_t* packed, const uint16_t* scales, int64_t n, int64_t k, int64_t group_size, float* out);

}  // namespace glmk::ascend
