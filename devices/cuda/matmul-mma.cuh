// matmul and int4.matmul for bf16 x on tensor cores (SPEC 4; issue 21): mma.sync m16n8k16 bf16 -> f32, the
// weights decoded in registers straight from SPEC 4's layout. The simple kernel: every weight format and K;
// matmul-pipe.cuh, its pipelined twin with the same K order, takes bf16 and int4 w where the shapes fit.
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
// Roofline and performance model (issue 21 item 4). A MODEL: nothing here has run on a GPU yet; the numbers
// to replace it come from `python3 bench/gpu/matmul_peer.py libglmk-cuda.so` (bench/gpu/acceptance.sh).
// Ceilings: H200 4.8 TB/s HBM3e, H100 SXM 3.35 TB/s; both ~989 TFLOP/s dense bf16 mma, 132 SMs, 50 MB L2.
//   y = x [M, K] w [N, K]^T: FLOPs 2 M N K; bytes N K b_w (int4: 0.5 + 2 / groupSize = 0.5625 at group 32,
//   0.516 at 128; bf16 2) + 2 M K (x) + 2 M N (y). Intensity ~2 M / b_w FLOP/B (int4 group 32: 3.6 M, bf16: M)
//   against a ridge of 206 FLOP/B (H200) / 295 (H100): int4 is memory-bound up to M ~ 58 (H200), bf16 to ~206.
//   The benchmark's shapes, roof in us H200 / H100 at M = 1, 16, 64, 256 ("mma": the FLOPs bound it):
//     6144 x 6144   int4 g32 21.2 MB  4.4 / 6.3   4.5 / 6.5    4.9 / 6.8 mma    19.5 / 19.5 mma
//                   bf16     75.5 MB  15.7 / 22.5 15.8 / 22.7  16.1 / 23.0      19.5 / 24.4 mma
//     24576 x 6144  int4 g32 84.9 MB  17.7 / 25.4 17.9 / 25.6  19.5 / 26.5 mma  78.2 / 78.2 mma
//                   bf16      302 MB  62.9 / 90.2 63.1 / 90.4  63.7 / 91.3      78.2 / 94.8 mma
//   (group 128: 19.5 and 77.9 MB of int4, 8% less.)
// How the kernel is written, and what that predicts (its PTX from nvcc 13, -arch=sm_90 --fmad=false: the K
// loop is not unrolled; 48 registers for int4, 36 for bf16, so occupancy is not the limit, parallelism is):
//   - One block of 4 warps per (m-tile, 64 columns): at M <= 16, N = 6144 gives 96 blocks, fewer than the 132
//     SMs, one warp per scheduler; N = 24576 gives 384 (~3 per SM). A warp issues a K step's loads and waits
//     for them before that step's mma (no cp.async, no double buffering), so it has one step in flight: bf16
//     16 rows x 32 B (a new sector per row every step: an HBM round trip per step), int4 16 rows x 8 B (a
//     sector lasts 4 steps). Little's law at ~600 ns: 4.8 TB/s needs ~2.9 MB in flight (~22 KB per SM); this
//     kernel has at most 384 warps x 512 B = 200 KB at N = 6144 (under 7%), ~4x that at 24576.
//   - Per K step and warp: bf16 ~130 PTX instructions (16 scalar 16-bit loads, guarded one by one); int4
//     ~270 plus 4 integer divisions by the runtime group size (k / group_size and k0 / group_size, per n8
//     tile and step, a 32-bit fast path of ~20 instructions each), 8 decodes (f32 multiply, bf16 rounding),
//     the scale's 16-bit load. A lone warp per scheduler issues these at well under 1 per cycle.
//   Expected at M = 1 and 16 (one m-tile, so the same time): latency-bound. 6144 x 6144: int4 ~0.1-0.3 ms
//   (~1.5-4% of HBM: its steps are ALU-latency bound), bf16 ~0.2-0.35 ms (an HBM round trip a step, at most
//   ~330 GB/s by the 200 KB in flight: ~5-7%): int4 saves bytes, not steps, so at most ~2x our bf16.
//   24576 x 6144: ~3 warps per scheduler overlap their waits: int4 ~0.15-0.3 ms (~6-12%), bf16 ~0.25-0.4 ms
//   (~15-25%). M = 64, 256: 4 and 16 m-tiles re-read w through L2 (21 MB of int4 fits) and re-decode it:
//   instruction-bound at ~300 x m_tiles x (N / 64) x 4 x (K / 16) warp instructions (int4), ~1-2 ms at
//   6144 x 6144 M = 256: ~1-2% of the mma peak (cuBLAS bf16: ~20-40 us).
// What issue 21's target implies (int4 at M <= 16 at least 3x bf16, a Marlin-class kernel's ~3.6x ideal at
//   group 32): cuBLAS streams bf16 w at ~80-90% of HBM (PEERS.md: 41 us at 6144 x 6144, M = 1, on an H100), so
//   int4 must stream at ~70% of HBM: ~6-7 us at 6144 x 6144 on an H200, 15-50x under this kernel's
//   expectation. So bf16 and int4 w with K a multiple of a pipeline stage run matmul-pipe.cuh instead (cp.async
//   stages, ldmatrix, one warp per 16 columns, the same K order and bits); this kernel keeps f16 / f32 w, odd K
//   and the other groups.
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
  for_each_d<kMmaTilesN>(n0, t, [&](int h, int64_t c, int j, int i) {
    const int64_t r = m0 + g + 8 * h;
    if (r >= a.m || c >= a.n) return;
    float v = acc[j][i];
    if (kSplit && cor[j][i] != 0.0f) v = v + cor[j][i];
    y[r * a.n + c] = glmk_bf16_rne(glmk_bits_from_f32(v));
  });
}

}  // namespace glmk::cuda
