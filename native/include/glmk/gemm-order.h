/*
 * The fixed reduction tree of the matmul order (SPEC 4; devices/cpu/gemm.hpp writes the whole order down),
 * one definition for every device: the 16 partial sums p[j] (each an fma chain over k = j mod 16) are
 * folded in halves, q[j] = p[j] + p[j+8], r[j] = q[j] + q[j+4], s[j] = r[j] + r[j+2], y = s0 + s1.
 */
#ifndef GLMK_GEMM_ORDER_H
#define GLMK_GEMM_ORDER_H

#include "score-key.h" /* GLMK_HD */

GLMK_HD float glmk_reduce16(const float* p) {
  float q[8], r[4], s[2];
  for (int j = 0; j < 8; j++) q[j] = p[j] + p[j + 8];
  for (int j = 0; j < 4; j++) r[j] = q[j] + q[j + 4];
  for (int j = 0; j < 2; j++) s[j] = r[j] + r[j + 2];
  return s[0] + s[1];
}

#endif /* GLMK_GEMM_ORDER_H */
