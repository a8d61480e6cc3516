// MoE on the CPU device (SPEC 5): the router (logits through the GEMM core, selection per token) and the
// routed SwiGLU experts (tokens grouped per expert, each product an fp8.matmul, combined in slot order).
#pragma once
#include "glmk/device.h"
#include "isa.hpp"
#include "stream.hpp"

namespace glmk::cpu {

int moe_route_execute(Pool& pool, Isa isa, const glmk_moe_route_args& a, glmk_status* st);
int moe_experts_execute(Pool& pool, Isa isa, const glmk_moe_experts_args& a, glmk_status* st);

}  // namespace glmk::cpu
