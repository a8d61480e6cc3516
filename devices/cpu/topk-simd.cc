// The vectorized pieces of the CPU top-k, each with a scalar path and AVX-512 (the filter and the count
// also AVX2; the filter also VBMI2, one stream or pieces side by side) that give exactly the same result:
// the filter (the one pass over every score: key each score and keep those at or above a threshold),
// keying and counting the sample, compaction, the survivors' bucket digits and bucket starts, the pass
// that finishes their order, and the output write; and the eviction of a split row's survivor lists.
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "glmk/score-key.h"
#include "topk.hpp"

namespace glmk::cpu {

namespace {

// Scores ahead of the current one that the vector paths prefetch (measured: 10-15% on cold rows).
constexpr int64_t kPrefetchAhead = 1024;
// The filter's period for the next row's prefetch (see PrefetchTicker): one line per 6 steps of 16 scores.
constexpr unsigned kFilterPeriod = 6;

FilterOut filter_scalar(const void* w, int dtype, int64_t begin, int64_t end, uint32_t t, uint32_t* keys,
                        int32_t* idx, FilterOut r) {
  for (int64_t i = begin; i < end; i++) {
    uint32_t k = glmk_key_from_f32_bits(score_bits(w, dtype, i));
    keys[r.m] = k;
    idx[r.m] = static_cast<int32_t>(i);
    const bool keep = k >= t;
    r.m += keep;  // branch-free append
    r.kmin = std::min(r.kmin, keep ? k : 0xFFFFFFFFu);
    r.kmax = std::max(r.kmax, keep ? k : 0u);
  }
  return r;
}

#if defined(__x86_64__)
// lanes[mask]: the lanes set in an 8-bit mask, lowest first (then zeros): a permutation that compresses.
struct Compress8Table {
  alignas(32) uint32_t lanes[256][8];
  constexpr Compress8Table() : lanes() {
    for (unsigned mask = 0; mask < 256; mask++) {
      unsigned c = 0;
      for (unsigned l = 0; l < 8; l++)
        if (mask >> l & 1) lanes[mask][c++] = l;
    }
  }
};
constexpr Compress8Table kCompress8;

// Section: AVX2 (8 scores per step). Signed compare on the key with its top bit flipped.
__attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt"))) inline __m256i load8(const void* w, int dtype,
                                                                                 int64_t i) {
  if (dtype == GLMK_F32) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const float*>(w) + i));
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
  if (dtype == GLMK_BF16) return _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
  return _mm256_castps_si256(_mm256_cvtph_ps(h));
}

__attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt"))) FilterOut filter_avx2(
    const void* w, int dtype, int64_t begin, int64_t end, uint32_t t, uint32_t* keys, int32_t* idx) {
  const __m256i abs = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
  const __m256i ts = _mm256_set1_epi32(static_cast<int32_t>(t ^ 0x80000000u));
  const __m256i flip = _mm256_set1_epi32(static_cast<int32_t>(0x80000000u)), step = _mm256_set1_epi32(8);
  __m256i vidx = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int32_t>(begin)));
  // Signed keys (top bit flipped); the start values flip to FilterOut's.
  __m256i vmin = _mm256_set1_epi32(INT32_MAX), vmax = _mm256_set1_epi32(INT32_MIN);
  size_t m = 0;
  int64_t i = begin;
  const char* base = static_cast<const char*>(w);
  const int64_t es = dtype == GLMK_F32 ? 4 : 2;
  for (; i + 8 <= end; i += 8) {
    if ((i & 15) == 0) _mm_prefetch(base + (i + kPrefetchAhead) * es, _MM_HINT_T0);
    __m256i b = load8(w, dtype, i);
    __m256i s = _mm256_srai_epi32(b, 31);
    __m256i ks = _mm256_sub_epi32(_mm256_xor_si256(b, _mm256_and_si256(s, abs)), s);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(b, abs), inf);
    ks = _mm256_blendv_epi8(ks, abs, nan);
    __m256i below = _mm256_cmpgt_epi32(ts, ks);
    vmin = _mm256_min_epi32(vmin, _mm256_blendv_epi8(ks, _mm256_set1_epi32(INT32_MAX), below));  // survivors
    vmax = _mm256_max_epi32(vmax, _mm256_blendv_epi8(ks, _mm256_set1_epi32(INT32_MIN), below));  // only
    const unsigned keep = ~static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(below))) & 0xFFu;
    // Compress by table (AVX2 has no compress) and store whole vectors; the slack absorbs the rest.
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress8.lanes[keep]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys + m), _mm256_xor_si256(_mm256_permutevar8x32_epi32(ks, perm), flip));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + m), _mm256_permutevar8x32_epi32(vidx, perm));
    vidx = _mm256_add_epi32(vidx, step);
    m += static_cast<size_t>(__builtin_popcount(keep));
  }
  alignas(32) int32_t lo[8], hi[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lo), vmin);
  _mm256_store_si256(reinterpret_cast<__m256i*>(hi), vmax);
  FilterOut r{m};
  for (int j = 0; j < 8; j++) {
    r.kmin = std::min(r.kmin, static_cast<uint32_t>(lo[j]) ^ 0x80000000u);
    r.kmax = std::max(r.kmax, static_cast<uint32_t>(hi[j]) ^ 0x80000000u);
  }
  return filter_scalar(w, dtype, i, end, t, keys, idx, r);
}

