// The int4 quantizer on CUDA: the host side (grid sizes, launches). Kernels: int4.cuh. Compiled by nvcc for
// the cuda plugin and, through sim/int4-sim.cc, by g++ for cuda-sim.
#include "int4.hpp"

#include "glmk/status.hpp"
#include "int4.cuh"

namespace glmk::cuda {
namespace {

unsigned blocks_for(int64_t threads) { return static_cast<unsigned>((threads + kInt4Threads - 1) / kInt4Threads); }

int launched(const char* op, glmk_status* st) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(st, GLMK_E_DEVICE, "%s: kernel launch failed: %s: %s", op, cudaGetErrorName(e), cudaGetErrorString(e));
  return ok(st);
}

// quantize and fakeQuantGrad: one thread per group.
int per_group(cudaStream_t stream, const glmk_int4_args& a, bool grad, glmk_status* st) {
  const int64_t groups = a.n * (a.k / a.group_size);
  if (groups == 0) return ok(st);
  cudaGetLastError();
  if (grad) GLMK_LAUNCH(int4_fake_quant_grad_kernel, blocks_for(groups), kInt4Threads, 0, stream, a);
  else GLMK_LAUNCH(int4_quantize_kernel, blocks_for(groups), kInt4Threads, 0, stream, a);
  return launched(grad ? "int4.fakeQuantGrad" : "int4.quantize", st);
}

}  // namespace

int int4_quantize_enqueue(cudaStream_t stream, const glmk_int4_args& a, glmk_status* st) {
  return per_group(stream, a, false, st);
}

int int4_dequantize_enqueue(cudaStream_t stream, const glmk_int4_args& a, glmk_status* st) {
  const int64_t words = a.n * a.k / 8;
  if (words == 0) return ok(st);
  cudaGetLastError();
  GLMK_LAUNCH(int4_dequantize_kernel, blocks_for(words), kInt4Threads, 0, stream, a);
  return launched("int4.dequantize", st);
}

int int4_fake_quant_grad_enqueue(cudaStream_t stream, const glmk_int4_args& a, glmk_status* st) {
  return per_group(stream, a, true, st);
}

}  // namespace glmk::cuda
