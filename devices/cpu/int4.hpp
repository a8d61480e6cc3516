// Int4 quantizer on the CPU device (SPEC 4): quantize, dequantize and the fake-quant gradient, one row of
// groups per work item. The arithmetic is the SPEC's, written as scalar code (what runs once per weight
// load or training step, not in the matmul): every ISA path gives the same bits.
#pragma once
#include "glmk/device.h"
#include "stream.hpp"

namespace glmk::cpu {

int int4_quantize_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st);
int int4_dequantize_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st);
int int4_fake_quant_grad_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st);

}  // namespace glmk::cpu