// Section: AVX-512 (16 scores per step), compress-store of the survivors.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c"))) inline __m512i load16(const void* w,
                                                                                          int dtype,
                                                                                          int64_t i) {
  if (dtype == GLMK_F32) return _mm512_loadu_si512(static_cast<const float*>(w) + i);
  __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
  if (dtype == GLMK_BF16) return _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
  return _mm512_castps_si512(_mm512_cvtph_ps(h));
}

// The smallest of vmin's lanes and the largest of vmax's. (GCC 12's _mm512_reduce_* trip -Wuninitialized.)
__attribute__((target("avx512f"))) inline void reduce_min_max(__m512i vmin, __m512i vmax, uint32_t* kmin,
                                                              uint32_t* kmax) {
  alignas(64) uint32_t lo[16], hi[16];
  _mm512_store_si512(lo, vmin);
  _mm512_store_si512(hi, vmax);
  *kmin = *std::min_element(lo, lo + 16);
  *kmax = *std::max_element(hi, hi + 16);
}

// Keys of 16 f32 bit patterns (glmk_key_from_f32_bits, NaN canonical).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) inline __m512i keys16(__m512i b) {
  const __m512i abs = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  const __m512i flip = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u));
  const __m512i s = _mm512_srai_epi32(b, 31);
  const __m512i k = _mm512_xor_si512(_mm512_sub_epi32(_mm512_xor_si512(b, _mm512_and_si512(s, abs)), s), flip);
  return _mm512_mask_mov_epi32(k, _mm512_cmpgt_epi32_mask(_mm512_and_si512(b, abs), inf), _mm512_set1_epi32(-1));
}

// The filter in the key domain: every score keyed and compared as a key.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c"))) FilterOut filter_avx512_keys(
    const void* w, int dtype, int64_t begin, int64_t end, uint32_t t, uint32_t* keys, int32_t* idx,
    LinePrefetcher& pf) {
  const __m512i vt = _mm512_set1_epi32(static_cast<int32_t>(t)), step = _mm512_set1_epi32(16);
  __m512i vidx = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                  _mm512_set1_epi32(static_cast<int32_t>(begin)));
  __m512i vmin = _mm512_set1_epi32(-1), vmax = _mm512_setzero_si512();
  size_t m = 0;
  int64_t i = begin;
  const char* base = static_cast<const char*>(w);
  const int64_t es = dtype == GLMK_F32 ? 4 : 2;
  PrefetchTicker pt(pf, kFilterPeriod);
  for (; i + 16 <= end; i += 16) {
    _mm_prefetch(base + (i + kPrefetchAhead) * es, _MM_HINT_T0);  // a hint: never faults past the end
    pt.tick();
    const __m512i k = keys16(load16(w, dtype, i));
    const __mmask16 keep = _mm512_cmpge_epu32_mask(k, vt);
    vmin = _mm512_mask_min_epu32(vmin, keep, vmin, k);
    vmax = _mm512_mask_max_epu32(vmax, keep, vmax, k);
    // NOTE: compress in registers and store whole vectors (the slack past m absorbs the rest): a
    // compress-store to memory is microcoded and slow, and a branch on `keep` mispredicts.
    _mm512_storeu_si512(keys + m, _mm512_maskz_compress_epi32(keep, k));
    _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, vidx));
    vidx = _mm512_add_epi32(vidx, step);
    m += static_cast<size_t>(__builtin_popcount(keep));
  }
  FilterOut r{m};
  reduce_min_max(vmin, vmax, &r.kmin, &r.kmax);
  return filter_scalar(w, dtype, i, end, t, keys, idx, r);
}

// Section: AVX-512 VBMI2 (32 scores per step). The filter compares the scores as floats (see filter_avx512)
// and compresses only 16-bit offsets of its survivors within a chunk (vpcompressw), plus their raw 16-bit
// scores for bf16 / f16 rows: one or two compresses and stores per 32 scores instead of four. After each
// chunk, while it is in L1, the offsets become indices and the survivors' scores are gathered (f32) or
// widened (bf16, f16) into keys, keyed in place at the end. Same survivors, same order as filter_avx512:
// the pass over every score was compute-bound (a row in L2: 17 us for 128K f32 scores instead of 24).
constexpr int64_t kChunk = 4096;  // scores per chunk: offsets fit in 16 bits, and the chunk stays in L1

// Whether each of 32 scores at w + i (widened to f32) is >= T as a float, NaN included (NLT_UQ).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c"))) inline __mmask32 keep32(const void* w, int dtype,
                                                                                           int64_t i, __m512 vt,
                                                                                           __m512i* raw16) {
  if (dtype == GLMK_F32) {
    const float* f = static_cast<const float*>(w) + i;
    const __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(f), vt, _CMP_NLT_UQ);
    const __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(f + 16), vt, _CMP_NLT_UQ);
    return _mm512_kunpackw(k1, k0);
  }
  const __m512i h = _mm512_loadu_si512(static_cast<const uint16_t*>(w) + i);
  *raw16 = h;
  const __m256i lo = _mm512_castsi512_si256(h), hi = _mm512_extracti64x4_epi64(h, 1);
  __m512 a, b;
  if (dtype == GLMK_BF16) {
    a = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(lo), 16));
    b = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
  } else {
    a = _mm512_cvtph_ps(lo);
    b = _mm512_cvtph_ps(hi);
  }
  return _mm512_kunpackw(_mm512_cmp_ps_mask(b, vt, _CMP_NLT_UQ), _mm512_cmp_ps_mask(a, vt, _CMP_NLT_UQ));
}

