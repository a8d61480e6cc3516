// The int4 GEMM kernel with VDPBF16PS (AVX-512 VBMI + BF16: Zen 4, Sapphire Rapids): the order of gemm.hpp,
// two products per lane and instruction.
//
// Why it gives the same bits as the fma chains: VDPBF16PS computes, per lane i, acc + a[2i+1] b[2i+1], rounded,
// then + a[2i] b[2i], rounded (Intel's pseudo-code; measured on this Zen 4: equal to
// fma(a0, b0, fma(a1, b1, acc)) on 32M lanes of which 8M are order-sensitive). Products of two bf16 are
// exact in f32, so with word 2i+1 = k and word 2i = k + 16 of chain i it is that chain's two fma steps.
// But it treats subnormal inputs and results as zero (DAZ, FTZ). So a pass over NB weight rows and MB x
// rows takes it only when nothing can be subnormal: every x value and every scale normal (or zero), and
// emin(x) + emin(scale) >= 142 (biased; the unbiased exponents sum to >= -112). Then every product is a
// multiple of 2^(ex - 7) 2^(es - 7) >= 2^-126, and so is every partial sum: none is subnormal. (A weight
// bf16(q s), |q| >= 1, is at least s.) Otherwise the pass takes the fma kernel (gemm-int4.hpp, VBMI),
// which gives the same bits; a zero scale's weights are zeros whose sign cannot change a sum that is
// never -0.
//
// Per 32 bytes of codes: one byte permute and two shifts give two registers of word indices (word 2i+1
// the code of k = i, word 2i of k = 16 + i; then k = 32 + i, 48 + i), two word permutes look them up in
// the group's table of 16 bf16 (repeated: the permute reads 5 bits), two VDPBF16PS take 64 products.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512bf16,f16c,fma")
#include <cmath>
#include <cstring>

#define GLMK_INT4_VBMI 1
#include "gemm-int4.hpp"

namespace glmk::cpu {
namespace {

// 64 codes (32 bytes) as two registers of word indices (the permute reads 5 bits): one byte permute puts
// into dword i the bytes of k = 16 + i, 48 + i, i and 32 + i (bytes 8 + i/2, 24 + i/2, i/2, 16 + i/2), a
// shift by 4 in the odd dwords brings their high nibbles down: words 2i, 2i + 1 are then k = 16 + i, i, and
// shifted right by 8, k = 48 + i, 32 + i. (Half: 16 bytes, the first register.)
template <bool Half>
inline void pair_codes(const uint8_t* p, __m512i* c) {
  const __m512i idx = _mm512_set_epi8(23, 7, 31, 15, 23, 7, 31, 15, 22, 6, 30, 14, 22, 6, 30, 14, 21, 5, 29, 13, 21, 5, 29, 13,
                                      20, 4, 28, 12, 20, 4, 28, 12, 19, 3, 27, 11, 19, 3, 27, 11, 18, 2, 26, 10, 18, 2, 26, 10,
                                      17, 1, 25, 9, 17, 1, 25, 9, 16, 0, 24, 8, 16, 0, 24, 8);
  const __m512i odd = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
  const __m256i bytes = Half ? _mm256_maskz_loadu_epi8(0xFFFF, p) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  c[0] = _mm512_srlv_epi32(_mm512_permutexvar_epi8(idx, _mm512_castsi256_si512(bytes)), odd);
  if (!Half) c[1] = _mm512_srli_epi32(c[0], 8);
}

// The bf16 tables of scales in [1, 2): t[f] = the 16 values bf16(q (1 + f / 128)), then the same 16 again;
// t[128]: zeros (the table of a zero scale).
struct Int4Base16 {
  alignas(64) uint16_t t[129][32];
};
const Int4Base16& int4_base16() {
  static const Int4Base16 base = [] {
    Int4Base16 b;
    const Int4Base& f32 = int4_base();
    for (int f = 0; f < 128; f++)
      for (int i = 0; i < 32; i++) {
        uint32_t bits;
        std::memcpy(&bits, &f32.t[f][i % 16], 4);
        b.t[f][i] = static_cast<uint16_t>(bits >> 16);  // (exact: the values are bf16)
      }
    for (int i = 0; i < 32; i++) b.t[128][i] = 0;
    return b;
  }();
  return base;
}

// A table is base16[f] with the exponent (e - 127) and the scale's sign added to every nonzero entry (q = 0
// stays +0; see above): for a scale that is +-0 or has biased exponent 1..250 (see allows), f = its
// mantissa and delta = (s & 0xFF80) - 0x3F80, or f = 128 and delta = 0 for +-0. Worked out once for all
// the groups of NB weight rows (32 scales per step), for every pass over x's rows, so that each table is
// one load, one broadcast, one add; the same scan finds the rows' range of scale exponents.
struct TableKeys {
  std::vector<uint16_t> f, delta;  // [NB][groups]
  int emin = 255, emax = 0;        // the smallest and largest biased exponent of a nonzero scale
  // Whether a pass with x's smallest biased exponent ex may take VDPBF16PS (see the top): every scale zero
  // or with biased exponent in [max(1, 142 - ex), 250].
  bool allows(int32_t ex) const { return emin >= std::max(1, 142 - ex) && emax <= 250; }
};
// The smallest of 32 unsigned words (SSE4.1's PHMINPOSUW on the folded halves).
inline int min_epu16(__m512i v) {
  const __m256i h = _mm256_min_epu16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_cvtsi128_si32(_mm_minpos_epu16(_mm_min_epu16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)))) & 0xFFFF;
}

