// matmul and int4.matmul on CUDA: the host side (grid size, launch). Kernel: matmul.cuh. Compiled by nvcc for
// the cuda plugin and, through sim/matmul-sim.cc, by g++ for cuda-sim.
#include "matmul.hpp"

#include <cstdint>

#include "fp8-matmul.hpp"  // grid_size, launch_status
#include "glmk/matmul-check.hpp"
#include "glmk/status.hpp"
#include "matmul.cuh"

namespace glmk::cuda {

int matmul_enqueue(cudaStream_t stream, const glmk_matmul_args& a, glmk_status* st) {
  const char* op = matmul_op_name(&a);
  if (a.m == 0 || a.n == 0) return ok(st);
  // NOTE: K = 0 needs no case of its own: every lane's chain is empty and the tree adds zeros (+0, as the CPU)
  unsigned grid = 0;
  if (a.m > INT64_MAX / kMatmulLanes / a.n) return fail(st, GLMK_E_SHAPE, "%s: M x N is too large", op);
  if (grid_size(a.m * a.n * kMatmulLanes, kMatmulThreads, op, &grid, st) != GLMK_OK) return st->code;
  cudaGetLastError();
  GLMK_LAUNCH(matmul_kernel, grid, kMatmulThreads, 0, stream, a);
  return launch_status(op, st);
}

}  // namespace glmk::cuda
