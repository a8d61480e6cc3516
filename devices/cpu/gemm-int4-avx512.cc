// The int4 GEMM kernel (gemm-int4.hpp) for AVX-512 F/BW/VL/DQ without VBMI: split the nibbles, interleave
// them back into k order, widen to lanes.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")
#include "gemm-int4.hpp"

namespace glmk::cpu {
namespace {

struct Int4Split {
  static void codes32(const uint8_t* p, __m512i* c) {
    const __m128i low = _mm_set1_epi8(0x0F);
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i lo = _mm_and_si128(bytes, low), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low);
    c[0] = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));
    c[1] = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi));
  }
  static void codes64(const uint8_t* p, __m512i* c) {
    codes32(p, c);
    codes32(p + 16, c + 2);
  }
};

}  // namespace

void int4_block_avx512(const GemmBlock& b) { int4_block<Int4Split>(b); }

}  // namespace glmk::cpu
