// fp8.matmul on CUDA: the host side (scratch, grid sizes, launches). Kernels: fp8-matmul.cuh (the activations'
// quantization, the CPU's bits) and fp8-matmul-mma.cuh (the product on tensor cores). Compiled by nvcc for the
// cuda plugin and, through sim/fp8-matmul-sim.cc, by g++ for cuda-sim.
#include "fp8-matmul.hpp"

#include <cstdint>

#include "fp8-matmul-mma.cuh"
#include "fp8-matmul-pipe.cuh"
#include "fp8-matmul.cuh"
#include "glmk/status.hpp"

namespace glmk::cuda {

int StreamScratch::alloc(size_t bytes, const char* op, glmk_status* st) {
  cudaError_t e = cudaMallocAsync(&ptr_, bytes ? bytes : 1, stream_);
  if (e == cudaSuccess) return ok(st);
  ptr_ = nullptr;
  return fail(st, GLMK_E_OOM, "%s: cannot allocate %zu bytes of scratch: %s: %s", op, bytes, cudaGetErrorName(e), cudaGetErrorString(e));
}

int launch_status(const char* op, glmk_status* st) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? ok(st) : fail(st, GLMK_E_DEVICE, "%s: kernel launch failed: %s: %s", op, cudaGetErrorName(e), cudaGetErrorString(e));
}

int grid_size(int64_t threads, int block, const char* op, unsigned* grid, glmk_status* st) {
  const int64_t blocks = (threads + block - 1) / block;
  if (blocks > INT32_MAX)
    return fail(st, GLMK_E_SHAPE, "%s: %lld threads need more than 2^31 - 1 blocks of %d", op, static_cast<long long>(threads), block);
  *grid = static_cast<unsigned>(blocks);
  return ok(st);
}

int fp8_act_quant_enqueue(cudaStream_t stream, const uint16_t* x, int64_t rows, int64_t k, float* xa, float* sa,
                          const char* op, glmk_status* st, uint8_t* xq) {
  const int64_t threads = rows * ((k + kFp8KBlock - 1) / kFp8KBlock);
  unsigned grid = 0;
  if (threads == 0) return ok(st);
  if (grid_size(threads, kFp8MatmulThreads, op, &grid, st) != GLMK_OK) return st->code;
  cudaGetLastError();
  GLMK_LAUNCH(fp8_act_quant_kernel, grid, kFp8MatmulThreads, 0, stream, x, rows, k, xq ? nullptr : xa, xq, sa);
  return launch_status(op, st);
}

int fp8_matmul_enqueue(cudaStream_t stream, const glmk_fp8_matmul_args& a, bool e4m3_mma, bool allow_pipe, glmk_status* st) {
  if (a.m == 0 || a.n == 0) return ok(st);
  if (a.k == 0) {  // no blocks: every sum is +0
    cudaError_t e = cudaMemsetAsync(a.y, 0, static_cast<size_t>(a.m * a.n) * (a.y_dtype == GLMK_F32 ? 4 : 2), stream);
    return e == cudaSuccess ? ok(st) : fail(st, GLMK_E_DEVICE, "fp8.matmul: cudaMemsetAsync: %s", cudaGetErrorString(e));
  }
  // pipelined (fp8-matmul-pipe.cuh: one warp per (m-tile, 16 columns)) when K is whole 128-blocks and w's rows
  // 16-byte aligned; else one block per (m-tile, 64 columns) (fp8-matmul-mma.cuh). Same K order, same bits.
  const bool pipe = allow_pipe && a.k % kFp8KBlock == 0 && reinterpret_cast<uintptr_t>(a.data) % 16 == 0;
  const int64_t cols_per = pipe ? 16 : kMmaColsBlock, threads = pipe ? 32 : kMmaThreads;
  const int64_t m_tiles = (a.m + kMmaRows - 1) / kMmaRows, n_blocks = (a.n + cols_per - 1) / cols_per;
  unsigned grid = 0;
  if (m_tiles > INT64_MAX / threads / n_blocks) return fail(st, GLMK_E_SHAPE, "fp8.matmul: M x N is too large");
  if (grid_size(m_tiles * n_blocks * threads, static_cast<int>(threads), "fp8.matmul", &grid, st) != GLMK_OK) return st->code;
  // Section: scratch for the quantized activations (f32 values, or e4m3 codes for the pipelined kernel)
  const int64_t blocks = (a.k + kFp8KBlock - 1) / kFp8KBlock;
  const size_t xa_bytes = scratch_round(static_cast<size_t>(a.m * a.k) * (pipe ? 1 : sizeof(float)));
  StreamScratch scratch(stream);
  if (scratch.alloc(xa_bytes + static_cast<size_t>(a.m * blocks) * sizeof(float), "fp8.matmul", st) != GLMK_OK) return st->code;
  float* xa = scratch.at<float>(0);
  uint8_t* xq = pipe ? scratch.at<uint8_t>(0) : nullptr;
  float* sa = scratch.at<float>(xa_bytes);
  // Section: quantize (the CPU's bits), then the product on tensor cores
  if (fp8_act_quant_enqueue(stream, static_cast<const uint16_t*>(a.x), a.m, a.k, xa, sa, "fp8.matmul", st, xq) != GLMK_OK) return st->code;
  cudaGetLastError();
  if (pipe && e4m3_mma) GLMK_LAUNCH(fp8_matmul_pipe_kernel<true>, grid, 32, 0, stream, a, xq, sa);
  else if (pipe) GLMK_LAUNCH(fp8_matmul_pipe_kernel<false>, grid, 32, 0, stream, a, xq, sa);
  else if (e4m3_mma) GLMK_LAUNCH(fp8_matmul_mma_kernel<true>, grid, kMmaThreads, 0, stream, a, xa, sa);
  else GLMK_LAUNCH(fp8_matmul_mma_kernel<false>, grid, kMmaThreads, 0, stream, a, xa, sa);
  return launch_status("fp8.matmul", st);
}

}  // namespace glmk::cuda
