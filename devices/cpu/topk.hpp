// Deterministic top-k on the CPU device (SPEC 3).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "glmk/device.h"
#include "glmk/score-key.h"
#include "isa.hpp"
#include "stream.hpp"

namespace glmk::cpu {

// Score i of a window, widened to f32 bits (exact).
inline uint32_t score_bits(const void* w, int dtype, int64_t i) {
  switch (dtype) {
    case GLMK_F32: {
      uint32_t b;
      std::memcpy(&b, static_cast<const char*>(w) + 4 * i, 4);
      return b;
    }
    case GLMK_BF16: return glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(w)[i]);
    default: return glmk_f16_to_f32_bits(static_cast<const uint16_t*>(w)[i]);
  }
}

// A bucket of sort items too big for the finishing pass, still to be split: items [begin, begin + count).
struct OrderSpan {
  uint32_t begin, count;
};

// Pulls a region (the next row) toward the L2 cache one line per few calls to tick(), from inside the
// compute-bound loops of this row, so that the next row's memory reads overlap this row's compute.
// Prefetches are hints: they never fault, and they leave results alone.
class LinePrefetcher {
 public:
  // The region [p, p + bytes), after `spots` lines spaced `spot_stride` bytes from p (where the row's
  // sample will read first).
  void reset(const void* p = nullptr, size_t bytes = 0, size_t spots = 0, size_t spot_stride = 0) {
    base_ = p_ = static_cast<const char*>(p);
    end_ = p_ + bytes;
    spots_ = spots;
    spot_stride_ = spot_stride;
    spot_ = 0;
  }
  // One line per `period` ticks (see PrefetchTicker for the periods used).
  void set_period(unsigned period) {
    period_ = period;
    countdown_ = std::min(countdown_, period);
  }
  void tick() {
    if (--countdown_ != 0) return;
    countdown_ = period_;
    if (spot_ < spots_) {
      __builtin_prefetch(base_ + spot_++ * spot_stride_, 0, 2);  // prefetcht1: to L2
    } else if (p_ < end_) {
      __builtin_prefetch(p_, 0, 2);
      p_ += 64;
    }
  }
 private:
  const char* base_ = nullptr;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  size_t spots_ = 0, spot_stride_ = 0, spot_ = 0;
  unsigned period_ = 3, countdown_ = 3;
};

// A loop's own copy of a LinePrefetcher, written back when the loop ends, so that its members live in
// registers. NOTE: ticking the shared one from a loop that stores through uint32_t or vector pointers
// (which may alias its members) reloads and stores them on every tick: with nothing to prefetch, that
// alone doubled the time of the counting loop.
// The period suits the loop: about one line per 3 ticks keeps the request rate near one thread's share
// of memory bandwidth; faster, and the prefetches queue up and stall the loop they sit in. The counting
// loop (a tick every 1.4 ns) stalls the most per prefetch and takes one per 6 ticks; the vector
// compare-exchange passes (a tick per 8 items, 2 ns) stall the least and take one per 2 (in-process A/B,
// 512x32768: about 1.7% faster than 3 everywhere over 7 runs, 0.971 to 1.004; 128K-score rows unchanged).
// The output writes (a tick per 16 outputs) take one per tick: 512x32768 about 1% faster (5 runs, 0.981
// to 0.996). Lower rates everywhere (20/12/6) were 3% slower, higher ones (6/2/1) 4-5% slower.
// The AVX-512 filter (a tick per 16 scores, the row itself mostly in L2) takes one per 6 ticks, so that
// the next row's fetch starts before ordering and is spread over more of the row's time: 512x32768 about
// 3% faster (in-process A/B, 6 runs at periods 3 to 8: 0.961 to 0.985; period 2: 0.990, 1.009), 128K-score
// rows unchanged (0.975 to 1.003).
class PrefetchTicker {
 public:
  PrefetchTicker(LinePrefetcher& home, unsigned period) : home_(home), pf_(home) { pf_.set_period(period); }
  ~PrefetchTicker() { home_ = pf_; }
  PrefetchTicker(const PrefetchTicker&) = delete;
  PrefetchTicker& operator=(const PrefetchTicker&) = delete;
  void tick() { pf_.tick(); }
 private:
  LinePrefetcher& home_;
  LinePrefetcher pf_;
};

