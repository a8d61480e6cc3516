// fp8.matmul on tensor cores (SPEC 5; issue 21): x bf16 [M, K] quantized per row and 128-channel block by the
// same kernel as before (fp8_act_quant_kernel: the CPU's bits), w e4m3 [N, K] with f32 scaleInv per
// [block_n, 128] block; each 128-K block's dot products by mma.sync into f32, the per-block scaling in f32
// outside the mma. Two instantiations, chosen per device at open (devices/cuda/device.cc):
//   kE4m3 = true (sm_89 and later, and cuda-sim, which reports sm_90): mma.sync m16n8k32 e4m3 -> f32 on the
//     codes themselves: A = the quantized activations re-encoded (glmk_e4m3_from_f32_bits of their e4m3
//     values: exact), B = the weights' bytes, 4 per register.
//   kE4m3 = false (sm_80, where the e4m3 mma traps; or GLM_KERNELS_CUDA_FP8_MMA=bf16): mma.sync m16n8k16 bf16.
//     e4m3 values are exact in bf16 (3 mantissa bits, exponents 2^-9..2^8, subnormals included, all normal
//     bf16 numbers; NaN -> 0x7FC0), so both operands go to the bf16 mma unchanged in value: A = the f32 e4m3
//     values' top 16 bits (their low 16 are zero), B = glmk_e4m3_to_f32_bits(code) >> 16.
// Both give the same exact products; they differ (within the tolerance below) in where the mma rounds (every
// k32 or every k16), so one device's bits depend on its architecture (fixed per device), not on the run.
//
// Tiling and K order (written down; the bits on a device depend on nothing else): matmul-mma.cuh's. A block
// of 4 warps computes 16 rows of x (an m-tile) times 64 columns of w, each warp two n8 tiles; block b is
// (m-tile b % m_tiles, column block b / m_tiles). Per 128-K block j = 0, 1, ... (in increasing order) every
// warp starts a fresh f32 accumulator P at +0 and walks the block's K in steps of 32 (e4m3) or 16 (bf16) from
// its first column, one mma per step and n8 tile (P = A B + P; K past the end is zero in A and B: 0 x 0);
// then, per output
// (r, c), y = y + (P * sa[r, j]) * scaleInv[c / block_n, j] in f32 (SPEC 5's order; y starts at +0). No
// split-K, no atomics, no shared partial sums. One rounding to bf16 at the end (or the f32 y with
// { dtype: "f32" }; every NaN written 0x7FC00000 / 0x7FC0, as on the CPU). Row r's output depends only on row
// r of x (its quantized values and scales) and on w: batch invariance, whatever M and the row's neighbours.
//
// Against the CPU's written order (16 fma chains and a fixed tree per block): within tolerance only. Inside
// one mma a GPU's accumulation is not IEEE (mma.cuh); cuda-sim's model sums each mma's k32 / k16 products
// exactly and rounds once. The products are exact (e4m3 x e4m3 has 8 significant bits), and the scaling is the same f32 formula,
// so the two differ only by their f32 accumulations: the tests' bound (test/fp8-matmul.test.ts, sim/fp8-moe-
// check.cc, bench/gpu/quant-check.mjs), with terms t = xa sa w scaleInv,
//   f32 y:  |y_dev - y_cpu| <= K 2^-22 sum |t|,   bf16 y: |y_dev - y_cpu| <= 2^-8 max(|y_dev|, |y_cpu|) + K 2^-22 sum |t|
// (K 2^-22 covers both sides' f32 sums, hardware truncation included, with room; 2^-8 one bf16 rounding flip
// on either side); NaNs where the CPU has them (an e4m3 NaN code, a NaN or infinite x in the row's block).
//
// Roofline and performance model (issue 21 item 4). A MODEL: nothing here has run on a GPU yet; the numbers
// to replace it come from `python3 bench/gpu/matmul_peer.py libglmk-cuda.so` (bench/gpu/acceptance.sh).
// Ceilings: H200 4.8 TB/s HBM3e, H100 SXM 3.35 TB/s; ~1979 TFLOP/s dense e4m3 mma (bf16 ~989), 132 SMs.
//   y = x [M, K] w [N, K]^T, [128, 128] weight blocks: FLOPs 2 M N K; bytes N K (codes) + N K / 4096 (scales)
//   + 10 M K (bf16 x read, its e4m3 values written as f32 and read back: fp8_act_quant_kernel) + 2 M N (bf16
//   y). Intensity ~2 M FLOP/B at small M against a ridge of 412 FLOP/B (H200) / 591 (H100) for e4m3: memory-
//   bound at every benchmark shape but 24576 x 6144 M = 256 on the H200, barely (at M = 256 the 10 M K
//   activation bytes are 28% of all at 6144 x 6144).
//   Roof in us, H200 / H100, at M = 1, 16, 64, 256:
//     6144 x 6144   37.8 MB   7.9 / 11.3   8.1 / 11.6   8.8 / 12.7   11.8 / 16.9
//     24576 x 6144   151 MB  31.5 / 45.1  31.8 / 45.6  32.9 / 47.2   39.1 mma / 53.5
//   (GLM-5's expert shapes, 2048 x 6144 and 6144 x 2048: 12.6 MB, 2.6 us at the H200 roof: moe.cuh.)
// How the kernel is written, and what that predicts (PTX of fp8_matmul_mma_kernel<true>, nvcc 13, -arch=sm_90
// --fmad=false: 70 registers; the K loop not unrolled). Grid and tiling are matmul-mma.cuh's: at M <= 16,
// 96 blocks of 4 warps for N = 6144 (one warp per scheduler, 96 of 132 SMs busy), 384 for 24576. Per k32
// step and warp: 16 f32 loads of the quantized activations, each re-encoded to e4m3 by
// glmk_e4m3_from_f32_bits (~25 instructions, 3 branches; at M = 1 only the 4 lanes of row 0 work, the warp
// waits for them), 16 single-byte weight loads guarded one by one (a new 32-byte sector per row every step:
// an HBM round trip per step), 2 mma; ~1,050 PTX instructions in the loop, ~300 (M = 1) to ~530 (M >= 16)
// executed per warp and step; per 128-K block 8 scale loads behind 64-bit divisions c / block_n. The
// activations are re-read and re-encoded by all 4 warps of each of the N / 64 column blocks. Before it,
// fp8_act_quant_kernel runs one thread per (row, 128 columns), serially over the 128 (a few us at M = 1),
// and every call allocates and frees its scratch in stream order (two launches, ~10 us of host time).
//   Expected at decode (M = 1): each step costs an HBM round trip plus the serial encode chain, ~1-1.5 us
//   for a lone warp: 6144 x 6144 ~0.15-0.3 ms (~3-5% of HBM), 24576 x 6144 (~3 warps per scheduler)
//   ~0.2-0.35 ms (~9-15%); M = 16 ~1.5x M = 1 (every lane encodes); M = 64, 256 instruction-bound at ~530 x
//   m_tiles x (N / 64) x 4 x (K / 32) warp instructions: ~1-1.5 ms at 6144 x 6144 M = 256, ~1% of the e4m3
//   peak. cuBLAS's block-scaled fp8 GEMM (PEERS.md: 25 us at 64 x 4096 x 6144 on an H100) should be ~10-50x
//   faster at every M. Issue 21 sets no target for fp8.matmul itself; moe.experts (moe.cuh) runs this body
//   where its shapes do not fit the pipelined one.
// What would close the gap (done in fp8-matmul-pipe.cuh, taken wherever K is whole 128-blocks): the activations quantized once to e4m3 bytes (not f32 values re-encoded per warp,
//   step and column block), weights moved by 16-byte cp.async / TMA in a multi-stage pipeline (a lane's B
//   registers are 8 codes of one column per step; the mma sums over k, so with A permuted alike along k one
//   16-byte load serves two steps), the per-block scales and divisions hoisted, all SMs busy at decode
//   (split K in a fixed order, or narrower column blocks).
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "fp8-dot.cuh"
#include "glmk/device.h"
#include "glmk/fp8-arith.h"
#include "glmk/int4-arith.h"
#include "matmul-mma.cuh"
#include "mma.cuh"

