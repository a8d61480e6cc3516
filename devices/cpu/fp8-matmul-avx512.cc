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

#include "fp8-tile.hpp"
#include "gemm.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/int4-arith.h"

namespace glmk::cpu {
namespace {

#define GLMK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

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

}  // namespace

GLMK_AVX512 void fp8_tile_avx512(const float* xa, const float* sa, int64_t m, int64_t k, const uint8_t* data,
                                 const float* scale_inv, int64_t block_n, int64_t n0, int64_t rows, int64_t next_rows,
                                 float* acc) {
  const int64_t blocks = (k + 127) / 128;
  alignas(64) float w[16][128];
  alignas(64) float ws[16] = {};
  if (rows < 16) std::memset(w[rows], 0, sizeof(float) * 128 * static_cast<size_t>(16 - rows));  // never written
  const uint8_t* tile = data + n0 * k;
  const float* wsrow[16];
  fp8tile::tile_start(scale_inv, blocks, block_n, n0, rows, m, wsrow, acc);
  for (int64_t j = 0; j < blocks; j++) {
    const int64_t c0 = j * 128, left = k - c0;
    fp8tile::block_start(tile, k, c0, rows, next_rows, wsrow, j, ws);
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
      fp8tile::accumulate(p, 256.0f, sa[j], wsv, acc);
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
      fp8tile::accumulate(p, 256.0f, sa[i * blocks + j], wsv, acc + 16 * i);
    }
  }
}

}  // namespace glmk::cpu
