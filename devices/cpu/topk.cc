// Deterministic top-k on the CPU device (SPEC 3).
//
// Per row (the window rowStarts[r] .. +lengths[r]):
//   1. threshold: key a fixed sample of the window (blocks of 16 scores spread evenly) and take the key at
//      a rank a little above k/n of it, so that 1.4 k to 2 k scores are at or above it (t = 0 for short
//      rows: keep all);
//   2. filter (topk-simd.cc): one vectorized pass keeps (key, index) of every score >= t, in index order;
//      if fewer than k survive (the sample was unlucky), filter again with t = 0;
//   3. order (topk-order.cc): cut the survivors to a few more than k (AVX-512), bucket them on
//      kmax - key, keep the buckets up to the one holding the k-th key, and sort those into
//      (~key << 32 | index) order;
//   4. write the first k (topk-simd.cc: values come back from the keys).
// Workers claim runs of rows; while a row is filtered and ordered, the worker's next row is prefetched
// toward L2.
// NOTE: the threshold only decides how much work step 3 does, never the result: every score of the
// true top k is >= t whenever at least k survive. So the output depends only on the row's scores.
// Long rows with few rows split step 2 into contiguous parts, each read as pieces with survivor lists of
// their own (in order, list after list: the same survivors as one pass, whatever the thread count), and
// steps 3-4 into two key ranges, each ordered and written on its own (the output order is a total order,
// so the same output as one range). A long row alone on a thread is read as pieces too.
#include "topk.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>

#include "glmk/score-key.h"
#include "glmk/status.hpp"

