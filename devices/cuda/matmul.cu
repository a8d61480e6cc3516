// matmul and int4.matmul on CUDA: the host side (grid size, launch). Kernels: matmul-mma.cuh (bf16 x: tensor
// cores, every weight format) and matmul.cuh (f16 and f32 x: the CPU's written order). Compiled by nvcc for the
// cuda plugin and, through sim/matmul-sim.cc, by g++ for cuda-sim.
#include "matmul.hpp"

#include <cstdint>

#include "fp8-matmul.hpp"  // grid_size, launch_status
#include "glmk/matmul-check.hpp"
#include "glmk/status.hpp"
#include "matmul-mma.cuh"
#include "matmul-pipe.cuh"
#include "matmul.cuh"

namespace glmk::cuda {
namespace {

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether bf16 x with this weight takes the pipelined kernel (matmul-pipe.cuh): whole stages along K, groups
// whose scales fill a 4-, 8- or 16-byte copy, 16-byte aligned operands. Both kernels give the same bits.
bool pipe_fits(const glmk_matmul_args& a) {
  if (a.k == 0 || !aligned16(a.x)) return false;
  if (a.w_dtype == GLMK_BF16) return a.k % kPipeK<kMmaBf16> == 0 && aligned16(a.w);
  return a.w_dtype == GLMK_W_INT4 && a.k % kPipeK<kMmaInt4> == 0 && (a.group_size == 32 || a.group_size == 64 || a.group_size == 128) &&
         aligned16(a.packed) && aligned16(a.scales);
}

}  // namespace

int matmul_enqueue(cudaStream_t stream, const glmk_matmul_args& a, bool pipe, glmk_status* st) {
  const char* op = matmul_op_name(&a);
  if (a.m == 0 || a.n == 0) return ok(st);
  // NOTE: K = 0 needs no case of its own: every lane's chain is empty and the tree adds zeros (+0, as the CPU)
  unsigned grid = 0;
  if (a.x_dtype == GLMK_BF16) {
    const int64_t m_tiles_pipe = (a.m + 15) / 16, n_pipe = (a.n + 15) / 16;
    if (pipe && pipe_fits(a)) {  // one warp per (m-tile, 16 columns)
      if (m_tiles_pipe > INT64_MAX / 32 / n_pipe) return fail(st, GLMK_E_SHAPE, "%s: M x N is too large", op);
      if (grid_size(m_tiles_pipe * n_pipe * 32, 32, op, &grid, st) != GLMK_OK) return st->code;
      cudaGetLastError();
      if (a.w_dtype == GLMK_W_INT4) GLMK_LAUNCH(matmul_pipe_kernel<kMmaInt4>, grid, 32, 0, stream, a);
      else GLMK_LAUNCH(matmul_pipe_kernel<kMmaBf16>, grid, 32, 0, stream, a);
      return launch_status(op, st);
    }
    // one block per (m-tile, 64 columns); the tiling and K order do not depend on M (matmul-mma.cuh)
    const int64_t m_tiles = (a.m + kMmaRows - 1) / kMmaRows, n_blocks = (a.n + kMmaColsBlock - 1) / kMmaColsBlock;
    if (m_tiles > INT64_MAX / kMmaThreads / n_blocks) return fail(st, GLMK_E_SHAPE, "%s: M x N is too large", op);
    if (grid_size(m_tiles * n_blocks * kMmaThreads, kMmaThreads, op, &grid, st) != GLMK_OK) return st->code;
    cudaGetLastError();
    if (a.w_dtype == GLMK_W_INT4) GLMK_LAUNCH(matmul_mma_kernel<kMmaInt4>, grid, kMmaThreads, 0, stream, a);
    else if (a.w_dtype == GLMK_BF16) GLMK_LAUNCH(matmul_mma_kernel<kMmaBf16>, grid, kMmaThreads, 0, stream, a);
    else if (a.w_dtype == GLMK_F16) GLMK_LAUNCH(matmul_mma_kernel<kMmaF16>, grid, kMmaThreads, 0, stream, a);
    else GLMK_LAUNCH(matmul_mma_kernel<kMmaF32>, grid, kMmaThreads, 0, stream, a);
    return launch_status(op, st);
  }
  if (a.m > INT64_MAX / kMatmulLanes / a.n) return fail(st, GLMK_E_SHAPE, "%s: M x N is too large", op);
  if (grid_size(a.m * a.n * kMatmulLanes, kMatmulThreads, op, &grid, st) != GLMK_OK) return st->code;
  cudaGetLastError();
  GLMK_LAUNCH(matmul_kernel, grid, kMatmulThreads, 0, stream, a);
  return launch_status(op, st);
}

}  // namespace glmk::cuda
