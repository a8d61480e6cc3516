// matmul and int4.matmul for bf16 x on tensor cores (SPEC 4; issue 21): mma.sync m16n8k16 bf16 -> f32, the
// weights decoded in registers, W4A16 "of the Marlin kind" (no repack: decoded straight from SPEC 4's layout).
//
// Tiling and K order (written down; the bits on a device depend on nothing else):
//   A block of 4 warps (128 threads) computes 16 rows of x (an m-tile: rows 16i..16i+15) times 64 columns of
//   w; each warp 16 columns as two n8 tiles. Block b is (m-tile b % m_tiles, column block b / m_tiles).
//   Every warp walks K in steps of 16 from k = 0 up, one mma per step and n8 tile into one f32 accumulator
//   (C = D of the previous step, starting at +0): D = A[m-tile, k0..k0+15] B[k0..k0+15, n8 tile] + C. That
//   is the whole reduction: no split over K, no atomics, no shared partial sums. Rows past M and columns past
//   N are zeros in A / B (their outputs are not stored); K past the end (dense, K not a multiple of 16) is
//   zero in both A and B, so a padded product is 0 x 0.
//   Then one rounding of the f32 accumulator to bf16 (nearest even; every NaN is 0x7FC0, as on the CPU).
//   So: one instruction, one K order for every M, grid and schedule; row i's output depends only on row i of
//   x and on w (an mma's output element (r, c) is a function of A's row r, B's column c and C[r][c] alone),
//   which is batch invariance: row i alone == row i inside any batch, at any position of its m-tile.
// Operands (PTX fragments: devices/cuda/mma.cuh): A from x by plain 16-bit loads (x is small and re-read
// from L1/L2 by the block's 4 warps); B per format, decoded in registers to bf16 bits:
//   bf16 w: the bits. int4: bf16(q * s) by glmk_int4_dequant (exactly int4.dequantize's / fakeQuant's
//   values), from the step's two packed words (two 4-byte loads). f32 / f16 w: split exactly into
//   hi + mid + lo, each bf16 (hi = the top 16 bits, mid / lo the next ones; exact for |w| >= 2^-110), hi
//   goes through the very mma chain above and mid, lo through a second accumulator (with x's infinities and
//   NaNs zeroed there, so that inf x 0 never appears); the output is hi's sum where the second is 0, else
//   hi's sum + the second. A weight row holding bf16 values (fakeQuant of f32 w) has mid = lo = 0, so
//   matmul(x, fakeQuant(w f32)) gives hi's sum: the same B values and mma sequence as int4.matmul.
// Hence on one device int4.matmul(x, quantize(w)) == matmul(x, fakeQuant(w)) bit for bit, for bf16 and f32 w.
// Across devices (and against the CPU's written order) only within tolerance: a GPU's accumulation inside an
// mma is not IEEE (mma.cuh), cuda-sim's model sums each k16 step exactly. Bound used by the tests:
//   |y_dev - y_cpu| <= 2^-8 max(|y_dev|, |y_cpu|) + K 2^-22 sum_k |x w|   (a bf16 rounding flip either side,
//   plus both f32 accumulations). Known limit: an f32 / f16 weight below 2^-133 in magnitude has hi = 0, so
//   inf x that weight gives NaN here where the CPU gives inf.
//
// Roofline (H200: 4.8 TB/s HBM3e, ~989 TFLOP/s dense bf16 mma; H100 SXM: 3.35 TB/s, same peak). y = x [M, K]
// w [N, K]^T: FLOPs 2 M N K; bytes N K b_w (int4: 0.5 + 2 / groupSize, bf16 2, f32 4) + M K 2 + M N 2.
// Decode M = 1, K = N = 6144: int4 group 32 reads 21.2 MB -> 4.4 us at the H200 roof (6.3 us H100), bf16
// 75.5 MB -> 16 us (22.5 us); 75 MFLOP is nothing. Arithmetic intensity ~ 2 M / b_w FLOP/byte: int4 reaches
// the mma peak's ridge (~206 FLOP/B on H200) only near M ~ 50 for int4 but the m-tile is 16 rows, so up to
// M = 16 the kernel is memory-bound by design and one m-tile's weights are read once; past that each
// m-tile re-reads the weights (through L2, consecutive blocks share a column block). Expected, until measured
// (nothing here has run on a GPU; bench/gpu/quant-check.mjs checks bits and tolerance there): well under
// the bandwidth roof at decode (guess 30-50%): what limits it is that there is no cp.async pipeline (each
// warp waits on its own 4-byte / 2-byte loads per k-step, 32-byte sectors from 8 rows), one mma per load,
// the decode's scalar f32 multiply and rounding per weight (the Marlin lop3 + bf16 multiply trick gives the
// same bf16(q s) and is the next step), and 16-bit A loads; the mma peak is out of reach (M <= 16 uses 1 of 16
// rows per mma at decode). f32 w runs three mmas per step (hi, mid, lo) and reads 4 bytes a weight.
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "glmk/int4-arith.h"
#include "mma.cuh"