// Appends (key, index) of every score in window[begin, end) whose key is >= t, in index order; the AVX-512
// path ticks pf (the next row's prefetch) as it goes. t = 0 keeps everything. keys and idx need
// kFilterSlack entries of room past the last survivor (the vector paths store whole vectors).
constexpr size_t kFilterSlack = 16;
struct FilterOut {
  size_t m;                    // survivors appended
  uint32_t kmin = 0xFFFFFFFFu;  // the smallest and largest key of the survivors
  uint32_t kmax = 0;
};
FilterOut topk_filter(Isa isa, const void* window, int dtype, int64_t begin, int64_t end, uint32_t t,
                      uint32_t* keys, int32_t* idx, LinePrefetcher& pf);

// topk_filter on kFilterStreams pieces [bounds[j], bounds[j + 1]) of a window, piece j appended to keys
// and idx + j * stride (each with kFilterSlack of room past its survivors), its result in outs[j]: the
// same survivors as one topk_filter over [bounds[0], bounds[kFilterStreams]), in pieces. On VBMI2 the
// pieces are read side by side (more memory streams in flight); elsewhere one after another.
constexpr int kFilterStreams = 2;
void topk_filter_pieces(Isa isa, const void* window, int dtype, const int64_t* bounds, uint32_t t, uint32_t* keys,
                        int32_t* idx, size_t stride, FilterOut* outs);

// Per-worker buffers, kept between calls so that big rows do not fault fresh pages every time.
struct TopkScratch {
  std::vector<uint32_t> keys;
  std::vector<int32_t> idx;
  std::vector<uint64_t> items, items2;
  std::vector<OrderSpan> spans;
  std::vector<uint32_t> sample;   // sample_threshold's keys
  std::vector<uint16_t> digits;   // top_items' bucket of each survivor
  std::vector<uint32_t> part_keys;  // a split row's survivors in one key range (row_split)
  std::vector<int32_t> part_idx;
  LinePrefetcher next_row;  // ticked by top_items
};

// The sort item of a survivor: ascending items are the output order (key descending, then index ascending).
inline uint64_t item_of(uint32_t key, int32_t index) {
  return (static_cast<uint64_t>(~key) << 32) | static_cast<uint32_t>(index);
}

// The first kk (1 <= kk <= m) survivors (keys, idx)[0..m) in output order, as items in s.items.
// The survivors are in index order and their keys lie in [kmin, kmax] (the closer the bounds, the less
// work); keys and idx are overwritten.
const uint64_t* top_items(Isa isa, uint32_t* keys, int32_t* idx, size_t m, size_t kk, uint32_t kmin,
                          uint32_t kmax, TopkScratch& s);

// Writes the outputs of items[0..c) (see item_of): indices, and values widened to f32 (NaN canonical);
// ticks pf (the next row's prefetch) as it goes.
void topk_write(Isa isa, const uint64_t* items, size_t c, const void* window, int dtype, int32_t* out_idx,
                float* out_val, LinePrefetcher& pf);

// keys[i] = key of score i, i < n, with their min and max (the filter with t = 0, less the indices).
void topk_key_all(Isa isa, const void* scores, int dtype, size_t n, uint32_t* keys, uint32_t* kmin, uint32_t* kmax);

// Moves the keys >= t of keys[0..n) to the front, in order, with their idx entries when idx is not null;
// returns how many.
size_t topk_compact(Isa isa, uint32_t* keys, int32_t* idx, size_t n, uint32_t t);

// Copies (key, index) of every key in [lo, hi] of keys[0..n) to out_keys / out_idx, in order; returns how
// many. The outputs need kFilterSlack entries of room past the last one (whole-vector stores).
size_t topk_gather_range(Isa isa, const uint32_t* keys, const int32_t* idx, size_t n, uint32_t lo, uint32_t hi,
                         uint32_t* out_keys, int32_t* out_idx);

