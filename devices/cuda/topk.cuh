// Deterministic top-k (SPEC 3) on CUDA: the kernels. Host side: topk.cu.
//
// Deterministic by construction: the k-th largest key is found by an MSB-first radix select over the
// order-preserving key (glmk/score-key.h); histograms are integer counts (shared atomicAdd on integers
// gives the same counts in any order); every output position comes from counts and block prefix sums,
// never from an atomic counter; equal keys are taken and ordered by ascending index. No floating point
// is reduced anywhere, so nothing depends on the schedule, the block count or the batch.
//
// The fast path reads the scores once: a lower bound t of the k-th key from an evenly spread sample of the
// row (t only chooses the path, never the result), one filter pass that keeps the (key, index) pairs with
// key >= t in index order, and one bitonic sort of those m pairs in shared memory. When the sample was
// unlucky (m < k or m > kSortCap) the exact path runs instead: an MSB radix select over the row (11, 11 and
// 10 bits), a compaction of the k selected, the same sort (or sorted 8192-runs merged by rank in global
// memory when k > kSortCap). Both give the row's unique answer.
//
// Two schedules, the same result:
//  - one block per row (many rows, prefill): `row_kernel` samples, filters, sorts, writes;
//  - few long rows (decode): `row_sample_kernel` (one block per row) computes t, `seg_filter_kernel` (one
//    block per 4096 scores) writes each segment's pairs >= t to its own slot and counts them, and
//    `row_kernel` gathers the slots in order (so the pairs stay in index order) and sorts.
//
// Performance model (H100: 3.35 TB/s HBM3, 50 MB L2, 132 SMs; quoted at 3 TB/s). Bytes read per f32 score:
// 4 (the filter pass) + about 4/16 for the sample (1 score in 16, at most 8192 per row) + 8 per survivor
// (~1.6 k per row, written and read back in the split schedule). Sort: m <= 8192 pairs, ~91 bitonic steps.
//   1 x 128K   f32: 0.5 MB read: < 1 us of HBM; bound by 3 launches (~2 us each back to back) and the
//                   one-block sample and sort (~5-8 us): ~12-18 us expected (target 20 us).
//   32 x 128K  f32: 16 MB: ~6 us of HBM over 1024 segment blocks + sorts: ~15-25 us (target 30 us).
//   64 x 128K  f32: 32 MB: ~11 us + sorts: ~20-30 us (target 20 us: likely missed).
//   512 x 128K f32: 256 MB, one block per row, one pass: ~90 us of HBM + ~4 rows' sorts per SM: ~110-140 us
//                   (target 200 us).
//   2048 x 32K f32: 256 MB: ~90 us + 16 sorts per SM: ~130-180 us (target 200 us).
// None of this is measured: no GPU has run this file yet (see the README's device table).
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "glmk/device.h"
#include "glmk/score-key.h"

