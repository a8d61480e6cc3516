// MoE kernels (SPEC 5):
//   route, in the CPU device's written order (devices/cpu/moe.cc): logits[t, e] = 16 fma chains over k mod 16
//     across the whole H, then the fixed tree (the GEMM core's order), one thread per (t, e); then
//     glmk_moe_select (glmk/moe-arith.h: the package's own expf), one thread per token.
//   experts (issue 21): the three products as grouped GEMMs on tensor cores, each exactly the device's own
//     fp8.matmul (fp8_mma_tile, fp8-matmul-mma.cuh's body and K order; with H, I and the shared I multiples of
//     128 the pipelined body fp8_pipe_tile, one warp per tile and 16 columns, gate and up sharing each staged
//     block of x, x and h quantized to e4m3 bytes), so moe.experts == the composition of
//     the device's fp8.matmul calls, bit for bit; within tolerance of the CPU (README, "moe.experts on CUDA").
//     The (token, slot) pairs are grouped per expert (a stable counting sort, the CPU's order: one block,
//     a thread per expert, moe_group_block_kernel; one thread beyond 1024 experts)
//     into m-tiles of 16 rows; gate and up share a block (SwiGLU h = bf16(silu(f32(g)) * f32(u)) in its
//     epilogue), h is quantized per row and 128 channels (the CPU's bits), down writes y per (token, slot);
//     then one thread per (t, c) combines in slot order: acc = acc + w * f32(y) (from +0; id -1 skipped),
//     + f32(shared y), one bf16 rounding. Rows are independent (batch invariance); no float atomics.
//   Bad ids (outside [0, E), not -1): one block finds the first in (t, slot) order (an integer atomicMin,
//     order-free) and writes the device's error record, which sync() turns into E_ARG.
//
// Roofline and performance model of moe.experts (issue 21 item 4). A MODEL: nothing here has run on a GPU
// yet; the numbers to replace it come from `python3 bench/gpu/matmul_peer.py libglmk-cuda.so`
// (bench/gpu/acceptance.sh), which also times the peers. Ceilings: H200 4.8 TB/s HBM3e, H100 SXM 3.35 TB/s,
// ~1979 TFLOP/s dense e4m3 mma, 132 SMs.
//   GLM-5: H 6144, I 2048, top-8, T tokens, E experts. FLOPs 6 T topK I H (T x 604 MFLOP); bytes 3 I H =
//   37.7 MB per distinct expert used (+ 9 KB of scales) + ~40 KB of activations a token. With random routing
//   E (1 - (1 - 8 / E)^T) experts are used. Intensity 2-32 FLOP/B: memory-bound at every benchmark T.
//   Roof in us, H200 / H100 (experts used, weight bytes):
//     E = 256: T = 1: 63 / 90 (8, 0.30 GB); T = 8: 452 / 647 (57.4, 2.17 GB); T = 32: 1285 / 1841 (163, 6.17
//              GB); T = 128: 1980 / 2837 (252, 9.50 GB)
//     E = 64:  T = 1: 63 / 90 (8); T = 8: 331 / 474 (42.0, 1.59 GB); T = 32: 497 / 712 (63.1); T = 128:
//              504 / 722 (64, 2.42 GB)
//   (route: T E H FMAs, 1.6 M a token at E = 256, tiny.)
// How it is written, and what that predicts: per call 8 launches (id check, grouping, x's quantization, a
//   memset, gate + up + SwiGLU, h's quantization, down, combine) and a stream-ordered scratch; the products
//   are fp8.matmul's body (fp8-matmul-mma.cuh: per k32 step and warp an HBM round trip and ~300-530
//   instructions, the activations re-encoded per block), one block per (16-row m-tile of one expert, 64
//   columns). At decode an expert's m-tile holds 1-2 real rows, so each mma uses 1-2 of its 16 rows. PTX
//   (nvcc 13, sm_90): moe_up_mma_kernel<true> 96 registers, gate and up in one block (two K loops of 192
//   steps); moe_down_mma_kernel<true> 64 (a 12-byte spill), 64 steps. The grouping is one thread: a prefix
//   and tile list over E that chains through global memory (~E L2 round trips: ~20-45 us at E = 256, ~5-10
//   at 64) and two passes over the T topK slots (a read-modify-write each: ~0.2-0.5 ms at T = 128).
//   Expected: T = 1 (8 experts: 256 up blocks and 768 down blocks, ~2 and ~6 per SM): up ~0.25-0.35 ms (384
//   latency-bound steps), down ~0.08-0.1 ms, grouping and the small kernels ~0.05-0.08 ms: ~0.4-0.5 ms, ~15%
//   of HBM. T = 8 (42-57 experts): instruction-bound, ~1.5-3 ms. T = 128, E = 256: ~6-12 ms (~15-30%).
//   The peer, torch._scaled_grouped_mm (CUTLASS, row-wise fp8; PEERS.md: gate+up of 64 experts x 2 rows in
//   0.63 ms on an H100, 2.6 TB/s) with its ~20 small torch kernels (sort, quantizations, SwiGLU, combine):
//   expected ~0.15-0.3 ms at T = 1 and ~0.7-1 ms at T = 8.
// What issue 21's target implies (at decode, T = 1 and 8, at least the grouped fp8 peer with SwiGLU and the
//   combine): ~1-2 TB/s on the chosen experts at T = 1 and ~2.5 TB/s (~50% of H200 HBM) at T = 8, against
//   the ~0.6-0.75 TB/s (T = 1) and ~0.5-1.4 TB/s (T = 8) expected of the simple kernels: both MISS by ~2-3x.
// With the pipelined products (GLMK's shapes: H 6144 and I 2048 are multiples of 128), per 128-K block and
//   warp ~210 PTX instructions for 2 KB of weights (up: ~400 for gate and up's 4 KB) instead of ~1,050 each,
//   16-byte cp.async 3 blocks ahead, and one warp per 16 columns: T = 1 gives 8 experts x (2048 / 16) = 1024
//   up warps and 8 x 384 = 3072 down warps (~2 and ~6 per scheduler). Expected at T = 1: up ~45-60 us (201 MB
//   of gate and up: 42 us at the H200's roof; each warp 48 blocks x ~400 = ~19 K instructions, ~2 warps per
//   scheduler: ~30 us of issue, hidden), down ~25-35 us (101 MB: 21 us), the grouping (one block of 1024
//   threads, a thread per expert: two passes over the slots from shared memory and a 10-step scan, ~5-10 us
//   at T = 1, ~20-40 us at T = 128, in place of the one thread's ~20-45 us and ~0.2-0.5 ms) and the small
//   kernels ~20-40 us: ~0.09-0.14 ms, ~2.2-3.3 TB/s of the chosen experts, about the peer's ~0.15-0.3 ms or
//   better; T = 8 (42-57 experts) ~0.6-0.9 ms against the peer's ~0.7-1 ms. What is left: the quantizations
//   fused into their producers (three launches), fewer launches in all (eight).
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "fp8-dot.cuh"
#include "fp8-matmul-mma.cuh"
#include "fp8-matmul-pipe.cuh"
#include "glmk/device.h"
#include "glmk/moe-arith.h"

