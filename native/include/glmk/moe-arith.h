/*
 * The MoE layer's scalar arithmetic (SPEC 5), one definition for every device, so that the router picks the
 * same experts with the same weights everywhere (bit for bit) and SwiGLU rounds the same way.
 *
 * Every operation below is one IEEE f32 operation rounded to nearest even (no fused multiply-add: build
 * with -ffp-contract=off / nvcc --fmad=false), subnormals kept. A TypeScript model (Math.fround after each
 * double operation, which rounds f32 +, -, *, / exactly once) gives the same bits: test/reference/moe-ref.ts.
 *
 * glmk_expf(x), Cody and Waite's range reduction with a degree-6 polynomial (Cephes' expf coefficients):
 *   NaN -> the canonical quiet NaN; x > 0x1.62e43p+6 (88.72284) -> +inf; x < -0x1.9fe368p+6 (-103.97208)
 *   -> +0; otherwise
 *   t = x * 0x1.715476p+0 (f32 log2 e), n = t + 0.5 (t >= 0) or t - 0.5, truncated to an integer;
 *   r = (x - n * 0x1.63p-1) - n * -0x1.bd0106p-13       (ln 2 in two parts; n * 0x1.63p-1 is exact)
 *   p = (((((((c6 * r + c5) * r + c4) * r + c3) * r + c2) * r + c1) * (r * r)) + r) + 1
 *       c6..c1 = 0x1.a0d2cep-13, 0x1.6e879cp-10, 0x1.11121p-7, 0x1.555382p-5, 0x1.555554p-3, 0x1p-1
 *       (Cephes' expf coefficients rounded to f32: every constant here is written as its exact f32 value)
 *   result = (p * 2^(n / 2)) * 2^(n - n / 2)             (n / 2 truncated; both factors are normal f32)
 * It is within 2 ulp of exp on normal results (test/moe-route.test.ts measures it over a sweep).
 * sigmoid(x) = 1 / (1 + expf(-x)); silu(x) = x / (1 + expf(-x)).
 */
#ifndef GLMK_MOE_ARITH_H
#define GLMK_MOE_ARITH_H

#include <stdint.h>

#include "int4-arith.h" /* GLMK_HD, glmk_f32_from_bits */

/* 2^e for e in [-126, 127], a normal f32 built from its bits. */
GLMK_HD float glmk_moe_pow2(int e) { return glmk_f32_from_bits((uint32_t)(e + 127) << 23); }

GLMK_HD float glmk_expf(float x) {
  if (x != x) return glmk_f32_from_bits(0x7FC00000u);
  if (x > 0x1.62e43p+6f) return glmk_f32_from_bits(0x7F800000u);
  if (x < -0x1.9fe368p+6f) return 0.0f;
  const float t = x * 0x1.715476p+0f;
  const int n = (int)(t >= 0.0f ? t + 0.5f : t - 0.5f);
  const float fn = (float)n;
  float r = x - fn * 0x1.63p-1f;
  r = r - fn * -0x1.bd0106p-13f;
  float p = 0x1.a0d2cep-13f;
  p = p * r + 0x1.6e879cp-10f;
  p = p * r + 0x1.11121p-7f;
  p = p * r + 0x1.555382p-5f;
  p = p * r + 0x1.555554p-3f;
  p = p * r + 0.5f;
  p = p * (r * r) + r;
  p = p + 1.0f;
  const int h = n / 2;
  return (p * glmk_moe_pow2(h)) * glmk_moe_pow2(n - h);
}

GLMK_HD float glmk_sigmoidf(float x) { return 1.0f / (1.0f + glmk_expf(-x)); }
GLMK_HD float glmk_siluf(float x) { return x / (1.0f + glmk_expf(-x)); }

/* Selection order of two experts' scores (SPEC 5): higher score first, a NaN below every number, equal
 * scores (and two NaNs; -0 == +0) to the lower id. Returns nonzero when (sa, ia) goes before (sb, ib). */
GLMK_HD int glmk_moe_before(float sa, int ia, float sb, int ib) {
  const int na = sa != sa, nb = sb != sb;
  if (na || nb) return na == nb ? ia < ib : nb;
  if (sa != sb) return sa > sb;
  return ia < ib;
}

/*
 * moe.route for one token (SPEC 5), from its f32 logits [e]:
 *   p = sigmoid(logit); s = p + bias (bias NULL: s = p + 0);
 *   n_group > 1: group g's score = (its best s) + (its second best s) (the selection order above), the
 *   topk_group best groups are kept (ties to the lower group id), the other experts are out;
 *   the top_k best remaining experts by s, in that order, are the slots;
 *   weight = p; when norm: sum = ((+0 + w0) + w1) + ... in slot order, w = w / (sum + 1e-20); then
 *   w = w * scaling.
 * scratch: 2 * e floats + n_group ints. The caller checked: e % n_group == 0, e / n_group >= 2 when
 * n_group > 1, 1 <= topk_group <= n_group, 1 <= top_k <= topk_group * (e / n_group).
 */
GLMK_HD void glmk_moe_select(const float* logits, const float* bias, int e, int top_k, int n_group, int topk_group,
                             float scaling, int norm, float* scratch, int* group_ok, int32_t* ids, float* weights) {
  float* p = scratch;
  float* s = scratch + e;
  for (int i = 0; i < e; i++) {
    p[i] = glmk_sigmoidf(logits[i]);
    s[i] = p[i] + (bias ? bias[i] : 0.0f);
  }
  const int gs = e / n_group;
  for (int g = 0; g < n_group; g++) group_ok[g] = n_group == 1;
  if (n_group > 1) {
    for (int pick = 0; pick < topk_group; pick++) {
      int best = -1;
      float best_score = 0.0f;
      for (int g = 0; g < n_group; g++) {
        if (group_ok[g]) continue;
        int i1 = g * gs, i2 = -1;
        for (int i = g * gs + 1; i < (g + 1) * gs; i++) {
          if (glmk_moe_before(s[i], i, s[i1], i1)) {
            i2 = i1;
            i1 = i;
          } else if (i2 < 0 || glmk_moe_before(s[i], i, s[i2], i2)) {
            i2 = i;
          }
        }
        const float score = s[i1] + s[i2];
        if (best < 0 || glmk_moe_before(score, g, best_score, best)) {
          best = g;
          best_score = score;
        }
      }
      group_ok[best] = 1;
    }
  }
  for (int slot = 0; slot < top_k; slot++) {
    int best = -1;
    for (int i = 0; i < e; i++) {
      if (!group_ok[i / gs]) continue;
      int taken = 0;
      for (int j = 0; j < slot; j++) taken |= ids[j] == i;
      if (taken) continue;
      if (best < 0 || glmk_moe_before(s[i], i, s[best], best)) best = i;
    }
    ids[slot] = best;
    weights[slot] = p[best];
  }
  if (norm) {
    float sum = 0.0f;
    for (int j = 0; j < top_k; j++) sum = sum + weights[j];
    const float denom = sum + 0x1.79ca1p-67f /* f32(1e-20) */;
    for (int j = 0; j < top_k; j++) weights[j] = weights[j] / denom;
  }
  for (int j = 0; j < top_k; j++) weights[j] = weights[j] * scaling;
}

#endif /* GLMK_MOE_ARITH_H */
