// FP8 block quantization on CUDA: the host side (grid sizes, launches). Kernels: fp8.cuh. Compiled by nvcc
// for the cuda plugin and, through sim/fp8-sim.cc, by g++ for cuda-sim.
#include "fp8.hpp"

#include "fp8.cuh"
#include "glmk/status.hpp"

namespace glmk::cuda {

int fp8_quantize_enqueue(cudaStream_t stream, const glmk_fp8_args& a, glmk_status* st) {
  const int64_t blocks = a.batch * ((a.n + a.block_n - 1) / a.block_n) * ((a.k + a.block_k - 1) / a.block_k);
  if (blocks == 0) return ok(st);
  cudaGetLastError();
  GLMK_LAUNCH(fp8_quantize_kernel, static_cast<unsigned>((blocks + kFp8Threads - 1) / kFp8Threads), kFp8Threads, 0, stream, a);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ok(st) : fail(st, GLMK_E_DEVICE, "fp8.quantize: kernel launch failed: %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
}

int fp8_dequantize_enqueue(cudaStream_t stream, const glmk_fp8_args& a, glmk_status* st) {
  const int64_t n = a.batch * a.n * a.k;
  if (n == 0) return ok(st);
  cudaGetLastError();
  GLMK_LAUNCH(fp8_dequantize_kernel, static_cast<unsigned>((n + kFp8Threads - 1) / kFp8Threads), kFp8Threads, 0, stream, a);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ok(st) : fail(st, GLMK_E_DEVICE, "fp8.dequantize: kernel launch failed: %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
}

}  // namespace glmk::cuda