namespace glmk::cuda {

constexpr int kMoeThreads = 128;
constexpr int kMoeCheckThreads = 256;
constexpr uint32_t kMoeErrorBadId = 3;  // the error record's kind (1, 2: top-k's)

// Section: route

__device__ __forceinline__ float moe_widen(const void* p, int dtype, int64_t i) {
  if (dtype == GLMK_BF16) return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  if (dtype == GLMK_F16) return glmk_f32_from_bits(glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  return static_cast<const float*>(p)[i];
}

__global__ void moe_logits_kernel(glmk_moe_route_args a, float* logits) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.t * a.e) return;
  const int64_t t = i / a.e, e = i % a.e;
  float p[16];
  for (int l = 0; l < 16; l++) p[l] = 0.0f;
  for (int64_t c = 0; c < a.h; c += 16)
    for (int l = 0; l < 16; l++)
      if (c + l < a.h)
        p[l] = fmaf(moe_widen(a.hidden, a.hidden_dtype, t * a.h + c + l), moe_widen(a.gate, a.gate_dtype, e * a.h + c + l), p[l]);
  logits[i] = glmk_reduce16(p);
}

// scratch: [t, 2e] floats, group_ok: [t, n_group] ints
__global__ void moe_select_kernel(glmk_moe_route_args a, const float* logits, float* scratch, int* group_ok) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.t) return;
  glmk_moe_select(logits + t * a.e, a.bias, static_cast<int>(a.e), a.top_k, a.n_group, a.topk_group, a.routed_scaling_factor,
                  a.norm_topk_prob, scratch + t * 2 * a.e, group_ok + t * a.n_group, a.ids + t * a.top_k, a.weights + t * a.top_k);
  // NOTE: a NaN weight comes from glmk_expf's canonical NaN, which x86 passes on unchanged (the CPU device's
  // 0x7FC00000) but a GPU rewrites as 0x7FFFFFFF: write it as the CPU does
  for (int j = 0; j < a.top_k; j++)
    if (a.weights[t * a.top_k + j] != a.weights[t * a.top_k + j]) a.weights[t * a.top_k + j] = glmk_f32_from_bits(0x7FC00000u);
}