template <int NB>
void table_keys(const GemmBlock& b, int64_t n, TableKeys& keys) {
  const int64_t groups = b.k / b.group_size;
  keys.f.resize(static_cast<size_t>(NB * groups));
  keys.delta.resize(static_cast<size_t>(NB * groups));
  // exponents of nonzero scales: the smallest in vmin, the largest as 255 minus the smallest of 255 - e
  __m512i vmin = _mm512_set1_epi16(255), vneg = _mm512_set1_epi16(255);
  for (int j = 0; j < NB; j++) {
    const uint16_t* sp = b.scales + (n + j) * groups;
    uint16_t* f = keys.f.data() + j * groups;
    uint16_t* d = keys.delta.data() + j * groups;
    for (int64_t g = 0; g < groups; g += 32) {  // the last 32 masked (a scan per call: a scalar tail cost 14%)
      const __mmask32 in = groups - g >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (groups - g)) - 1u);
      const __m512i s = _mm512_maskz_loadu_epi16(in, sp + g);
      const __mmask32 nz = _mm512_mask_test_epi16_mask(in, s, _mm512_set1_epi16(0x7FFF));
      const __m512i e = _mm512_and_si512(_mm512_srli_epi16(s, 7), _mm512_set1_epi16(0xFF));
      vmin = _mm512_mask_min_epu16(vmin, nz, vmin, e);
      vneg = _mm512_mask_min_epu16(vneg, nz, vneg, _mm512_sub_epi16(_mm512_set1_epi16(255), e));
      _mm512_mask_storeu_epi16(f + g, in, _mm512_mask_mov_epi16(_mm512_set1_epi16(128), nz, _mm512_and_si512(s, _mm512_set1_epi16(0x7F))));
      _mm512_mask_storeu_epi16(d + g, in, _mm512_maskz_sub_epi16(nz, _mm512_and_si512(s, _mm512_set1_epi16(static_cast<short>(0xFF80))),
                                                                  _mm512_set1_epi16(0x3F80)));
    }
  }
  keys.emin = min_epu16(vmin);
  keys.emax = 255 - min_epu16(vneg);
}

template <int MB, int NB, bool Half = false>
inline void dp_step(__m512 (&acc)[MB][NB], const uint8_t* const (&wp)[NB], const uint16_t* xp, int64_t xk, int64_t k,
                    const __m512i (&lo)[NB], const __m512i (&hi)[NB], const Int4Ahead& pf) {
  for (int j = 0; j < NB; j++) {
    if ((k & 127) == 0) pf.at(wp[j], k / 2, NB);
    __m512i c[2];
    pair_codes<Half>(wp[j] + k / 2, c);
    const __m512bh w0 = (__m512bh)_mm512_permutexvar_epi16(c[0], lo[j]);
    __m512bh w1;
    if (!Half) w1 = (__m512bh)_mm512_permutexvar_epi16(c[1], hi[j]);
    for (int i = 0; i < MB; i++) {
      const uint16_t* xi = xp + i * xk + k;
      __m512 a = _mm512_dpbf16_ps(acc[i][j], (__m512bh)_mm512_loadu_si512(xi), w0);
      if (!Half) a = _mm512_dpbf16_ps(a, (__m512bh)_mm512_loadu_si512(xi + 32), w1);
      acc[i][j] = a;
    }
  }
}