// Appends a chunk's c survivors (offsets from `first`, and their raw 16-bit scores for bf16 / f16) to keys
// and idx as indices and f32 bits (gathered from the row for f32). Whole vectors: keys and idx have room
// past the last survivor.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c"))) inline void widen_chunk(
    const void* w, int dtype, int64_t first, const uint16_t* off, const uint16_t* raw, size_t c, uint32_t* keys,
    int32_t* idx) {
  const __m512i vfirst = _mm512_set1_epi32(static_cast<int32_t>(first));
  for (size_t j = 0; j < c; j += 16) {
    const __mmask16 live = c - j >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (c - j)) - 1);
    const __m512i ix = _mm512_add_epi32(
        vfirst, _mm512_cvtepu16_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(off + j))));
    __m512i bits;
    if (dtype == GLMK_F32) {
      bits = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, ix, w, 4);
    } else {
      const __m256i r = _mm256_load_si256(reinterpret_cast<const __m256i*>(raw + j));
      bits = dtype == GLMK_BF16 ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(r), 16)
                                : _mm512_castps_si512(_mm512_cvtph_ps(r));
    }
    _mm512_storeu_si512(idx + j, ix);
    _mm512_storeu_si512(keys + j, bits);
  }
}

// CLFLUSHOPT on every line of [p, p + bytes).
__attribute__((target("clflushopt"))) void evict_lines(const void* p, size_t bytes) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  for (uintptr_t a = first; a < reinterpret_cast<uintptr_t>(p) + bytes; a += 64)
    _mm_clflushopt(reinterpret_cast<void*>(a));
}

// 16-bit lane numbers 0..31, and the step between two 32-score blocks' offsets.
__attribute__((target("avx512f,avx512bw"))) inline __m512i lanes32() {
  return _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9,
                          8, 7, 6, 5, 4, 3, 2, 1, 0);
}

// S pieces of a row side by side: the first `len` scores (a multiple of 32) of piece j, from bounds[j],
// appended to list j (keys and idx + j * stride, m[j] already there), as raw f32 bits. Each step reads 32
// scores of every piece, so that as many memory streams are in flight. Measured (in-process A/B, a cold
// 128K-score row split over two threads, each part in two pieces): 1-2 us faster than one stream of 64K
// scores a thread, at either placement of the two vCPUs. Four pieces were no faster, and software
// prefetches with two (the hardware follows the streams) took the gain away; one stream prefetches (see
// kPrefetchAhead) and ticks pf.
template <int S>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi2,f16c,popcnt"))) void filter_vbmi2_streams(
    const void* w, int dtype, const int64_t* bounds, int64_t len, uint32_t tb, uint32_t* keys, int32_t* idx,
    size_t stride, size_t* m, LinePrefetcher& pf) {
  constexpr int64_t kPieceChunk = kChunk / S;  // (the chunks of all pieces stay in L1 together)
  static_assert(kPieceChunk % 32 == 0, "a piece's chunk is whole steps of 32 scores");
  const __m512 vt = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int32_t>(tb)));
  const __m512i step = _mm512_set1_epi16(32);
  // (whole-vector stores: room for 32 past the last survivor)
  alignas(64) uint16_t off[S][kPieceChunk + 32], raw[S][kPieceChunk + 32];
  const char* base = static_cast<const char*>(w);
  const int64_t es = dtype == GLMK_F32 ? 4 : 2;
  PrefetchTicker pt(pf, kFilterPeriod / 2);  // (the same lines per score as filter_avx512)
  for (int64_t i = 0; i < len; i += kPieceChunk) {
    const int64_t last = std::min(len, i + kPieceChunk);
    __m512i voff = lanes32(), h = _mm512_setzero_si512();
    size_t c[S] = {};
    for (int64_t p = i; p < last; p += 32) {
      if constexpr (S == 1) {
        _mm_prefetch(base + (bounds[0] + p + kPrefetchAhead) * es, _MM_HINT_T0);  // hints: never fault
        if (es == 4) _mm_prefetch(base + (bounds[0] + p + kPrefetchAhead + 16) * es, _MM_HINT_T0);
        pt.tick();
      }
#pragma GCC unroll 4
      for (int j = 0; j < S; j++) {
        const __mmask32 keep = keep32(w, dtype, bounds[j] + p, vt, &h);
        _mm512_storeu_si512(off[j] + c[j], _mm512_maskz_compress_epi16(keep, voff));
        if (es == 2) _mm512_storeu_si512(raw[j] + c[j], _mm512_maskz_compress_epi16(keep, h));
        c[j] += static_cast<size_t>(__builtin_popcount(keep));
      }
      voff = _mm512_add_epi16(voff, step);
    }
    for (int j = 0; j < S; j++) {
      widen_chunk(w, dtype, bounds[j] + i, off[j], raw[j], c[j], keys + j * stride + m[j], idx + j * stride + m[j]);
      m[j] += c[j];
    }
  }
}