// Section: experts

// Section: the grouping. One thread (deterministic; O(slots + E), small next to the products): the (token,
// slot) pairs p of each expert in increasing p (a stable counting sort, as the CPU device's), ids -1 and bad
// ids skipped (the check kernel reports the latter); then the m-tiles: expert x's rows cut into tiles of 16
// in that order, experts in increasing x. count [e + 1] int64 scratch; order [slots]; tiles [max_tiles] of
// (first row in order, rows in the tile (1..16), expert); n_tiles [1].
struct MoeTiles {
  int64_t* order;
  int64_t* tile_first;
  int32_t* tile_rows;
  int32_t* tile_expert;
  int64_t* n_tiles;
};

__global__ void moe_group_kernel(const int32_t* ids, int64_t slots, int64_t e, int64_t* count, MoeTiles g) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  for (int64_t x = 0; x <= e; x++) count[x] = 0;
  for (int64_t p = 0; p < slots; p++)
    if (ids[p] >= 0 && ids[p] < e) count[ids[p] + 1]++;
  int64_t tiles = 0;
  for (int64_t x = 0; x < e; x++) {
    const int64_t first = count[x], rows = count[x + 1];
    for (int64_t r = 0; r < rows; r += kMmaRows, tiles++) {
      g.tile_first[tiles] = first + r;
      g.tile_rows[tiles] = static_cast<int32_t>(rows - r < kMmaRows ? rows - r : kMmaRows);
      g.tile_expert[tiles] = static_cast<int32_t>(x);
    }
    count[x + 1] += count[x];  // count[x] is now expert x's first position
  }
  *g.n_tiles = tiles;
  for (int64_t p = 0; p < slots; p++)
    if (ids[p] >= 0 && ids[p] < e) g.order[count[ids[p]]++] = p;
}

// The same grouping by one block of kMoeGroupThreads threads, for E <= kMoeGroupThreads (moe.cu): thread x
// owns expert x. Slot ids pass through shared memory in chunks of kMoeGroupThreads; pass 1 counts expert x's
// slots, a block scan turns counts and tile counts into first positions, pass 2 writes expert x's slots in
// increasing p (each thread its own expert's run of `order`: no atomics, no order that depends on the
// schedule). The same arrays as moe_group_kernel, in O(slots) steps a thread instead of O(slots + E) one
// thread's global-memory round trips.
constexpr int kMoeGroupThreads = 1024;

// Calls body(c0, n) for each chunk [c0, c0 + n) of the slots, with chunk[0..n) holding their ids (loaded by
// the whole block between barriers).
template <class Body>
__device__ __forceinline__ void moe_group_chunks(const int32_t* ids, int64_t slots, int32_t* chunk, int x, Body body) {
  for (int64_t c0 = 0; c0 < slots; c0 += kMoeGroupThreads) {
    const int64_t n = slots - c0 < kMoeGroupThreads ? slots - c0 : kMoeGroupThreads;
    __syncthreads();
    if (x < n) chunk[x] = ids[c0 + x];
    __syncthreads();
    body(c0, n);
  }
}