namespace glmk::cpu {

namespace {

constexpr int64_t kPartMin = 16384;     // split rows: scores per filter part, at least
constexpr int64_t kSplitMin = 65536;    // rows at least this long are split when rows are few
constexpr int64_t kSampleMin = 2048;    // rows shorter than this keep everything
constexpr int64_t kSampleBlocks = 64;  // sampled 16-score blocks per row, at most

// Waits until ready(): polling without yielding first (the awaited parts end within microseconds of each
// other; see pause_until), then yielding.
void wait_for(const std::function<bool()>& ready) {
  if (!pause_until(kPausePollUs, ready))
    while (!ready()) sched_yield();
}

// Step 1: sample blocks of 16 consecutive scores (one cache line of f32), evenly spread, so that sampling
// touches few cache lines; t is the sample's r-th largest key.
// Where the sample reads: `blocks` blocks of 16 scores, `stride` scores apart (blocks = 0: no sample,
// keep every score). 1 block per 512 scores (3% of the row), at most kSampleBlocks: more blocks cost
// more cache misses than the fewer survivors they leave save (measured on 128K-score rows).
struct SamplePlan {
  int64_t blocks = 0, stride = 0;
};

SamplePlan sample_plan(int64_t n, int64_t kk) {
  if (n < kSampleMin || kk * 4 > n) return {};
  const int64_t blocks = std::min<int64_t>(kSampleBlocks, n / 512);
  return {blocks, n / blocks};
}

uint32_t sample_threshold(Isa isa, const void* w, int dtype, int64_t n, int64_t kk, std::vector<uint32_t>& tmp) {
  const auto [blocks, stride] = sample_plan(n, kk);
  if (blocks == 0) return 0;
  const int64_t s = blocks * 16;
  // tmp: the sampled scores side by side (raw), then their keys.
  tmp.resize(static_cast<size_t>(2 * s));
  uint32_t* raw = tmp.data();
  uint32_t* keys = raw + s;
  // NOTE: the blocks are far apart; prefetch them all first so that the misses overlap.
  const char* base = static_cast<const char*>(w);
  const int64_t es = static_cast<int64_t>(dtype_size(dtype));
  for (int64_t b = 0; b < blocks; b++) __builtin_prefetch(base + b * stride * es);
  for (int64_t b = 0; b < blocks; b++) {  // constant sizes: each copy is a vector move or two
    if (es == 4) std::memcpy(raw + b * 16, base + b * stride * 4, 64);
    else std::memcpy(reinterpret_cast<uint16_t*>(raw) + b * 16, base + b * stride * 2, 32);
  }
  uint32_t kmin, kmax;
  topk_key_all(isa, raw, dtype, s, keys, &kmin, &kmax);
  double expected = static_cast<double>(kk) * static_cast<double>(s) / static_cast<double>(n);
  int64_t r = static_cast<int64_t>(std::ceil(expected + 3.0 * std::sqrt(expected) + 2.0));
  if (r >= s) return 0;
  // The largest t with at least r sample keys >= t, by bisecting the key range with vector counts; near
  // enough (at most r + r / 32 keys >= t) ends it early. Keys below lo never matter again: once they are
  // most of what is left, they are dropped.
  const size_t need = static_cast<size_t>(r), enough = need + need / 32;
  uint32_t lo = kmin, hi = kmax;  // count(>= lo) >= need; count(>= t) < need for every t > hi
  size_t left = static_cast<size_t>(s), at_lo = left;
  {
    // First a pivot from the data: of 64 spread keys, the one at 1.5 times the sought rank (where that
    // rank likely lies, biased low). If at least r keys are at or above it (the usual case), only those
    // are kept and the bisection goes on above it; otherwise below it. (Bisecting a float key range from
    // its ends takes several passes to reach the dense part; an exact nth_element on what is left was
    // slower than the vector counts, through its mispredicted branches.)
    constexpr size_t kPick = 64;
    uint32_t pick[kPick];
    for (size_t q = 0; q < kPick; q++) pick[q] = keys[q * left / kPick];
    const size_t j = std::min(kPick - 1, static_cast<size_t>(1.5 * kPick * need / left));
    const uint32_t pivot = topk_kth_largest(isa, pick, kPick, j);
    const size_t c = topk_count_at_least(isa, keys, left, pivot);
    if (c >= need) {
      left = topk_compact(isa, keys, nullptr, left, pivot);
      lo = pivot;
      at_lo = c;
    } else {
      hi = pivot - 1;  // fewer than r keys are >= pivot, so pivot > kmin
    }
  }
  while (lo < hi && at_lo > enough) {
    const uint32_t mid = lo + static_cast<uint32_t>((static_cast<uint64_t>(hi) - lo + 1) / 2);
    const size_t c = topk_count_at_least(isa, keys, left, mid);
    if (c >= need) {
      lo = mid;
      at_lo = c;
      if (c <= left / 4) left = topk_compact(isa, keys, nullptr, left, lo);
    } else {
      hi = mid - 1;
    }
  }
  return lo;
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

// Steps 3-4 and the output, given the survivors (keys, idx)[0..m) in index order, m >= min(k, n), with
// keys in [kmin, kmax].
void select_and_write(Isa isa, const RowJob& job, int dtype, int64_t k, TopkScratch& s, size_t m,
                      uint32_t kmin, uint32_t kmax) {
  const size_t c = static_cast<size_t>(std::min<int64_t>(k, job.n));
  const uint64_t* items = top_items(isa, s.keys.data(), s.idx.data(), m, c, kmin, kmax, s);
  topk_write(isa, items, c, job.window, dtype, job.out_idx, job.out_val, s.next_row);
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

// The survivors of several lists together: their count and key range.
FilterOut merged(const FilterOut* outs, size_t n) {
  FilterOut all{0};
  for (size_t j = 0; j < n; j++) {
    all.m += outs[j].m;
    all.kmin = std::min(all.kmin, outs[j].kmin);
    all.kmax = std::max(all.kmax, outs[j].kmax);
  }
  return all;
}

// Moves the lists (in s.keys / s.idx, the first at their start or later) to one list from s.keys' start,
// in order; returns its length.
size_t concatenate(TopkScratch& s, const KeyList* lists, size_t n) {
  size_t m = 0;
  for (size_t j = 0; j < n; j++) {
    const KeyList& l = lists[j];
    if (l.keys != s.keys.data() + m) {
      std::memmove(s.keys.data() + m, l.keys, l.m * sizeof(uint32_t));
      std::memmove(s.idx.data() + m, l.idx, l.m * sizeof(int32_t));
    }
    m += l.m;
  }
  return m;
}

// next: the row this worker does after this one (prefetched while this one is ordered), or null.
void row_whole(Isa isa, const RowJob& job, int dtype, int64_t k, TopkScratch& s, const RowJob* next) {
  if (job.n == 0) {
    write_padding(job.out_idx, job.out_val, 0, k);
    return;
  }
  int64_t kk = std::min<int64_t>(k, job.n);
  const bool pieces = !next && job.n >= kSplitMin && isa >= Isa::avx512vbmi;  // (see `filter` below)
  const int64_t piece = (job.n + kFilterStreams - 1) / kFilterStreams;
  const size_t stride = static_cast<size_t>(piece) + kFilterSlack;
  ensure(s, pieces ? static_cast<int64_t>(stride) * kFilterStreams : job.n);
  const uint32_t t = sample_threshold(isa, job.window, dtype, job.n, kk, s.sample);
  if (next) {  // the next row's sample blocks first, then the row from its start
    const size_t es = dtype_size(dtype);
    const SamplePlan sp = sample_plan(next->n, std::min<int64_t>(k, next->n));
    s.next_row.reset(next->window, static_cast<size_t>(next->n) * es, static_cast<size_t>(sp.blocks),
                     static_cast<size_t>(sp.stride) * es);
  }
  const auto filter = [&](uint32_t th) {
    if (!pieces)
      return topk_filter(isa, job.window, dtype, 0, job.n, th, s.keys.data(), s.idx.data(), s.next_row);
    // A long row with no next row to fetch meanwhile (a decode row, alone): read as pieces side by side (more
    // memory streams in flight), their survivor lists then joined (a few thousand survivors moved). In an
    // in-process A/B, a cold 128K-score row took 28.0 us against 32.1 (one stream); four pieces: no gain.
    // (Only where the pieces are read side by side: VBMI2.)
    int64_t bounds[kFilterStreams + 1];
    for (int j = 0; j <= kFilterStreams; j++) bounds[j] = std::min(job.n, j * piece);
    FilterOut outs[kFilterStreams];
    KeyList lists[kFilterStreams];
    topk_filter_pieces(isa, job.window, dtype, bounds, th, s.keys.data(), s.idx.data(), stride, outs);
    for (int j = 0; j < kFilterStreams; j++)
      lists[j] = KeyList{s.keys.data() + j * stride, s.idx.data() + j * stride, outs[j].m};
    concatenate(s, lists, kFilterStreams);
    return merged(outs, kFilterStreams);
  };
  FilterOut f = filter(t);
  if (static_cast<int64_t>(f.m) < kk) f = filter(0);  // the sample was unlucky: keep everything
  select_and_write(isa, job, dtype, k, s, f.m, f.kmin, f.kmax);
  s.next_row.reset();
}

// Steps 3-4 of a split row for one of two key ranges (range 0 or 1), given the survivor lists (keys, idx)
// in index order list after list, at least kk of them, keys in [kmin, kmax] with kmin < kmax. t2 splits
// the keys so that about 5 kk / 8 are >= t2 (c0 of them); the first min(c0, kk) outputs are those, in their
// order (range 0), and the top kk - c0 of the rest (the keys from the cut key for all kk up to t2) follow
// them (range 1). (Range 1 makes a second cut: with five eighths to range 0 the two end together; a half
// each left range 1 0.3-0.6 us behind, 1 x 131072, k = 2048, in-process A/B.) Each range is cut, gathered, ordered and written on its own, by whichever worker takes
// it; both compute t2 (the same vector counts, so the same t2). The output order is a total order on
// (key, index), so the two ranges give the same output as one select_and_write.
void select_and_write_range(Isa isa, const RowJob& job, int dtype, size_t kk, TopkScratch& ps,
                            const std::vector<KeyList>& lists, size_t m, uint32_t kmin, uint32_t kmax, int range) {
  size_t c0;
  const uint32_t t2 = topk_cut_key(isa, lists.data(), lists.size(), kk / 2 + kk / 8, kmin, kmax, &c0);
  c0 = std::min(c0, kk);
  uint32_t lo = t2, hi = kmax;
  size_t want = c0, at = 0;
  if (range == 1) {
    if (c0 == kk) return;  // (t2 cut nothing off: many equal keys)
    hi = t2 - 1;  // t2 > kmin here: count(>= kmin) = m >= kk
    lo = m > kk + kk / 16 ? topk_cut_key(isa, lists.data(), lists.size(), kk, kmin, kmax, nullptr) : kmin;
    want = kk - c0;
    at = c0;
  }
  if (ps.part_keys.size() < m + kFilterSlack) {
    ps.part_keys.resize(m + kFilterSlack);
    ps.part_idx.resize(m + kFilterSlack);
  }
  size_t mp = 0;
  for (const KeyList& l : lists)
    mp += topk_gather_range(isa, l.keys, l.idx, l.m, lo, hi, ps.part_keys.data() + mp, ps.part_idx.data() + mp);
  ps.next_row.reset();
  const uint64_t* items = top_items(isa, ps.part_keys.data(), ps.part_idx.data(), mp, want, lo, hi, ps);
  topk_write(isa, items, want, job.window, dtype, job.out_idx + at, job.out_val + at, ps.next_row);
}

// One long row over the pool, in one parallel_for whose workers claim tasks in order: step 2 in contiguous
// parts (tasks 0 .. parts - 1, one per worker, at most one per 16K scores), then steps 3-4 in two key ranges
// (select_and_write_range: tasks parts and parts + 1) on the pieces' survivor lists in order, or, when the
// keys are all equal or k is small, as one range on those lists concatenated (the same list as one pass,
// whatever the parts). A worker that finishes its part goes on to a range without a second hand-off
// through the pool (a worker's wake-up, about a microsecond); it waits for the other parts first.
// Step 1 runs inside part 0, so that waking the other workers overlaps it; they wait for the threshold.
// Nothing waits on a task nobody has claimed: tasks are claimed in order, so every part is claimed, by a
// running thread, before any range is (with one thread running, it does every task in turn).
// (Pulling their first lines toward the cache while they wait, with part 0 shorter by as much, measured no
// faster: the threads filter at the same rate either way.)
// Returns false, having written nothing, if the sample was unlucky (fewer than k survivors): the caller
// then calls it again with sample = false (t = 0: keep everything).
bool row_split_pass(Pool& pool, Isa isa, const RowJob& job, int dtype, int64_t k, std::vector<TopkScratch>& scratch,
                    bool sample) {
  TopkScratch& s = scratch[0];
  const size_t kk = static_cast<size_t>(std::min<int64_t>(k, job.n));
  const int64_t parts = std::clamp<int64_t>(job.n / kPartMin, 1, pool.size());
  // Each part is kFilterStreams pieces (topk_filter_pieces), each with a survivor list of its own.
  const int64_t pieces = parts * kFilterStreams;
  const int64_t piece_len = (job.n + pieces - 1) / pieces;
  // NOTE: each piece has its own piece_len + slack region, so that one piece's slack never overlaps the
  // survivors another thread is writing.
  const int64_t stride = piece_len + static_cast<int64_t>(kFilterSlack);
  ensure(s, pieces * stride);
  s.sample.reserve(2 * kSampleBlocks * 16);  // (sample_threshold's most: so that part 0 cannot throw, which
                                              // would leave the other parts waiting for t)
  std::vector<FilterOut> outs(static_cast<size_t>(pieces));
  std::vector<KeyList> lists(static_cast<size_t>(pieces));
  std::atomic<bool> have_t{false};
  uint32_t t = 0;  // (written before have_t, read after it)
  std::atomic<int64_t> next_task{0}, filtered{0};
  std::vector<int> owner(static_cast<size_t>(parts));  // the worker that filtered each part
  bool lucky = true;  // (written by range 0 only, read after the join)
  const int64_t tasks = parts + 2;
  pool.parallel_for(std::min<int64_t>(pool.size(), tasks), [&](int64_t, int w) {
    for (int64_t task; (task = next_task.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
      if (task < parts) {
        int64_t bounds[kFilterStreams + 1];
        for (int j = 0; j <= kFilterStreams; j++) bounds[j] = std::min(job.n, (task * kFilterStreams + j) * piece_len);
        if (sample && task == 0) {
          t = sample_threshold(isa, job.window, dtype, job.n, static_cast<int64_t>(kk), s.sample);
          have_t.store(true, std::memory_order_release);
        } else if (sample) {
          while (!have_t.load(std::memory_order_acquire)) sched_yield();
        }
        const int64_t first = task * kFilterStreams * stride;
        topk_filter_pieces(isa, job.window, dtype, bounds, sample ? t : 0, s.keys.data() + first,
                           s.idx.data() + first, static_cast<size_t>(stride), outs.data() + task * kFilterStreams);
        for (int64_t j = task * kFilterStreams; j < (task + 1) * kFilterStreams; j++)
          lists[j] = KeyList{s.keys.data() + j * stride, s.idx.data() + j * stride, outs[j].m};
        owner[task] = w;
        filtered.fetch_add(1, std::memory_order_release);
        continue;
      }
      wait_for([&] { return filtered.load(std::memory_order_acquire) == parts; });
      const FilterOut all = merged(outs.data(), outs.size());
      const int range = static_cast<int>(task - parts);
      if (all.m < kk) {  // the sample was unlucky: keep everything (again, with t = 0)
        if (range == 0) lucky = false;
        continue;
      }
      const bool two_ranges = all.kmin < all.kmax && kk >= 256;  // (a small k: ordering is not the work)
      if (!two_ranges && range == 1) continue;  // (range 0 does it all)
      if (two_ranges) {  // (out of memory here: the pool rethrows it after the join; nothing waits on a range)
        select_and_write_range(isa, job, dtype, kk, scratch[static_cast<size_t>(w)], lists, all.m, all.kmin,
                               all.kmax, range);
      } else {
        select_and_write(isa, job, dtype, k, s, concatenate(s, lists.data(), lists.size()), all.kmin, all.kmax);
      }
      // The survivor lists another worker wrote, and this one has read: dropped from the caches, so that the
      // next call's writer (likely that worker again) does not have to take each line back from this
      // worker's cache first. When the two vCPUs sat on different core complexes (a cache-line round trip
      // of 320-350 ns), a split 128K-score row took 34-35 us without this and 25.8-26.4 with it (filter
      // parts of 20 us instead of 12; C++ harness, in-process A/B); at 50-90 ns it measured neither faster
      // nor slower. (Evicting on the writer's side instead, after its filter, was 2 us slower at 55 ns.)
      for (int64_t c = 0; c < parts; c++)
        if (owner[c] != w)
          for (int64_t j = c * kFilterStreams; j < (c + 1) * kFilterStreams; j++) {
            topk_evict(isa, lists[j].keys, (lists[j].m + kFilterSlack) * sizeof(uint32_t));
            topk_evict(isa, lists[j].idx, (lists[j].m + kFilterSlack) * sizeof(int32_t));
          }
    }
  });
  if (!lucky) return false;
  write_padding(job.out_idx, job.out_val, static_cast<int64_t>(kk), k);
  return true;
}

void row_split(Pool& pool, Isa isa, const RowJob& job, int dtype, int64_t k, std::vector<TopkScratch>& scratch) {
  if (!row_split_pass(pool, isa, job, dtype, k, scratch, true)) row_split_pass(pool, isa, job, dtype, k, scratch, false);
}

double ns_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

bool topk_splits_rows(int threads, int64_t rows, int64_t cols) {
  return threads > 1 && rows < threads * 2 && cols >= kSplitMin;
}

bool TopkSplitTuner::pick() {
  phase_ = calls_++ % kPeriod;
  if (phase_ < kAloneCalls) return false;
  if (phase_ < kAloneCalls + kSplitCalls) return true;
  return split_;
}

void TopkSplitTuner::record(double ns_per_score) {
  if (phase_ == 0) best_[0] = best_[1] = 1e300;
  // The first call each way is not counted: the first split call wakes the pool's threads (they fall asleep
  // during calls made alone), and so may the one after it.
  if (phase_ >= 1 && phase_ < kAloneCalls) best_[0] = std::min(best_[0], ns_per_score);
  if (phase_ >= kAloneCalls + 2 && phase_ < kAloneCalls + kSplitCalls) best_[1] = std::min(best_[1], ns_per_score);
  // NOTE: the fastest call of each way, measured a few calls apart: a call whose thread lost its core for
  // a time slice took a hundred times as long, and the machine's speed drifts over minutes.
  if (phase_ + 1 == kAloneCalls + kSplitCalls) split_ = best_[1] < best_[0];
}

int topk_execute(Pool& pool, Isa isa, std::vector<TopkScratch>& scratch, const glmk_topk_args& a,
                 glmk_status* st, TopkSplitTuner* tuner) {
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
  // Section: schedule. Few long rows: split each row, or one thread per row, whichever the tuner found
  // faster lately; otherwise runs of up to 8 consecutive rows per work item, so that a worker knows its
  // next row and can prefetch it.
  int64_t longest = 0;
  for (const RowJob& j : jobs) longest = std::max(longest, j.n);
  const bool may_split = topk_splits_rows(threads, rows, longest);
  const bool split = may_split && (!tuner || tuner->pick());
  const auto t0 = std::chrono::steady_clock::now();
  if (split) {
    for (int64_t r = 0; r < rows; r++) {
      if (jobs[r].n >= kSplitMin) row_split(pool, isa, jobs[r], a.dtype, k, scratch);
      else row_whole(isa, jobs[r], a.dtype, k, scratch[0], nullptr);
    }
  } else if (rows == 1) {  // (no need for the pool)
    row_whole(isa, jobs[0], a.dtype, k, scratch[0], nullptr);
  } else {
    // Each worker claims runs of consecutive rows from a shared counter, and claims its next run before it
    // starts the last row of the current one, so that even that row prefetches the row that follows it.
    // Runs shrink toward the end (a quarter of the rows left per thread, at most 8) so that the workers
    // finish close together. Which worker does a row never changes its result.
    std::atomic<int64_t> next_row{0};
    const int64_t most = std::clamp<int64_t>(rows / (threads * 2), 1, 8);
    auto claim = [&](int64_t* end) {
      int64_t b = next_row.load(std::memory_order_relaxed);
      for (;;) {
        if (b >= rows) return rows;
        const int64_t n = std::clamp<int64_t>((rows - b) / (threads * 4), 1, most);
        if (next_row.compare_exchange_weak(b, b + n, std::memory_order_relaxed)) {
          *end = b + n;
          return b;
        }
      }
    };
    pool.parallel_for(threads, [&](int64_t, int w) {  // (out of memory: the pool rethrows it after the join)
      int64_t end = 0, r = claim(&end);
      while (r < rows) {
        int64_t next = r + 1, next_end = end;
        if (next == end) next = claim(&next_end);
        row_whole(isa, jobs[r], a.dtype, k, scratch[w], next < rows ? &jobs[next] : nullptr);
        r = next;
        end = next_end;
      }
    });
  }
  if (may_split && tuner) {
    int64_t scores = 1;
    for (const RowJob& j : jobs) scores += j.n;
    tuner->record(ns_since(t0) / static_cast<double>(scores));
  }
  return ok(st);
}

}  // namespace glmk::cpu