namespace glmk::cuda {

constexpr int kThreads = 512;    // every top-k block
constexpr int kItems = 8;        // consecutive scores per thread in a compaction tile
constexpr int kSortCap = 8192;   // (key, index) pairs sorted in shared memory (64 KiB, dynamic)
constexpr int kSamples = 8192;   // scores sampled per row for the threshold (32 KiB)
constexpr int kSegment = 4096;   // scores per block in the split schedule
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
  uint32_t* row_t;      // [rows_in_launch]: the sampled threshold
  uint32_t* seg_count;  // [rows_in_launch, segs]
  uint64_t* cand;       // [rows_in_launch, cols]: (~key << 32 | index), segment s at s * seg_len
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

// Score `col` of row r.
template <int DT>
__device__ __forceinline__ const void* scores_at(const TopkParams& p, int64_t r, int64_t col) {
  return static_cast<const char*>(p.scores) + (r * p.cols + col) * static_cast<int64_t>(DT == GLMK_F32 ? 4 : 2);
}

// The window of row r (an invalid one is empty here; check_rows_kernel reports it).
__device__ __forceinline__ void row_window(const TopkParams& p, int64_t r, int64_t* start, int64_t* len) {
  int64_t s = p.row_starts ? p.row_starts[r] : 0;
  int64_t l = p.lengths ? p.lengths[r] : p.cols - s;
  bool ok = s >= 0 && s <= p.cols && l >= 0 && s + l <= p.cols;
  *start = ok ? s : 0;
  *len = ok ? l : 0;
}

// Row lr of this launch: its index, its window and how many outputs it has (min(k, length)).
struct Row {
  int64_t r, start, n;
  uint32_t kk;
};
__device__ __forceinline__ Row row_at(const TopkParams& p, int64_t lr) {
  Row w;
  w.r = p.row0 + lr;
  row_window(p, w.r, &w.start, &w.n);
  w.kk = static_cast<uint32_t>(w.n < p.k ? w.n : p.k);
  return w;
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
// Returns how many keys it found (above plus at the cut; it stops early once it has all it needs).
template <class Get, class Emit>
__device__ uint32_t compact(const Get& get, int64_t n, const Cut& c, const Emit& emit, BlockShared& sm) {
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
  return run_hi + run_eq;
}

// The sort item of a score: ascending items are keys descending, then indices ascending.
__device__ __forceinline__ uint64_t pair_of(uint32_t key, uint32_t index) {
  return (static_cast<uint64_t>(~key) << 32) | index;
}

// A lower bound t of the row's kk-th key: the key at a rank a little above kk/n of s evenly spread scores
// (so that about kk + 3 sigma scores are >= t). 0 (keep every score) for short rows. It depends only on
// the row, and it only ever chooses the path, never the result. buf holds kSamples keys.
template <int DT>
__device__ uint32_t sample_threshold(const void* w, int64_t n, uint32_t kk, uint32_t* buf, BlockShared& sm) {
  if (n <= kSortCap || n < 4 * static_cast<int64_t>(kk)) return 0;
  const int64_t s = n / 16 < kSamples ? n / 16 : kSamples;
  for (int64_t j = threadIdx.x; j < s; j += blockDim.x) buf[j] = score_key<DT>(w, j * n / s);
  __syncthreads();
  const float expected = static_cast<float>(kk) * static_cast<float>(s) / static_cast<float>(n);
  const float r = ceilf(expected + 3.0f * sqrtf(expected) + 2.0f);
  if (r >= static_cast<float>(s)) return 0;
  Cut c = radix_select([&](int64_t i) { return buf[i]; }, s, static_cast<uint32_t>(r), sm);
  return c.bits == 0 ? 0u : c.prefix << (32 - c.bits);
}

// Writes the (~key << 32 | index) items of the keys >= t among key_of(0..n) to items[0..cap) in index
// order. Returns how many there are; more than cap means items holds only the first cap.
template <class Key, class Index>
__device__ uint32_t filter_items(const Key& key_of, const Index& index_of, int64_t n, uint32_t t, uint64_t* items,
                                 uint32_t cap, BlockShared& sm) {
  const Cut at_least_t{1, 32, cap + 1, 0};  // the predicate (key >= t) as one class; stop past the capacity
  return compact([&](int64_t i) { return key_of(i) >= t ? 1u : 0u; }, n, at_least_t,
                 [&](uint32_t slot, int64_t i, uint32_t) {
                   if (slot < cap) items[slot] = pair_of(key_of(i), index_of(i));
                 }, sm);
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

// One block per row; writes the row's k outputs. cand_mode (uniform): the fast path's pairs come from the
// segment slots p.cand (split schedule) instead of the block's own sample and filter.
// Dynamic shared memory: kSortCap pairs.
template <int DT>
__global__ void __launch_bounds__(kThreads) row_kernel(TopkParams p, bool cand_mode) {
  GLMK_SHARED(BlockShared, sm);
  uint64_t* items = glmk_dyn_smem<uint64_t>();
  const int64_t lr = blockIdx.x;
  const Row row = row_at(p, lr);
  const int64_t r = row.r, n = row.n;
  const uint32_t kk = row.kk;
  const void* window = scores_at<DT>(p, r, row.start);
  auto key_of = [&](int64_t i) { return score_key<DT>(window, i); };
  auto index_of = [](int64_t i) { return static_cast<uint32_t>(i); };
  int32_t* oi = p.indices + r * p.k;
  float* ov = p.values + r * p.k;
  auto write_sorted = [&](const uint64_t* sorted) {
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
  };

  // The fast path: the pairs >= t in shared memory, then one sort.
  uint32_t m = 0xFFFFFFFFu;
  if (cand_mode) {
    uint32_t total = 0;
    for (int s = 0; s < p.segs; s++) total += p.seg_count[lr * p.segs + s];
    if (total <= static_cast<uint32_t>(kSortCap)) {
      uint32_t base = 0;
      for (int s = 0; s < p.segs; s++) {
        const uint32_t c = p.seg_count[lr * p.segs + s];
        const uint64_t* slot = p.cand + lr * p.cols + static_cast<int64_t>(s) * p.seg_len;
        for (uint32_t j = threadIdx.x; j < c; j += blockDim.x) items[base + j] = slot[j];
        base += c;
      }
    }
    m = total;
  } else {
    const uint32_t t = sample_threshold<DT>(window, n, kk, reinterpret_cast<uint32_t*>(items), sm);
    if (t != 0 || n <= kSortCap) m = filter_items(key_of, index_of, n, t, items, kSortCap, sm);
  }
  __syncthreads();
  if (m >= kk && m <= static_cast<uint32_t>(kSortCap)) {
    bitonic_sort(items, m);
    write_sorted(items);
    return;
  }

  // The exact path (the sample was unlucky, or the row is short with a large k).
  Cut c = radix_select(key_of, n, kk, sm);
  uint64_t* buf = kk <= static_cast<uint32_t>(kSortCap) ? items : p.runs + lr * 2 * p.k;
  compact(key_of, n, c, [&](uint32_t slot, int64_t i, uint32_t key) {
    buf[slot] = pair_of(key, static_cast<uint32_t>(i));
  }, sm);
  __syncthreads();
  const uint64_t* sorted = buf;
  if (kk <= static_cast<uint32_t>(kSortCap)) bitonic_sort(items, kk);
  else sorted = sort_global(buf, buf + p.k, kk, items);
  write_sorted(sorted);
}

// Split schedule, 1: the sampled threshold of each row (one block per row; dynamic shared memory:
// kSamples keys).
template <int DT>
__global__ void __launch_bounds__(kThreads) row_sample_kernel(TopkParams p) {
  GLMK_SHARED(BlockShared, sm);
  const Row row = row_at(p, blockIdx.x);
  const void* window = scores_at<DT>(p, row.r, row.start);
  const uint32_t t = sample_threshold<DT>(window, row.n, row.kk, glmk_dyn_smem<uint32_t>(), sm);
  if (threadIdx.x == 0) p.row_t[blockIdx.x] = t;
}

// Split schedule, 2: grid (segments, rows in launch); each block keeps its segment's pairs >= t, in index
// order, in the segment's own slot, and counts them.
template <int DT>
__global__ void __launch_bounds__(kThreads) seg_filter_kernel(TopkParams p) {
  GLMK_SHARED(BlockShared, sm);
  const int64_t lr = blockIdx.y;
  const Row row = row_at(p, lr);
  const int64_t lo = static_cast<int64_t>(blockIdx.x) * p.seg_len;
  const int64_t hi = lo + p.seg_len < row.n ? lo + p.seg_len : row.n;
  const int64_t m = hi > lo ? hi - lo : 0;
  const void* w = scores_at<DT>(p, row.r, row.start + lo);
  uint64_t* slot = p.cand + lr * p.cols + lo;
  const uint32_t c = filter_items([&](int64_t i) { return score_key<DT>(w, i); },
                                  [&](int64_t i) { return static_cast<uint32_t>(lo + i); }, m, p.row_t[lr], slot,
                                  static_cast<uint32_t>(m), sm);
  if (threadIdx.x == 0) p.seg_count[lr * p.segs + blockIdx.x] = c;
}

}  // namespace glmk::cuda