// One stream: the scores from begin in whole steps, then the rest (fewer than 32) as filter_scalar does.
FilterOut filter_vbmi2(const void* w, int dtype, int64_t begin, int64_t end, uint32_t t, uint32_t tb, uint32_t* keys,
                       int32_t* idx, LinePrefetcher& pf) {
  const int64_t bounds[1] = {begin}, len = (end - begin) & ~int64_t{31};
  size_t m = 0;
  filter_vbmi2_streams<1>(w, dtype, bounds, len, tb, keys, idx, 0, &m, pf);
  FilterOut r{m};
  topk_key_all(Isa::avx512, keys, GLMK_F32, m, keys, &r.kmin, &r.kmax);  // the survivors, in place
  return filter_scalar(w, dtype, begin + len, end, t, keys, idx, r);
}

// The bits of the float threshold T for key t (-inf for every t at or below -inf's key; zero for t = zero's
// key), if the float compare gives key(x) >= t (see filter_avx512): false for a t above +inf's key (only
// NaN survives) and when MXCSR.DAZ is set.
inline bool float_threshold(uint32_t t, uint32_t* tb) {
  constexpr uint32_t kKeyNegInf = 0x00800000u, kKeyPosInf = 0xFF800000u;
  if (t > kKeyPosInf || (_mm_getcsr() & 0x40u)) return false;
  *tb = t <= kKeyNegInf ? GLMK_F32_NEG_INF_BITS : t == GLMK_KEY_ZERO ? 0u : glmk_f32_bits_from_key(t);
  return true;
}

// The filter on the scores as floats: !(x < T) is key(x) >= t, NaN included, where T is the float of
// key t (-inf for every t at or below -inf's key; the compare takes -0 == +0, as the keys do). Survivors
// are compressed as raw bits and keyed afterwards, in place: the pass over every score then costs 6
// vector uops a step instead of 17 (AVX-512 has two vector ports; the keying was the bottleneck).
// Falls back to the key domain for a t above +inf's key (only NaN survives) and when MXCSR.DAZ is set: the
// compare would then take every subnormal as zero. That only ever keeps more than it should (results stay
// exact: test/daz.test.ts), but a threshold among subnormals would keep all of them and every zero too.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c"))) FilterOut filter_avx512(
    Isa isa, const void* w, int dtype, int64_t begin, int64_t end, uint32_t t, uint32_t* keys, int32_t* idx,
    LinePrefetcher& pf) {
  uint32_t tb;
  if (!float_threshold(t, &tb)) return filter_avx512_keys(w, dtype, begin, end, t, keys, idx, pf);
  if (isa >= Isa::avx512vbmi) return filter_vbmi2(w, dtype, begin, end, t, tb, keys, idx, pf);
  const __m512 vt = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int32_t>(tb)));
  const __m512i step = _mm512_set1_epi32(16);
  __m512i vidx = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                  _mm512_set1_epi32(static_cast<int32_t>(begin)));
  size_t m = 0;
  int64_t i = begin;
  const char* base = static_cast<const char*>(w);
  const int64_t es = dtype == GLMK_F32 ? 4 : 2;
  PrefetchTicker pt(pf, kFilterPeriod);
  for (; i + 16 <= end; i += 16) {
    _mm_prefetch(base + (i + kPrefetchAhead) * es, _MM_HINT_T0);
    pt.tick();
    const __m512i b = load16(w, dtype, i);
    const __mmask16 keep = _mm512_cmp_ps_mask(_mm512_castsi512_ps(b), vt, _CMP_NLT_UQ);
    _mm512_storeu_si512(keys + m, _mm512_maskz_compress_epi32(keep, b));  // see the NOTE above
    _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, vidx));
    vidx = _mm512_add_epi32(vidx, step);
    m += static_cast<size_t>(__builtin_popcount(keep));
  }
  FilterOut r{m};
  topk_key_all(Isa::avx512, keys, GLMK_F32, m, keys, &r.kmin, &r.kmax);  // the survivors, in place
  return filter_scalar(w, dtype, i, end, t, keys, idx, r);
}

__attribute__((target("avx2"))) size_t count_avx2(const uint32_t* keys, size_t n, uint32_t t) {
  const __m256i flip = _mm256_set1_epi32(static_cast<int32_t>(0x80000000u));
  const __m256i ts = _mm256_set1_epi32(static_cast<int32_t>(t ^ 0x80000000u));
  size_t c = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256i k = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + j)), flip);
    c += 8 - static_cast<size_t>(__builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(ts, k)))));
  }
  for (; j < n; j++) c += keys[j] >= t;
  return c;
}

