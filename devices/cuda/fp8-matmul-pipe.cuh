// fp8.matmul on tensor cores, pipelined (issue 21): fp8-matmul-mma.cuh's K order and operands, so the same
// bits, with matmul-pipe.cuh's structure. One warp per block computes 16 rows of x times 16 columns of w;
// per 128-K block (one pipeline stage) the weights' 16 rows of 128 codes and the activations' 16 rows of
// e4m3 codes (fp8_act_quant_kernel writes them once, as bytes, instead of f32 values every warp re-encodes)
// go to shared memory by 16-byte cp.async, kPipeStages deep.
//   kE4m3 (sm_89+, cuda-sim): per k32 step one ldmatrix.x4 of x's codes (A: bytes are pairs of b16, so a0 =
//     (g, bytes 4t..4t+3) is what ldmatrix gives) and one of w's (b0, b1 of both n8 tiles), two mma m16n8k32.
//   bf16 (sm_80, GLM_KERNELS_CUDA_FP8_MMA=bf16): per k16 step the codes widened to bf16 (exact) through a
//     shared-memory table of all 256, two mma m16n8k16.
// Per block: P from +0 over the block's steps, then y = y + (P * sa[r, j]) * scaleInv[c / block_n, j] in f32
// (SPEC 5's order), y from +0; one rounding at the end. The same A and B values, steps and scaling as
// fp8_mma_tile, hence the same bits (sim/pipe-check.cc runs both kernels on the same inputs, bit for bit).
// Taken when K is a multiple of 128 and w's codes are 16-byte aligned (fp8-matmul.cu); else fp8-matmul-mma.cuh.
// Shared memory: (1 + matrices) x 4 stages x 16 rows x 144 bytes: 18,432 bytes for fp8.matmul, 27,648 for
// moe's gate + up (ptxas agrees), plus the bf16 path's 512-byte table. Rows of x past M are zeroed once,
// weight rows past N zero-filled by cp.async (their outputs are not stored).
//
// Roofline and performance model (a MODEL: nothing here has run on a GPU; bench/gpu/matmul_peer.py measures
// it). Bytes and roofs: fp8-matmul-mma.cuh (6144 x 6144: 37.8 MB, 7.9 us on an H200 at M = 1). In flight: 3
// blocks ahead x 2 KB of weights per warp; N = 6144 gives 384 one-warp blocks (~3 per SM): ~2.4 MB, ~80% of
// what Little's law asks at 4.8 TB/s. Issue per 128-K block and warp, counted in the PTX (nvcc 13, sm_90; 150
// registers): ~210 instructions with the e4m3 mma (4 x (2 ldmatrix + 2 mma), the scaling, the copies), against
// ~1,050 in fp8-matmul-mma.cuh's loop; ~720 on the bf16 path (sm_80: every code widened through a 256-entry
// shared-memory table, 8 k16 steps; ~6,200 when each code was widened in registers).
//   Expected at M <= 16, 6144 x 6144, e4m3: 48 blocks x ~210 = ~10 K instructions a warp, ~6-12 us at ~0.5-1
//   per cycle: about the bytes' 7.9 us, so ~8-15 us (~50-95% of HBM) if ~3 warps per SM keep ~2.4 MB in
//   flight; the activation quantization (one thread per row and block, serial over 128) adds a few us at
//   M = 1. The bf16 path (sm_80, no e4m3 mma, 2.0 TB/s) ~3.5x the instructions: ~48 blocks x ~720 = ~35 K a
//   warp, ~20-40 us, issue-bound.
#pragma once

#include <cstdint>

#include "fp8-matmul-mma.cuh"
#include "matmul-pipe.cuh"

