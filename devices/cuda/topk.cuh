// Deterministic top-k (SPEC 3) on CUDA: the kernels. Host side: topk.cu.
//
// Deterministic by construction: the k-th largest key is found by an MSB-first radix select over the
// order-preserving key (glmk/score-key.h); histograms are integer counts (shared atomicAdd on integers
// gives the same counts in any order); every output position comes from counts and block prefix sums,
// never from an atomic counter; equal keys are taken and ordered by ascending index. No floating point
// is reduced anywhere, so nothing depends on the schedule, the block count or the batch.
//
// Two schedules, the same result:
//  - one block per row (many rows, prefill): `row_kernel` reads the window, selects, sorts, writes;
//  - few long rows (decode): the row is cut into segments of S = max(4096, 2k) scores, one block each.
//    1. `seg_kth_kernel`: each segment's k-th largest key T_s (a lower bound of the row's k-th key,
//       since a segment is a subset of the row);
//    2. `seg_count_kernel`: T = max_s T_s; each segment counts its keys >= T;
//    3. `seg_compact_kernel`: each segment writes its (key, index) pairs >= T at the offset given by
//       the counts of the segments before it, so the candidates are in index order;
//    4. `row_kernel` over the candidates (at least k, usually about 1.1 k) selects, sorts, writes.
//
// Performance model (H100, 3.35 TB/s HBM3, 50 MB L2; quoted against 3 TB/s). Select: 3 histogram passes
// of 11/11/10 bits; pass 1 reads every score from memory, passes 2-3 and the compaction re-read it
// (from L2 when it fits) but only count keys whose prefix matches, and stop early when the boundary
// bucket holds exactly the keys still needed. Sort: a bitonic sort of at most 4096 (key, index) pairs in
// shared memory (k <= 4096), else sorted 4096-runs merged by rank in global memory.
//   bytes read from HBM per f32 score: 4 (one pass) plus 4 per pass the L2 does not hold.
//   1 x 128K   f32, k 2048: 0.5 MB; 32 segment blocks; ~1 us of HBM time, bound by 4 launches and the
//                          final 2-3K-candidate block (~10 us): ~15-25 us expected.
//   32 x 128K  f32: 16 MB, 1024 segment blocks, all in L2: ~5 us of HBM time + final blocks: ~20-30 us.
//   64 x 128K  f32: 32 MB, in L2: ~11 us + final blocks: ~25-35 us.
//   512 x 128K f32: 256 MB, one block per row, 4 passes not in L2: ~340 us (target 200 us: missed by
//                   this design; a fused single-read histogram would fix it).
//   2048 x 32K f32: 256 MB, one block per row: the same ~340 us.
// None of this is measured: no GPU has run this file yet (see the README's device table).
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "glmk/score-key.h"

namespace glmk::cuda {

constexpr int kThreads = 512;    // every top-k block
constexpr int kItems = 8;        // consecutive scores per thread in a compaction tile
constexpr int kSortCap = 4096;   // (key, index) pairs sorted in shared memory
constexpr int kBins = 2048;      // 11-bit digits

struct TopkParams {
  const void* scores;
  int64_t rows, cols, k;
  const int32_t* lengths;     // or nullptr
  const int32_t* row_starts;  // or nullptr
  int32_t* indices;
  float* values;
  int64_t row0;               // first row of this launch
  // segments (decode schedule)
  int32_t segs;
  int64_t seg_len;
  uint32_t* seg_kth;    // [rows_in_launch, segs]
  uint32_t* seg_count;  // [rows_in_launch, segs]
  uint64_t* cand;       // [rows_in_launch, cols]: (key << 32 | index)
  // sort runs when k > kSortCap
  uint64_t* runs;       // [rows_in_launch, 2 k]
  uint32_t* error;      // [4]: which (1 rowStarts, 2 lengths), row, value, limit; first error only
};

// ---- scores ----

template <int DT>
__device__ __forceinline__ uint32_t score_bits(const void* p, int64_t i) {
  if (DT == GLMK_F32) return static_cast<const uint32_t*>(p)[i];
  if (DT == GLMK_BF16) return glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]);
  return glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]);
}

template <int DT>
__device__ __forceinline__ uint32_t score_key(const void* p, int64_t i) {
  return glmk_key_from_f32_bits(score_bits<DT>(p, i));
}

