// Deterministic top-k on CUDA: what the device's host code calls (topk.cu).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Scratch device memory owned by the device, reused by every op on its stream (grown stream-ordered).
struct Workspace {
  void* ptr = nullptr;
  size_t bytes = 0;
};

struct TopkContext {
  cudaStream_t stream;
  int multiprocessors;
  uint32_t* error;  // device memory [4]: the first bad row found by a top-k since the last sync
  Workspace* workspace;
};

// Enqueues top-k (arguments already checked against the shapes; rowStarts / lengths values are checked
// on the device, reported at the next sync).
int topk_enqueue(const TopkContext& ctx, const glmk_topk_args& a, glmk_status* st);

}  // namespace glmk::cuda
