/*
 * The canonical order of scores (SPEC 3), shared by every device so that they agree bit for bit.
 *
 * key(x) is an unsigned 32-bit integer whose order is the score order:
 *   -inf < ... < -denorm < -0 == +0 < +denorm < ... < +inf < NaN (every sign and payload equal).
 * bf16 and f16 scores are widened to f32 first (exact). The output value of a selected score is the score
 * widened to f32, except that every NaN is written as the canonical quiet NaN 0x7FC00000.
 */
#ifndef GLMK_SCORE_KEY_H
#define GLMK_SCORE_KEY_H

#include <stdint.h>

#if defined(__CUDACC__)
#define GLMK_HD __host__ __device__ __forceinline__
#else
#define GLMK_HD static inline
#endif

#define GLMK_KEY_NAN 0xFFFFFFFFu
#define GLMK_KEY_ZERO 0x80000000u /* both zeros */
#define GLMK_F32_NAN_BITS 0x7FC00000u
#define GLMK_F32_NEG_INF_BITS 0xFF800000u

/* f32 bits -> key. Negative numbers: flip the magnitude bits, then add one so that -0 lands on +0. */
GLMK_HD uint32_t glmk_key_from_f32_bits(uint32_t b) {
  uint32_t s = (uint32_t)((int32_t)b >> 31);
  uint32_t k = (b ^ (s & 0x7FFFFFFFu)) - s;
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) k = 0x7FFFFFFFu;
  return k ^ 0x80000000u;
}

/* The inverse for every key but GLMK_KEY_ZERO (-0 or +0) and GLMK_KEY_NAN (gives 0x7FFFFFFF, a NaN). */
GLMK_HD uint32_t glmk_f32_bits_from_key(uint32_t k) {
  return (k & 0x80000000u) ? (k ^ 0x80000000u) : (((k ^ 0x80000000u) - 1u) ^ 0x7FFFFFFFu);
}

GLMK_HD uint32_t glmk_bf16_to_f32_bits(uint16_t h) { return (uint32_t)h << 16; }

/* IEEE binary16 -> binary32, exact (subnormals normalized, NaN payload kept). */
GLMK_HD uint32_t glmk_f16_to_f32_bits(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  if (exp == 0x1Fu) return sign | 0x7F800000u | (man << 13);
  if (exp != 0) return sign | ((exp + 112u) << 23) | (man << 13);
  if (man == 0) return sign;
  /* subnormal: value = man * 2^-24; normalize */
  uint32_t e = 113u;
  while ((man & 0x400u) == 0) { man <<= 1; e--; }
  return sign | (e << 23) | ((man & 0x3FFu) << 13);
}

/* The value written for a selected score. */
GLMK_HD uint32_t glmk_output_bits(uint32_t f32_bits) {
  return ((f32_bits & 0x7FFFFFFFu) > 0x7F800000u) ? GLMK_F32_NAN_BITS : f32_bits;
}

#endif /* GLMK_SCORE_KEY_H */
