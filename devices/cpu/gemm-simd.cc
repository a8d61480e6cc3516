// The GEMM core's AVX-512 and AVX2 kernels for dense weights (int4: gemm-int4.hpp, gemm-int4-avx2.cc): the
// order of gemm.hpp, lane j of the accumulators holding the partial sum p[j] (AVX2: lanes 0-7 in one
// register, 8-15 in another). Per format a decoder turns 16 weights of row n into f32 lanes; x rows are
// reused in blocks of up to 4 per decoded weight vector.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "gemm.hpp"

namespace glmk::cpu {
namespace {

#define GLMK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))
#define GLMK_AVX2 __attribute__((target("avx2,fma,f16c")))

// Section: AVX-512

// 16 dense weights of row n at k (lanes past the mask 0) as f32 lanes (int4: gemm-int4.hpp).
GLMK_AVX512 inline __m512 dense512(const GemmBlock& b, int64_t n, int64_t k, __mmask16 mask) {
  const int64_t i = n * b.k + k;
  switch (b.w_dtype) {
    case GLMK_F32: return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(b.w) + i);
    case GLMK_BF16: {
      const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(b.w) + i);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    default: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(b.w) + i));
  }
}

// MB rows of x against NB rows of w: MB x NB independent accumulators, so that the fma chains overlap
// (one chain per output; its order is the same whatever MB and NB are).
template <int MB, int NB>
GLMK_AVX512 void rows512(const GemmBlock& b, int64_t n, int64_t m0) {
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm512_setzero_ps();
  const float* x = b.x + m0 * b.k;
  for (int64_t k = 0; k < b.k; k += 16) {
    const __mmask16 mask = b.k - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (b.k - k)) - 1u);
    __m512 w[NB];
    for (int j = 0; j < NB; j++) w[j] = dense512(b, n + j, k, mask);
    for (int i = 0; i < MB; i++) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * b.k + k);
      for (int j = 0; j < NB; j++) acc[i][j] = _mm512_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) {
      alignas(64) float p[16];
      _mm512_store_ps(p, acc[i][j]);
      b.y[(m0 + i) * b.n + n + j] = glmk_reduce16(p);
    }
}

template <int NB>
GLMK_AVX512 void cols512(const GemmBlock& b, int64_t n) {
  for (int64_t m0 = 0; m0 < b.m; m0 += 4) {
    switch (std::min<int64_t>(4, b.m - m0)) {
      case 1: rows512<1, NB>(b, n, m0); break;
      case 2: rows512<2, NB>(b, n, m0); break;
      case 3: rows512<3, NB>(b, n, m0); break;
      default: rows512<4, NB>(b, n, m0); break;
    }
  }
}

// Section: AVX2 (two registers of 8 lanes: p[0..7] and p[8..15])

// Dense weights only (int4: gemm-int4-avx2.cc).
struct Dec256 {
  const GemmBlock& b;
  int64_t n;
  // 8 weights at k (lanes 0-7), only the first `valid` of them (the rest 0).
  GLMK_AVX2 __m256 load8(int64_t k, int valid) {
    const int64_t i = n * b.k + k;
    alignas(32) float tmp[8] = {0};
    if (valid < 8) {  // the tail of K: a scalar gather of what exists
      for (int j = 0; j < valid; j++) {
        if (b.w_dtype == GLMK_F32) tmp[j] = static_cast<const float*>(b.w)[i + j];
        else {
          const uint16_t h = static_cast<const uint16_t*>(b.w)[i + j];
          tmp[j] = b.w_dtype == GLMK_BF16 ? _mm_cvtss_f32(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(uint32_t{h} << 16))))
                                           : _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
        }
      }
      return _mm256_load_ps(tmp);
    }
    switch (b.w_dtype) {
      case GLMK_F32: return _mm256_loadu_ps(static_cast<const float*>(b.w) + i);
      case GLMK_BF16: {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(b.w) + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      }
      default: return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(b.w) + i)));
    }
  }
};

GLMK_AVX2 inline __m256 loadx8(const float* x, int valid) {
  if (valid >= 8) return _mm256_loadu_ps(x);
  alignas(32) float tmp[8] = {0};
  for (int j = 0; j < valid; j++) tmp[j] = x[j];
  return _mm256_load_ps(tmp);
}

template <int MB>
GLMK_AVX2 void rows256(const GemmBlock& b, int64_t n, int64_t m0) {
  __m256 lo[MB], hi[MB];
  for (int i = 0; i < MB; i++) lo[i] = hi[i] = _mm256_setzero_ps();
  Dec256 dec{b, n};
  const float* x = b.x + m0 * b.k;
  for (int64_t k = 0; k < b.k; k += 16) {
    const int left = static_cast<int>(std::min<int64_t>(16, b.k - k));
    const int v0 = std::min(8, left), v1 = std::max(0, left - 8);
    const __m256 w0 = dec.load8(k, v0);
    const __m256 w1 = v1 > 0 ? dec.load8(k + 8, v1) : _mm256_setzero_ps();
    for (int i = 0; i < MB; i++) {
      lo[i] = _mm256_fmadd_ps(loadx8(x + i * b.k + k, v0), w0, lo[i]);
      hi[i] = _mm256_fmadd_ps(v1 > 0 ? loadx8(x + i * b.k + k + 8, v1) : _mm256_setzero_ps(), w1, hi[i]);
    }
  }
  for (int i = 0; i < MB; i++) {
    alignas(32) float p[16];
    _mm256_store_ps(p, lo[i]);
    _mm256_store_ps(p + 8, hi[i]);
    b.y[(m0 + i) * b.n + n] = glmk_reduce16(p);
  }
}

}  // namespace

GLMK_AVX512 void gemm_block_avx512(const GemmBlock& b) {
  int64_t n = b.n0;
  for (; n + 4 <= b.n1; n += 4) cols512<4>(b, n);
  for (; n < b.n1; n++) cols512<1>(b, n);
}

GLMK_AVX2 void gemm_block_avx2(const GemmBlock& b) {
  for (int64_t n = b.n0; n < b.n1; n++)
    for (int64_t m0 = 0; m0 < b.m; m0 += 4) {
      switch (std::min<int64_t>(4, b.m - m0)) {
        case 1: rows256<1>(b, n, m0); break;
        case 2: rows256<2>(b, n, m0); break;
        case 3: rows256<3>(b, n, m0); break;
        default: rows256<4>(b, n, m0); break;
      }
    }
}

}  // namespace glmk::cpu
