// Deterministic top-k on the CPU device (SPEC 3).
//
// Per row (the window rowStarts[r] .. +lengths[r]):
//   1. threshold: key a fixed sample of the window (blocks of 16 scores spread evenly) and take a rank a
//      little above k/n of it, so that about 1.4 k scores are at or above it (t = 0 for short rows: keep all);
//   2. filter: one vectorized pass keeps (key, index) of every score >= t, in index order;
//      if fewer than k survive (the sample was unlucky), filter again with t = 0;
//   3. select (only when the survivors are many more than k, e.g. short rows kept whole): MSB-first radix
//      select of the k-th largest key K; keep every key > K and the lowest-index keys == K;
//   4. sort the kept (~key << 32 | index) items ascending (two 11-bit LSD passes over the bits where the
//      keys differ, then an insertion pass) and write the first k.
// NOTE: the threshold only decides how much work steps 3-4 do, never the result: every score of the
// true top k is >= t whenever at least k survive. So the output depends only on the row's scores.
// Long rows with few rows split step 2 into fixed chunks whose survivor lists are concatenated in order:
// the same list as one pass, whatever the thread count.
#include "topk.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "glmk/score-key.h"
#include "glmk/status.hpp"

namespace glmk::cpu {

namespace {

constexpr int64_t kChunk = 32768;       // filter work item for split rows
constexpr int64_t kSampleMin = 8192;    // rows shorter than this keep everything
constexpr int64_t kSampleBlocks = 256;  // sampled 16-score blocks per row

// Step 3: the kk-th largest key among keys[0..m) and how many of the keys equal to it to take.
// MSB-first, 8 bits a pass; after each pass only the keys in the boundary bucket go on (copied to buf,
// which holds m keys).
void radix_select(const uint32_t* keys, size_t m, int64_t kk, uint32_t* kth, int64_t* take_equal,
                  uint32_t* buf) {
  uint32_t prefix = 0;
  int64_t need = kk;
  const uint32_t* cur = keys;
  size_t n = m;
  for (int shift = 24; shift >= 0; shift -= 8) {
    uint32_t hist[256] = {0};
    for (size_t j = 0; j < n; j++) hist[(cur[j] >> shift) & 255u]++;
    uint32_t d = 255;
    while (hist[d] < need) need -= hist[d--];
    prefix |= d << shift;
    if (shift == 0) break;
    if (hist[d] == n) continue;  // every key is in the boundary bucket: nothing to drop
    size_t c = 0;
    for (size_t j = 0; j < n; j++) {
      buf[c] = cur[j];
      c += ((cur[j] >> shift) & 255u) == d;
    }
    cur = buf;
    n = c;
  }
  *kth = prefix;
  *take_equal = need;
}

// The sort item of a survivor.
inline uint64_t item_of(uint32_t key, int32_t index) {
  return (static_cast<uint64_t>(~key) << 32) | static_cast<uint32_t>(index);
}

// Step 4: items are (~key << 32 | index), all distinct, so ascending item order is the output order (key
// descending, then index ascending). Two stable LSD passes of 11 bits over the 22 highest bits in which the
// keys differ, then an insertion pass for keys that agree on those bits (rare and adjacent, so it moves
// little; if it would move a lot, std::sort finishes instead). Returns where the sorted items are (a or b).
// key_diff: the bits in which the items' keys differ (min key ^ max key has the same highest bit).
const uint64_t* sort_items(uint64_t* a, uint64_t* b, size_t m, uint32_t key_diff) {
  if (m <= 64) {
    std::sort(a, a + m);
    return a;
  }
  if (key_diff == 0) return a;  // one key: the items are in index order already
  const int top = 31 - __builtin_clz(key_diff);
  const int lo = 32 + (top >= 21 ? top - 21 : 0);
  const int passes = top - (lo - 32) >= 11 ? 2 : 1;
  static thread_local uint32_t hist[2][2048];
  std::memset(hist, 0, sizeof hist);
  for (size_t j = 0; j < m; j++) {
    hist[0][(a[j] >> lo) & 2047u]++;
    hist[1][(a[j] >> (lo + 11)) & 2047u]++;
  }
  uint64_t* src = a;
  uint64_t* dst = b;
  for (int p = 0; p < passes; p++) {
    uint32_t* h = hist[p];
    uint32_t sum = 0;
    for (int d = 0; d < 2048; d++) {
      uint32_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    const int shift = lo + 11 * p;
    for (size_t j = 0; j < m; j++) dst[h[(src[j] >> shift) & 2047u]++] = src[j];
    std::swap(src, dst);
  }
  if (lo > 32) {
    size_t moves = 0;
    for (size_t j = 1; j < m && moves <= 8 * m; j++) {
      uint64_t x = src[j];
      size_t q = j;
      for (; q > 0 && src[q - 1] > x; q--) src[q] = src[q - 1];
      src[q] = x;
      moves += j - q;
    }
    if (moves > 8 * m) std::sort(src, src + m);
  }
  return src;
}

// Step 1: sample kSampleBlocks blocks of 16 consecutive scores (one cache line of f32), evenly spread, so
// that sampling touches few cache lines; t is the sample's r-th largest key.
uint32_t sample_threshold(Isa isa, const void* w, int dtype, int64_t n, int64_t kk, std::vector<uint32_t>& tmp) {
  if (n < kSampleMin || kk * 4 > n) return 0;
  // ~1 block per 512 scores (3% of the row), at most kSampleBlocks.
  const int64_t blocks = std::min<int64_t>(kSampleBlocks, n / 512);
  const int64_t stride = n / blocks;
  const int64_t s = blocks * 16;
  tmp.resize(static_cast<size_t>(2 * s));
  // NOTE: the blocks are far apart; prefetch them all first so that the misses overlap.
  const char* base = static_cast<const char*>(w);
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t b = 0; b < blocks; b++) __builtin_prefetch(base + b * stride * es);
  int32_t unused_idx[16 + kFilterSlack];
  for (int64_t b = 0; b < blocks; b++)  // the filter with t = 0 keys a block in one vector
    topk_filter(isa, w, dtype, b * stride, b * stride + 16, 0, tmp.data() + b * 16, unused_idx);
  double expected = static_cast<double>(kk) * static_cast<double>(s) / static_cast<double>(n);
  int64_t r = static_cast<int64_t>(std::ceil(expected + 3.0 * std::sqrt(expected) + 2.0));
  if (r >= s) return 0;
  uint32_t t;
  int64_t unused;
  radix_select(tmp.data(), static_cast<size_t>(s), r, &t, &unused, tmp.data() + s);
  return t;
}

struct RowJob {
  const void* window;
  int64_t n;
  int32_t* out_idx;
  float* out_val;
};

void write_padding(int32_t* oi, float* ov, int64_t from, int64_t k) {
  uint32_t ninf = GLMK_F32_NEG_INF_BITS;
  for (int64_t j = from; j < k; j++) {
    oi[j] = -1;
    std::memcpy(&ov[j], &ninf, 4);
  }
}

// Steps 3-4 and the output, given the survivors (keys, idx)[0..m) in index order, m >= min(k, n).
void select_and_write(const RowJob& job, int dtype, int64_t k, TopkScratch& s, size_t m) {
  int64_t kk = std::min<int64_t>(k, job.n);
  uint32_t kth = 0;
  int64_t take_equal = static_cast<int64_t>(m);
  // Few more survivors than k (the usual case after a sampled threshold): sort them all and keep the
  // first kk, which is cheaper than selecting first (items are distinct, so ties order by index).
  const bool sort_all = static_cast<int64_t>(m) <= kk + kk / 2 + 1024;
  if (!sort_all && static_cast<int64_t>(m) > kk) {
    if (s.select_buf.size() < m) s.select_buf.resize(m);
    radix_select(s.keys.data(), m, kk, &kth, &take_equal, s.select_buf.data());
  }
  const size_t cap = sort_all ? m : static_cast<size_t>(kk);
  if (s.items.size() < cap) {
    s.items.resize(cap);
    s.items2.resize(cap);
  }
  size_t c = 0;
  uint32_t kmin = 0xFFFFFFFFu, kmax = 0;
  if (sort_all) {  // every survivor: a straight loop the compiler vectorizes
    const uint32_t* keys = s.keys.data();
    const int32_t* idx = s.idx.data();
    uint64_t* items = s.items.data();
    for (size_t j = 0; j < m; j++) {
      const uint32_t key = keys[j];
      items[j] = item_of(key, idx[j]);
      kmin = std::min(kmin, key);
      kmax = std::max(kmax, key);
    }
    c = m;
  } else {
    for (size_t j = 0; j < m && c < cap; j++) {
      uint32_t key = s.keys[j];
      bool take = key > kth || (key == kth && take_equal > 0);
      if (key == kth && take) take_equal--;
      if (take) {
        s.items[c++] = item_of(key, s.idx[j]);
        kmin = std::min(kmin, key);
        kmax = std::max(kmax, key);
      }
    }
  }
  const size_t built = c;
  c = std::min(built, static_cast<size_t>(kk));
  const uint64_t* sorted = sort_items(s.items.data(), s.items2.data(), built, built ? kmin ^ kmax : 0);
  auto write = [&](auto bits_of) {  // one loop per dtype, no switch inside
    for (size_t j = 0; j < c; j++) {
      int32_t i = static_cast<int32_t>(sorted[j] & 0xFFFFFFFFu);
      uint32_t bits = glmk_output_bits(bits_of(i));
      job.out_idx[j] = i;
      std::memcpy(&job.out_val[j], &bits, 4);
    }
  };
  if (dtype == GLMK_F32) write([&](int32_t i) { return score_bits(job.window, GLMK_F32, i); });
  else if (dtype == GLMK_BF16) write([&](int32_t i) { return score_bits(job.window, GLMK_BF16, i); });
  else write([&](int32_t i) { return score_bits(job.window, GLMK_F16, i); });
  write_padding(job.out_idx, job.out_val, static_cast<int64_t>(c), k);
}

// Room for n survivors plus the filter's slack (it stores whole vectors past the last survivor).
void ensure(TopkScratch& s, int64_t n) {
  const size_t want = static_cast<size_t>(n) + kFilterSlack;
  if (s.keys.size() < want) {
    s.keys.resize(want);
    s.idx.resize(want);
  }
}

void row_whole(Isa isa, const RowJob& job, int dtype, int64_t k, TopkScratch& s, std::vector<uint32_t>& tmp) {
  if (job.n == 0) {
    write_padding(job.out_idx, job.out_val, 0, k);
    return;
  }
  int64_t kk = std::min<int64_t>(k, job.n);
  ensure(s, job.n);
  uint32_t t = sample_threshold(isa, job.window, dtype, job.n, kk, tmp);
  size_t m = topk_filter(isa, job.window, dtype, 0, job.n, t, s.keys.data(), s.idx.data());
  if (static_cast<int64_t>(m) < kk) m = topk_filter(isa, job.window, dtype, 0, job.n, 0, s.keys.data(), s.idx.data());
  select_and_write(job, dtype, k, s, m);
}

// One long row, step 2 split over the pool in fixed chunks.
void row_split(Pool& pool, Isa isa, const RowJob& job, int dtype, int64_t k, std::vector<TopkScratch>& scratch,
               std::vector<uint32_t>& tmp) {
  TopkScratch& s = scratch[0];
  int64_t kk = std::min<int64_t>(k, job.n);
  int64_t chunks = (job.n + kChunk - 1) / kChunk;
  // NOTE: each chunk has its own kChunk + slack region, so that one chunk's slack never overlaps the
  // survivors another thread is writing.
  constexpr int64_t kStride = kChunk + kFilterSlack;
  ensure(s, chunks * kStride);
  std::vector<size_t> counts(static_cast<size_t>(chunks));
  auto filter_all = [&](uint32_t t) {
    pool.parallel_for(chunks, [&](int64_t c, int) {
      int64_t b = c * kChunk, e = std::min(job.n, b + kChunk);
      uint32_t* keys = s.keys.data() + c * kStride;
      int32_t* idx = s.idx.data() + c * kStride;
      counts[c] = topk_filter(isa, job.window, dtype, b, e, t, keys, idx);
    });
    size_t m = 0;
    for (int64_t c = 0; c < chunks; c++) {
      if (static_cast<int64_t>(m) != c * kStride) {
        std::memmove(s.keys.data() + m, s.keys.data() + c * kStride, counts[c] * sizeof(uint32_t));
        std::memmove(s.idx.data() + m, s.idx.data() + c * kStride, counts[c] * sizeof(int32_t));
      }
      m += counts[c];
    }
    return m;
  };
  uint32_t t = sample_threshold(isa, job.window, dtype, job.n, kk, tmp);
  size_t m = filter_all(t);
  if (static_cast<int64_t>(m) < kk) m = filter_all(0);
  select_and_write(job, dtype, k, s, m);
}

}  // namespace

int topk_execute(Pool& pool, Isa isa, std::vector<TopkScratch>& scratch, const glmk_topk_args& a,
                 glmk_status* st) {
  const int64_t rows = a.rows, cols = a.cols, k = a.k;
  const size_t es = dtype_size(a.dtype);
  // Section: the window of every row (values in device memory, so checked here, before any output).
  std::vector<RowJob> jobs(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; r++) {
    int64_t start = a.row_starts ? a.row_starts[r] : 0;
    if (start < 0 || start > cols)
      return fail(st, GLMK_E_ARG, "Expected rowStarts[%lld] between 0 and %lld but received %lld",
                  static_cast<long long>(r), static_cast<long long>(cols), static_cast<long long>(start));
    int64_t len = a.lengths ? a.lengths[r] : cols - start;
    if (len < 0 || start + len > cols)
      return fail(st, GLMK_E_ARG,
                  "Expected lengths[%lld] between 0 and cols - rowStarts[%lld] = %lld but received %lld",
                  static_cast<long long>(r), static_cast<long long>(r), static_cast<long long>(cols - start),
                  static_cast<long long>(len));
    jobs[r] = RowJob{static_cast<const char*>(a.scores) + (r * cols + start) * es, len, a.indices + r * k,
                     a.values + r * k};
  }
  const int threads = pool.size();
  if (scratch.size() < static_cast<size_t>(threads)) scratch.resize(static_cast<size_t>(threads));
  std::vector<std::vector<uint32_t>> tmp(static_cast<size_t>(threads));
  // Section: schedule. Few long rows: split each row; otherwise one row per work item.
  if (threads > 1 && rows < threads * 2) {
    for (int64_t r = 0; r < rows; r++) {
      if (jobs[r].n >= 4 * kChunk) row_split(pool, isa, jobs[r], a.dtype, k, scratch, tmp[0]);
      else row_whole(isa, jobs[r], a.dtype, k, scratch[0], tmp[0]);
    }
  } else {
    pool.parallel_for(rows, [&](int64_t r, int w) { row_whole(isa, jobs[r], a.dtype, k, scratch[w], tmp[w]); });
  }
  return ok(st);
}

}  // namespace glmk::cpu