// The window of row r (an invalid one is empty here; check_rows_kernel reports it).
__device__ __forceinline__ void row_window(const TopkParams& p, int64_t r, int64_t* start, int64_t* len) {
  int64_t s = p.row_starts ? p.row_starts[r] : 0;
  int64_t l = p.lengths ? p.lengths[r] : p.cols - s;
  bool ok = s >= 0 && s <= p.cols && l >= 0 && s + l <= p.cols;
  *start = ok ? s : 0;
  *len = ok ? l : 0;
}

// ---- block primitives (blockDim.x a multiple of 32) ----

struct BlockShared {
  uint32_t hist[kBins];
  uint32_t warp[32];
  uint32_t bucket, above;
};

// Exclusive prefix sum of v over the block in thread order; *total gets the sum. Two barriers.
__device__ __forceinline__ uint32_t block_exclusive_scan(uint32_t v, uint32_t* total, BlockShared& sm) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  uint32_t x = v;
  for (int d = 1; d < 32; d <<= 1) {
    uint32_t y = __shfl_up_sync(0xFFFFFFFFu, x, d);
    if (lane >= static_cast<unsigned>(d)) x += y;
  }
  if (lane == 31) sm.warp[warp] = x;
  __syncthreads();
  uint32_t base = 0, sum = 0;
  for (unsigned w = 0; w < warps; w++) {
    uint32_t c = sm.warp[w];
    base += w < warp ? c : 0;
    sum += c;
  }
  __syncthreads();
  *total = sum;
  return base + x - v;
}

// The selection rule for one row: keys whose top `bits` bits are > prefix are all taken; of those
// equal to prefix, the first `need` in index order.
struct Cut {
  uint32_t prefix;
  int bits;       // 0: take every key
  uint32_t need;  // keys taken from the boundary bucket
  uint32_t above; // keys above it
};

__device__ __forceinline__ int cmp_cut(uint32_t key, const Cut& c) {
  if (c.bits == 0) return 1;
  uint32_t top = c.bits == 32 ? key : key >> (32 - c.bits);
  return top > c.prefix ? 1 : top == c.prefix ? 0 : -1;
}

// MSB-first radix select of the kk-th largest of the n keys get(0..n): 11, 11, 10 bits.
template <class Get>
__device__ Cut radix_select(const Get& get, int64_t n, uint32_t kk, BlockShared& sm) {
  Cut c{0, 0, kk, 0};
  if (static_cast<int64_t>(kk) >= n) {
    c.need = static_cast<uint32_t>(n);
    return c;
  }
  uint32_t need = kk;
  for (int pass = 0; pass < 3; pass++) {
    const int width = pass < 2 ? 11 : 10, shift = 32 - c.bits - width;
    const uint32_t nb = 1u << width;
    for (uint32_t b = threadIdx.x; b < nb; b += blockDim.x) sm.hist[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      uint32_t key = get(i);
      if (c.bits == 0 || (key >> (32 - c.bits)) == c.prefix) atomicAdd(&sm.hist[(key >> shift) & (nb - 1)], 1u);
    }
    __syncthreads();
    // The digit d where the count of keys with digit >= d first reaches need, bins scanned from the top.
    const uint32_t per = (nb + blockDim.x - 1) / blockDim.x;
    const uint32_t hi = threadIdx.x * per < nb ? nb - threadIdx.x * per : 0;  // bins [hi - per, hi)
    uint32_t mine = 0;
    for (uint32_t j = 0; j < per && j < hi; j++) mine += sm.hist[hi - 1 - j];
    uint32_t total;
    uint32_t before = block_exclusive_scan(mine, &total, sm);
    if (before < need && need <= before + mine) {
      uint32_t acc = before;
      for (uint32_t j = 0; j < per && j < hi; j++) {
        uint32_t h = sm.hist[hi - 1 - j];
        if (acc + h >= need) {
          sm.bucket = hi - 1 - j;
          sm.above = acc;
          break;
        }
        acc += h;
      }
    }
    __syncthreads();
    const uint32_t d = sm.bucket, above = sm.above;
    const uint32_t in_bucket = sm.hist[d];
    __syncthreads();
    c.prefix = (c.prefix << width) | d;
    c.bits += width;
    c.above += above;
    need -= above;
    if (in_bucket == need) break;  // the whole boundary bucket is taken: no need to resolve further
  }
  c.need = need;
  return c;
}