template <int MB, int NB>
void dp_rows(const GemmBlock& b, int64_t n, int64_t m0, const TableKeys& keys) {
  __m512 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = _mm512_setzero_ps();
  const int64_t gs = b.group_size, groups = b.k / gs;
  const uint8_t* wp[NB];
  for (int j = 0; j < NB; j++) wp[j] = reinterpret_cast<const uint8_t*>(b.packed) + (n + j) * (b.k / 2);
  const Int4Base16& base = int4_base16();
  const Int4Ahead pf = Int4Ahead::of(b);
  const uint16_t* x = b.x_pairs + m0 * b.k;
  auto tables = [&](int64_t g, __m512i (&out)[NB]) {
    for (int j = 0; j < NB; j++) {
      const __m512i t = _mm512_load_si512(base.t[keys.f[j * groups + g]]);
      out[j] = _mm512_mask_add_epi16(t, 0xFEFFFEFFu, t, _mm512_set1_epi16(static_cast<short>(keys.delta[j * groups + g])));  // words 8, 24: q = 0
    }
  };
  __m512i lo[NB], hi[NB];
  if (gs % 64 == 0) {  // whole steps in every group
    for (int64_t g = 0; g < groups; g++) {
      tables(g, lo);
      for (int64_t k = g * gs; k < (g + 1) * gs; k += 64) dp_step<MB, NB>(acc, wp, x, b.k, k, lo, lo, pf);
    }
  } else {  // group 32 (SPEC 4 has 32, 64, 128)
    int64_t g = 0;
    for (; g + 2 <= groups; g += 2) {
      tables(g, lo);
      tables(g + 1, hi);
      dp_step<MB, NB>(acc, wp, x, b.k, g * 32, lo, hi, pf);
    }
    if (g < groups) {
      tables(g, lo);
      dp_step<MB, NB, true>(acc, wp, x, b.k, g * 32, lo, lo, pf);
    }
  }
  store_sums(b, acc, n, m0);
}

template <int NB>
void dp_cols(const GemmBlock& b, int64_t n) {
  thread_local TableKeys keys;
  table_keys<NB>(b, n, keys);
  for (int64_t m0 = 0; m0 < b.m; m0 += 4) {
    const int mb = static_cast<int>(std::min<int64_t>(4, b.m - m0));
    int32_t ex = 255;
    for (int i = 0; i < mb; i++) ex = std::min(ex, b.x_emin[m0 + i] < 0 ? -1000 : b.x_emin[m0 + i]);
    if (!keys.allows(ex)) {  // the fma kernel, the same bits
      switch (mb) {
        case 1: int4_rows<Int4Vbmi, 1, NB>(b, n, m0, nullptr); break;
        case 2: int4_rows<Int4Vbmi, 2, NB>(b, n, m0, nullptr); break;
        case 3: int4_rows<Int4Vbmi, 3, NB>(b, n, m0, nullptr); break;
        default: int4_rows<Int4Vbmi, 4, NB>(b, n, m0, nullptr); break;
      }
      continue;
    }
    switch (mb) {
      case 1: dp_rows<1, NB>(b, n, m0, keys); break;
      case 2: dp_rows<2, NB>(b, n, m0, keys); break;
      case 3: dp_rows<3, NB>(b, n, m0, keys); break;
      default: dp_rows<4, NB>(b, n, m0, keys); break;
    }
  }
}

}  // namespace

void int4_bf16_prepare(const float* x, int64_t m, int64_t k, uint16_t* pairs, int32_t* emin) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  for (int64_t r = 0; r < m; r++) {
    const float* xr = x + r * k;
    uint16_t* pr = pairs + r * k;
    // the smallest biased exponent of the row's nonzero values; -1 if one is subnormal, inf or NaN
    __m512i lo = _mm512_set1_epi32(255);
    __mmask16 bad = 0;
    for (int64_t c = 0; c < k; c += 16) {
      const __mmask16 in = k - c >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (k - c)) - 1u);
      const __m512i v = _mm512_maskz_loadu_epi32(in, xr + c);
      const __mmask16 nz = _mm512_test_epi32_mask(v, abs_mask);
      const __m512i e = _mm512_srli_epi32(_mm512_and_si512(v, abs_mask), 23);
      bad |= _mm512_mask_cmpeq_epi32_mask(nz, e, _mm512_setzero_si512()) | _mm512_mask_cmpeq_epi32_mask(nz, e, _mm512_set1_epi32(255));
      lo = _mm512_mask_min_epu32(lo, nz, lo, e);
    }
    emin[r] = bad ? -1 : static_cast<int32_t>(_mm512_reduce_min_epu32(lo));
    // per 32 values from c0: word 2i+1 = x[c0 + i], word 2i = x[c0 + 16 + i] (k a multiple of 32 here)
    for (int64_t c0 = 0; c0 + 32 <= k; c0 += 32) {
      const __m512i a = _mm512_loadu_si512(xr + c0), b = _mm512_loadu_si512(xr + c0 + 16);
      _mm512_storeu_si512(pr + c0, _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))), _mm512_srli_epi32(b, 16)));
    }
  }
}

