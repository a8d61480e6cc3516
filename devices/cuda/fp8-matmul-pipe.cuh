// fp8.matmul on tensor cores, pipelined (issue 21): fp8-matmul-mma.cuh's K order and operands, so the same
// bits, with matmul-pipe.cuh's structure. One warp per block computes 16 rows of x times 16 columns of w;
// per 128-K block (one pipeline stage) the weights' 16 rows of 128 codes and the activations' 16 rows of
// e4m3 codes (fp8_act_quant_kernel writes them once, as bytes, instead of f32 values every warp re-encodes)
// go to shared memory by 16-byte cp.async, kPipeStages deep.
//   kE4m3 (sm_89+, cuda-sim): per k32 step one ldmatrix.x4 of x's codes (A: bytes are pairs of b16, so a0 =
//     (g, bytes 4t..4t+3) is what ldmatrix gives) and one of w's (b0, b1 of both n8 tiles), two mma m16n8k32.
//   bf16 (sm_80, GLM_KERNELS_CUDA_FP8_MMA=bf16): per k16 step the codes widened to bf16 in registers (exact),
//     two mma m16n8k16.
// Per block: P from +0 over the block's steps, then y = y + (P * sa[r, j]) * scaleInv[c / block_n, j] in f32
// (SPEC 5's order), y from +0; one rounding at the end. The same A and B values, steps and scaling as
// fp8_mma_tile, hence the same bits (sim/fp8-moe-check.cc compares the two kernels bit for bit).
// Taken when K is a multiple of 128 and w's codes are 16-byte aligned (fp8-matmul.cu); else fp8-matmul-mma.cuh.
// Shared memory: 2 x 4 stages x 16 rows x 144 bytes = 18,432 bytes (ptxas agrees). Rows of x past M are zeroed once, weight
// rows past N zero-filled by cp.async (their outputs are not stored).
//
// Roofline and performance model (a MODEL: nothing here has run on a GPU; bench/gpu/matmul_peer.py measures
// it). Bytes and roofs: fp8-matmul-mma.cuh (6144 x 6144: 37.8 MB, 7.9 us on an H200 at M = 1). In flight: 3
// blocks ahead x 2 KB of weights per warp; N = 6144 gives 384 one-warp blocks (~3 per SM): ~2.4 MB, ~80% of
// what Little's law asks at 4.8 TB/s. Issue per 128-K block and warp, counted in the PTX (nvcc 13, sm_90; 98
// registers): ~210 instructions with the e4m3 mma (4 x (2 ldmatrix + 2 mma), the scaling, the copies), against
// ~1,050 in fp8-matmul-mma.cuh's loop; ~6,200 on the bf16 path (sm_80: every code widened in registers, 156
// registers). Expected at M <= 16, 6144 x 6144, e4m3: 48 blocks x ~210 = ~10 K instructions a warp, ~6-12 us
// at ~0.5-1 per cycle: about the bytes' 7.9 us, so ~8-15 us (~50-95% of HBM) if ~3 warps per SM keep ~2.4 MB
// in flight; the activation quantization (one thread per row and block, serial over 128) adds a few us at
// M = 1. The bf16 path (sm_80) is issue-bound, ~20x that.
#pragma once

#include <cstdint>

#include "fp8-matmul-mma.cuh"
#include "matmul-pipe.cuh"