__attribute__((target("avx512f"))) size_t count_avx512(const uint32_t* keys, size_t n, uint32_t t) {
  const __m512i vt = _mm512_set1_epi32(static_cast<int32_t>(t)), one = _mm512_set1_epi32(1);
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();  // per-lane counts, no popcnt chain
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    acc0 = _mm512_mask_add_epi32(acc0, _mm512_cmpge_epu32_mask(_mm512_loadu_si512(keys + j), vt), acc0, one);
    acc1 = _mm512_mask_add_epi32(acc1, _mm512_cmpge_epu32_mask(_mm512_loadu_si512(keys + j + 16), vt), acc1, one);
  }
  alignas(64) uint32_t lanes[16];
  _mm512_store_si512(lanes, _mm512_add_epi32(acc0, acc1));
  size_t c = 0;
  for (uint32_t v : lanes) c += v;
  for (; j < n; j++) c += keys[j] >= t;
  return c;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c"))) size_t key_all_avx512(
    const void* w, int dtype, size_t n, uint32_t* keys, uint32_t* kmin, uint32_t* kmax) {
  __m512i vmin = _mm512_set1_epi32(-1), vmax = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i k = keys16(load16(w, dtype, static_cast<int64_t>(i)));
    vmin = _mm512_min_epu32(vmin, k);
    vmax = _mm512_max_epu32(vmax, k);
    _mm512_storeu_si512(keys + i, k);
  }
  reduce_min_max(vmin, vmax, kmin, kmax);
  return i;
}

__attribute__((target("avx512f,avx512bw"))) size_t digits_avx512(const uint32_t* keys, size_t n, uint32_t kmax,
                                                                  int shift, uint16_t* d) {
  const __m512i vmax = _mm512_set1_epi32(static_cast<int32_t>(kmax));
  const __m128i count = _mm_cvtsi32_si128(shift);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i v = _mm512_srl_epi32(_mm512_sub_epi32(vmax, _mm512_loadu_si512(keys + j)), count);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + j), _mm512_cvtepi32_epi16(v));
  }
  return j;
}

// 16 bucket counts a step: in-register prefix sums (four shifted adds), the bucket that reaches kk found
// by a compare. The scalar loop spent about 2 us per 32K row here.
__attribute__((target("avx512f"))) uint32_t bucket_starts_avx512(uint32_t* pos, uint32_t buckets, size_t kk,
                                                                 uint32_t* last, uint32_t big, uint32_t base,
                                                                 std::vector<OrderSpan>& spans) {
  const __m512i zero = _mm512_setzero_si512(), lane15 = _mm512_set1_epi32(15);
  const __m512i vkk = _mm512_set1_epi32(static_cast<int32_t>(std::min<size_t>(kk, UINT32_MAX)));
  const __m512i vbig = _mm512_set1_epi32(static_cast<int32_t>(big));
  __m512i total = zero;
  for (uint32_t b0 = 0; b0 < buckets; b0 += 16) {
    const __mmask16 live = buckets - b0 >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (buckets - b0)) - 1);
    const __m512i c = _mm512_maskz_loadu_epi32(live, pos + b0);
    __m512i incl = _mm512_add_epi32(c, _mm512_alignr_epi32(c, zero, 15));
    incl = _mm512_add_epi32(incl, _mm512_alignr_epi32(incl, zero, 14));
    incl = _mm512_add_epi32(incl, _mm512_alignr_epi32(incl, zero, 12));
    incl = _mm512_add_epi32(incl, _mm512_alignr_epi32(incl, zero, 8));
    incl = _mm512_add_epi32(incl, total);
    const __m512i excl = _mm512_sub_epi32(incl, c);
    const __mmask16 reach = _mm512_cmpge_epu32_mask(incl, vkk) & live;
    const __mmask16 keep = reach ? static_cast<__mmask16>((2u << __builtin_ctz(reach)) - 1) : live;
    _mm512_mask_storeu_epi32(pos + b0, keep, excl);
    const __mmask16 large = _mm512_cmpgt_epu32_mask(c, vbig) & keep;
    if (large) {  // rare: buckets of many items
      alignas(64) uint32_t cs[16], es[16];
      _mm512_store_si512(cs, c);
      _mm512_store_si512(es, excl);
      for (unsigned l = 0; l < 16; l++)
        if (large >> l & 1) spans.push_back(OrderSpan{base + es[l], cs[l]});
    }
    if (reach) {
      const unsigned l = static_cast<unsigned>(__builtin_ctz(reach));
      alignas(64) uint32_t is[16];
      _mm512_store_si512(is, incl);
      *last = b0 + l;
      return is[l];
    }
    total = _mm512_permutexvar_epi32(lane15, incl);
  }
  return 0;  // unreachable: the counts total at least kk
}

// The j-th largest by ranks: a[q]'s rank is how many entries are greater, or equal and before it (so every
// rank from 0 to n - 1 occurs once); returns the entry of rank j. Branch-free but for the one exit: on 64
// sample keys about 5 times faster than std::nth_element, which mispredicts its way through.
__attribute__((target("avx512f"))) uint32_t kth_largest_avx512(const uint32_t* a, size_t n, size_t j) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i v[4];
  __mmask16 live[4];
  for (size_t b = 0; b < 4; b++) {
    const size_t have = n > 16 * b ? std::min<size_t>(16, n - 16 * b) : 0;
    live[b] = static_cast<__mmask16>((1u << have) - 1);
    v[b] = _mm512_maskz_loadu_epi32(live[b], a + 16 * b);
  }
  for (size_t q = 0; q < n; q++) {
    const __m512i x = _mm512_set1_epi32(static_cast<int32_t>(a[q]));
    unsigned r = 0;
    for (size_t b = 0; b < 4; b++) {
      const __m512i at = _mm512_add_epi32(lane, _mm512_set1_epi32(static_cast<int32_t>(16 * b)));
      const __mmask16 before = _mm512_cmplt_epu32_mask(at, _mm512_set1_epi32(static_cast<int32_t>(q)));
      const __mmask16 gt = _mm512_mask_cmpgt_epu32_mask(live[b], v[b], x);
      const __mmask16 eq = _mm512_mask_cmpeq_epi32_mask(live[b] & before, v[b], x);
      r += static_cast<unsigned>(__builtin_popcount(gt | eq));
    }
    if (r == j) return a[q];
  }
  return a[0];  // unreachable: some entry has rank j
}