__global__ void __launch_bounds__(kMoeGroupThreads) moe_group_block_kernel(const int32_t* ids, int64_t slots, int64_t e, MoeTiles g) {
  GLMK_SHARED(int32_t[kMoeGroupThreads], chunk);
  GLMK_SHARED(int64_t[2 * kMoeGroupThreads], scan);
  const int x = static_cast<int>(threadIdx.x);
  const bool mine = x < e;
  // Section: pass 1, expert x's count
  int64_t count = 0;
  moe_group_chunks(ids, slots, chunk, x, [&](int64_t, int64_t n) {
    if (mine)
      for (int64_t i = 0; i < n; i++) count += chunk[i] == x;
  });
  // Section: inclusive block scan (Hillis-Steele) of (count, tiles); then exclusive firsts
  const int64_t tiles = (count + kMmaRows - 1) / kMmaRows;
  int64_t sum_c = count, sum_t = tiles;
  for (int d = 1; d < kMoeGroupThreads; d *= 2) {
    __syncthreads();
    scan[x] = sum_c, scan[kMoeGroupThreads + x] = sum_t;
    __syncthreads();
    if (x >= d) sum_c += scan[x - d], sum_t += scan[kMoeGroupThreads + x - d];
  }
  const int64_t first = sum_c - count, tile0 = sum_t - tiles;
  if (x == kMoeGroupThreads - 1) *g.n_tiles = sum_t;
  if (mine)
    for (int64_t r = 0; r < tiles; r++) {
      g.tile_first[tile0 + r] = first + r * kMmaRows;
      g.tile_rows[tile0 + r] = static_cast<int32_t>(count - r * kMmaRows < kMmaRows ? count - r * kMmaRows : kMmaRows);
      g.tile_expert[tile0 + r] = x;
    }
  // Section: pass 2, expert x's slots in increasing p
  int64_t at = first;
  moe_group_chunks(ids, slots, chunk, x, [&](int64_t c0, int64_t n) {
    if (mine)
      for (int64_t i = 0; i < n; i++)
        if (chunk[i] == x) g.order[at++] = c0 + i;
  });
}

// Which rows a block of the grouped products computes: tile `tile` of a MoeTiles (routed experts), or with
// order == nullptr rows 16 tile .. of `rows` rows of expert 0 (the shared expert). False: no such tile.
struct MoeGroup {
  MoeTiles tiles;  // tiles.order nullptr: the identity grouping of `rows` rows
  int64_t rows;
};

// Tile `tile` of a group: its first position in the group's order, its rows (1..16) and its expert, and row
// r of it (a slot, or the shared expert's token; -1 past its rows). False: no such tile.
struct MoeTileSpan {
  int64_t first, count, expert;
};
__device__ __forceinline__ bool moe_tile_span(const MoeGroup& grp, int64_t tile, MoeTileSpan* sp) {
  if (grp.tiles.order) {
    if (tile >= *grp.tiles.n_tiles) return false;
    *sp = {grp.tiles.tile_first[tile], grp.tiles.tile_rows[tile], grp.tiles.tile_expert[tile]};
    return true;
  }
  const int64_t first = tile * kMmaRows;
  *sp = {first, grp.rows - first < kMmaRows ? grp.rows - first : kMmaRows, 0};
  return sp->count > 0;
}
__device__ __forceinline__ int64_t moe_tile_row(const MoeGroup& grp, const MoeTileSpan& sp, int r) {
  return r < sp.count ? (grp.tiles.order ? grp.tiles.order[sp.first + r] : sp.first + r) : -1;
}

__device__ __forceinline__ bool moe_tile_rows(const MoeGroup& grp, int64_t tile, int lr0, int64_t row[2], int64_t* expert) {
  MoeTileSpan sp;
  if (!moe_tile_span(grp, tile, &sp)) return false;
  *expert = sp.expert;
  for (int h = 0; h < 2; h++) row[h] = moe_tile_row(grp, sp, lr0 + 8 * h);
  return true;
}

// Expert x of a stack [e, n, k]: its codes and scaleInv.
__device__ __forceinline__ const uint8_t* moe_stack_data(const glmk_fp8_stack& s, int64_t x, int64_t n, int64_t k) { return s.data + x * n * k; }
__device__ __forceinline__ const float* moe_stack_scale(const glmk_fp8_stack& s, int64_t x, int64_t n, int64_t k) {
  return s.scale_inv + x * ((n + s.block_n - 1) / s.block_n) * ((k + kFp8KBlock - 1) / kFp8KBlock);
}

