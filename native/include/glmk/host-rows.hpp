// The int4 and fp8 quantizers on a host, one row at a time (SPEC 4, 5), and moe.experts' host steps (the
// SwiGLU between the products, the combine): the CPU device runs these over its pool, the ascend device on
// its queue thread over staged copies, so both give the same bits by construction. Every pointer in the args is host memory here. The caller sets the FP environment
// (round to nearest, subnormals kept).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "glmk/device.h"
#include "glmk/fp8-arith.h"
#include "glmk/int4-arith.h"
#include "glmk/moe-arith.h"

namespace glmk {

// Element i of a bf16 / f16 / f32 array as an f32 (exact).
inline float widen(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case GLMK_BF16: return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
    case GLMK_F16: return glmk_f32_from_bits(glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
    default: return static_cast<const float*>(p)[i];
  }
}

// max |w| over [b, e): exact; NaN if any weight is NaN.
inline float int4_group_amax(const void* w, int dtype, int64_t b, int64_t e) {
  float amax = 0.0f;
  for (int64_t i = b; i < e; i++) {
    const float v = std::fabs(widen(w, dtype, i));
    if (v != v) return v;
    if (v > amax) amax = v;
  }
  return amax;
}

// int4.quantize of row r: its scales and packed words.
inline void int4_quantize_row(const glmk_int4_args& a, int64_t r) {
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  for (int64_t gi = 0; gi < groups; gi++) {
    const int64_t b = r * k + gi * g;
    const uint16_t sb = glmk_int4_scale(int4_group_amax(a.w, a.w_dtype, b, b + g), a.levels);
    a.scales[r * groups + gi] = sb;
    const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(sb));
    for (int64_t j = 0; j < g; j += 8) {
      uint32_t word = 0;
      for (int i = 0; i < 8; i++) {
        int clamped;
        const int q = glmk_int4_code(widen(a.w, a.w_dtype, b + j + i), s, a.levels, &clamped);
        word |= static_cast<uint32_t>(q + 8) << (4 * i);
      }
      std::memcpy(&a.packed[(b + j) / 8], &word, 4);
    }
  }
}

// int4.dequantize of row r into out: bf16(q * s), or those values widened when out_dtype is f32.
inline void int4_dequantize_row(const glmk_int4_args& a, int64_t r) {
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  for (int64_t gi = 0; gi < groups; gi++) {
    const int64_t b = r * k + gi * g;
    const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(a.scales[r * groups + gi]));
    for (int64_t j = 0; j < g; j += 8) {
      uint32_t word;
      std::memcpy(&word, &a.packed[(b + j) / 8], 4);
      for (int i = 0; i < 8; i++) {
        const uint16_t v = glmk_int4_dequant(static_cast<int>((word >> (4 * i)) & 0xFu) - 8, s);
        if (a.out_dtype == GLMK_BF16) static_cast<uint16_t*>(a.out)[b + j + i] = v;
        else static_cast<uint32_t*>(a.out)[b + j + i] = glmk_bf16_to_f32_bits(v);
      }
    }
  }
}

// int4.fakeQuantGrad with clip, row r: out (already holding the gradient) is +0 where the code was clamped.
inline void int4_clip_row(const glmk_int4_args& a, int64_t r) {
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  const size_t es = a.out_dtype == GLMK_BF16 ? 2 : 4;
  for (int64_t gi = 0; gi < groups; gi++) {
    const int64_t b = r * k + gi * g;
    const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(glmk_int4_scale(int4_group_amax(a.w, a.w_dtype, b, b + g), a.levels)));
    for (int64_t i = b; i < b + g; i++) {
      int clamped;
      glmk_int4_code(widen(a.w, a.w_dtype, i), s, a.levels, &clamped);
      if (clamped) std::memset(static_cast<char*>(a.out) + i * static_cast<int64_t>(es), 0, es);  // +0
    }
  }
}