// Writes the selected keys in index order: `emit(slot, i, key)` with slots [0, above) for the keys above
// the cut and [above, above + need) for the first `need` at it. Tiles of blockDim * kItems consecutive
// scores, each thread kItems consecutive ones: one block scan per tile.
template <class Get, class Emit>
__device__ void compact(const Get& get, int64_t n, const Cut& c, const Emit& emit, BlockShared& sm) {
  uint32_t run_hi = 0, run_eq = 0;
  const int64_t tile = static_cast<int64_t>(blockDim.x) * kItems;
  for (int64_t base = 0; base < n; base += tile) {
    const int64_t i0 = base + static_cast<int64_t>(threadIdx.x) * kItems;
    uint32_t hi = 0, eq = 0;
    for (int j = 0; j < kItems; j++)
      if (i0 + j < n) {
        int r = cmp_cut(get(i0 + j), c);
        hi += r > 0;
        eq += r == 0;
      }
    uint32_t total;
    uint32_t pos = block_exclusive_scan(hi | (eq << 16), &total, sm);  // both counts < 2^16 per tile
    uint32_t p_hi = run_hi + (pos & 0xFFFFu), p_eq = run_eq + (pos >> 16);
    if (hi | eq)
      for (int j = 0; j < kItems; j++)
        if (i0 + j < n) {
          uint32_t key = get(i0 + j);
          int r = cmp_cut(key, c);
          if (r > 0) emit(p_hi++, i0 + j, key);
          else if (r == 0 && p_eq < c.need) emit(c.above + p_eq++, i0 + j, key);
          else if (r == 0) p_eq++;
        }
    run_hi += total & 0xFFFFu;
    run_eq += total >> 16;
    if (run_hi == c.above && run_eq >= c.need) break;  // everything found (the same test in every thread)
  }
}

// Sorts a[0..n) ascending in shared memory (n <= kSortCap), padding to a power of two with ~0.
__device__ void bitonic_sort(uint64_t* a, uint32_t n) {
  uint32_t p = 1;
  while (p < n) p <<= 1;
  for (uint32_t i = n + threadIdx.x; i < p; i += blockDim.x) a[i] = ~0ull;
  __syncthreads();
  for (uint32_t size = 2; size <= p; size <<= 1)
    for (uint32_t stride = size >> 1; stride > 0; stride >>= 1) {
      for (uint32_t t = threadIdx.x; t < p / 2; t += blockDim.x) {
        uint32_t i = 2 * stride * (t / stride) + (t % stride), j = i + stride;
        bool up = (i & size) == 0;
        uint64_t x = a[i], y = a[j];
        if ((x > y) == up) a[i] = y, a[j] = x;
      }
      __syncthreads();
    }
}

