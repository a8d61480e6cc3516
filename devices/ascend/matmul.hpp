// matmul and int4.matmul (SPEC 4) on the ascend device: one aclnnMatmul in f32 for both (matmul.cc).
#pragma once

#include "glmk/device.h"

namespace glmk::ascend {

int matmul(glmk_device* d, const glmk_matmul_args* a, glmk_status* st);

}  // namespace glmk::ascend
