// The int4 GEMM kernel for AVX2 + FMA (no AVX-512): the order of gemm.hpp, p[0..7] in one register and
// p[8..15] in another. Per 16 weights of a row, SPEC 4's two int32 words (8 codes each, k = 8j + i in
// nibble i): per word a broadcast and a variable shift put code i at the bottom of lane i; the permute
// reads its low 3 bits from the half table of codes 0..7 or 8..15, and bit 3 (shifted to the sign) picks
// the half. Tables per group and row as in gemm-int4.hpp (a table for the scale's mantissa times +-2^e,
// exact for normal scales; the full rounding otherwise). NB weight rows at a time, so that the fma chains
// of different rows overlap; MB rows of x per decoded weight.
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm.hpp"

namespace glmk::cpu {
namespace {

// bf16(q * s) for the codes 0..7 (q = -8..-1) or 8..15 (q = 0..7) of one scale, as f32 lanes.
__m256 lut8_exact(uint16_t scale_bits, bool pos) {
  const __m256 q = pos ? _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7) : _mm256_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1);
  const __m256 prod = _mm256_mul_ps(q, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(uint32_t{scale_bits} << 16))));
  const __m256i bits = _mm256_castps_si256(prod);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb);
  r = _mm256_and_si256(r, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)));
  const __m256 nan = _mm256_cmp_ps(prod, prod, _CMP_UNORD_Q);
  return _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(_mm256_set1_epi32(0x7FC00000)), nan);
}

// t[f] = the tables of the scale 1 + f / 128 (codes 0..15).
struct Base {
  alignas(32) float t[128][16];
};
const Base& base() {
  static const Base b = [] {
    Base r;
    for (int f = 0; f < 128; f++) {
      _mm256_store_ps(r.t[f], lut8_exact(static_cast<uint16_t>(0x3F80 | f), false));
      _mm256_store_ps(r.t[f] + 8, lut8_exact(static_cast<uint16_t>(0x3F80 | f), true));
    }
    return r;
  }();
  return b;
}

struct Lut {
  __m256 neg, pos;
};
// The table of one scale: two multiplies where that is exact (biased exponent 1..250: see gemm-int4.hpp).
inline Lut lut(const Base& b, uint16_t s) {
  const uint32_t e = (s >> 7) & 0xFFu;
  if (e - 1u < 250u) {
    const __m256 p = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>((uint32_t{s} & 0xFF80u) << 16)));
    return {_mm256_mul_ps(_mm256_load_ps(b.t[s & 0x7F]), p), _mm256_mul_ps(_mm256_load_ps(b.t[s & 0x7F] + 8), p)};
  }
  return {lut8_exact(s, false), lut8_exact(s, true)};
}

// The 8 weights of one int32 word of codes.
inline __m256 decode8(int32_t word, const Lut& t) {
  const __m256i c = _mm256_srlv_epi32(_mm256_set1_epi32(word), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
  const __m256 neg = _mm256_permutevar8x32_ps(t.neg, c), pos = _mm256_permutevar8x32_ps(t.pos, c);
  return _mm256_blendv_ps(neg, pos, _mm256_castsi256_ps(_mm256_slli_epi32(c, 28)));  // bit 3: codes 8..15
}

template <int MB, int NB>
void rows(const GemmBlock& b, int64_t n, int64_t m0) {
  __m256 lo[MB][NB], hi[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) lo[i][j] = hi[i][j] = _mm256_setzero_ps();
  const int64_t gs = b.group_size, groups = b.k / gs, words = b.k / 8;
  const Base& bt = base();
  const float* x = b.x + m0 * b.k;
  for (int64_t g = 0; g < groups; g++) {
    Lut t[NB];
    for (int j = 0; j < NB; j++) t[j] = lut(bt, b.scales[(n + j) * groups + g]);
    for (int64_t k = g * gs; k < (g + 1) * gs; k += 16) {
      for (int j = 0; j < NB; j++) {
        const int32_t* wp = b.packed + (n + j) * words + k / 8;
        const __m256 w0 = decode8(wp[0], t[j]), w1 = decode8(wp[1], t[j]);
        for (int i = 0; i < MB; i++) {
          lo[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * b.k + k), w0, lo[i][j]);
          hi[i][j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i * b.k + k + 8), w1, hi[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) {
      alignas(32) float p[16];
      _mm256_store_ps(p, lo[i][j]);
      _mm256_store_ps(p + 8, hi[i][j]);
      b.y[(m0 + i) * b.n + n + j] = glmk_reduce16(p);
    }
}

template <int NB>
void cols(const GemmBlock& b, int64_t n) {
  for (int64_t m0 = 0; m0 < b.m; m0 += 4) {
    switch (std::min<int64_t>(4, b.m - m0)) {
      case 1: rows<1, NB>(b, n, m0); break;
      case 2: rows<2, NB>(b, n, m0); break;
      case 3: rows<3, NB>(b, n, m0); break;
      default: rows<4, NB>(b, n, m0); break;
    }
  }
}

}  // namespace

void int4_block_avx2(const GemmBlock& b) {
  int64_t n = b.n0;
  for (; n + 4 <= b.n1; n += 4) cols<4>(b, n);
  for (; n < b.n1; n++) cols<1>(b, n);
}

}  // namespace glmk::cpu