uint64_t int4_bf16_dp_mismatches(uint64_t lanes, uint64_t* order_sensitive) {
  // Normal bf16 operands (exponents within 2^+-20) and accumulators chosen near -a1 b1 or -a0 b0, where
  // the two orders of the pair most often differ. (All f32 arithmetic: this file has no contraction.)
  uint64_t s = 0x9E3779B97F4A7C15ull, bad = 0, sensitive = 0;
  auto next = [&s] { s = s * 6364136223846793005ull + 1442695040888963407ull; return static_cast<uint32_t>(s >> 32); };
  auto f32 = [](uint32_t bits) { float v; std::memcpy(&v, &bits, 4); return v; };
  auto bits_of = [](float v) { uint32_t bits; std::memcpy(&bits, &v, 4); return bits; };
  for (uint64_t done = 0; done < lanes; done += 16) {
    alignas(64) uint16_t a[32], b[32];
    alignas(64) float acc[16], out[16];
    for (int i = 0; i < 32; i++) {
      a[i] = static_cast<uint16_t>(((next() & 1u) << 15) | ((107u + next() % 40u) << 7) | (next() & 0x7Fu));
      b[i] = static_cast<uint16_t>(((next() & 1u) << 15) | ((107u + next() % 40u) << 7) | (next() & 0x7Fu));
    }
    for (int i = 0; i < 16; i++) {
      const float p1 = f32(uint32_t{a[2 * i + 1]} << 16) * f32(uint32_t{b[2 * i + 1]} << 16);
      const float p0 = f32(uint32_t{a[2 * i]} << 16) * f32(uint32_t{b[2 * i]} << 16);
      const float near = 1.0f + static_cast<float>(static_cast<int>(next() % 200u) - 100) * 1e-7f;
      switch (next() % 3u) {
        case 0: acc[i] = -p1 * near; break;
        case 1: acc[i] = -p0 * near; break;
        default: acc[i] = f32((next() % 0x7F000000u) | ((next() & 1u) << 31)) * 1e-30f; break;
      }
      if (!(std::fabs(acc[i]) >= 1e-37f) || !(std::fabs(acc[i]) <= 1e37f)) acc[i] = 1.0f;
    }
    _mm512_store_ps(out, _mm512_dpbf16_ps(_mm512_load_ps(acc), (__m512bh)_mm512_load_si512(a), (__m512bh)_mm512_load_si512(b)));
    for (int i = 0; i < 16; i++) {
      const float a1 = f32(uint32_t{a[2 * i + 1]} << 16), b1 = f32(uint32_t{b[2 * i + 1]} << 16);
      const float a0 = f32(uint32_t{a[2 * i]} << 16), b0 = f32(uint32_t{b[2 * i]} << 16);
      const float want = std::fma(a0, b0, std::fma(a1, b1, acc[i]));
      sensitive += bits_of(want) != bits_of(std::fma(a1, b1, std::fma(a0, b0, acc[i])));
      bad += bits_of(out[i]) != bits_of(want);
    }
  }
  if (order_sensitive) *order_sensitive = sensitive;
  return bad;
}

bool vdpbf16ps_exact() {
  // Intel documents VDPBF16PS's order (odd product first, each addition rounded); AMD documents nothing.
  // So before the first use this CPU shows it on 4096 lanes (about 900 of them order-sensitive), or the
  // fma kernels do the work (the same bits).
  static const bool exact = int4_bf16_dp_mismatches(4096, nullptr) == 0;
  return exact;
}

void int4_block_bf16(const GemmBlock& b) {
  int64_t n = b.n0;
  if (!vdpbf16ps_exact()) {
    for (; n + 4 <= b.n1; n += 4) int4_cols<Int4Vbmi, 4>(b, n);
    for (; n < b.n1; n++) int4_cols<Int4Vbmi, 1>(b, n);
    return;
  }
  for (; n + 4 <= b.n1; n += 4) dp_cols<4>(b, n);
  for (; n < b.n1; n++) dp_cols<1>(b, n);
}

}  // namespace glmk::cpu