__device__ __forceinline__ float moe_bf16_f32(uint16_t b) { return glmk_f32_from_bits(glmk_bf16_to_f32_bits(b)); }
__device__ __forceinline__ uint16_t moe_f32_bf16(float f) { return glmk_bf16_rne(glmk_bits_from_f32(f)); }
// SwiGLU of one output (SPEC 5) from the gate and up accumulators: each rounded to bf16, then
// bf16(silu(g) * u) (glmk::moe_swiglu_bf16's arithmetic)
__device__ __forceinline__ uint16_t moe_swiglu(float g, float u) {
  return moe_f32_bf16(glmk_siluf(moe_bf16_f32(moe_f32_bf16(g))) * moe_bf16_f32(moe_f32_bf16(u)));
}

// gate and up of one group, on tensor cores (fp8_mma_tile: exactly fp8.matmul's body), then SwiGLU: for
// row p of the group (slot p, or token p for the shared expert) hb [p, i] = bf16(silu(f32(g)) * f32(u)) with
// g, u = bf16 of fp8.matmul's f32 sums of activation row p / top_k (xa [., h], sa) with the expert's gate /
// up [i, h]. grid: max_tiles * ceil(i / 64) blocks of kMmaThreads (block b: tile b % max_tiles, columns
// 64 (b / max_tiles) ..); blocks past the tiles return whole.
struct MoeUpArgs {
  const float* xa;
  const float* sa;
  int64_t h, i, top_k, max_tiles;
  MoeGroup grp;
  glmk_fp8_stack gate, up;
  uint16_t* hb;
};

template <bool kE4m3>
__global__ void __launch_bounds__(kMmaThreads) moe_up_mma_kernel(MoeUpArgs a) {
  const int64_t blk = blockIdx.x, kb = (a.h + kFp8KBlock - 1) / kFp8KBlock;
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  int64_t row[2], x = 0;
  if (!moe_tile_rows(a.grp, blk % a.max_tiles, g, row, &x)) return;
  const int64_t n0 = (blk / a.max_tiles) * kMmaColsBlock + static_cast<int64_t>(threadIdx.x / 32) * (8 * kMmaTilesN);
  const float* const xr[2] = {row[0] >= 0 ? a.xa + (row[0] / a.top_k) * a.h : nullptr, row[1] >= 0 ? a.xa + (row[1] / a.top_k) * a.h : nullptr};
  const float* const sr[2] = {row[0] >= 0 ? a.sa + (row[0] / a.top_k) * kb : nullptr, row[1] >= 0 ? a.sa + (row[1] / a.top_k) * kb : nullptr};
  float yg[kMmaTilesN][4], yu[kMmaTilesN][4];
  fp8_mma_tile<kE4m3>(xr, sr, a.h, moe_stack_data(a.gate, x, a.i, a.h), moe_stack_scale(a.gate, x, a.i, a.h), a.i, a.gate.block_n, n0, g, t, yg);
  fp8_mma_tile<kE4m3>(xr, sr, a.h, moe_stack_data(a.up, x, a.i, a.h), moe_stack_scale(a.up, x, a.i, a.h), a.i, a.up.block_n, n0, g, t, yu);
  for_each_d<kMmaTilesN>(n0, t, [&](int h, int64_t c, int jn, int i) {
    if (row[h] >= 0 && c < a.i) a.hb[row[h] * a.i + c] = moe_swiglu(yg[jn][i], yu[jn][i]);
  });
}

// down of one group on tensor cores: y [p, h] = bf16(fp8.matmul of quantized h row p (ha [., i], sha) with
// the expert's down [h, i]). grid as moe_up_mma_kernel's over ceil(h / 64) column blocks.
struct MoeDownArgs {
  const float* ha;
  const float* sha;
  int64_t h, i, max_tiles;
  MoeGroup grp;
  glmk_fp8_stack down;
  uint16_t* y;
};

