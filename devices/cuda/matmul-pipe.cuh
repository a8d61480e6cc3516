// matmul and int4.matmul for bf16 x with bf16 or int4 w, pipelined (issue 21): the W4A16 kernel of the
// Marlin kind. One warp per block computes 16 rows of x times 16 columns of w. Weights (16-byte cp.async
// straight from SPEC 4's rows: a row's codes are contiguous along K, so no repacked copy is needed for the
// loads), scales and x go to shared memory through a kPipeStages-deep cp.async pipeline; x's fragments and
// bf16 w's come from ldmatrix; int4 is decoded in registers to bf16(q * s), two codes at a time, one of two
// ways (kFmaDecode): two fma.rn.bf16x2 (mma.cuh int4_pair_fma: 128 + code by a magic number, minus 136, times
// s) where the device's open found them exact for every pair of codes and bf16 scale (matmul.cu
// int4_fma_decode_exact; info's isa says ".../fma"), else q - 8 by an f32 magic number, an f32 multiply and
// cvt.rn.bf16x2.f32 (".../f32"; GLM_KERNELS_CUDA_INT4_DECODE=f32 forces it). The GPU half of
// simt-mma-selftest checks both instructions' rounding against our models.
//
// Same K order as matmul-mma.cuh, hence the same bits: every output is one mma chain over K in steps of 16
// from k = 0 up, one f32 accumulator starting at +0, then one rounding to bf16. The A and B values of every
// step are the numbers the simple kernel gives the mma (x's bf16 pair; w's bf16 pair or bf16(q * s); a NaN
// weight may carry another payload, which no output can show), and an mma's output element (r, c) depends on
// A's row r, B's column c and C[r][c] alone. So a row's output does not depend on the other rows, the grid,
// the column tiling or which kernel ran: int4.matmul(x, quantize(w)) here == matmul(x, fakeQuant(w)) through
// either kernel, bit for bit (matmul-check.cc: int4 here against f32 fakeQuant through the simple kernel, bf16
// w here against the same values as f32 w there).
// Taken where the shapes fit the stages (matmul.cu, pipe_fits): K a multiple of kPipeK<W> (int4: 256, bf16:
// 64), group 32, 64 or 128, x, w, packed and scales 16-byte aligned; anything else runs matmul-mma.cuh.
//
// Shared memory (dynamic, pipe_smem_bytes) per stage: 16 weight rows of 128 bytes (int4: 256 codes; bf16: 64
// values) at a stride of 144 (8 rows land on 4-bank offsets: ldmatrix and the 8-byte code loads are
// conflict-free), 16 rows of scales (16 bytes each), and min(M, 16) + 1 rows of x (2 kPipeK bytes + 16 each):
// the last stays zero and the m-tile's rows past M read it (an mma output row depends on its own A row only,
// so they could read anything; the zero row keeps every address inside the block's memory). int4: 14,464
// bytes for 4 stages at M = 1, 46,144 from M = 16; bf16: 11,392 and 20,032. ptxas (nvcc 13, sm_90): int4 128
// registers (fma decode; 123 f32), bf16 64, no spills. Weight and scale rows past N are zero-filled by
// cp.async (src-size 0: nothing is read); their outputs are not stored.
//
// Roofline and performance model (a MODEL: nothing here has run on a GPU; bench/gpu/matmul_peer.py measures it).
// H200 4.8 TB/s, H100 SXM 3.35 TB/s, 132 SMs, ~600 ns from HBM: Little's law wants ~2.9 MB in flight (H200).
//   In flight: 3 stages ahead x 16 rows x 128 bytes = 6 KB of weights per warp (plus scales). N = 6144 gives
//   384 one-warp blocks (~3 per SM, every SM busy; matmul-mma.cuh has 96 blocks of 64 columns and one step in
//   flight): ~2.4 MB, ~80% of what full bandwidth needs. N = 24576: 1536 blocks, ~11.6 per SM, all resident
//   at M = 1 (int4: 15 blocks per SM by shared memory, 16 by registers; 4 from M = 16): ~9 MB in flight.
//   Issue (counted in the PTX): an int4 k16 step (256 codes of the warp's 16 columns) is ~44 instructions
//   with the fma decode (1 ldmatrix, 4 code and 2 scale loads from shared memory, 8 fma.bf16x2, 2 mma, ~25
//   shifts, masks and multiplies that spread the codes) and ~70 with the f32 one (matmul-mma.cuh's step:
//   ~270 and 4 integer divisions); a 256-K chunk ~1,000 (fma) with its copies; bf16 w ~160 a 64-K chunk (4 steps).
//   Expected, M <= 16, 6144 x 6144 int4 group 32 (21.2 MB, ~4.4 us of bytes on an H200): each warp runs
//   24 chunks x ~1,000 = ~24 K instructions in one dependent stream, and 384 warps on 528 schedulers leave
//   each alone: at its own ~0.5-1 instructions per cycle and ~1.7 GHz, ~14-28 us (~15-30% of HBM): latency-
//   and issue-bound, not memory-bound. bf16 (75.5 MB, 96 chunks x ~160 = ~15 K a warp) ~16-25 us (~60-95%,
//   memory-bound). So int4 at M <= 16 is expected at ~0.6-1.5x bf16, short of issue 21's 3x. What closes it is
//   Marlin's: more warps per SM at small N (8 columns a warp doubles them), a repacked layout whose words
//   hold each lane's codes in decode order (~2 fewer instructions a pair), and split K, whose order would
//   have to be fixed for dense and int4 alike (it changes today's bits).
//   M = 64, 256: 4 / 16 m-tiles re-read w from L2 and re-decode it: ~4x / 16x the M = 16 time.
#pragma once

