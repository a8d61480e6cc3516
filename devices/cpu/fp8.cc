// FP8 block quantization on the CPU device (SPEC 5). The arithmetic lives in native/include/glmk/fp8-arith.h
// (one definition for every device); this file walks blocks. Each work item is one row of blocks of one
// batch entry, and writes only its own outputs: the result never depends on the thread count.
#include "fp8.hpp"

#include <algorithm>
#include <cmath>

#include "fp-env.hpp"
#include "widen.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/status.hpp"

namespace glmk::cpu {
namespace {

// Runs row_of_blocks(b, rb) for every batch entry b and block row rb, under the default FP environment.
template <class Fn>
void for_block_rows(Pool& pool, const glmk_fp8_args& a, Fn row_of_blocks) {
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n;
  pool.parallel_for(a.batch * rows, [&](int64_t item, int) {
    DefaultFpEnv env;
    row_of_blocks(item / rows, item % rows);
  });
}

}  // namespace

int fp8_quantize_execute(Pool& pool, const glmk_fp8_args& a, glmk_status* st) {
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  for_block_rows(pool, a, [&](int64_t b, int64_t rb) {
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
  });
  return ok(st);
}

int fp8_dequantize_execute(Pool& pool, const glmk_fp8_args& a, glmk_status* st) {
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  for_block_rows(pool, a, [&](int64_t b, int64_t rb) {
    const int64_t r0 = rb * a.block_n, r1 = std::min(a.n, r0 + a.block_n);
    for (int64_t r = r0; r < r1; r++)
      for (int64_t c = 0; c < a.k; c++) {
        const int64_t i = (b * a.n + r) * a.k + c;
        const uint32_t bits = glmk_fp8_dequant_bits(a.data[i], a.scale_inv[(b * rows + rb) * cols + c / a.block_k]);
        if (a.out_dtype == GLMK_F32) static_cast<uint32_t*>(a.out)[i] = bits;
        else if (a.out_dtype == GLMK_BF16) static_cast<uint16_t*>(a.out)[i] = glmk_bf16_rne(bits);
        else static_cast<uint16_t*>(a.out)[i] = glmk_f16_rne(bits);
      }
  });
  return ok(st);
}

}  // namespace glmk::cpu
