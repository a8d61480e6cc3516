/*
 * The int4 quantizer's arithmetic (SPEC 4), one definition for every device, so that they agree bit for bit.
 * Needs IEEE f32 division and round-to-nearest-even with subnormals kept (the CPU device runs it under
 * the default MXCSR whatever the caller's is; CUDA's '/' without fast-math is IEEE).
 *
 * Per group: amax = max |w| (exact; a NaN anywhere gives NaN), s = bf16(amax / 7) for 15 levels or
 * bf16(amax / 7.5) for 16 (one f32 division, one rounding to nearest even); per weight: q = 0 if s == 0,
 * else clamp(rne(f32(w) / s), lo, hi), where a NaN quotient (a NaN weight, a NaN or infinite scale over
 * an infinite weight) gives 0. Dequantized: bf16(q * s) (the product is exact in f32), so code 0 gives +0
 * for every finite scale; a group holding a NaN or an infinity has a NaN or infinite scale and
 * dequantizes to NaN at code 0: the non-finite weight shows up in its whole group, never as a number.
 */
#ifndef GLMK_INT4_ARITH_H
#define GLMK_INT4_ARITH_H

#include <stdint.h>
#include <string.h>

#include "score-key.h" /* GLMK_HD */

GLMK_HD float glmk_f32_from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

GLMK_HD uint32_t glmk_bits_from_f32(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

/* f32 -> bf16, round to nearest even (overflow to inf); every NaN -> 0x7FC0, the canonical quiet NaN. */
GLMK_HD uint16_t glmk_bf16_rne(uint32_t b) {
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0u;
  return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/* The group's scale, as bf16 bits, from its amax (f32 bits of a non-negative value or a NaN). */
GLMK_HD uint16_t glmk_int4_scale(float amax, int levels) {
  return glmk_bf16_rne(glmk_bits_from_f32(amax / (levels == 15 ? 7.0f : 7.5f)));
}

/* rne(x) for |x| < 2^22 under round-to-nearest-even: the addition rounds away the fraction. */
GLMK_HD float glmk_rne_small(float x) {
  const float magic = 12582912.0f; /* 1.5 * 2^23 */
  return x >= 0.0f ? (x + magic) - magic : (x - magic) + magic;
}

/* The code of w (f32) under scale s (the bf16 scale widened), and whether it was clamped. */
GLMK_HD int glmk_int4_code(float w, float s, int levels, int* clamped) {
  const float lo = levels == 15 ? -7.0f : -8.0f, hi = 7.0f;
  *clamped = 0;
  if (s == 0.0f) return 0;
  const float x = w / s;
  if (x != x) return 0; /* NaN */
  if (x < lo - 0.5f || x > hi + 0.5f) { /* (also +-inf) */
    *clamped = 1;
    return x < 0.0f ? (int)lo : (int)hi;
  }
  const float r = glmk_rne_small(x);
  if (r < lo || r > hi) {
    *clamped = 1;
    return r < 0.0f ? (int)lo : (int)hi;
  }
  return (int)r;
}

/* bf16(q * s): the dequantized weight as bf16 bits (s: the bf16 scale widened). */
GLMK_HD uint16_t glmk_int4_dequant(int q, float s) { return glmk_bf16_rne(glmk_bits_from_f32((float)q * s)); }

/* f32 -> IEEE binary16 bits, round to nearest even (overflow to inf, subnormals kept); NaN -> 0x7E00. */
GLMK_HD uint16_t glmk_f16_rne(uint32_t b) {
  const uint32_t sign = (b >> 16) & 0x8000u;
  const uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return 0x7E00u;
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to >= 65520: inf */
  if (a < 0x38800000u) {                                   /* below 2^-14: a binary16 subnormal (or zero) */
    if (a < 0x33000000u) return (uint16_t)sign;            /* below 2^-25: rounds to zero */
    const uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126u - e;                       /* value = m * 2^(e - 150); units of 2^-24 */
    const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    const uint32_t r = q + ((rest > half || (rest == half && (q & 1u))) ? 1u : 0u);
    return (uint16_t)(sign | r);
  }
  const uint32_t r = a + 0xFFFu + ((a >> 13) & 1u);      /* round the 13 dropped bits to even */
  return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

#endif /* GLMK_INT4_ARITH_H */
