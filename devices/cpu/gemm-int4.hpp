// The GEMM core's int4 AVX-512 kernel (the order of gemm.hpp), written once and compiled twice: by
// gemm-int4-avx512.cc (AVX-512 F/BW/VL/DQ) and gemm-int4-vbmi.cc (plus VBMI), which differ only in how
// 16 bytes of codes become table indices (the Dec argument). The includer sets the target with
// `#pragma GCC target` before including this file; everything here is internal to that file.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm.hpp"

namespace glmk::cpu {
namespace {

// bf16(q * s) for the 16 codes q = -8..7 (nibble i holds q = i - 8), as f32 lanes: the int4 lookup table.
inline __m512 int4_lut512(uint16_t scale_bits) {
  const __m512 q = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  const __m512 prod = _mm512_mul_ps(q, _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(uint32_t{scale_bits} << 16))));
  const __m512i bits = _mm512_castps_si512(prod);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb);
  r = _mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
  const __mmask16 nan = _mm512_cmp_ps_mask(prod, prod, _CMP_UNORD_Q);
  return _mm512_castsi512_ps(_mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7FC00000)));
}

// The tables of the scales in [1, 2): t[f] = int4_lut512(0x3F80 | f), the scale 1 + f / 128.
struct Int4Base {
  alignas(64) float t[128][16];
};
inline const Int4Base& int4_base() {
  static const Int4Base base = [] {
    Int4Base b;
    for (int f = 0; f < 128; f++) _mm512_store_ps(b.t[f], int4_lut512(static_cast<uint16_t>(0x3F80 | f)));
    return b;
  }();
  return base;
}

// int4_lut512(s) in two instructions where that is exact: for a normal scale whose products stay finite
// (biased exponent 1..250), bf16(q * s) = bf16(q * (1 + f / 128)) * (+-2^e), because scaling by a power of
// two commutes with the rounding while nothing is subnormal or overflows. Zero, subnormal, huge, inf and
// NaN scales take int4_lut512 (int4-lut-check in the tests compares the two on all 65536 scales).
inline __m512 int4_lut_fast(const Int4Base& base, uint16_t s) {
  const uint32_t e = (s >> 7) & 0xFFu;
  if (e - 1u < 250u)
    return _mm512_mul_ps(_mm512_load_ps(base.t[s & 0x7F]),
                         _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>((uint32_t{s} & 0xFF80u) << 16))));
  return int4_lut512(s);
}

#ifdef GLMK_INT4_VBMI  // (defined by includers whose target pragma has VBMI)
// Dec for AVX-512 VBMI.
struct Int4Vbmi {
  // 64 codes: one byte permute puts into lane j the bytes of k = j, 16 + j, 32 + j and 48 + j (bytes j / 2,
  // 8 + j / 2, 16 + j / 2, 24 + j / 2), a shift by 4 in the odd lanes brings their high nibbles down, and
  // register r is that shifted right by 8 r.
  static void codes64(const uint8_t* p, __m512i* c) {
    const __m512i idx = _mm512_set_epi8(31, 23, 15, 7, 31, 23, 15, 7, 30, 22, 14, 6, 30, 22, 14, 6, 29, 21, 13, 5, 29, 21, 13, 5,
                                        28, 20, 12, 4, 28, 20, 12, 4, 27, 19, 11, 3, 27, 19, 11, 3, 26, 18, 10, 2, 26, 18, 10, 2,
                                        25, 17, 9, 1, 25, 17, 9, 1, 24, 16, 8, 0, 24, 16, 8, 0);
    const __m512i odd = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    const __m512i bytes = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i v = _mm512_srlv_epi32(_mm512_permutexvar_epi8(idx, bytes), odd);
    c[0] = v;
    c[1] = _mm512_srli_epi32(v, 8);
    c[2] = _mm512_srli_epi32(v, 16);
    c[3] = _mm512_srli_epi32(v, 24);
  }
  // 32 codes: one multishift per 16 moves nibble j of 8 bytes to the bottom of lane j.
  static void codes32(const uint8_t* p, __m512i* c) {
    // qword j of the control: byte 0 (lane 2j) takes bits 8j.. of the 8 bytes, byte 4 (lane 2j + 1) bits 8j + 4..
    const __m512i ctrl = _mm512_set_epi64(0x0000003C00000038LL, 0x0000003400000030LL, 0x0000002C00000028LL, 0x0000002400000020LL,
                                          0x0000001C00000018LL, 0x0000001400000010LL, 0x0000000C00000008LL, 0x0000000400000000LL);
    long long q0, q1;
    std::memcpy(&q0, p, 8);
    std::memcpy(&q1, p + 8, 8);
    c[0] = _mm512_multishift_epi64_epi8(ctrl, _mm512_set1_epi64(q0));
    c[1] = _mm512_multishift_epi64_epi8(ctrl, _mm512_set1_epi64(q1));
  }
};

