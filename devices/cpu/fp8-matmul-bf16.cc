// fp8.matmul's kernel with VDPBF16PS (AVX-512 VBMI + BF16: Zen 4, Sapphire Rapids): one tile of 16 weight rows
// against all m activation rows, in the order of gemm.hpp / glmk_fp8_matmul_args, the same bits as the scalar
// path in gemm.cc and as fp8-matmul-avx512.cc.
//
// Why: every e4m3 value, the activations' a8 and the weights' codes alike, is a normal bf16 (or zero, or NaN),
// so their products are exact in f32 and are multiples of 2^-18, and so is every partial sum of a chain:
// nothing is subnormal, and VDPBF16PS's flushing (DAZ, FTZ) never acts. VDPBF16PS computes, per lane i,
// acc + a[2i+1] b[2i+1], rounded, then + a[2i] b[2i], rounded (gemm-int4-bf16.cc checks that on this CPU
// first: vdpbf16ps_exact), so with word 2i+1 = k and word 2i = k + 16 of chain i it is that chain's two fma
// steps, fma(x, w, acc) being acc + x w rounded once when x w is exact.
//
// Per 64 codes: one byte permute puts them in pair order (dword i of the low half: k = 16 + i and k = i, of
// the high half: 48 + i and 32 + i, once the bytes are interleaved into words), two 128-entry byte lookups
// (VPERMI2B reads 7 bits: the code without its sign) give the high and low bytes of the bf16 value, one
// ternary op puts the sign in, two unpacks interleave the bytes into words, two VDPBF16PS take the 64
// products. NaN codes (never from fp8.quantize) look up a NaN and give NaN, as the fma path does.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512bf16,f16c,fma")
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "fp8-tile.hpp"
#include "gemm.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/int4-arith.h"

namespace glmk::cpu {
namespace {

// The bf16 value of e4m3 code c (0..127, no sign), split into bytes: hi[c], lo[c] (exact: e4m3 fits bf16).
struct Tables {
  alignas(64) uint8_t hi[128];
  alignas(64) uint8_t lo[128];
  Tables() {
    for (int c = 0; c < 128; c++) {
      const uint32_t b = glmk_e4m3_to_f32_bits(static_cast<uint8_t>(c)) >> 16;
      hi[c] = static_cast<uint8_t>(b >> 8);
      lo[c] = static_cast<uint8_t>(b);
    }
  }
};

// Byte j of the permuted 64 codes: with L = j / 16 (the 128-bit lane), d = (j % 8) / 2, i = 4 L + d: bytes
// 16 L + 2d, + 1 are codes 16 + i, i (the low unpack's dword i); bytes 16 L + 8 + 2d, + 1 are 48 + i, 32 + i.
struct PairIndex {
  alignas(64) uint8_t idx[64];
  PairIndex() {
    for (int j = 0; j < 64; j++) {
      const int L = j / 16, d = (j % 8) / 2, i = 4 * L + d, high = (j % 16) >= 8, odd = j % 2;
      idx[j] = static_cast<uint8_t>((high ? 32 : 0) + (odd ? 0 : 16) + i);
    }
  }
};

// NOTE: built on first use, never at load: this file is compiled for AVX-512 (the pragma above), so a
// namespace-scope table's constructor would run AVX-512 code when the addon loads on any CPU.
const Tables& tables() {
  static const Tables t;
  return t;
}
const PairIndex& pair_index() {
  static const PairIndex p;
  return p;
}

// 64 codes (n of them; the rest 0) as two registers of bf16 pairs: dword i = (k = 16 + i, k = i), then
// (48 + i, 32 + i).
inline void decode64(const uint8_t* codes, int64_t n, __m512i perm, __m512i hi0, __m512i hi1, __m512i lo0, __m512i lo1,
                     __m512i& u0, __m512i& u1) {
  const __m512i raw = n >= 64 ? _mm512_loadu_si512(codes)
                              : _mm512_maskz_loadu_epi8(n <= 0 ? __mmask64(0) : (__mmask64(1) << n) - 1, codes);
  const __m512i a = _mm512_permutexvar_epi8(perm, raw);
  const __m512i h = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, a, hi1), a, _mm512_set1_epi8(static_cast<char>(0x80)),
                                              0xF8);  // h | (a & 0x80)
  const __m512i l = _mm512_permutex2var_epi8(lo0, a, lo1);
  u0 = _mm512_unpacklo_epi8(l, h);
  u1 = _mm512_unpackhi_epi8(l, h);
}

inline __m512 dp(__m512 acc, __m512i x, __m512i w) { return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w); }

}  // namespace