namespace glmk::cuda {

// Issues 128-K block j into stage j % kPipeStages: the block's 16 weight rows (w_tile: row n0's first code;
// past N zero-filled) and x's rows (x_tile: row m0's first code; `rows` of them); then commits a group (an
// empty one past the last block).
__device__ __forceinline__ void fp8_pipe_issue(const glmk_fp8_matmul_args& a, uint4* ws, uint4* xs, int64_t j, int64_t blocks, const uint8_t* w_tile,
                                               const uint8_t* x_tile, int rows, int cols, int lane) {
  if (j < blocks) {
    const int st = static_cast<int>(j % kPipeStages);
    pipe_rows<kFp8KBlock / 16>(ws + st * 16 * kPipeWRow, kPipeWRow, w_tile + j * kFp8KBlock, a.k, cols, true, w_tile, lane);
    pipe_rows<kFp8KBlock / 16>(xs + st * 16 * kPipeWRow, kPipeWRow, x_tile + j * kFp8KBlock, a.k, rows, false, x_tile, lane);
  }
  cp_async_commit();
}

// The bf16 pair of e4m3 codes (k, k + 1) at p (exact widening).
__device__ __forceinline__ uint32_t fp8_pair_bf16(const uint8_t* p) {
  return (glmk_e4m3_to_f32_bits(p[0]) >> 16) | (glmk_e4m3_to_f32_bits(p[1]) >> 16) << 16;
}

// Section: the kernel; grid: m_tiles * ceil(N / 16) blocks of 32 threads; xq [M, K] e4m3 codes, sa [M, K / 128]
template <bool kE4m3>
__global__ void __launch_bounds__(32) fp8_matmul_pipe_kernel(glmk_fp8_matmul_args a, const uint8_t* xq, const float* sa) {
  GLMK_SHARED(uint4[kPipeStages * 16 * kPipeWRow], ws);
  GLMK_SHARED(uint4[kPipeStages * 16 * kPipeWRow], xs);
  const int64_t m_tiles = (a.m + 15) / 16, blk = blockIdx.x, blocks = a.k / kFp8KBlock;
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane & 3;
  const int64_t m0 = (blk % m_tiles) * 16, n0 = (blk / m_tiles) * 16;
  const int rows = a.m - m0 < 16 ? static_cast<int>(a.m - m0) : 16, cols = a.n - n0 < 16 ? static_cast<int>(a.n - n0) : 16;
  // this lane's rows' scales and columns' scale rows (scaleInv [ceil(N / block_n), blocks]; 0 past the end)
  const float* const sr[2] = {g < rows ? sa + (m0 + g) * blocks : nullptr, g + 8 < rows ? sa + (m0 + g + 8) * blocks : nullptr};
  const float* wsr[2][2];
  for (int jn = 0; jn < 2; jn++)
    for (int e = 0; e < 2; e++) {
      const int64_t c = n0 + 8 * jn + 2 * t + e;
      wsr[jn][e] = c < a.n ? a.scale_inv + (c / a.block_n) * blocks : nullptr;
    }
  for (int i = lane; i < kPipeStages * 16 * kPipeWRow; i += 32)
    if ((i / kPipeWRow) % 16 >= rows) xs[i] = uint4{0u, 0u, 0u, 0u};
  const uint8_t *w_tile = a.data + n0 * a.k, *x_tile = xq + m0 * a.k;
  for (int64_t j = 0; j < kPipeStages - 1; j++) fp8_pipe_issue(a, ws, xs, j, blocks, w_tile, x_tile, rows, cols, lane);
  float y[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
  for (int64_t j = 0; j < blocks; j++) {
    cp_async_wait<kPipeStages - 2>();
    __syncwarp();
    fp8_pipe_issue(a, ws, xs, j + kPipeStages - 1, blocks, w_tile, x_tile, rows, cols, lane);
    const float s[2] = {sr[0] ? sr[0][j] : 0.0f, sr[1] ? sr[1][j] : 0.0f};
    float wsc[2][2];
    for (int jn = 0; jn < 2; jn++)
      for (int e = 0; e < 2; e++) wsc[jn][e] = wsr[jn][e] ? wsr[jn][e][j] : 0.0f;
    const int st = static_cast<int>(j % kPipeStages);
    float p[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
    if constexpr (kE4m3) {
      // ldmatrix rows: x row lane % 16 at byte 16 (lane / 16); w row lane % 8 + 8 (lane / 16) at 16 ((lane / 8) % 2)
      const uint8_t* xrow = reinterpret_cast<const uint8_t*>(&xs[(st * 16 + lane % 16) * kPipeWRow]) + 16 * (lane / 16);
      const uint8_t* wrow = reinterpret_cast<const uint8_t*>(&ws[(st * 16 + lane % 8 + 8 * (lane / 16)) * kPipeWRow]) + 16 * ((lane / 8) % 2);
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
      const uint8_t* w0 = reinterpret_cast<const uint8_t*>(&ws[(st * 16 + g) * kPipeWRow]);
      const uint8_t* w1 = reinterpret_cast<const uint8_t*>(&ws[(st * 16 + g + 8) * kPipeWRow]);
      GLMK_UNROLL
      for (int k0 = 0; k0 < kFp8KBlock; k0 += 16) {
        const int c = k0 + 2 * t;
        const uint32_t A[4] = {fp8_pair_bf16(x0 + c), fp8_pair_bf16(x1 + c), fp8_pair_bf16(x0 + c + 8), fp8_pair_bf16(x1 + c + 8)};
        const uint32_t b0[2] = {fp8_pair_bf16(w0 + c), fp8_pair_bf16(w0 + c + 8)}, b1[2] = {fp8_pair_bf16(w1 + c), fp8_pair_bf16(w1 + c + 8)};
        mma_m16n8k16_bf16(p[0], A, b0, p[0]);
        mma_m16n8k16_bf16(p[1], A, b1, p[1]);
      }
    }
    // Section: the block's scaling, per output (fp8_mma_tile's expression)
    for (int jn = 0; jn < 2; jn++)
      for (int i = 0; i < 4; i++) y[jn][i] = y[jn][i] + (p[jn][i] * s[i >> 1]) * wsc[jn][i & 1];
  }
  cp_async_wait<0>();
  // Section: the outputs (rows past M and columns past N are not stored)
  for (int jn = 0; jn < 2; jn++)
    for (int i = 0; i < 4; i++) {
      const int64_t r = m0 + g + 8 * (i >> 1), c = n0 + 8 * jn + 2 * t + (i & 1);
      if (r >= a.m || c >= a.n) continue;
      const float v = y[jn][i];
      if (a.y_dtype == GLMK_F32) static_cast<uint32_t*>(a.y)[r * a.n + c] = v != v ? 0x7FC00000u : glmk_bits_from_f32(v);
      else static_cast<uint16_t*>(a.y)[r * a.n + c] = glmk_bf16_rne(glmk_bits_from_f32(v));
    }
}

}  // namespace glmk::cuda