#endif

// Prefetch of the weight rows into L2, kAhead bytes ahead of where a row is read, or as far into the same
// row of the next pass over NB rows (rows are contiguous). Past the rows of this work item it fetches lines
// another item (or nothing) reads: a prefetch never faults, and a branch per row to stop there cost more
// (group 32: 1475-1504 us against 1417-1452 for one thread over 6144 x 6144). (As in fp8-matmul-avx512.cc:
// DRAM latency is far more than one step's work.) 2 KiB per row, 8 KiB in flight over 4 rows: one thread
// streamed 6144 x 6144 (group 128) at 16.3 GB/s with 1 KiB, 18.0 with 2 KiB, 17.6 with 4 KiB.
struct Int4Ahead {
  static constexpr int64_t kAhead = 2048;
  int64_t row_bytes;
  void at(const uint8_t* row, int64_t off, int nb) const {
    const int64_t ahead = off + kAhead;
    const uintptr_t p = reinterpret_cast<uintptr_t>(row) + static_cast<uintptr_t>(ahead + (ahead < row_bytes ? 0 : (nb - 1) * row_bytes));
    _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);  // (an address: no pointer past the buffer is formed)
  }
  static Int4Ahead of(const GemmBlock& b) { return {b.k / 2}; }
};

// y[m0 + i, n + j] = the fixed tree (gemm.hpp) over the 16 lanes of acc[i][j].
template <int MB, int NB>
inline void store_sums(const GemmBlock& b, const __m512 (&acc)[MB][NB], int64_t n, int64_t m0) {
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) {  // glmk_reduce16's adds, in registers
      const __m512 p = acc[i][j];
      const __m256 q = _mm256_add_ps(_mm512_extractf32x8_ps(p, 0), _mm512_extractf32x8_ps(p, 1));  // p[j] + p[j + 8]
      const __m128 r = _mm_add_ps(_mm256_castps256_ps128(q), _mm256_extractf128_ps(q, 1));      // q[j] + q[j + 4]
      const __m128 s = _mm_add_ps(r, _mm_movehl_ps(r, r));                                     // r[j] + r[j + 2]
      b.y[(m0 + i) * b.n + n + j] = _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));          // s0 + s1
    }
}

// One step of the int4 kernel: 64 weights of NB rows (k .. k + 63; lo the tables of k .. k + 31, hi of
// k + 32 .. k + 63) into acc, or (Half) 32 weights with lo.
template <class Dec, int MB, int NB, bool Half = false>
inline void int4_step(__m512 (&acc)[MB][NB], const uint8_t* const (&wp)[NB], const float* x, int64_t xk, int64_t k,
                      const __m512 (&lo)[NB], const __m512 (&hi)[NB], const Int4Ahead& pf) {
  for (int j = 0; j < NB; j++) {
    if ((k & 127) == 0) pf.at(wp[j], k / 2, NB);
    __m512i c[4];
    if (Half) Dec::codes32(wp[j] + k / 2, c);
    else Dec::codes64(wp[j] + k / 2, c);
    const __m512 w0 = _mm512_permutexvar_ps(c[0], lo[j]), w1 = _mm512_permutexvar_ps(c[1], lo[j]);
    __m512 w2, w3;
    if (!Half) w2 = _mm512_permutexvar_ps(c[2], hi[j]), w3 = _mm512_permutexvar_ps(c[3], hi[j]);
    for (int i = 0; i < MB; i++) {
      const float* xi = x + i * xk + k;
      __m512 a = _mm512_fmadd_ps(_mm512_loadu_ps(xi), w0, acc[i][j]);
      a = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 16), w1, a);
      if (!Half) {
        a = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 32), w2, a);
        a = _mm512_fmadd_ps(_mm512_loadu_ps(xi + 48), w3, a);
      }
      acc[i][j] = a;
    }
  }
}