// One compare-exchange step on the pairs (0,1), (2,3), ... of a[0..n): min to the left.
__attribute__((target("avx512f"))) inline void exchange_pairs(uint64_t* a, size_t n, LinePrefetcher& pf) {
  const __m512i pad = _mm512_set1_epi64(-1);  // past the end: the largest item, stays right
  PrefetchTicker pt(pf, 2);
  size_t j = 0;
  for (; j < n; j += 8) {
    const __mmask8 live = n - j >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << (n - j)) - 1);
    const __m512i v = _mm512_mask_loadu_epi64(pad, live, a + j);
    const __m512i w = _mm512_permutex_epi64(v, 0xB1);  // swap neighbours: 1 0 3 2 in each half
    const __m512i r = _mm512_mask_blend_epi64(0xAA, _mm512_min_epu64(v, w), _mm512_max_epu64(v, w));
    _mm512_mask_storeu_epi64(a + j, live, r);
    pt.tick();
  }
}

// Sorts items whose disorder stays inside small runs (buckets): odd-even transposition steps, which sort
// any run of up to kFinishSteps items in place (the items around a run are already in order, so no
// exchange crosses its ends), then a scan for what is still out of order, inserted one by one.
__attribute__((target("avx512f"))) void finish_avx512(uint64_t* a, size_t n, LinePrefetcher& pf) {
  constexpr int kFinishSteps = 4;
  if (n < 2) return;
  for (int step = 0; step < kFinishSteps; step++) exchange_pairs(a + (step & 1), n - (step & 1), pf);
  size_t j = 1;
  while (j < n) {
    // The first j' >= j with a[j' - 1] > a[j'].
    for (; j + 8 <= n; j += 8) {
      const __mmask8 bad = _mm512_cmpgt_epu64_mask(_mm512_loadu_si512(a + j - 1), _mm512_loadu_si512(a + j));
      if (bad) {
        j += static_cast<size_t>(__builtin_ctz(bad));
        break;
      }
    }
    for (; j < n && a[j - 1] <= a[j]; j++) {
    }
    if (j >= n) return;
    const uint64_t x = a[j];  // a[0..j) is sorted: insert a[j]
    size_t q = j;
    for (; q > 0 && a[q - 1] > x; q--) a[q] = a[q - 1];
    a[q] = x;
    j++;
  }
}

// The keys >= t (and their indices, when idx is given) to the front, full vectors only; *done: how far.
__attribute__((target("avx512f"))) size_t compact_avx512(uint32_t* keys, int32_t* idx, size_t n, uint32_t t,
                                                         size_t* done) {
  const __m512i vt = _mm512_set1_epi32(static_cast<int32_t>(t));
  size_t c = 0, j = 0;
  for (; j + 16 <= n; j += 16) {  // c <= j: a whole-vector store never reaches entries not yet loaded
    const __m512i k = _mm512_loadu_si512(keys + j);
    const __mmask16 keep = _mm512_cmpge_epu32_mask(k, vt);
    _mm512_storeu_si512(keys + c, _mm512_maskz_compress_epi32(keep, k));  // (see the filter)
    if (idx) _mm512_storeu_si512(idx + c, _mm512_maskz_compress_epi32(keep, _mm512_loadu_si512(idx + j)));
    c += static_cast<size_t>(__builtin_popcount(keep));
  }
  *done = j;
  return c;
}

// Copies (key, index) of the keys in [lo, hi] to (ok, oi), in order, full vectors only; *done: how far.
__attribute__((target("avx512f"))) size_t gather_range_avx512(const uint32_t* keys, const int32_t* idx, size_t n,
                                                              uint32_t lo, uint32_t hi, uint32_t* ok, int32_t* oi,
                                                              size_t* done) {
  // NOTE: key - lo <= hi - lo (unsigned) is lo <= key <= hi in one compare.
  const __m512i vlo = _mm512_set1_epi32(static_cast<int32_t>(lo)), vspan = _mm512_set1_epi32(static_cast<int32_t>(hi - lo));
  size_t c = 0, j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512i k = _mm512_loadu_si512(keys + j);
    const __mmask16 keep = _mm512_cmple_epu32_mask(_mm512_sub_epi32(k, vlo), vspan);
    _mm512_storeu_si512(ok + c, _mm512_maskz_compress_epi32(keep, k));  // (whole vectors: see the filter)
    _mm512_storeu_si512(oi + c, _mm512_maskz_compress_epi32(keep, _mm512_loadu_si512(idx + j)));
    c += static_cast<size_t>(__builtin_popcount(keep));
  }
  *done = j;
  return c;
}

