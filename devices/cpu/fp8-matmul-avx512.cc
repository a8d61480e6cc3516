// fp8.matmul's AVX-512 kernel: one tile of 16 weight rows against all m activation rows, in the order of
// gemm.hpp / glmk_fp8_matmul_args (the scalar path in gemm.cc is the reference; the bits are the same).
//
// Per 128-K block: the tile's 16 x 128 e4m3 codes are decoded once into an L1 buffer, as their values times
// 2^-8 (the code's bits shifted into a binary16: exact), then every activation row takes 16 dot products
// (one zmm of 16 partial sums each, lane j = the fma chain over k = j mod 16). The 16 partial-sum vectors
// are reduced together by a transposing network whose additions are exactly the fixed tree's
// (p[j] + p[j+8], then + 4, + 2, + 1): lane r of the result is row r's block sum. Scaling every weight by
// 2^-8 scales every product, partial sum and tree node by 2^-8 exactly (the values stay far from f32's
// subnormals and overflow), so the block sum times 256 is bit for bit the unscaled one.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/int4-arith.h"

namespace glmk::cpu {
namespace {

#define GLMK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

// Lane indices for _mm512_permutex2var_ps (b's lanes are 16..31).
GLMK_AVX512 inline __m512i idx(const int (&v)[16]) { return _mm512_loadu_si512(v); }

// One network step: lanes picked from a and b by lo and hi, added: (lo) + (hi), lane by lane.
GLMK_AVX512 inline __m512 step(__m512 a, __m512 b, __m512i lo, __m512i hi) {
  return _mm512_add_ps(_mm512_permutex2var_ps(a, lo, b), _mm512_permutex2var_ps(a, hi, b));
}

// Reduces p[0..15] (each the 16 partial sums of one output) to one vector: lane r = the fixed tree of p[r].
GLMK_AVX512 inline __m512 reduce16x16(__m512* p) {
  // step 1: [p_a[j] + p_a[j+8] (j < 8), p_b[j] + p_b[j+8]]
  static const int l1[16] = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
  static const int h1[16] = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  // step 2: per 8-lane half q: q[j] + q[j+4] (j < 4), four outputs per vector
  static const int l2[16] = {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27};
  static const int h2[16] = {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31};
  // step 3: per 4-lane quarter r: r[j] + r[j+2] (j < 2), eight outputs per vector
  static const int l3[16] = {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29};
  static const int h3[16] = {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31};
  // step 4: s[0] + s[1], sixteen outputs
  static const int l4[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  static const int h4[16] = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  const __m512i L1 = idx(l1), H1 = idx(h1), L2 = idx(l2), H2 = idx(h2), L3 = idx(l3), H3 = idx(h3), L4 = idx(l4), H4 = idx(h4);
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; i++) a[i] = step(p[2 * i], p[2 * i + 1], L1, H1);  // outputs 2i, 2i+1
  for (int i = 0; i < 4; i++) b[i] = step(a[2 * i], a[2 * i + 1], L2, H2);  // outputs 4i .. 4i+3
  for (int i = 0; i < 2; i++) c[i] = step(b[2 * i], b[2 * i + 1], L3, H3);  // outputs 8i .. 8i+7
  return step(c[0], c[1], L4, H4);                                            // outputs 0 .. 15
}

// 32 codes (n of them; the rest 0) as value * 2^-8 in two vectors; NaN codes come out as finite numbers.
GLMK_AVX512 inline void decode32(const uint8_t* codes, int64_t n, __m512& lo, __m512& hi) {
  const __m512i w = _mm512_cvtepu8_epi16(
      n >= 32 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes))
              : _mm256_maskz_loadu_epi8(n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1u), codes));
  // sign to bit 15, exponent and mantissa to bits 7..13: (w + (w & 0x80)) << 7
  const __m512i h = _mm512_slli_epi16(_mm512_add_epi16(w, _mm512_and_si512(w, _mm512_set1_epi16(0x80))), 7);
  lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
  hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
}

// Whether any of `rows` rows (stride k) holds a NaN code (0x7F or 0xFF) in [c0, c0 + min(128, k - c0)).
GLMK_AVX512 inline bool any_nan(const uint8_t* data, int64_t k, int64_t c0, int64_t rows) {
  const int64_t left = std::min<int64_t>(128, k - c0);
  __mmask64 hit = 0;
  const __m512i x7f = _mm512_set1_epi8(0x7F);
  if (left == 128) {
    // b & 0x7F is at most 0x7F, reached exactly by the NaN codes: one max over the block, one compare
    __m512i mx = _mm512_setzero_si512();
    for (int64_t r = 0; r < rows; r++) {
      const uint8_t* p = data + r * k + c0;
      mx = _mm512_max_epu8(mx, _mm512_and_si512(_mm512_loadu_si512(p), x7f));
      mx = _mm512_max_epu8(mx, _mm512_and_si512(_mm512_loadu_si512(p + 64), x7f));
    }
    return _mm512_cmpeq_epi8_mask(mx, x7f) != 0;
  }
  for (int64_t r = 0; r < rows; r++)
    for (int64_t v = 0; v < left; v += 64) {
      const int64_t n = std::min<int64_t>(64, left - v);
      const __mmask64 m = n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
      const __m512i b = _mm512_maskz_loadu_epi8(m, data + r * k + c0 + v);
      hit |= _mm512_mask_cmpeq_epi8_mask(m, _mm512_and_si512(b, x7f), x7f);
    }
  return hit != 0;
}