// fp8.quantize of one row of blocks (entry b of the leading dims, block row rb): its scales and codes.
inline void fp8_quantize_row(const glmk_fp8_args& a, int64_t b, int64_t rb) {
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  const int64_t r0 = rb * a.block_n, r1 = std::min(a.n, r0 + a.block_n);
  for (int64_t cb = 0; cb < cols; cb++) {
    const int64_t c0 = cb * a.block_k, c1 = std::min(a.k, c0 + a.block_k);
    float amax = 0.0f;
    for (int64_t r = r0; r < r1 && amax == amax; r++)
      for (int64_t c = c0; c < c1; c++) {
        const float v = std::fabs(widen(a.w, a.w_dtype, (b * a.n + r) * a.k + c));
        if (v != v) {
          amax = v;
          break;
        }
        amax = v > amax ? v : amax;
      }
    const float s = glmk_fp8_scale_inv(amax);
    a.scale_inv[(b * rows + rb) * cols + cb] = s;
    for (int64_t r = r0; r < r1; r++)
      for (int64_t c = c0; c < c1; c++) {
        const int64_t i = (b * a.n + r) * a.k + c;
        a.data[i] = glmk_e4m3_from_f32_bits(glmk_bits_from_f32(widen(a.w, a.w_dtype, i) / s));
      }
  }
}

// fp8.dequantize of one row of blocks into out (out_dtype f32, bf16 or f16; one rounding).
inline void fp8_dequantize_row(const glmk_fp8_args& a, int64_t b, int64_t rb) {
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  const int64_t r0 = rb * a.block_n, r1 = std::min(a.n, r0 + a.block_n);
  for (int64_t r = r0; r < r1; r++)
    for (int64_t c = 0; c < a.k; c++) {
      const int64_t i = (b * a.n + r) * a.k + c;
      const uint32_t bits = glmk_fp8_dequant_bits(a.data[i], a.scale_inv[(b * rows + rb) * cols + c / a.block_k]);
      if (a.out_dtype == GLMK_F32) static_cast<uint32_t*>(a.out)[i] = bits;
      else if (a.out_dtype == GLMK_BF16) static_cast<uint16_t*>(a.out)[i] = glmk_bf16_rne(bits);
      else static_cast<uint16_t*>(a.out)[i] = glmk_f16_rne(bits);
    }
}

// moe.experts' SwiGLU step (SPEC 5) on n values: h = bf16(silu(f32(g)) * f32(u)) (h may be g).
inline void moe_swiglu_bf16(const uint16_t* g, const uint16_t* u, int64_t n, uint16_t* h) {
  for (int64_t j = 0; j < n; j++) {
    const float gf = glmk_f32_from_bits(glmk_bf16_to_f32_bits(g[j]));
    const float uf = glmk_f32_from_bits(glmk_bf16_to_f32_bits(u[j]));
    h[j] = glmk_bf16_rne(glmk_bits_from_f32(glmk_siluf(gf) * uf));
  }
}

// moe.experts' combine of one token (SPEC 5): out[c] = bf16(((+0 + w0 * y0[c]) + w1 * y1[c]) + ... + f32(shared[c])),
// in slot order, slots with id -1 skipped; y holds the token's top_k rows [top_k, h] (bf16), shared its
// shared expert's row or NULL.
inline void moe_combine_token(const int32_t* ids, const float* weights, int64_t top_k, const uint16_t* y,
                              const uint16_t* shared, int64_t h, uint16_t* out) {
  for (int64_t c = 0; c < h; c++) {
    float acc = 0.0f;
    for (int64_t j = 0; j < top_k; j++) {
      if (ids[j] == -1) continue;
      acc = acc + weights[j] * glmk_f32_from_bits(glmk_bf16_to_f32_bits(y[j * h + c]));
    }
    if (shared) acc = acc + glmk_f32_from_bits(glmk_bf16_to_f32_bits(shared[c]));
    out[c] = glmk_bf16_rne(glmk_bits_from_f32(acc));
  }
}

}  // namespace glmk