namespace glmk::cuda {

// The bf16 pair (k, k + 1) of one row of the quantized activations (f32 e4m3 values [cols]; nullptr: a row
// past the end), zero outside it.
__device__ __forceinline__ uint32_t fp8_mma_a(const float* row, int64_t cols, int64_t k) {
  if (!row) return 0u;
  const uint32_t lo = k < cols ? glmk_bits_from_f32(row[k]) >> 16 : 0u, hi = k + 1 < cols ? glmk_bits_from_f32(row[k + 1]) >> 16 : 0u;
  return lo | hi << 16;
}

// The bf16 pair (k, k + 1) of weight row n (e4m3 codes [rows, cols]), zero outside it.
__device__ __forceinline__ uint32_t fp8_mma_b(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, int64_t k) {
  if (n >= rows) return 0u;
  const uint8_t* row = w + n * cols;
  const uint32_t lo = k < cols ? glmk_e4m3_to_f32_bits(row[k]) >> 16 : 0u, hi = k + 1 < cols ? glmk_e4m3_to_f32_bits(row[k + 1]) >> 16 : 0u;
  return lo | hi << 16;
}

// The e4m3 quad (k .. k + 3) of one row of xa as codes (exact: xa holds e4m3 values; nullptr: zero).
__device__ __forceinline__ uint32_t fp8_mma_a8(const float* row, int64_t cols, int64_t k) {
  if (!row) return 0u;
  uint32_t v = 0u;
  for (int i = 0; i < 4; i++)
    if (k + i < cols) v |= static_cast<uint32_t>(glmk_e4m3_from_f32_bits(glmk_bits_from_f32(row[k + i]))) << (8 * i);
  return v;
}

// The e4m3 quad (k .. k + 3) of weight row n (its bytes), zero outside it.
__device__ __forceinline__ uint32_t fp8_mma_b8(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, int64_t k) {
  if (n >= rows) return 0u;
  const uint8_t* row = w + n * cols;
  uint32_t v = 0u;
  for (int i = 0; i < 4; i++)
    if (k + i < cols) v |= static_cast<uint32_t>(row[k + i]) << (8 * i);
  return v;
}

// The kernel body, shared by fp8.matmul (below) and moe.experts' grouped products (moe.cuh): one warp's
// 16 rows x (8 kMmaTilesN) columns from column n0 of w [n, k] (e4m3, scaleInv per [block_n, 128]), in the
// order written above. The warp's lane (g, t) supplies the quantized rows g and g + 8 of its m-tile: xr[0],
// xr[1] (f32 e4m3 values [k]; nullptr: a row past the end, zeros) and their scales sr[0], sr[1] (per
// 128-K block). y [jn][i] is the D fragment (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1) of n8 tile jn,
// in f32 (rows or columns past the end hold 0-derived values, not to be stored). Every lane must call it
// (mma is warp-collective). Output (r, c) depends only on row r's values and scales and on w's column c.
template <bool kE4m3>
__device__ __forceinline__ void fp8_mma_tile(const float* const xr[2], const float* const sr[2], int64_t k, const uint8_t* w, const float* scale_inv,
                                             int64_t n, int64_t block_n, int64_t n0, int g, int t, float y[kMmaTilesN][4]) {
  const int64_t blocks = (k + kFp8KBlock - 1) / kFp8KBlock;
  for (int jn = 0; jn < kMmaTilesN; jn++)
    for (int i = 0; i < 4; i++) y[jn][i] = 0.0f;
  // NOTE: every lane runs every step (mma is warp-collective); out-of-range rows / columns load zeros
  for (int64_t j = 0; j < blocks; j++) {
    const int64_t c0 = j * kFp8KBlock, c1 = c0 + kFp8KBlock < k ? c0 + kFp8KBlock : k;
    float p[kMmaTilesN][4];
    for (int jn = 0; jn < kMmaTilesN; jn++)
      for (int i = 0; i < 4; i++) p[jn][i] = 0.0f;
    if constexpr (kE4m3) {
      for (int64_t k0 = c0; k0 < c1; k0 += 32) {
        const uint32_t A[4] = {fp8_mma_a8(xr[0], k, k0 + 4 * t), fp8_mma_a8(xr[1], k, k0 + 4 * t), fp8_mma_a8(xr[0], k, k0 + 16 + 4 * t),
                               fp8_mma_a8(xr[1], k, k0 + 16 + 4 * t)};
        for (int jn = 0; jn < kMmaTilesN; jn++) {
          const int64_t nn = n0 + 8 * jn + g;
          const uint32_t b[2] = {fp8_mma_b8(w, n, k, nn, k0 + 4 * t), fp8_mma_b8(w, n, k, nn, k0 + 16 + 4 * t)};
          mma_m16n8k32_e4m3(p[jn], A, b, p[jn]);
        }
      }
    } else {
      for (int64_t k0 = c0; k0 < c1; k0 += 16) {
        const uint32_t A[4] = {fp8_mma_a(xr[0], k, k0 + 2 * t), fp8_mma_a(xr[1], k, k0 + 2 * t), fp8_mma_a(xr[0], k, k0 + 8 + 2 * t),
                               fp8_mma_a(xr[1], k, k0 + 8 + 2 * t)};
        for (int jn = 0; jn < kMmaTilesN; jn++) {
          const int64_t nn = n0 + 8 * jn + g;
          const uint32_t b[2] = {fp8_mma_b(w, n, k, nn, k0 + 2 * t), fp8_mma_b(w, n, k, nn, k0 + 8 + 2 * t)};
          mma_m16n8k16_bf16(p[jn], A, b, p[jn]);
        }
      }
    }
    // Section: the block's scaling, per output
    const float s[2] = {sr[0] ? sr[0][j] : 0.0f, sr[1] ? sr[1][j] : 0.0f};
    for (int jn = 0; jn < kMmaTilesN; jn++)
      for (int i = 0; i < 4; i++) {
        const int64_t c = n0 + 8 * jn + 2 * t + (i & 1);
        const float ws = c < n ? scale_inv[(c / block_n) * blocks + j] : 0.0f;
        y[jn][i] = y[jn][i] + (p[jn][i] * s[i >> 1]) * ws;
      }
  }
}

// Output (r, c) of fp8.matmul from its f32 sum: f32 (every NaN written 0x7FC00000, as on the CPU) or bf16.
__device__ __forceinline__ void fp8_store_y(const glmk_fp8_matmul_args& a, int64_t r, int64_t c, float v) {
  if (a.y_dtype == GLMK_F32) static_cast<uint32_t*>(a.y)[r * a.n + c] = v != v ? 0x7FC00000u : glmk_bits_from_f32(v);
  else static_cast<uint16_t*>(a.y)[r * a.n + c] = glmk_bf16_rne(glmk_bits_from_f32(v));
}

// Section: the kernel; grid: m_tiles * ceil(N / 64) blocks of kMmaThreads; xa [M, K], sa [M, ceil(K / 128)]
template <bool kE4m3>
__global__ void __launch_bounds__(kMmaThreads) fp8_matmul_mma_kernel(glmk_fp8_matmul_args a, const float* xa, const float* sa) {
  const int64_t m_tiles = (a.m + kMmaRows - 1) / kMmaRows, blk = blockIdx.x, blocks = (a.k + kFp8KBlock - 1) / kFp8KBlock;
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  const int64_t m0 = (blk % m_tiles) * kMmaRows;
  const int64_t n0 = (blk / m_tiles) * kMmaColsBlock + static_cast<int64_t>(threadIdx.x / 32) * (8 * kMmaTilesN);
  const float* const xr[2] = {m0 + g < a.m ? xa + (m0 + g) * a.k : nullptr, m0 + g + 8 < a.m ? xa + (m0 + g + 8) * a.k : nullptr};
  const float* const sr[2] = {m0 + g < a.m ? sa + (m0 + g) * blocks : nullptr, m0 + g + 8 < a.m ? sa + (m0 + g + 8) * blocks : nullptr};
  float y[kMmaTilesN][4];
  fp8_mma_tile<kE4m3>(xr, sr, a.k, a.data, a.scale_inv, a.n, a.block_n, n0, g, t, y);
  // Section: the outputs (rows past M and columns past N are not stored)
  for_each_d<kMmaTilesN>(n0, t, [&](int h, int64_t c, int jn, int i) {
    const int64_t r = m0 + g + 8 * h;
    if (r < a.m && c < a.n) fp8_store_y(a, r, c, y[jn][i]);
  });
}

}  // namespace glmk::cuda