// MB rows of x against NB rows of int4 weights. Per group, one table per weight row. Per 32 bytes of codes
// (SPEC 4: byte i holds k = 2i low, 2i + 1 high) Dec::codes64 gives four registers of table indices, lane j
// of register r holding the code of k = 16 r + j in its low 4 bits (the permute reads only those): 64
// weights, each lane still taking its k in increasing order; Dec::codes32 gives two, for 32 weights.
// luts: when not null, the tables of these NB rows for every group, [groups][NB][16] (built once for all
// the passes over x's rows).
template <class Dec, int MB, int NB>
void int4_rows(const GemmBlock& b, int64_t n, int64_t m0, const float* luts) {
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm512_setzero_ps();
  const int64_t gs = b.group_size, groups = b.k / gs;
  const uint8_t* wp[NB];
  const uint16_t* sp[NB];
  for (int j = 0; j < NB; j++) {
    wp[j] = reinterpret_cast<const uint8_t*>(b.packed) + (n + j) * (b.k / 2);
    sp[j] = b.scales + (n + j) * groups;
  }
  const Int4Base& base = int4_base();
  const Int4Ahead pf = Int4Ahead::of(b);
  const float* x = b.x + m0 * b.k;
  auto tables = [&](int64_t g, __m512 (&out)[NB]) {
    for (int j = 0; j < NB; j++) out[j] = luts ? _mm512_loadu_ps(luts + (g * NB + j) * 16) : int4_lut_fast(base, sp[j][g]);
  };
  __m512 lo[NB], hi[NB];
  if (gs % 64 == 0) {  // whole steps in every group
    for (int64_t g = 0; g < groups; g++) {
      tables(g, lo);
      for (int64_t k = g * gs; k < (g + 1) * gs; k += 64) int4_step<Dec, MB, NB>(acc, wp, x, b.k, k, lo, lo, pf);
    }
  } else {  // group 32 (SPEC 4 has 32, 64, 128): two groups per step
    int64_t g = 0;
    for (; g + 2 <= groups; g += 2) {
      tables(g, lo);
      tables(g + 1, hi);
      int4_step<Dec, MB, NB>(acc, wp, x, b.k, g * 32, lo, hi, pf);
    }
    if (g < groups) {
      tables(g, lo);
      int4_step<Dec, MB, NB, true>(acc, wp, x, b.k, g * 32, lo, lo, pf);
    }
  }
  store_sums(b, acc, n, m0);
}

// NB weight rows from n against every row of x, in passes of up to 4 rows of x.
template <class Dec, int NB>
void int4_cols(const GemmBlock& b, int64_t n) {
  // with more than one pass over x's rows: the tables once per (row, group), not once per pass
  thread_local std::vector<float> tables;
  const float* luts = nullptr;
  if (b.m > 4) {
    const int64_t groups = b.k / b.group_size;
    const Int4Base& base = int4_base();
    tables.resize(static_cast<size_t>(groups * NB * 16));
    for (int64_t g = 0; g < groups; g++)
      for (int j = 0; j < NB; j++) _mm512_storeu_ps(tables.data() + (g * NB + j) * 16, int4_lut_fast(base, b.scales[(n + j) * groups + g]));
    luts = tables.data();
  }
  for (int64_t m0 = 0; m0 < b.m; m0 += 4) {
    switch (std::min<int64_t>(4, b.m - m0)) {
      case 1: int4_rows<Dec, 1, NB>(b, n, m0, luts); break;
      case 2: int4_rows<Dec, 2, NB>(b, n, m0, luts); break;
      case 3: int4_rows<Dec, 3, NB>(b, n, m0, luts); break;
      default: int4_rows<Dec, 4, NB>(b, n, m0, luts); break;
    }
  }
}

template <class Dec>
void int4_block(const GemmBlock& b) {
  int64_t n = b.n0;
  for (; n + 4 <= b.n1; n += 4) int4_cols<Dec, 4>(b, n);
  for (; n < b.n1; n++) int4_cols<Dec, 1>(b, n);
}

}  // namespace
}  // namespace glmk::cpu