namespace glmk::cuda {

// This lane's view of a warp tile's 16 rows of x: the codes of the rows it copies (lane / 8 + 4 q, q = 0..3;
// nullptr past the tile's rows, which stay zero) and the per-block scales of its output rows g and g + 8
// (nullptr past them: 0). The rows may be gathered (moe.experts: slots of one expert).
struct Fp8PipeRows {
  int rows;
  const uint8_t* x[4];
  const float* s[2];
};

// This lane's view of 16 columns of one weight matrix w [n, k]: the codes of the tile's first column (row n0
// of w), how many of the 16 are inside n, and the scaleInv rows of its output columns n0 + 8 jn + 2 t + e
// (nullptr past n: 0).
struct Fp8PipeCols {
  const uint8_t* w;
  int cols;
  const float* ws[2][2];
};

__device__ __forceinline__ Fp8PipeCols fp8_pipe_cols(const uint8_t* w, const float* scale_inv, int64_t n, int64_t k, int64_t block_n, int64_t n0,
                                                     int t) {
  Fp8PipeCols c{w + n0 * k, n - n0 < 16 ? static_cast<int>(n - n0) : 16, {}};
  for (int jn = 0; jn < 2; jn++)
    for (int e = 0; e < 2; e++) {
      const int64_t col = n0 + 8 * jn + 2 * t + e;
      c.ws[jn][e] = col < n ? scale_inv + (col / block_n) * (k / kFp8KBlock) : nullptr;
    }
  return c;
}

// Issues 128-K block j into stage j % kPipeStages: x's rows and the kMats weight tiles' 16 rows (past n
// zero-filled).
template <int kMats>
__device__ __forceinline__ void fp8_pipe_issue(int64_t k, const Fp8PipeRows& xr, const Fp8PipeCols (&wc)[kMats], uint4* ws, uint4* xs, int64_t j,
                                               int lane) {
  const int st = static_cast<int>(j % kPipeStages), p = lane % 8;
  for (int m = 0; m < kMats; m++)
    pipe_rows<kFp8KBlock / 16>(ws + (m * kPipeStages + st) * 16 * kPipeWRow, kPipeWRow, wc[m].w + j * kFp8KBlock, k, wc[m].cols, true, wc[m].w, lane);
  for (int q = 0; q < 4; q++)
    if (xr.x[q]) cp_async_cg16(&xs[(st * 16 + lane / 8 + 4 * q) * kPipeWRow + p], xr.x[q] + j * kFp8KBlock + 16 * p);
}

// The bf16 pair of e4m3 codes (k, k + 1) at p, by the block's table of every code's bf16 bits (the exact
// widening glmk_e4m3_to_f32_bits(c) >> 16; two shared-memory loads instead of ~15 instructions a code).
__device__ __forceinline__ uint32_t fp8_pair_bf16(const uint16_t* widen, const uint8_t* p) {
  return static_cast<uint32_t>(widen[p[0]]) | static_cast<uint32_t>(widen[p[1]]) << 16;
}

// Section: the tile body (fp8.matmul and moe.experts' grouped products): one warp's 16 rows x 16 columns of
// kMats products that share x (moe's gate and up: 2), K = k (a multiple of 128) in fp8_mma_tile's order,
// each matrix on its own accumulators: y[m] is matrix m's D fragment ((g, 2t), (g, 2t + 1), (g + 8, 2t),
// (g + 8, 2t + 1) of n8 tile jn) in f32. Every lane of the warp calls it (mma is warp-collective).
template <bool kE4m3, int kMats>
__device__ __forceinline__ void fp8_pipe_tile(int64_t k, const Fp8PipeRows& xr, const Fp8PipeCols (&wc)[kMats], float (&y)[kMats][2][4]) {
  GLMK_SHARED(uint4[kMats * kPipeStages * 16 * kPipeWRow], ws);
  GLMK_SHARED(uint4[kPipeStages * 16 * kPipeWRow], xs);
  const int64_t blocks = k / kFp8KBlock;
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  GLMK_SHARED(uint16_t[kE4m3 ? 1 : 256], widen);  // the bf16 path's table (fp8_pair_bf16)
  if constexpr (!kE4m3)
    for (int c = lane; c < 256; c += 32) widen[c] = static_cast<uint16_t>(glmk_e4m3_to_f32_bits(static_cast<uint8_t>(c)) >> 16);
  for (int i = lane; i < kPipeStages * 16 * kPipeWRow; i += 32)
    if ((i / kPipeWRow) % 16 >= xr.rows) xs[i] = uint4{0u, 0u, 0u, 0u};
  for (int m = 0; m < kMats; m++)
    for (int jn = 0; jn < 2; jn++)
      for (int i = 0; i < 4; i++) y[m][jn][i] = 0.0f;
  auto issue = [&](int64_t j) { fp8_pipe_issue<kMats>(k, xr, wc, ws, xs, j, lane); };
  pipe_run(blocks, issue, [&](int64_t j) {
    const float s[2] = {xr.s[0] ? xr.s[0][j] : 0.0f, xr.s[1] ? xr.s[1][j] : 0.0f};
    const int st = static_cast<int>(j % kPipeStages);
    GLMK_UNROLL
    for (int m = 0; m < kMats; m++) {
      const uint4* wst = ws + m * kPipeStages * 16 * kPipeWRow;
      float p[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
      if constexpr (kE4m3) {
        // ldmatrix rows: x row lane % 16 at byte 16 (lane / 16); w row lane % 8 + 8 (lane / 16) at 16 ((lane / 8) % 2)
        const uint8_t* xrow = reinterpret_cast<const uint8_t*>(&xs[(st * 16 + lane % 16) * kPipeWRow]) + 16 * (lane / 16);
        const uint8_t* wrow = reinterpret_cast<const uint8_t*>(&wst[(st * 16 + lane % 8 + 8 * (lane / 16)) * kPipeWRow]) + 16 * ((lane / 8) % 2);
        GLMK_UNROLL
        for (int k0 = 0; k0 < kFp8KBlock; k0 += 32) {
          uint32_t A[4], r[4];
          ldmatrix<4>(A, xrow + k0);
          ldmatrix<4>(r, wrow + k0);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          mma_m16n8k32_e4m3(p[0], A, b0, p[0]);
          mma_m16n8k32_e4m3(p[1], A, b1, p[1]);
        }
      } else {
        const uint8_t* x0 = reinterpret_cast<const uint8_t*>(&xs[(st * 16 + g) * kPipeWRow]);
        const uint8_t* x1 = reinterpret_cast<const uint8_t*>(&xs[(st * 16 + g + 8) * kPipeWRow]);
        const uint8_t* w0 = reinterpret_cast<const uint8_t*>(&wst[(st * 16 + g) * kPipeWRow]);
        const uint8_t* w1 = reinterpret_cast<const uint8_t*>(&wst[(st * 16 + g + 8) * kPipeWRow]);
        GLMK_UNROLL
        for (int k0 = 0; k0 < kFp8KBlock; k0 += 16) {
          const int c = k0 + 2 * t;
          const uint32_t A[4] = {fp8_pair_bf16(widen, x0 + c), fp8_pair_bf16(widen, x1 + c), fp8_pair_bf16(widen, x0 + c + 8),
                                 fp8_pair_bf16(widen, x1 + c + 8)};
          const uint32_t b0[2] = {fp8_pair_bf16(widen, w0 + c), fp8_pair_bf16(widen, w0 + c + 8)};
          const uint32_t b1[2] = {fp8_pair_bf16(widen, w1 + c), fp8_pair_bf16(widen, w1 + c + 8)};
          mma_m16n8k16_bf16(p[0], A, b0, p[0]);
          mma_m16n8k16_bf16(p[1], A, b1, p[1]);
        }
      }
      // the block's scaling, per output (fp8_mma_tile's expression)
      for (int jn = 0; jn < 2; jn++)
        for (int i = 0; i < 4; i++) {
          const float* wsr = wc[m].ws[jn][i & 1];
          y[m][jn][i] = y[m][jn][i] + (p[jn][i] * s[i >> 1]) * (wsr ? wsr[j] : 0.0f);
        }
    }
  });
}

// Section: fp8.matmul's kernel; grid: m_tiles * ceil(N / 16) blocks of 32 threads; xq [M, K] e4m3 codes, sa
// [M, K / 128]
template <bool kE4m3>
__global__ void __launch_bounds__(32) fp8_matmul_pipe_kernel(glmk_fp8_matmul_args a, const uint8_t* xq, const float* sa) {
  const int64_t m_tiles = (a.m + 15) / 16, blk = blockIdx.x, blocks = a.k / kFp8KBlock;
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane & 3;
  const int64_t m0 = (blk % m_tiles) * 16, n0 = (blk / m_tiles) * 16;
  Fp8PipeRows xr{a.m - m0 < 16 ? static_cast<int>(a.m - m0) : 16, {}, {}};
  for (int q = 0; q < 4; q++) xr.x[q] = lane / 8 + 4 * q < xr.rows ? xq + (m0 + lane / 8 + 4 * q) * a.k : nullptr;
  for (int h = 0; h < 2; h++) xr.s[h] = g + 8 * h < xr.rows ? sa + (m0 + g + 8 * h) * blocks : nullptr;
  const Fp8PipeCols wc[1] = {fp8_pipe_cols(a.data, a.scale_inv, a.n, a.k, a.block_n, n0, t)};
  float y[1][2][4];
  fp8_pipe_tile<kE4m3, 1>(a.k, xr, wc, y);
  // Section: the outputs (rows past M and columns past N are not stored)
  for_each_d<2>(n0, t, [&](int h, int64_t c, int jn, int i) {
    const int64_t r = m0 + g + 8 * h;
    if (r < a.m && c < a.n) fp8_store_y(a, r, c, y[0][jn][i]);
  });
}

}  // namespace glmk::cuda