template <bool kE4m3>
__global__ void __launch_bounds__(kMmaThreads) moe_down_mma_kernel(MoeDownArgs a) {
  const int64_t blk = blockIdx.x, kb = (a.i + kFp8KBlock - 1) / kFp8KBlock;
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2, t = lane & 3;
  int64_t row[2], x = 0;
  if (!moe_tile_rows(a.grp, blk % a.max_tiles, g, row, &x)) return;
  const int64_t n0 = (blk / a.max_tiles) * kMmaColsBlock + static_cast<int64_t>(threadIdx.x / 32) * (8 * kMmaTilesN);
  const float* const xr[2] = {row[0] >= 0 ? a.ha + row[0] * a.i : nullptr, row[1] >= 0 ? a.ha + row[1] * a.i : nullptr};
  const float* const sr[2] = {row[0] >= 0 ? a.sha + row[0] * kb : nullptr, row[1] >= 0 ? a.sha + row[1] * kb : nullptr};
  float y[kMmaTilesN][4];
  fp8_mma_tile<kE4m3>(xr, sr, a.i, moe_stack_data(a.down, x, a.h, a.i), moe_stack_scale(a.down, x, a.h, a.i), a.h, a.down.block_n, n0, g, t, y);
  for_each_d<kMmaTilesN>(n0, t, [&](int h, int64_t c, int jn, int i) {
    if (row[h] >= 0 && c < a.h) a.y[row[h] * a.h + c] = moe_f32_bf16(y[jn][i]);
  });
}

// Section: the pipelined grouped products (fp8-matmul-pipe.cuh's tile body, the same order and bits as
// fp8_mma_tile): one warp per (tile, 16 columns); grid max_tiles * ceil(n / 16) blocks of 32 threads (block
// b: tile b % max_tiles, columns 16 (b / max_tiles) ..). Taken when H and I (and the shared expert's I) are
// multiples of 128 (moe.cu); x and h are then quantized to e4m3 codes (xq, hq) rather than f32 values.

// What a block of a pipelined grouped launch works on: its tile's expert, the x rows of the tile as this lane
// sees them (Fp8PipeRows: codes [., k] and their per-block scales, of row / top_k for tile row `row`: a
// slot's token for up, top_k 1 for down), the group rows of its output rows g, g + 8 (-1 past the tile), its
// 16 columns from n0, and this lane's t. False: a block past the tiles.
struct MoePipeBlock {
  Fp8PipeRows xr;
  int64_t row[2], expert, n0;
  int t;
};
__device__ __forceinline__ bool moe_pipe_block(const MoeGroup& grp, int64_t max_tiles, const uint8_t* codes, const float* scales, int64_t k,
                                               int64_t top_k, MoePipeBlock* b) {
  const int64_t blk = blockIdx.x;
  const int lane = static_cast<int>(threadIdx.x % 32), g = lane >> 2;
  MoeTileSpan sp;
  if (!moe_tile_span(grp, blk % max_tiles, &sp)) return false;
  b->expert = sp.expert, b->n0 = (blk / max_tiles) * 16, b->t = lane & 3;
  b->xr.rows = static_cast<int>(sp.count);
  for (int q = 0; q < 4; q++) {
    const int64_t p = moe_tile_row(grp, sp, lane / 8 + 4 * q);
    b->xr.x[q] = p >= 0 ? codes + (p / top_k) * k : nullptr;
  }
  for (int h = 0; h < 2; h++) {
    b->row[h] = moe_tile_row(grp, sp, g + 8 * h);
    b->xr.s[h] = b->row[h] >= 0 ? scales + (b->row[h] / top_k) * (k / kFp8KBlock) : nullptr;
  }
  return true;
}

