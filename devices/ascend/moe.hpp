// moe.route (SPEC 5) on the ascend device: host-computed in stream order (host-step.hpp), in the written
// order every device follows (logits as 16 fma chains over k mod 16 and the fixed tree, then
// glmk_moe_select of glmk/moe-arith.h): the same experts and weights as the CPU device, bit for bit.
#pragma once

#include "glmk/device.h"

namespace glmk::ascend {

int moe_route(glmk_device* d, const glmk_moe_route_args* a, glmk_status* st);

// moe.experts (SPEC 5): tokens grouped per expert as the CPU device groups them; per set of experts, the
// gate, up and down products as aclnnGroupedMatmulV4 on f32 operands (activations quantized and weights
// dequantized on the host, fp8-matmul.hpp); the bf16 roundings, SwiGLU, h's quantization and the slot-order
// combine on the host with the CPU device's code (glmk/host-rows.hpp). Within tolerance of the CPU device.
int moe_experts(glmk_device* d, const glmk_moe_experts_args* a, glmk_status* st);

}  // namespace glmk::ascend
