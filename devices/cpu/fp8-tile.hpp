// What fp8.matmul's two AVX-512 tile kernels share (fp8-matmul-avx512.cc: FMA; fp8-matmul-bf16.cc: VDPBF16PS):
// the reduction of 16 vectors of partial sums by the fixed tree, the per-block scaling, and the weight rows'
// prefetch and block scales. AVX-512 F/DQ only, so that both targets can inline them.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace glmk::cpu::fp8tile {

#define GLMK_FP8_TILE __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq"), always_inline)) inline

// One network step: lanes picked from a and b by lo and hi (b's lanes are 16..31), added lane by lane.
GLMK_FP8_TILE __m512 step(__m512 a, __m512 b, __m512i lo, __m512i hi) {
  return _mm512_add_ps(_mm512_permutex2var_ps(a, lo, b), _mm512_permutex2var_ps(a, hi, b));
}

// Reduces p[0..15] (each the 16 partial sums of one output) to one vector: lane r = the fixed tree of p[r]
// (p[j] + p[j+8], then + 4, + 2, + 1: glmk_reduce16's additions).
GLMK_FP8_TILE __m512 reduce16x16(const __m512* p) {
  // step 1: [p_a[j] + p_a[j+8] (j < 8), p_b[j] + p_b[j+8]]; step 2: per 8-lane half q: q[j] + q[j+4];
  // step 3: per 4-lane quarter r: r[j] + r[j+2]; step 4: s[0] + s[1]
  const __m512i L1 = _mm512_set_epi32(23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i H1 = _mm512_set_epi32(31, 30, 29, 28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8);
  const __m512i L2 = _mm512_set_epi32(27, 26, 25, 24, 19, 18, 17, 16, 11, 10, 9, 8, 3, 2, 1, 0);
  const __m512i H2 = _mm512_set_epi32(31, 30, 29, 28, 23, 22, 21, 20, 15, 14, 13, 12, 7, 6, 5, 4);
  const __m512i L3 = _mm512_set_epi32(29, 28, 25, 24, 21, 20, 17, 16, 13, 12, 9, 8, 5, 4, 1, 0);
  const __m512i H3 = _mm512_set_epi32(31, 30, 27, 26, 23, 22, 19, 18, 15, 14, 11, 10, 7, 6, 3, 2);
  const __m512i L4 = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i H4 = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; i++) a[i] = step(p[2 * i], p[2 * i + 1], L1, H1);  // outputs 2i, 2i+1
  for (int i = 0; i < 4; i++) b[i] = step(a[2 * i], a[2 * i + 1], L2, H2);  // outputs 4i .. 4i+3
  for (int i = 0; i < 2; i++) c[i] = step(b[2 * i], b[2 * i + 1], L3, H3);  // outputs 8i .. 8i+7
  return step(c[0], c[1], L4, H4);                                            // outputs 0 .. 15
}

// acc = acc + ((block sum of p) * rescale * sa) * ws, lane by lane (the scalar path's order; rescale is a
// power of two that undoes an exact scaling of the weights, 1 where there is none).
GLMK_FP8_TILE void accumulate(const __m512* p, float rescale, float sa, __m512 wsv, float* acc) {
  __m512 part = reduce16x16(p);
  if (rescale != 1.0f) part = _mm512_mul_ps(part, _mm512_set1_ps(rescale));
  _mm512_storeu_ps(acc, _mm512_add_ps(_mm512_loadu_ps(acc), _mm512_mul_ps(_mm512_mul_ps(part, _mm512_set1_ps(sa)), wsv)));
}

// Prefetch distance along a weight row (8 blocks), into L2 (_MM_HINT_T1: 16.5 GB/s at M = 1 on the 2-vCPU
// Zen 4 with the FMA kernel, against 15.0 with T0 and 13-16 without; 512 to 4096 bytes all within noise).
constexpr int64_t kAhead = 1024;

// Before block j (columns c0 = 128 j ...) of the tile's rows: prefetches kAhead bytes on along each row, or
// into the same row of the next tile (DRAM latency is far more than one block's work), and gathers the
// rows' block scales into ws.
GLMK_FP8_TILE void block_start(const uint8_t* tile, int64_t k, int64_t c0, int64_t rows, int64_t next_rows, const float* const* wsrow,
                               int64_t j, float* ws) {
  for (int64_t r = 0; r < rows; r++) {
    const uint8_t* ahead = c0 + kAhead < k ? tile + r * k + c0 + kAhead : r < next_rows ? tile + (16 + r) * k + (c0 + kAhead - k) : nullptr;
    if (ahead && ahead < tile + (16 + next_rows) * k) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T1);
    }
    ws[r] = wsrow[r][j];
  }
}

// The tile's rows' block-scale rows (scale_inv row (n0 + r) / block_n) and its m x 16 sums set to +0.
GLMK_FP8_TILE void tile_start(const float* scale_inv, int64_t blocks, int64_t block_n, int64_t n0, int64_t rows, int64_t m,
                              const float** wsrow, float* acc) {
  for (int64_t r = 0; r < rows; r++) wsrow[r] = scale_inv + ((n0 + r) / block_n) * blocks;
  for (int64_t i = 0; i < m; i++) _mm512_storeu_ps(acc + 16 * i, _mm512_setzero_ps());
}

#undef GLMK_FP8_TILE

}  // namespace glmk::cpu::fp8tile