// 16 outputs a step: split the items into index and key lanes, turn keys back into values, and stream
// the stores when the rows are 64-byte aligned (the outputs are not read again here: no read for
// ownership, no cache pollution).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"))) size_t write_avx512(
    const uint64_t* items, size_t c, const void* w, int dtype, int32_t* out_idx, float* out_val,
    LinePrefetcher& pf) {
  PrefetchTicker pt(pf, 1);
  const __m512i lo_sel = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i hi_sel = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i flip = _mm512_set1_epi32(static_cast<int32_t>(0x80000000u)), abs = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i one = _mm512_set1_epi32(1), ones = _mm512_set1_epi32(-1);
  const __m512i nan_out = _mm512_set1_epi32(static_cast<int32_t>(GLMK_F32_NAN_BITS));
  const bool stream = ((reinterpret_cast<uintptr_t>(out_idx) | reinterpret_cast<uintptr_t>(out_val)) & 63) == 0;
  size_t j = 0;
  for (; j + 16 <= c; j += 16) {
    const __m512i a = _mm512_loadu_si512(items + j), b = _mm512_loadu_si512(items + j + 8);
    const __m512i idx = _mm512_permutex2var_epi32(a, lo_sel, b);
    const __m512i key = _mm512_xor_si512(_mm512_permutex2var_epi32(a, hi_sel, b), ones);
    const __m512i k2 = _mm512_xor_si512(key, flip);  // glmk_f32_bits_from_key, both branches
    __m512i bits = _mm512_mask_mov_epi32(_mm512_xor_si512(_mm512_sub_epi32(k2, one), abs),
                                         _mm512_test_epi32_mask(key, flip), k2);
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(key, ones), nan_out);
    alignas(64) uint32_t v[16];
    _mm512_store_si512(v, bits);
    const __mmask16 zero = _mm512_cmpeq_epi32_mask(key, flip);  // GLMK_KEY_ZERO: the sign is in the score
    if (zero) {
      alignas(64) int32_t ix[16];
      _mm512_store_si512(ix, idx);
      for (int l = 0; l < 16; l++)
        if (zero >> l & 1) v[l] = score_bits(w, dtype, ix[l]);
    }
    pt.tick();
    if (stream) {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(out_idx + j), idx);
      _mm512_stream_si512(reinterpret_cast<__m512i*>(out_val + j), _mm512_load_si512(v));
    } else {
      _mm512_storeu_si512(out_idx + j, idx);
      _mm512_storeu_si512(out_val + j, _mm512_load_si512(v));
    }
  }
  if (stream) _mm_sfence();  // streamed stores are visible before whatever the caller does next
  return j;
}
#endif

void write_scalar(const uint64_t* items, size_t from, size_t c, const void* w, int dtype, int32_t* out_idx,
                  float* out_val) {
  for (size_t j = from; j < c; j++) {
    const int32_t i = static_cast<int32_t>(items[j] & 0xFFFFFFFFu);
    const uint32_t key = ~static_cast<uint32_t>(items[j] >> 32);
    // The value comes back from the key, except for zero, whose key does not keep the sign.
    const uint32_t bits =
        key == GLMK_KEY_ZERO ? score_bits(w, dtype, i) : glmk_output_bits(glmk_f32_bits_from_key(key));
    out_idx[j] = i;
    std::memcpy(&out_val[j], &bits, 4);
  }
}

}  // namespace

void topk_write(Isa isa, const uint64_t* items, size_t c, const void* window, int dtype, int32_t* out_idx,
                float* out_val, LinePrefetcher& pf) {
  size_t done = 0;
#if defined(__x86_64__)
  if (isa >= Isa::avx512) done = write_avx512(items, c, window, dtype, out_idx, out_val, pf);
#endif
  write_scalar(items, done, c, window, dtype, out_idx, out_val);
}

void topk_key_all(Isa isa, const void* w, int dtype, size_t n, uint32_t* keys, uint32_t* kmin, uint32_t* kmax) {
  size_t i = 0;
  *kmin = 0xFFFFFFFFu;
  *kmax = 0;
#if defined(__x86_64__)
  if (isa >= Isa::avx512) i = key_all_avx512(w, dtype, n, keys, kmin, kmax);
#endif
  for (; i < n; i++) {  // (the compiler vectorizes this for the other paths)
    const uint32_t k = glmk_key_from_f32_bits(score_bits(w, dtype, static_cast<int64_t>(i)));
    keys[i] = k;
    *kmin = std::min(*kmin, k);
    *kmax = std::max(*kmax, k);
  }
}

size_t topk_compact(Isa isa, uint32_t* keys, int32_t* idx, size_t n, uint32_t t) {
  size_t c = 0, j = 0;
#if defined(__x86_64__)
  if (isa >= Isa::avx512) c = compact_avx512(keys, idx, n, t, &j);
#endif
  for (; j < n; j++) {
    const uint32_t k = keys[j];
    keys[c] = k;
    if (idx) idx[c] = idx[j];
    c += k >= t;
  }
  return c;
}


