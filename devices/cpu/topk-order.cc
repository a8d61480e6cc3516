// Ordering the survivors of the CPU top-k filter: MSD bucketing on each key's distance below the largest.
//
// A survivor list holds far fewer keys than the row (1.4 k to 2 k), spread over a known key range
// [kmin, kmax]. On AVX-512, a few vector counts find a cut key that keeps only a few more than kk of them
// (cut_key), and a compaction drops the rest. One counting pass over the digit d = (kmax - key) >> shift
// (about two buckets per survivor) lays out the buckets, and one stable scatter puts the survivors in
// bucket order. (Lists not cut count up to the bucket that holds the kk-th key and drop the later buckets.)
// A big bucket is split the same way on its own key range, until every bucket is small or holds one key;
// then one pass that only moves items inside buckets finishes the order (vector compare-exchange steps
// and a scan on AVX-512, an insertion pass elsewhere). Every step is stable and the input is in index
// order, so equal keys stay in index order: a bucket of one key is finished as is.
#include <algorithm>
#include <cstring>

#include "topk.hpp"

namespace glmk::cpu {

namespace {

constexpr int kMaxDigitBits = 12;  // (digits fit in uint16_t)
constexpr size_t kInsertionMax = 24;  // buckets this small are left to the finishing pass

inline int bit_length(uint32_t x) { return x ? 32 - __builtin_clz(x) : 0; }

// About two buckets per key (fewer shared buckets, fewer long insertion moves): log2(n) + 1 bits, 4 to 12.
inline int digit_bits(size_t n) {
  return std::clamp(bit_length(static_cast<uint32_t>(std::min<size_t>(n, 1u << 30))) + 1, 4, kMaxDigitBits);
}

// The digit layout for keys in [kmin, kmax]: d = (kmax - key) >> shift, d < buckets.
struct Digit {
  int shift;
  uint32_t buckets;
};

inline Digit digit_for(uint32_t kmin, uint32_t kmax, size_t n) {
  const int shift = std::max(0, bit_length(kmax - kmin) - digit_bits(n));
  return Digit{shift, ((kmax - kmin) >> shift) + 1};
}

inline uint32_t key_of(uint64_t item) { return ~static_cast<uint32_t>(item >> 32); }

// Counts n items into buckets (digit_at(j): item j's bucket) and lays out the buckets up to the one that
// holds the kk-th item: on return pos[d] is where bucket d starts, for d <= *last. Buckets of more than
// kInsertionMax items that may hold more than one key are added to spans, with `base` added to their
// start. Returns how many items those buckets hold (at least kk).
template <class DigitAt>
uint32_t count_buckets(Isa isa, size_t n, size_t kk, Digit dg, DigitAt digit_at, uint32_t* pos, uint32_t* last,
                       uint32_t base, std::vector<OrderSpan>& spans, LinePrefetcher& pf) {
  std::memset(pos, 0, sizeof(uint32_t) * dg.buckets);
  PrefetchTicker pt(pf, 6);  // (periods: see PrefetchTicker)
  for (size_t j = 0; j < n; j++) {
    pos[digit_at(j)]++;
    pt.tick();
  }
  return topk_bucket_starts(isa, pos, dg.buckets, kk, last, dg.shift > 0 ? kInsertionMax : UINT32_MAX, base, spans);
}

// Scatters (stably) n items that all fall in buckets laid out by count_buckets to out.
template <class DigitAt, class ItemAt>
void scatter_buckets(size_t n, DigitAt digit_at, ItemAt item_at, uint32_t* pos, uint64_t* out, LinePrefetcher& pf) {
  PrefetchTicker pt(pf, 3);
  for (size_t j = 0; j < n; j++) {
    out[pos[digit_at(j)]++] = item_at(j);
    pt.tick();
  }
}

// Splits the span's items into buckets on their own key range (via tmp, same offsets).
void split_span(Isa isa, uint64_t* a, uint64_t* tmp, OrderSpan sp, std::vector<OrderSpan>& spans,
                LinePrefetcher& pf) {
  uint64_t* x = a + sp.begin;
  uint32_t kmin = 0xFFFFFFFFu, kmax = 0;
  for (uint32_t j = 0; j < sp.count; j++) {
    const uint32_t k = key_of(x[j]);
    kmin = std::min(kmin, k);
    kmax = std::max(kmax, k);
  }
  if (kmin == kmax) return;  // one key: already in index order
  const Digit dg = digit_for(kmin, kmax, sp.count);
  const auto digit_at = [&](size_t j) { return (kmax - key_of(x[j])) >> dg.shift; };
  uint32_t pos[1u << kMaxDigitBits], last;
  count_buckets(isa, sp.count, sp.count, dg, digit_at, pos, &last, sp.begin, spans, pf);
  scatter_buckets(sp.count, digit_at, [&](size_t j) { return x[j]; }, pos, tmp + sp.begin, pf);
  std::memcpy(x, tmp + sp.begin, sp.count * sizeof(uint64_t));
}

// Insertion sort for items that are nearly in order (each at most a small bucket away from its place).
// NOTE: branch-free in the common case, where an item moves at most one place: a compare-exchange with
// its left neighbour kept in registers. The branch on a longer move is rare; a branch on every
// compare-exchange mispredicted about a third of the time and doubled the cost of ordering.
void insertion_sort(uint64_t* a, size_t n, LinePrefetcher& pf) {
  if (n < 2) return;
  PrefetchTicker pt(pf, 3);
  uint64_t prev = a[0];  // a[j - 1]
  uint64_t prev2 = 0;    // a[j - 2] (0 is no greater than any item)
  for (size_t j = 1; j < n; j++) {
    const uint64_t x = a[j];
    const uint64_t swap = (prev ^ x) & (0 - static_cast<uint64_t>(x < prev));  // masks, not branches: GCC
    const uint64_t lo = prev ^ swap, hi = x ^ swap;                               // branches on std::min
    a[j - 1] = lo;
    a[j] = hi;
    if (prev2 > lo) {  // lo goes further left
      size_t q = j - 1;
      for (; q > 0 && a[q - 1] > lo; q--) a[q] = a[q - 1];
      a[q] = lo;
    }
    prev2 = std::max(prev2, lo);  // what a[j - 1] holds now
    prev = hi;
    pt.tick();
  }
}

}  // namespace

// topk_cut_key (topk.hpp): the secant between the two bounds first, halving when it stalls. Cutting there
// before bucketing costs a few counts and one compaction; it spares the scalar counting loop about a third
// of its items (1.4 k to 2 k survivors come out of the filter), and the buckets come out narrower.
uint32_t topk_cut_key(Isa isa, const KeyList* lists, size_t nlists, size_t kk, uint32_t kmin, uint32_t kmax,
                      size_t* count) {
  constexpr int kCounts = 6;
  const size_t want = kk + kk / 64, enough = kk + kk / 32;
  uint32_t lo = kmin, hi = kmax;  // count(>= lo) >= kk; count(>= t) < kk for every t > hi
  size_t c_lo = 0, c_hi = 0;      // count(>= lo), count(>= hi + 1) (0 for hi = kmax: a bound, not a count)
  for (size_t l = 0; l < nlists; l++) c_lo += lists[l].m;
  for (int i = 0; i < kCounts && lo < hi && c_lo > enough; i++) {
    // The secant from (lo, c_lo) to (hi + 1, c_hi) aimed at `want`; every other step halves instead.
    const double span = static_cast<double>(hi) + 1.0 - static_cast<double>(lo);
    double f = i % 2 == 0 ? static_cast<double>(c_lo - want) / static_cast<double>(c_lo - c_hi) : 0.5;
    const uint32_t t = lo + static_cast<uint32_t>(std::clamp(f * span, 1.0, span - 1.0));  // in (lo, hi]
    size_t c = 0;
    for (size_t l = 0; l < nlists; l++) c += topk_count_at_least(isa, lists[l].keys, lists[l].m, t);
    if (c >= kk) {
      lo = t;
      c_lo = c;
    } else {
      hi = t - 1;
      c_hi = c;
    }
  }
  if (count) *count = c_lo;
  return lo;
}

const uint64_t* top_items(Isa isa, uint32_t* keys, int32_t* idx, size_t m, size_t kk, uint32_t kmin,
                          uint32_t kmax, TopkScratch& s) {
  if (s.items.size() < m) {
    s.items.resize(m);
    s.items2.resize(m);
  }
  uint64_t* out = s.items.data();
  if (kmin == kmax) {  // one key: the first kk in index order
    for (size_t j = 0; j < kk; j++) out[j] = item_of(keys[j], idx[j]);
    return out;
  }
  // First cut the survivors down to a few more than kk, with vector passes; then all of them are ordered
  // (dropping the few extra ones would cost another compaction). Only on AVX-512, where the compaction is
  // a vector pass and the cut measured faster; on the AVX2 path an A/B did not show a gain (0.96 to 1.11,
  // noise).
  size_t upto = kk;
  if (isa >= Isa::avx512 && m > kk + kk / 16) {
    const KeyList all{keys, idx, m};
    kmin = topk_cut_key(isa, &all, 1, kk, kmin, kmax, nullptr);
    m = topk_compact(isa, keys, idx, m, kmin);
    upto = m;
  }
  // Bucket once; split big buckets until every bucket is small or of one key (s.spans is a work list that
  // grows as it goes); then one pass whose moves stay inside buckets finishes the order.
  s.spans.clear();
  const Digit dg = digit_for(kmin, kmax, m);
  // The digits come from a vector pass (the scalar loops then only load them: no variable shifts there).
  if (s.digits.size() < m) s.digits.resize(m);
  const uint16_t* digit = s.digits.data();
  const auto digit_at = [&](size_t j) { return static_cast<uint32_t>(digit[j]); };
  topk_digits(isa, keys, m, kmax, dg.shift, s.digits.data());
  uint32_t pos[1u << kMaxDigitBits], last;
  const uint32_t head = count_buckets(isa, m, upto, dg, digit_at, pos, &last, 0, s.spans, s.next_row);
  if (head < m) {
    // Only the buckets up to the last are ordered: drop the rest first (their keys are below the last
    // bucket's lowest), with a vector pass, rather than carry them through the scatter.
    const uint64_t span = (static_cast<uint64_t>(last) + 1) << dg.shift;  // kmax - key < span: in
    m = topk_compact(isa, keys, idx, m, static_cast<uint32_t>(kmax - (span - 1)));
    topk_digits(isa, keys, m, kmax, dg.shift, s.digits.data());
  }
  scatter_buckets(m, digit_at, [&](size_t j) { return item_of(keys[j], idx[j]); }, pos, out, s.next_row);
  for (size_t i = 0; i < s.spans.size(); i++)
    split_span(isa, out, s.items2.data(), s.spans[i], s.spans, s.next_row);
  if (dg.shift > 0 && !topk_finish_order(isa, out, head, s.next_row)) insertion_sort(out, head, s.next_row);
  return out;
}

}  // namespace glmk::cpu
