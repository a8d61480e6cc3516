// Element i of a bf16 / f16 / f32 array as an f32 (exact), for the CPU kernels' scalar paths: the one
// definition in glmk/host-rows.hpp.
#pragma once
#include "glmk/host-rows.hpp"

namespace glmk::cpu {

using glmk::widen;

}  // namespace glmk::cpu