size_t topk_gather_range(Isa isa, const uint32_t* keys, const int32_t* idx, size_t n, uint32_t lo, uint32_t hi,
                         uint32_t* out_keys, int32_t* out_idx) {
  size_t c = 0, j = 0;
#if defined(__x86_64__)
  if (isa >= Isa::avx512) c = gather_range_avx512(keys, idx, n, lo, hi, out_keys, out_idx, &j);
#endif
  for (; j < n; j++) {
    const uint32_t k = keys[j];
    out_keys[c] = k;
    out_idx[c] = idx[j];
    c += k - lo <= hi - lo;
  }
  return c;
}

void topk_digits(Isa isa, const uint32_t* keys, size_t n, uint32_t kmax, int shift, uint16_t* d) {
  size_t j = 0;
#if defined(__x86_64__)
  if (isa >= Isa::avx512) j = digits_avx512(keys, n, kmax, shift, d);
#endif
  for (; j < n; j++) d[j] = static_cast<uint16_t>((kmax - keys[j]) >> shift);
}

uint32_t topk_bucket_starts(Isa isa, uint32_t* pos, uint32_t buckets, size_t kk, uint32_t* last, uint32_t big,
                            uint32_t base, std::vector<OrderSpan>& spans) {
#if defined(__x86_64__)
  if (isa >= Isa::avx512) return bucket_starts_avx512(pos, buckets, kk, last, big, base, spans);
#endif
  uint32_t sum = 0, b = 0;
  for (;; b++) {
    const uint32_t c = pos[b];
    pos[b] = sum;
    if (c > big) spans.push_back(OrderSpan{base + sum, c});
    sum += c;
    if (sum >= kk) break;
  }
  *last = b;
  return sum;
}

bool topk_finish_order(Isa isa, uint64_t* a, size_t n, LinePrefetcher& pf) {
#if defined(__x86_64__)
  if (isa >= Isa::avx512) {
    finish_avx512(a, n, pf);
    return true;
  }
#endif
  return false;
}

void topk_evict(Isa isa, const void* p, size_t bytes) {
#if defined(__x86_64__)
  static const bool clflushopt = [] {  // CPUID.(7, 0):EBX[23]
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 23 & 1u);
  }();
  if (isa >= Isa::avx512 && clflushopt) evict_lines(p, bytes);
#else
  (void)isa, (void)p, (void)bytes;
#endif
}

size_t topk_count_at_least(Isa isa, const uint32_t* keys, size_t n, uint32_t t) {
#if defined(__x86_64__)
  if (isa >= Isa::avx512) return count_avx512(keys, n, t);
  if (isa == Isa::avx2) return count_avx2(keys, n, t);
#endif
  size_t c = 0;
  for (size_t j = 0; j < n; j++) c += keys[j] >= t;
  return c;
}

uint32_t topk_kth_largest(Isa isa, const uint32_t* a, size_t n, size_t j) {
#if defined(__x86_64__)
  if (isa >= Isa::avx512) return kth_largest_avx512(a, n, j);
#endif
  uint32_t tmp[64];
  std::copy(a, a + n, tmp);
  std::nth_element(tmp, tmp + (n - 1 - j), tmp + n);
  return tmp[n - 1 - j];
}

void topk_filter_pieces(Isa isa, const void* w, int dtype, const int64_t* bounds, uint32_t t, uint32_t* keys,
                        int32_t* idx, size_t stride, FilterOut* outs) {
  constexpr int S = kFilterStreams;
  int64_t len = INT64_MAX;  // the pieces' common length, read side by side
  for (int j = 0; j < S; j++) len = std::min(len, bounds[j + 1] - bounds[j]);
  len &= ~int64_t{31};
  size_t m[S] = {};
  LinePrefetcher none;
#if defined(__x86_64__)
  uint32_t tb;
  if (isa >= Isa::avx512vbmi && len > 0 && float_threshold(t, &tb))
    filter_vbmi2_streams<S>(w, dtype, bounds, len, tb, keys, idx, stride, m, none);
  else
    len = 0;
#else
  len = 0;
#endif
  for (int j = 0; j < S; j++) {  // each piece's rest, appended, and the survivors keyed
    uint32_t* k = keys + j * stride;
    int32_t* x = idx + j * stride;
    uint32_t kmin, kmax;
    topk_key_all(isa, k, GLMK_F32, m[j], k, &kmin, &kmax);
    const FilterOut r = topk_filter(isa, w, dtype, bounds[j] + len, bounds[j + 1], t, k + m[j], x + m[j], none);
    outs[j] = FilterOut{m[j] + r.m, std::min(kmin, r.kmin), std::max(kmax, r.kmax)};
  }
}

FilterOut topk_filter(Isa isa, const void* w, int dtype, int64_t begin, int64_t end, uint32_t t,
                      uint32_t* keys, int32_t* idx, LinePrefetcher& pf) {
#if defined(__x86_64__)
  if (isa >= Isa::avx512) return filter_avx512(isa, w, dtype, begin, end, t, keys, idx, pf);
  // NOTE: the AVX2 filter does not tick pf. It is compute-bound, and one line of the next row per 12 steps
  // made the AVX2 path 5-14% slower on 32x131072 (in-process A/B), 2% on 512x32768.
  if (isa == Isa::avx2) return filter_avx2(w, dtype, begin, end, t, keys, idx);
#endif
  return filter_scalar(w, dtype, begin, end, t, keys, idx, FilterOut{0});
}

}  // namespace glmk::cpu