// Survivors (keys, idx)[0..m): one list, or one part of a list split into several.
struct KeyList {
  const uint32_t* keys;
  const int32_t* idx;
  size_t m;
};

// A key t in [kmin, kmax] with at least kk of the lists' keys >= t (kk <= their total, every key in [kmin,
// kmax]), and at most about kk + kk / 32 of them when a few vector counts find one (topk-order.cc);
// *count (when given): how many are >= t.
uint32_t topk_cut_key(Isa isa, const KeyList* lists, size_t nlists, size_t kk, uint32_t kmin, uint32_t kmax,
                      size_t* count);

// d[j] = (kmax - keys[j]) >> shift for j < n (every key <= kmax, every result < 65536).
void topk_digits(Isa isa, const uint32_t* keys, size_t n, uint32_t kmax, int shift, uint16_t* d);

// Turns bucket counts pos[0..buckets) into bucket starts, up to the first bucket *last at which the running
// total reaches kk (the total of all counts is at least kk); returns that total. Buckets of more than
// `big` items are appended to spans as {base + start, count}.
uint32_t topk_bucket_starts(Isa isa, uint32_t* pos, uint32_t buckets, size_t kk, uint32_t* last, uint32_t big,
                            uint32_t base, std::vector<OrderSpan>& spans);

// Sorts a[0..n), whose disorder stays inside runs of at most a few dozen items, if the ISA has a vector
// path for it (AVX-512); returns false, having done nothing, otherwise.
bool topk_finish_order(Isa isa, uint64_t* a, size_t n, LinePrefetcher& pf);

// Drops the lines of [p, p + bytes) from every cache (AVX-512 paths, where CPUID shows CLFLUSHOPT;
// elsewhere nothing). A hint for memory another thread will write next: see row_split_pass. Never
// changes a result.
void topk_evict(Isa isa, const void* p, size_t bytes);

// How many of keys[0..n) are >= t.
size_t topk_count_at_least(Isa isa, const uint32_t* keys, size_t n, uint32_t t);

// The j-th largest (from 0) of a[0..n), n <= 64, j < n: the value nth_element would put at n - 1 - j.
uint32_t topk_kth_largest(Isa isa, const uint32_t* a, size_t n, size_t j);

// Whether topk_execute may split each row over the pool (few rows, each long): then a call small enough to
// run inline runs with the stream's pool, not alone.
bool topk_splits_rows(int threads, int64_t rows, int64_t cols);

// Chooses, for calls that may split rows, between splitting them and one thread per row, by the time each
// took per score lately. The output is the same either way; only the speed differs, and by the machine:
// with both threads on one core complex, a split 128K-score row took 24-26 us against 31 us alone (AMD
// EPYC, 2 vCPUs), but when the virtual machine's two vCPUs sat on different core complexes (a cache line
// round trip of 330 ns instead of 60-90 ns; the same host switched between the two for minutes at a time)
// the split took 42-46 us against 34 us alone. (Since the split's survivor lists are evicted after they
// are read, and each thread reads two streams, the C++ harness measured it faster at both placements:
// 21-25 us against 28-29 alone at 55 ns, 25-26.5 against 29-30 at 340 ns. The tuner stays: other
// machines may place threads worse still.)
class TopkSplitTuner {
 public:
  bool pick();  // split this call?
  void record(double ns_per_score);  // the call pick() was last asked about took this long
 private:
  // Every kPeriod calls: kAloneCalls alone, then kSplitCalls split, timed; the rest go the faster way.
  static constexpr uint64_t kPeriod = 64, kAloneCalls = 3, kSplitCalls = 6;
  uint64_t calls_ = 0, phase_ = 0;
  double best_[2] = {1e300, 1e300};  // this period's fastest call, alone / split (ns per score)
  bool split_ = true;
};

// Runs on the stream thread, or inline on the calling thread (with the stream idle). Checks lengths /
// rowStarts values (they live in device memory). tuner: null, or the device's (calls never overlap).
int topk_execute(Pool& pool, Isa isa, std::vector<TopkScratch>& scratch, const glmk_topk_args& a,
                 glmk_status* st, TopkSplitTuner* tuner = nullptr);

}  // namespace glmk::cpu
