// Deterministic top-k (SPEC 3) on an Ascend NPU, composed of aclnn ops (topk.cc).
#pragma once

#include <string>

#include "glmk/device.h"

struct glmk_device;

namespace glmk::ascend {

// Checks the arguments that the call site can check (dtype, shape, k); fills st.
int topk_check(const glmk_topk_args& a, glmk_status* st);

// Runs on the device's queue thread: reads the row windows back, checks them, launches the ops.
int topk_run(glmk_device* d, const glmk_topk_args& a, std::string& message);

}  // namespace glmk::ascend