#include <cstdint>

#include "matmul-mma.cuh"

namespace glmk::cuda {

constexpr int kPipeStages = 4;
constexpr int kPipeRowBytes = 128;  // bytes of one weight row per stage
constexpr int kPipeWRow = 9;        // uint4 per weight row in shared memory (128 bytes + 16 of padding)
template <int W>
constexpr int kPipeK = W == kMmaInt4 ? 2 * kPipeRowBytes : kPipeRowBytes / 2;  // K per stage
template <int W>
constexpr int kPipeXRow = (2 * kPipeK<W> + 16) / 16;  // uint4 per x row in shared memory (2 K bytes + 16)

// The shared buffers of one block (its dynamic shared memory: pipe_smem_bytes): kPipeStages stages of 16
// weight rows, 16 scale rows and x_rows rows of x, the last of which stays zero (the rows of a 16-row m-tile
// past M read it: decode needs 2 rows of x a stage, not 16).
struct PipeSmem {
  uint4 *w, *s, *x;
  int x_rows;
};

// x's rows per stage for M rows: min(M, 16) and the zero row.
__host__ __device__ inline int pipe_x_rows(int64_t m) { return (m < 16 ? static_cast<int>(m) : 16) + 1; }

template <int W>
size_t pipe_smem_bytes(int64_t m) {
  return 16 * static_cast<size_t>(kPipeStages) * (16 * kPipeWRow + 16 + pipe_x_rows(m) * kPipeXRow<W>);
}

// One warp's 16-byte cp.async copies of 16 rows of Parts x 16 bytes: row r from src + r src_row into dst +
// r dst_row (uint4), for r < valid; with fill, the rows from valid on are zero-filled (src-size 0: base is
// not read). Lane l copies part l % Parts of rows l / Parts, + 32 / Parts, ...
template <int Parts>
__device__ __forceinline__ void pipe_rows(uint4* dst, int dst_row, const uint8_t* src, int64_t src_row, int valid, bool fill, const uint8_t* base,
                                          int lane) {
  constexpr int kRowsPerSweep = 32 / Parts;
  const int r0 = lane / Parts, p = lane % Parts;
  GLMK_UNROLL
  for (int q = 0; q < 16 / kRowsPerSweep; q++) {
    const int r = r0 + kRowsPerSweep * q;
    if (r < valid) cp_async_cg16(&dst[r * dst_row + p], src + r * src_row + 16 * p);
    else if (fill) cp_async_cg16(&dst[r * dst_row + p], base, 0);
  }
}

// The pipeline, as every pipelined kernel runs it (matmul_pipe_kernel, fp8_pipe_tile): chunks 0 ..
// kPipeStages - 2 are issued ahead; before chunk c is read, this lane's group c has landed (one group is
// committed per chunk, an empty one past the last, so kPipeStages - 2 may stay pending) and __syncwarp makes
// every lane's copies visible and every lane done with chunk c - 1, whose stage chunk c + kPipeStages - 1
// then takes. issue(c) issues chunk c's copies into stage c % kPipeStages; compute(c) reads that stage.
template <class Issue, class Compute>
__device__ __forceinline__ void pipe_run(int64_t chunks, Issue issue, Compute compute) {
  auto step = [&](int64_t c) {
    if (c < chunks) issue(c);
    cp_async_commit();
  };
  for (int64_t c = 0; c < kPipeStages - 1; c++) step(c);
  for (int64_t c = 0; c < chunks; c++) {
    cp_async_wait<kPipeStages - 2>();
    __syncwarp();
    step(c + kPipeStages - 1);
    compute(c);
  }
  cp_async_wait<0>();  // the empty groups past the last chunk
}

// Issues chunk c (K from c kPipeK) into stage c % kPipeStages: the block's 16 weight rows (w_tile: row n0's
// first byte; past N zero-filled), their scales (s_tile: row n0's first scale) and x's rows (x_tile: row m0;
// `rows` of them).
template <int W>
__device__ __forceinline__ void pipe_issue(const glmk_matmul_args& a, const PipeSmem& sm, int64_t c, const uint8_t* w_tile, const uint8_t* s_tile,
                                           const uint8_t* x_tile, int rows, int cols, int lane) {
  constexpr int kK = kPipeK<W>;
  const int st = static_cast<int>(c % kPipeStages);
  const int64_t w_row = W == kMmaInt4 ? a.k / 2 : 2 * a.k;
  pipe_rows<kPipeRowBytes / 16>(sm.w + st * 16 * kPipeWRow, kPipeWRow, w_tile + c * kPipeRowBytes, w_row, cols, true, w_tile, lane);
  if (W == kMmaInt4 && lane < 16) {
    const int64_t per_row = 2 * (a.k / a.group_size), chunk = 2 * (kK / a.group_size);  // bytes
    const uint8_t* src = s_tile + lane * per_row + c * chunk;
    const bool in = lane < cols;
    void* dst = &sm.s[st * 16 + lane];
    if (a.group_size == 32) cp_async_ca<16>(dst, in ? src : s_tile, in ? 16 : 0);
    else if (a.group_size == 64) cp_async_ca<8>(dst, in ? src : s_tile, in ? 8 : 0);
    else cp_async_ca<4>(dst, in ? src : s_tile, in ? 4 : 0);
  }
  pipe_rows<2 * kK / 16>(sm.x + st * sm.x_rows * kPipeXRow<W>, kPipeXRow<W>, x_tile + c * 2 * kK, 2 * a.k, rows, false, x_tile, lane);
}

// Section: the kernel (x bf16; y bf16 [M, N]); grid: m_tiles * ceil(N / 16) blocks of 32 threads
template <int W, bool kFmaDecode>
__global__ void __launch_bounds__(32) matmul_pipe_kernel(glmk_matmul_args a) {
  static_assert(W == kMmaBf16 || W == kMmaInt4, "the pipelined kernel takes bf16 or int4 weights");
  constexpr int kK = kPipeK<W>, kXRow = kPipeXRow<W>;
  uint4* const ws = glmk_dyn_smem<uint4>();
  uint4* const ss = ws + kPipeStages * 16 * kPipeWRow;
  uint4* const xs = ss + kPipeStages * 16;
  const int x_rows = pipe_x_rows(a.m);
  const PipeSmem sm{ws, ss, xs, x_rows};
  const int gshift = a.group_size == 32 ? 5 : a.group_size == 64 ? 6 : 7;  // log2 of the group (pipe_fits: 32, 64, 128)
  const int64_t m_tiles = (a.m + 15) / 16, blk = blockIdx.x, chunks = a.k / kK;
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane & 3;
  const int64_t m0 = (blk % m_tiles) * 16, n0 = (blk / m_tiles) * 16;
  const int rows = a.m - m0 < 16 ? static_cast<int>(a.m - m0) : 16, cols = a.n - n0 < 16 ? static_cast<int>(a.n - n0) : 16;
  // Section: the zero row of every stage (cp.async never writes it; rows of the m-tile past M read it)
  for (int i = lane; i < kPipeStages * kXRow; i += 32) xs[((i / kXRow) * x_rows + x_rows - 1) * kXRow + i % kXRow] = uint4{0u, 0u, 0u, 0u};
  const uint8_t* w_tile = (W == kMmaInt4 ? reinterpret_cast<const uint8_t*>(a.packed) : static_cast<const uint8_t*>(a.w)) +
                         n0 * (W == kMmaInt4 ? a.k / 2 : 2 * a.k);
  const uint8_t* s_tile = W == kMmaInt4 ? reinterpret_cast<const uint8_t*>(a.scales + n0 * (a.k / a.group_size)) : nullptr;
  const uint8_t* x_tile = static_cast<const uint8_t*>(a.x) + m0 * 2 * a.k;
  float acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
  auto issue = [&](int64_t c) { pipe_issue<W>(a, sm, c, w_tile, s_tile, x_tile, rows, cols, lane); };
  pipe_run(chunks, issue, [&](int64_t c) {
    const int st = static_cast<int>(c % kPipeStages);
    // ldmatrix rows: x row lane % 16 at K + 8 (lane / 16) (A: a0..a3); w row lane % 8 + 8 (lane / 16) at
    // K + 8 ((lane / 8) % 2) (B: tile 0 b0, b1, tile 1 b0, b1)
    const int xr = lane % 16 < rows ? lane % 16 : x_rows - 1;
    const uint16_t* xrow = reinterpret_cast<const uint16_t*>(&xs[(st * x_rows + xr) * kXRow]) + 8 * (lane / 16);
    const uint16_t* wrow = reinterpret_cast<const uint16_t*>(&ws[(st * 16 + lane % 8 + 8 * (lane / 16)) * kPipeWRow]) + 8 * ((lane / 8) % 2);
    GLMK_UNROLL
    for (int s = 0; s < kK / 16; s++) {
      uint32_t A[4], b[2][2];
      ldmatrix<4>(A, xrow + 16 * s);
      if constexpr (W == kMmaBf16) {
        uint32_t r[4];
        ldmatrix<4>(r, wrow + 16 * s);
        b[0][0] = r[0], b[0][1] = r[1], b[1][0] = r[2], b[1][1] = r[3];
      } else {
        for (int j = 0; j < 2; j++) {
          // this lane's column g + 8 j: codes k0..k0+7 and k0+8..k0+15 of the step, its group's scale
          const int row = st * 16 + g + 8 * j;
          const uint32_t* wd = reinterpret_cast<const uint32_t*>(&ws[row * kPipeWRow]) + 2 * s;
          const uint32_t sb = reinterpret_cast<const uint16_t*>(&ss[row])[(16 * s) >> gshift];
          for (int r = 0; r < 2; r++) {
            const uint32_t byte = (wd[r] >> (8 * t)) & 0xFFu;  // codes k (low nibble) and k + 1
            if constexpr (kFmaDecode) {
              b[j][r] = int4_pair_fma(byte, sb | sb << 16);  // two fma.rn.bf16x2 (mma.cuh)
            } else {
              // q - 8 exactly: 2^23 + code as f32 bits, minus 2^23 + 8; q s is exact in f32 (4 x 8 significant
              // bits) or overflows, as in glmk_int4_dequant; one bf16 rounding: bf16(q s), NaN only as a NaN
              const float sc = glmk_f32_from_bits(sb << 16);
              const float q0 = glmk_f32_from_bits(0x4B000000u | (byte & 0xFu)) - 8388616.0f;
              const float q1 = glmk_f32_from_bits(0x4B000000u | (byte >> 4)) - 8388616.0f;
              b[j][r] = cvt_bf16x2(q0 * sc, q1 * sc);
            }
          }
        }
      }
      mma_m16n8k16_bf16(acc[0], A, b[0], acc[0]);
      mma_m16n8k16_bf16(acc[1], A, b[1], acc[1]);
    }
  });
  // Section: one rounding to bf16 per output (D fragment: (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1))
  uint16_t* y = static_cast<uint16_t*>(a.y);
  for_each_d<2>(n0, t, [&](int h, int64_t c, int j, int i) {
    const int64_t r = m0 + g + 8 * h;
    if (r < a.m && c < a.n) y[r * a.n + c] = glmk_bf16_rne(glmk_bits_from_f32(acc[j][i]));
  });
}

}  // namespace glmk::cuda