// gate + up + SwiGLU of moe_up_mma_kernel, pipelined; a.xa holds e4m3 codes here (reinterpreted)
template <bool kE4m3>
__global__ void __launch_bounds__(32) moe_up_pipe_kernel(MoeUpArgs a) {
  MoePipeBlock b;
  if (!moe_pipe_block(a.grp, a.max_tiles, reinterpret_cast<const uint8_t*>(a.xa), a.sa, a.h, a.top_k, &b)) return;
  const int64_t x = b.expert, n0 = b.n0, *row = b.row;
  const int t = b.t;
  const Fp8PipeCols wc[2] = {fp8_pipe_cols(moe_stack_data(a.gate, x, a.i, a.h), moe_stack_scale(a.gate, x, a.i, a.h), a.i, a.h, a.gate.block_n, n0, t),
                             fp8_pipe_cols(moe_stack_data(a.up, x, a.i, a.h), moe_stack_scale(a.up, x, a.i, a.h), a.i, a.h, a.up.block_n, n0, t)};
  float y[2][2][4];
  fp8_pipe_tile<kE4m3, 2>(a.h, b.xr, wc, y);
  for_each_d<2>(n0, t, [&](int h, int64_t c, int jn, int i) {
    if (row[h] >= 0 && c < a.i) a.hb[row[h] * a.i + c] = moe_swiglu(y[0][jn][i], y[1][jn][i]);
  });
}

// down of moe_down_mma_kernel, pipelined; a.ha holds e4m3 codes here (reinterpreted)
template <bool kE4m3>
__global__ void __launch_bounds__(32) moe_down_pipe_kernel(MoeDownArgs a) {
  MoePipeBlock b;
  if (!moe_pipe_block(a.grp, a.max_tiles, reinterpret_cast<const uint8_t*>(a.ha), a.sha, a.i, 1, &b)) return;
  const int64_t x = b.expert, n0 = b.n0, *row = b.row;
  const int t = b.t;
  const Fp8PipeCols wc[1] = {fp8_pipe_cols(moe_stack_data(a.down, x, a.h, a.i), moe_stack_scale(a.down, x, a.h, a.i), a.h, a.i, a.down.block_n, n0, t)};
  float y[1][2][4];
  fp8_pipe_tile<kE4m3, 1>(a.i, b.xr, wc, y);
  for_each_d<2>(n0, t, [&](int h, int64_t c, int jn, int i) {
    if (row[h] >= 0 && c < a.h) a.y[row[h] * a.h + c] = moe_f32_bf16(y[0][jn][i]);
  });
}

// The combine (SPEC 5; glmk::moe_combine_token's order): one thread per (t, c), slot by slot in order,
// acc = acc + w * f32(y) (from +0; id -1 and bad ids skipped), then + f32(shared y), one bf16 rounding.
struct MoeCombineArgs {
  int64_t t, h, e, top_k;
  const int32_t* ids;
  const float* weights;
  const uint16_t* y;   // [t * top_k, h]
  const uint16_t* ys;  // [t, h] or nullptr
  uint16_t* out;
};

__global__ void moe_combine_kernel(MoeCombineArgs a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.t * a.h) return;
  const int64_t t = idx / a.h, c = idx % a.h;
  float acc = 0.0f;
  for (int64_t j = 0; j < a.top_k; j++) {
    const int64_t p = t * a.top_k + j, x = a.ids[p];
    if (x < 0 || x >= a.e) continue;  // -1: unused; others: reported by the check kernel
    acc = acc + a.weights[p] * moe_bf16_f32(a.y[p * a.h + c]);
  }
  if (a.ys) acc = acc + moe_bf16_f32(a.ys[t * a.h + c]);
  a.out[idx] = moe_f32_bf16(acc);
}

// One block: the first (t, slot) whose id is neither -1 nor in [0, e), into error [8] = {3, t, id, e, slot}
// unless an earlier error is pending there.
__global__ void moe_ids_check_kernel(const int32_t* ids, int64_t slots, int64_t top_k, int64_t e, uint32_t* error) {
  GLMK_SHARED(unsigned long long, first);
  if (threadIdx.x == 0) first = ~0ull;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < slots; p += blockDim.x)
    if (ids[p] != -1 && (ids[p] < 0 || ids[p] >= e)) {
      atomicMin(&first, static_cast<unsigned long long>(p));
      break;  // this thread's later slots come after p
    }
  __syncthreads();
  if (threadIdx.x == 0 && first != ~0ull && error[0] == 0) {
    const int64_t p = static_cast<int64_t>(first);
    error[1] = static_cast<uint32_t>(p / top_k);
    error[2] = static_cast<uint32_t>(ids[p]);
    error[3] = static_cast<uint32_t>(e);
    error[4] = static_cast<uint32_t>(p % top_k);
    error[0] = kMoeErrorBadId;
  }
}

}  // namespace glmk::cuda
