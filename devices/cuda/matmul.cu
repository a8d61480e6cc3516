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

// The check that decides the fast decode (int4_fma_decode_exact): int4_pair_fma (mma.cuh) against
// glmk_int4_dequant for every byte of two codes and every s_step-th bf16 scale (1 on a GPU: all 16.7 M pairs);
// *bad counts the halves that differ (a NaN only has to be a NaN). An integer atomic: the count is order-free.
__global__ void int4_fma_check_kernel(uint32_t s_step, uint32_t* bad) {
  const uint32_t s = (static_cast<uint32_t>(blockIdx.x) * blockDim.x + threadIdx.x) * s_step;
  if (s > 0xFFFFu) return;
  const float sf = glmk_f32_from_bits(s << 16);
  uint32_t n = 0;
  for (uint32_t byte = 0; byte < 256; byte++) {
    const uint32_t got = int4_pair_fma(byte, s | s << 16);
    for (int h = 0; h < 2; h++) {
      const uint32_t want = glmk_int4_dequant(static_cast<int>((byte >> (4 * h)) & 0xFu) - 8, sf), g = (got >> (16 * h)) & 0xFFFFu;
      n += (want & 0x7FFFu) > 0x7F80u ? (g & 0x7FFFu) <= 0x7F80u : g != want;
    }
  }
  if (n) atomicAdd(bad, n);
}

}  // namespace

int matmul_enqueue(cudaStream_t stream, const glmk_matmul_args& a, bool pipe, bool int4_fma_decode, glmk_status* st) {
  const char* op = matmul_op_name(&a);
  if (a.m == 0 || a.n == 0) return ok(st);
  // NOTE: K = 0 needs no case of its own: every lane's chain is empty and the tree adds zeros (+0, as the CPU)
  unsigned grid = 0;
  if (a.x_dtype == GLMK_BF16) {
    // one warp per (m-tile, 16 columns) where the pipelined kernel fits (matmul-pipe.cuh), else one block of 4
    // warps per (m-tile, 64 columns) (matmul-mma.cuh); the tiling and K order do not depend on M, the bits
    // not on the kernel
    const bool piped = pipe && pipe_fits(a);
    const int threads = piped ? 32 : kMmaThreads;
    const int64_t m_tiles = (a.m + kMmaRows - 1) / kMmaRows, cols = piped ? 16 : kMmaColsBlock, n_blocks = (a.n + cols - 1) / cols;
    if (m_tiles > INT64_MAX / threads / n_blocks) return fail(st, GLMK_E_SHAPE, "%s: M x N is too large", op);
    if (grid_size(m_tiles * n_blocks * threads, threads, op, &grid, st) != GLMK_OK) return st->code;
    cudaGetLastError();
    constexpr auto int4_fma = matmul_pipe_kernel<kMmaInt4, true>, int4_cvt = matmul_pipe_kernel<kMmaInt4, false>;
    constexpr auto bf16 = matmul_pipe_kernel<kMmaBf16, false>;
    const size_t smem = a.w_dtype == GLMK_W_INT4 ? pipe_smem_bytes<kMmaInt4>(a.m) : pipe_smem_bytes<kMmaBf16>(a.m);
    if (piped && a.w_dtype == GLMK_W_INT4 && int4_fma_decode) GLMK_LAUNCH(int4_fma, grid, 32, smem, stream, a);
    else if (piped && a.w_dtype == GLMK_W_INT4) GLMK_LAUNCH(int4_cvt, grid, 32, smem, stream, a);
    else if (piped) GLMK_LAUNCH(bf16, grid, 32, smem, stream, a);
    else if (a.w_dtype == GLMK_W_INT4) GLMK_LAUNCH(matmul_mma_kernel<kMmaInt4>, grid, kMmaThreads, 0, stream, a);
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

bool int4_fma_decode_exact(cudaStream_t stream, unsigned s_step) {
  uint32_t* bad = nullptr;
  uint32_t host = 1;
  if (cudaMallocAsync(reinterpret_cast<void**>(&bad), sizeof(uint32_t), stream) != cudaSuccess) return false;
  const unsigned threads = (0xFFFFu / s_step) + 1;
  cudaGetLastError();
  if (cudaMemsetAsync(bad, 0, sizeof(uint32_t), stream) == cudaSuccess) {
    GLMK_LAUNCH(int4_fma_check_kernel, (threads + 255) / 256, 256, 0, stream, s_step, bad);
    if (cudaGetLastError() == cudaSuccess) cudaMemcpyAsync(&host, bad, sizeof(uint32_t), cudaMemcpyDeviceToHost, stream);
  }
  cudaFreeAsync(bad, stream);
  return cudaStreamSynchronize(stream) == cudaSuccess && host == 0;
}

}  // namespace glmk::cuda