// How many of b[0..n) are below x (b sorted ascending, all items distinct).
__device__ __forceinline__ uint32_t rank_in(const uint64_t* b, uint32_t n, uint64_t x) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) >> 1;
    if (b[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Sorts a[0..n) ascending in global memory (n > kSortCap): sorted kSortCap runs, then merges by rank
// between a and b. Returns the buffer that holds the result.
__device__ uint64_t* sort_global(uint64_t* a, uint64_t* b, uint32_t n, uint64_t* smem) {
  for (uint32_t r0 = 0; r0 < n; r0 += kSortCap) {
    uint32_t m = n - r0 < static_cast<uint32_t>(kSortCap) ? n - r0 : kSortCap;
    for (uint32_t i = threadIdx.x; i < m; i += blockDim.x) smem[i] = a[r0 + i];
    bitonic_sort(smem, m);
    for (uint32_t i = threadIdx.x; i < m; i += blockDim.x) a[r0 + i] = smem[i];
    __syncthreads();
  }
  for (uint32_t w = kSortCap; w < n; w <<= 1) {
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) {
      uint32_t pair = i / (2 * w) * (2 * w), off = i - pair;
      uint32_t left = n - pair < w ? n - pair : w;
      uint32_t right = n - pair - left < w ? n - pair - left : w;
      uint64_t x = a[i];
      uint32_t out = off < left ? off + rank_in(a + pair + left, right, x) : (off - left) + rank_in(a + pair, left, x);
      b[pair + out] = x;
    }
    __syncthreads();
    uint64_t* t = a;
    a = b;
    b = t;
  }
  return a;
}

// ---- kernels ----

// Finds the first row whose rowStarts / lengths value is out of range and records it (one block).
__global__ void __launch_bounds__(kThreads) check_rows_kernel(TopkParams p) {
  GLMK_SHARED(uint32_t, first);
  if (threadIdx.x == 0) first = 0xFFFFFFFFu;
  __syncthreads();
  for (int64_t base = 0; base < p.rows; base += blockDim.x) {
    int64_t r = base + threadIdx.x;
    if (r < p.rows) {
      int64_t s = p.row_starts ? p.row_starts[r] : 0;
      int64_t l = p.lengths ? p.lengths[r] : p.cols - s;
      if (!(s >= 0 && s <= p.cols && l >= 0 && s + l <= p.cols)) atomicMin(&first, static_cast<uint32_t>(r));
    }
    __syncthreads();
    if (first != 0xFFFFFFFFu) break;
  }
  if (threadIdx.x == 0 && first != 0xFFFFFFFFu && p.error[0] == 0) {
    int64_t r = first;
    int64_t s = p.row_starts ? p.row_starts[r] : 0;
    bool bad_start = s < 0 || s > p.cols;
    p.error[1] = static_cast<uint32_t>(r);
    p.error[2] = static_cast<uint32_t>(bad_start ? s : p.lengths[r]);
    p.error[3] = static_cast<uint32_t>(bad_start ? p.cols : p.cols - s);
    p.error[0] = bad_start ? 1u : 2u;
  }
}

// One block per row; writes the row's k outputs. cand_mode (uniform): select among the row's candidates
// p.cand (the segment schedule) instead of its scores.
template <int DT>
__global__ void __launch_bounds__(kThreads) row_kernel(TopkParams p, bool cand_mode) {
  GLMK_SHARED(BlockShared, sm);
  GLMK_SHARED(uint64_t[kSortCap], items);
  const int64_t lr = blockIdx.x, r = p.row0 + lr;
  int64_t start, n;
  row_window(p, r, &start, &n);
  const void* window = static_cast<const char*>(p.scores) +
                       (r * p.cols + start) * static_cast<int64_t>(DT == GLMK_F32 ? 4 : 2);
  const uint32_t kk = static_cast<uint32_t>(n < p.k ? n : p.k);
  int64_t m = n;  // how many inputs the select sees
  const uint64_t* cand = p.cand + lr * p.cols;
  if (cand_mode) {
    uint32_t c = 0;
    for (int s = 0; s < p.segs; s++) c += p.seg_count[lr * p.segs + s];
    m = c;
  }
  auto get = [&](int64_t i) -> uint32_t {
    return cand_mode ? static_cast<uint32_t>(cand[i] >> 32) : score_key<DT>(window, i);
  };
  auto index_of = [&](int64_t i) -> uint32_t {
    return cand_mode ? static_cast<uint32_t>(cand[i]) : static_cast<uint32_t>(i);
  };
  Cut c = radix_select(get, m, kk, sm);
  // items: (~key << 32 | index) ascending = key descending, then index ascending
  uint64_t* buf = kk <= static_cast<uint32_t>(kSortCap) ? items : p.runs + lr * 2 * p.k;
  compact(get, m, c, [&](uint32_t slot, int64_t i, uint32_t key) {
    buf[slot] = (static_cast<uint64_t>(~key) << 32) | index_of(i);
  }, sm);
  __syncthreads();
  const uint64_t* sorted = buf;
  if (kk <= static_cast<uint32_t>(kSortCap)) bitonic_sort(items, kk);
  else sorted = sort_global(buf, buf + p.k, kk, items);
  int32_t* oi = p.indices + r * p.k;
  float* ov = p.values + r * p.k;
  for (int64_t j = threadIdx.x; j < p.k; j += blockDim.x) {
    int32_t idx = -1;
    uint32_t bits = GLMK_F32_NEG_INF_BITS;
    if (j < kk) {
      idx = static_cast<int32_t>(sorted[j] & 0xFFFFFFFFu);
      bits = glmk_output_bits(score_bits<DT>(window, idx));
    }
    oi[j] = idx;
    ov[j] = __uint_as_float(bits);
  }
}

// Segment blocks: grid (segs, rows in launch).
struct Segment {
  int64_t lr, start, n, lo, m;  // row in launch, window, segment [lo, lo + m)
  uint32_t kk;
};
__device__ __forceinline__ Segment segment_of(const TopkParams& p) {
  Segment g;
  g.lr = blockIdx.y;
  row_window(p, p.row0 + g.lr, &g.start, &g.n);
  g.lo = static_cast<int64_t>(blockIdx.x) * p.seg_len;
  int64_t hi = g.lo + p.seg_len < g.n ? g.lo + p.seg_len : g.n;
  g.m = hi > g.lo ? hi - g.lo : 0;
  g.kk = static_cast<uint32_t>(g.n < p.k ? g.n : p.k);
  return g;
}

template <int DT>
__device__ __forceinline__ const void* segment_window(const TopkParams& p, const Segment& g) {
  return static_cast<const char*>(p.scores) +
         ((p.row0 + g.lr) * p.cols + g.start + g.lo) * static_cast<int64_t>(DT == GLMK_F32 ? 4 : 2);
}

template <int DT>
__global__ void __launch_bounds__(kThreads) seg_kth_kernel(TopkParams p) {
  GLMK_SHARED(BlockShared, sm);
  Segment g = segment_of(p);
  const void* w = segment_window<DT>(p, g);
  uint32_t t = 0;  // no bound from a segment shorter than k
  if (g.m >= static_cast<int64_t>(g.kk) && g.kk > 0) {
    Cut c = radix_select([&](int64_t i) { return score_key<DT>(w, i); }, g.m, g.kk, sm);
    t = c.bits == 0 ? 0u : c.prefix << (32 - c.bits);
  }
  if (threadIdx.x == 0) p.seg_kth[g.lr * p.segs + blockIdx.x] = t;
}

__device__ __forceinline__ uint32_t row_bound(const TopkParams& p, int64_t lr) {
  uint32_t t = 0;
  for (int s = 0; s < p.segs; s++) {
    uint32_t v = p.seg_kth[lr * p.segs + s];
    t = v > t ? v : t;
  }
  return t;
}

template <int DT>
__global__ void __launch_bounds__(kThreads) seg_count_kernel(TopkParams p) {
  GLMK_SHARED(BlockShared, sm);
  Segment g = segment_of(p);
  const void* w = segment_window<DT>(p, g);
  const uint32_t t = row_bound(p, g.lr);
  uint32_t mine = 0;
  for (int64_t i = threadIdx.x; i < g.m; i += blockDim.x) mine += score_key<DT>(w, i) >= t;
  uint32_t total;
  block_exclusive_scan(mine, &total, sm);
  if (threadIdx.x == 0) p.seg_count[g.lr * p.segs + blockIdx.x] = total;
}

template <int DT>
__global__ void __launch_bounds__(kThreads) seg_compact_kernel(TopkParams p) {
  GLMK_SHARED(BlockShared, sm);
  Segment g = segment_of(p);
  const void* w = segment_window<DT>(p, g);
  const uint32_t t = row_bound(p, g.lr);
  uint32_t offset = 0;
  for (unsigned s = 0; s < blockIdx.x; s++) offset += p.seg_count[g.lr * p.segs + s];
  uint64_t* out = p.cand + g.lr * p.cols + offset;
  const uint64_t lo = static_cast<uint64_t>(g.lo);
  // One class, so that the candidates stay in index order (ties resolve by it): "key >= t" is the cut
  // at 1 of the predicate, with no limit on how many are taken.
  compact([&](int64_t i) { return score_key<DT>(w, i) >= t ? 1u : 0u; }, g.m, Cut{1, 32, 0xFFFFFFFFu, 0},
          [&](uint32_t slot, int64_t i, uint32_t) {
            out[slot] = (static_cast<uint64_t>(score_key<DT>(w, i)) << 32) | static_cast<uint32_t>(lo + i);
          }, sm);
}

}  // namespace glmk::cuda
