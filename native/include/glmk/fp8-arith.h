/*
 * E4M3FN (OCP FP8: bias 7, max 448, no infinities, NaN = S.1111.111) and DeepSeek-V3's block scaling (SPEC 5),
 * one definition for every device. Needs IEEE f32 division with subnormals kept (the CPU device runs it
 * under the default MXCSR; CUDA without fast-math).
 *
 * f32 -> e4m3: round to nearest even; beyond +-448 (and +-inf) saturate to +-448; every NaN -> 0x7F;
 * -0 -> 0x80 (CUDA's __NV_SATFINITE, Triton's satfinite; torch's .to(float8_e4m3fn) differs: NaN above 464
 * and for inf). e4m3 -> f32 is exact.
 * Blocks: scaleInv = f32(max(amax, 1e-4) / 448) with amax = max |w| over the block (exact; a NaN anywhere
 * gives a NaN scale); data = e4m3(w / scaleInv); dequantized w' = f32(data) * scaleInv.
 */
#ifndef GLMK_FP8_ARITH_H
#define GLMK_FP8_ARITH_H

#include <stdint.h>

#include "int4-arith.h" /* glmk_f32_from_bits, glmk_bits_from_f32, glmk_rne_small, GLMK_HD */

/* e4m3 code -> f32 bits (exact; 0x7F / 0xFF -> the canonical NaN 0x7FC00000). */
GLMK_HD uint32_t glmk_e4m3_to_f32_bits(uint8_t c) {
  const uint32_t sign = (uint32_t)(c & 0x80u) << 24;
  const uint32_t e = (c >> 3) & 15u, m = c & 7u;
  if (e == 15u && m == 7u) return 0x7FC00000u;
  if (e != 0u) return sign | ((e + 120u) << 23) | (m << 20);
  if (m == 0u) return sign;
  /* subnormal: m * 2^-9, normalized */
  uint32_t ee = 121u, mm = m;
  while ((mm & 8u) == 0u) { mm <<= 1; ee--; }
  return sign | (ee << 23) | ((mm & 7u) << 20);
}

/* f32 bits -> e4m3 code, round to nearest even, saturating; NaN -> 0x7F. */
GLMK_HD uint8_t glmk_e4m3_from_f32_bits(uint32_t b) {
  const uint8_t sign = (uint8_t)((b >> 24) & 0x80u);
  const uint32_t a = b & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return 0x7Fu;
  if (a > 0x43E00000u) return (uint8_t)(sign | 0x7Eu); /* above 448 (inf too): 448 */
  if (a < 0x3C800000u) {                               /* below 2^-6: subnormal codes, units of 2^-9 */
    const float q = glmk_rne_small(glmk_f32_from_bits(a) * 512.0f); /* exact scaling, then rne: 0..8 */
    return (uint8_t)(sign | (uint8_t)q);               /* 8 is 0x08: the smallest normal, 2^-6 */
  }
  const uint32_t e = (a >> 23) - 120u;                 /* e4m3 biased exponent, 1..15 */
  const uint32_t mant = a & 0x7FFFFFu;
  const uint32_t r = (mant + 0x7FFFFu + ((mant >> 20) & 1u)) >> 20; /* 3 bits, rne; 8 carries */
  const uint32_t code = (e << 3) + r;
  return (uint8_t)(sign | (code > 0x7Eu ? 0x7Eu : code));
}

/* The block's scaleInv from its amax: a NaN amax gives the canonical NaN 0x7FC00000. */
GLMK_HD float glmk_fp8_scale_inv(float amax) {
  const float floor_ = 1e-4f;
  if (amax != amax) return glmk_f32_from_bits(0x7FC00000u);
  return (amax > floor_ ? amax : floor_) / 448.0f;
}

/* A dequantized weight, f32(code) * scaleInv, as f32 bits (a NaN as the canonical 0x7FC00000). */
GLMK_HD uint32_t glmk_fp8_dequant_bits(uint8_t code, float scale_inv) {
  const float v = glmk_f32_from_bits(glmk_e4m3_to_f32_bits(code)) * scale_inv;
  return v != v ? 0x7FC00000u : glmk_bits_from_f32(v);
}

#endif /* GLMK_FP8_ARITH_H */