// 128 codes (fewer at the end of K: the rest decode to 0) as value * 2^-8 into out[128].
GLMK_AVX512 inline void decode_block(const uint8_t* codes, int64_t left, bool nan, float* out) {
  for (int v = 0; v < 4; v++) {
    __m512 lo, hi;
    decode32(codes + v * 32, left - v * 32, lo, hi);
    _mm512_storeu_ps(out + v * 32, lo);
    _mm512_storeu_ps(out + v * 32 + 16, hi);
  }
  if (nan)  // (never from fp8.quantize: it saturates) the code's NaN
    for (int64_t c = 0; c < std::min<int64_t>(128, left); c++)
      if ((codes[c] & 0x7F) == 0x7F) out[c] = glmk_f32_from_bits(0x7FC00000u);
}

// The block's activations of one row (lanes past K: 0).
GLMK_AVX512 inline void load_x(const float* x, int64_t left, __m512* xv) {
  for (int v = 0; v < 8; v++) {
    const int64_t n = std::min<int64_t>(16, std::max<int64_t>(0, left - v * 16));
    xv[v] = _mm512_maskz_loadu_ps(n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u), x + v * 16);
  }
}

// acc = acc + ((block sum of p) * 256 * sa) * ws, lane by lane (the scalar path's order).
GLMK_AVX512 inline void accumulate(__m512* p, float sa, __m512 wsv, float* acc) {
  const __m512 part = _mm512_mul_ps(reduce16x16(p), _mm512_set1_ps(256.0f));
  _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_loadu_ps(acc), _mm512_mul_ps(_mm512_mul_ps(part, _mm512_set1_ps(sa)), wsv)));
}

}  // namespace

// Prefetch distance along a weight row (8 blocks), into L2 (_MM_HINT_T1: 16.5 GB/s at M = 1 on the 2-vCPU
// Zen 4, against 15.0 with T0 and 13-16 without; 512 to 4096 bytes all within noise of each other).
constexpr int64_t kAhead = 1024;

GLMK_AVX512 void fp8_tile_avx512(const float* xa, const float* sa, int64_t m, int64_t k, const uint8_t* data,
                                 const float* scale_inv, int64_t block_n, int64_t n0, int64_t rows, int64_t next_rows,
                                 float* acc) {
  const int64_t blocks = (k + 127) / 128;
  alignas(64) float w[16][128];
  alignas(64) float ws[16] = {};
  if (rows < 16) std::memset(w[rows], 0, sizeof(float) * 128 * static_cast<size_t>(16 - rows));  // never written
  const uint8_t* tile = data + n0 * k;
  const float* wsrow[16];
  for (int64_t r = 0; r < rows; r++) wsrow[r] = scale_inv + ((n0 + r) / block_n) * blocks;
  for (int64_t i = 0; i < m; i++) _mm512_storeu_ps(acc + 16 * i, _mm512_setzero_ps());
  for (int64_t j = 0; j < blocks; j++) {
    const int64_t c0 = j * 128, left = k - c0;
    for (int64_t r = 0; r < rows; r++) {
      // kAhead bytes on along the row, or into the same row of the next tile: DRAM latency is far more
      // than one block's work
      const uint8_t* ahead = c0 + kAhead < k ? tile + r * k + c0 + kAhead
                             : r < next_rows ? tile + (16 + r) * k + (c0 + kAhead - k) : nullptr;
      if (ahead && ahead < tile + (16 + next_rows) * k) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T1);
      }
      ws[r] = wsrow[r][j];
    }
    const __m512 wsv = _mm512_load_ps(ws);
    const bool nan = any_nan(tile, k, c0, rows);
    __m512 xv[8], p[16];
    if (m == 1 && !nan) {
      // one activation row: decode into registers, no buffer
      load_x(xa + c0, left, xv);
      for (int64_t r = 0; r < 16; r++) {
        __m512 s = _mm512_setzero_ps();  // (+0, as the scalar chains start: never -0 afterwards)
        if (r < rows)
          for (int v = 0; v < 4; v++) {
            __m512 lo, hi;
            decode32(tile + r * k + c0 + v * 32, left - v * 32, lo, hi);
            s = _mm512_fmadd_ps(xv[2 * v], lo, s);
            s = _mm512_fmadd_ps(xv[2 * v + 1], hi, s);
          }
        p[r] = s;
      }
      accumulate(p, sa[j], wsv, acc);
      continue;
    }
    for (int64_t r = 0; r < rows; r++) decode_block(tile + r * k + c0, left, nan, w[r]);
    for (int64_t i = 0; i < m; i++) {
      load_x(xa + i * k + c0, left, xv);
      for (int r = 0; r < 16; r++) {
        __m512 s = _mm512_setzero_ps();
        for (int v = 0; v < 8; v++) s = _mm512_fmadd_ps(xv[v], _mm512_load_ps(w[r] + v * 16), s);
        p[r] = s;
      }
      accumulate(p, sa[i * blocks + j], wsv, acc + 16 * i);
    }
  }
}

}  // namespace glmk::cpu