void fp8_bf16_prepare(const float* xa, int64_t m, int64_t k, uint32_t* pairs) {
  const int64_t blocks = (k + 127) / 128;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < blocks; j++) {
      uint32_t* out = pairs + (i * blocks + j) * 64;
      for (int t = 0; t < 4; t++)
        for (int d = 0; d < 16; d++) {
          const int64_t k1 = j * 128 + 32 * t + d, k0 = k1 + 16;  // word 2d + 1 (first) and word 2d
          const uint32_t hi = k1 < k ? glmk_bits_from_f32(xa[i * k + k1]) >> 16 : 0;
          const uint32_t lo = k0 < k ? glmk_bits_from_f32(xa[i * k + k0]) >> 16 : 0;
          out[16 * t + d] = hi << 16 | lo;
        }
    }
}

void fp8_tile_bf16(const uint32_t* xpairs, const float* sa, int64_t m, int64_t k, const uint8_t* data, const float* scale_inv,
                   int64_t block_n, int64_t n0, int64_t rows, int64_t next_rows, float* acc) {
  const int64_t blocks = (k + 127) / 128;
  const Tables& tb = tables();
  const __m512i perm = _mm512_load_si512(pair_index().idx);
  const __m512i hi0 = _mm512_load_si512(tb.hi), hi1 = _mm512_load_si512(tb.hi + 64);
  const __m512i lo0 = _mm512_load_si512(tb.lo), lo1 = _mm512_load_si512(tb.lo + 64);
  alignas(64) uint32_t w[16][64];
  alignas(64) float ws[16] = {};
  if (rows < 16) std::memset(w[rows], 0, sizeof(uint32_t) * 64 * static_cast<size_t>(16 - rows));  // never written
  const uint8_t* tile = data + n0 * k;
  const float* wsrow[16];
  fp8tile::tile_start(scale_inv, blocks, block_n, n0, rows, m, wsrow, acc);
  for (int64_t j = 0; j < blocks; j++) {
    const int64_t c0 = j * 128, left = k - c0;
    fp8tile::block_start(tile, k, c0, rows, next_rows, wsrow, j, ws);
    const __m512 wsv = _mm512_load_ps(ws);
    __m512 p[16];
    if (m == 1) {
      // one activation row: decode into registers, no buffer
      const uint32_t* xp = xpairs + j * 64;
      const __m512i x0 = _mm512_loadu_si512(xp), x1 = _mm512_loadu_si512(xp + 16), x2 = _mm512_loadu_si512(xp + 32),
                    x3 = _mm512_loadu_si512(xp + 48);
      for (int64_t r = 0; r < 16; r++) {
        __m512 s = _mm512_setzero_ps();  // (+0, as the scalar chains start)
        if (r < rows) {
          __m512i u0, u1, u2, u3;
          decode64(tile + r * k + c0, left, perm, hi0, hi1, lo0, lo1, u0, u1);
          decode64(tile + r * k + c0 + 64, left - 64, perm, hi0, hi1, lo0, lo1, u2, u3);
          s = dp(dp(dp(dp(s, x0, u0), x1, u1), x2, u2), x3, u3);
        }
        p[r] = s;
      }
      fp8tile::accumulate(p, 1.0f, sa[j], wsv, acc);
      continue;
    }
    for (int64_t r = 0; r < rows; r++) {
      __m512i u[4];
      decode64(tile + r * k + c0, left, perm, hi0, hi1, lo0, lo1, u[0], u[1]);
      decode64(tile + r * k + c0 + 64, left - 64, perm, hi0, hi1, lo0, lo1, u[2], u[3]);
      for (int v = 0; v < 4; v++) _mm512_store_si512(w[r] + 16 * v, u[v]);
    }
    for (int64_t i = 0; i < m; i++) {
      const uint32_t* xp = xpairs + (i * blocks + j) * 64;
      const __m512i x0 = _mm512_loadu_si512(xp), x1 = _mm512_loadu_si512(xp + 16), x2 = _mm512_loadu_si512(xp + 32),
                    x3 = _mm512_loadu_si512(xp + 48);
      for (int r = 0; r < 16; r++) {
        const __m512 s = dp(dp(dp(dp(_mm512_setzero_ps(), x0, _mm512_load_si512(w[r])), x1, _mm512_load_si512(w[r] + 16)), x2,
                               _mm512_load_si512(w[r] + 32)),
                            x3, _mm512_load_si512(w[r] + 48));
        p[r] = s;
      }
      fp8tile::accumulate(p, 1.0f, sa[i * blocks + j], wsv, acc + 16 * i);
    }
  }
}

}  // namespace glmk::cpu
