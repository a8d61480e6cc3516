// moe.route (SPEC 5) on the ascend device: host-computed in stream order (host-step.hpp), in the written
// order every device follows (logits as 16 fma chains over k mod 16 and the fixed tree, then
// glmk_moe_select of glmk/moe-arith.h): the same experts and weights as the CPU device, bit for bit.
#pragma once

#include "glmk/device.h"

namespace glmk::ascend {

int moe_route(glmk_device* d, const glmk_moe_route_args* a, glmk_status* st);

}  // namespace glmk::ascend