namespace glmk::cuda {

constexpr int kMmaWarps = 4;                             // warps per block
constexpr int kMmaTilesN = 2;                            // n8 tiles per warp
constexpr int kMmaRows = 16;                             // rows of x per block (the m-tile)
constexpr int kMmaColsBlock = kMmaWarps * kMmaTilesN * 8;  // 64 columns of w per block
constexpr int kMmaThreads = 32 * kMmaWarps;

// The weight formats the kernel decodes (a template argument: one instantiation each).
enum MmaWeight : int { kMmaBf16 = 0, kMmaF16 = 1, kMmaF32 = 2, kMmaInt4 = 3 };

// The bf16 pair (k, k + 1) of row r of a [rows, cols] bf16 matrix as one .b32 register, zero outside it.
__device__ __forceinline__ uint32_t mma_pair(const uint16_t* p, int64_t rows, int64_t cols, int64_t r, int64_t k) {
  if (r >= rows) return 0u;
  const uint16_t* row = p + r * cols;
  const uint32_t lo = k < cols ? row[k] : 0u, hi = k + 1 < cols ? row[k + 1] : 0u;
  return lo | hi << 16;
}

// x's register with its infinities and NaNs replaced by +0 (the operand of the mid / lo products).
__device__ __forceinline__ uint32_t mma_finite(uint32_t r) {
  const uint32_t lo = (r & 0x7F80u) == 0x7F80u ? 0u : r & 0xFFFFu, hi = (r & 0x7F800000u) == 0x7F800000u ? 0u : r >> 16;
  return lo | hi << 16;
}

// An f32 weight (bits) split exactly into bf16 hi + mid + lo; infinities and NaNs go to hi whole.
struct MmaSplit {
  uint32_t hi, mid, lo;  // bf16 bits in the low 16
};
__device__ __forceinline__ MmaSplit mma_split(uint32_t b) {
  if ((b & 0x7F800000u) == 0x7F800000u) return {(b & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0u : b >> 16, 0u, 0u};
  const uint32_t h = b & 0xFFFF0000u;
  // exact: h keeps b's sign and leading bit, so b - h is b's low mantissa bits (Sterbenz); likewise below
  const float r1 = glmk_f32_from_bits(b) - glmk_f32_from_bits(h);
  const uint32_t m = glmk_bits_from_f32(r1) & 0xFFFF0000u;
  const float r2 = r1 - glmk_f32_from_bits(m);
  return {h >> 16, m >> 16, glmk_bits_from_f32(r2) >> 16};
}

// Weight (n, k) of a dense f16 / f32 w as f32 bits, zero outside [N, K].
template <int W>
__device__ __forceinline__ uint32_t mma_dense_bits(const glmk_matmul_args& a, int64_t n, int64_t k) {
  if (n >= a.n || k >= a.k) return 0u;
  if constexpr (W == kMmaF16) return glmk_f16_to_f32_bits(static_cast<const uint16_t*>(a.w)[n * a.k + k]);
  else return static_cast<const uint32_t*>(a.w)[n * a.k + k];
}

// B fragment of one n8 tile at step k0 for column n (this lane's g): b[0] = (k0 + 2t, +1), b[1] = (k0 + 8 + 2t,
// +1); with W f16 / f32 also the mid and lo parts.
template <int W>
__device__ __forceinline__ void mma_load_b(const glmk_matmul_args& a, int64_t n, int64_t k0, int t, uint32_t (&b)[2],
                                           uint32_t (&bm)[2], uint32_t (&bl)[2]) {
  if constexpr (W == kMmaBf16) {
    const uint16_t* w = static_cast<const uint16_t*>(a.w);
    b[0] = mma_pair(w, a.n, a.k, n, k0 + 2 * t), b[1] = mma_pair(w, a.n, a.k, n, k0 + 8 + 2 * t);
  } else if constexpr (W == kMmaInt4) {
    // K is a multiple of the group (>= 32), so the step's 16 codes are two whole words of one group
    b[0] = b[1] = 0u;
    if (n >= a.n) return;
    const int32_t* wd = a.packed + (n * a.k + k0) / 8;
    const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(a.scales[n * (a.k / a.group_size) + k0 / a.group_size]));
    const uint32_t words[2] = {static_cast<uint32_t>(wd[0]), static_cast<uint32_t>(wd[1])};
    for (int r = 0; r < 2; r++) {
      const int q0 = static_cast<int>((words[r] >> (8 * t)) & 0xFu) - 8, q1 = static_cast<int>((words[r] >> (8 * t + 4)) & 0xFu) - 8;
      b[r] = static_cast<uint32_t>(glmk_int4_dequant(q0, s)) | static_cast<uint32_t>(glmk_int4_dequant(q1, s)) << 16;
    }
  } else {
    for (int r = 0; r < 2; r++) {
      const int64_t k = k0 + 8 * r + 2 * t;
      const MmaSplit e0 = mma_split(mma_dense_bits<W>(a, n, k)), e1 = mma_split(mma_dense_bits<W>(a, n, k + 1));
      b[r] = e0.hi | e1.hi << 16, bm[r] = e0.mid | e1.mid << 16, bl[r] = e0.lo | e1.lo << 16;
    }
  }
}

// Section: the kernel (x bf16; y bf16 [M, N]); grid: m_tiles * ceil(N / 64) blocks of kMmaThreads
template <int W>
__global__ void __launch_bounds__(kMmaThreads) matmul_mma_kernel(glmk_matmul_args a) {
  constexpr bool kSplit = W == kMmaF16 || W == kMmaF32;
  const int64_t m_tiles = (a.m + kMmaRows - 1) / kMmaRows, blk = blockIdx.x;
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  const int64_t m0 = (blk % m_tiles) * kMmaRows;
  const int64_t n0 = (blk / m_tiles) * kMmaColsBlock + static_cast<int64_t>(threadIdx.x / 32) * (8 * kMmaTilesN);
  const uint16_t* x = static_cast<const uint16_t*>(a.x);
  float acc[kMmaTilesN][4], cor[kMmaTilesN][4];
  for (int j = 0; j < kMmaTilesN; j++)
    for (int i = 0; i < 4; i++) acc[j][i] = 0.0f, cor[j][i] = 0.0f;
  // NOTE: every lane runs every step (mma is warp-collective); out-of-range rows / columns load zeros
  for (int64_t k0 = 0; k0 < a.k; k0 += 16) {
    const uint32_t A[4] = {mma_pair(x, a.m, a.k, m0 + g, k0 + 2 * t), mma_pair(x, a.m, a.k, m0 + g + 8, k0 + 2 * t),
                           mma_pair(x, a.m, a.k, m0 + g, k0 + 8 + 2 * t), mma_pair(x, a.m, a.k, m0 + g + 8, k0 + 8 + 2 * t)};
    for (int j = 0; j < kMmaTilesN; j++) {
      uint32_t b[2], bm[2], bl[2];
      mma_load_b<W>(a, n0 + 8 * j + g, k0, t, b, bm, bl);
      mma_m16n8k16_bf16(acc[j], A, b, acc[j]);
      if constexpr (kSplit) {
        const uint32_t Af[4] = {mma_finite(A[0]), mma_finite(A[1]), mma_finite(A[2]), mma_finite(A[3])};
        mma_m16n8k16_bf16(cor[j], Af, bm, cor[j]);
        mma_m16n8k16_bf16(cor[j], Af, bl, cor[j]);
      }
    }
  }
  // Section: one rounding to bf16 per output (D fragment: (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1))
  uint16_t* y = static_cast<uint16_t*>(a.y);
  for (int j = 0; j < kMmaTilesN; j++)
    for (int i = 0; i < 4; i++) {
      const int64_t r = m0 + g + 8 * (i >> 1), c = n0 + 8 * j + 2 * t + (i & 1);
      if (r >= a.m || c >= a.n) continue;
      float v = acc[j][i];
      if (kSplit && cor[j][i] != 0.0f) v = v + cor[j][i];
      y[r * a.n + c] = glmk_bf16_rne(glmk_bits_from_f32(v));
    }
}

}  // namespace glmk::cuda
