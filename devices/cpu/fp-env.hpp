// The CPU kernels' floating-point environment: glmk/fp-env.hpp's DefaultFpEnv.
#pragma once
#include "glmk/fp-env.hpp"

namespace glmk::cpu {

using glmk::DefaultFpEnv;

}  // namespace glmk::cpu
