// Int4 quantizer on the CPU device (SPEC 4). The arithmetic lives in native/include/glmk/int4-arith.h (one
// definition for every device); this file walks rows and groups. Rows are independent work items, so the
// result never depends on the thread count.
#include "int4.hpp"

#include <cmath>
#include <cstring>

#include "fp-env.hpp"
#include "widen.hpp"
#include "glmk/int4-arith.h"
#include "glmk/status.hpp"

namespace glmk::cpu {
namespace {

// max |w| over [b, e): exact; NaN if any weight is NaN.
float group_amax(const void* w, int dtype, int64_t b, int64_t e) {
  float amax = 0.0f;
  for (int64_t i = b; i < e; i++) {
    const float a = std::fabs(widen(w, dtype, i));
    if (a != a) return a;
    if (a > amax) amax = a;
  }
  return amax;
}

void store(void* out, int dtype, int64_t i, uint16_t bf16) {
  if (dtype == GLMK_BF16) static_cast<uint16_t*>(out)[i] = bf16;
  else static_cast<uint32_t*>(out)[i] = glmk_bf16_to_f32_bits(bf16);
}

constexpr int64_t kRowsPerItem = 16;

template <class RowFn>
void for_rows(Pool& pool, int64_t n, RowFn row) {
  const int64_t items = (n + kRowsPerItem - 1) / kRowsPerItem;
  pool.parallel_for(items, [&](int64_t item, int) {
    DefaultFpEnv env;
    const int64_t end = std::min(n, (item + 1) * kRowsPerItem);
    for (int64_t r = item * kRowsPerItem; r < end; r++) row(r);
  });
}

}  // namespace

int int4_quantize_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st) {
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  for_rows(pool, a.n, [&](int64_t r) {
    for (int64_t gi = 0; gi < groups; gi++) {
      const int64_t b = r * k + gi * g;
      const uint16_t sb = glmk_int4_scale(group_amax(a.w, a.w_dtype, b, b + g), a.levels);
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
  });
  return ok(st);
}

int int4_dequantize_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st) {
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  for_rows(pool, a.n, [&](int64_t r) {
    for (int64_t gi = 0; gi < groups; gi++) {
      const int64_t b = r * k + gi * g;
      const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(a.scales[r * groups + gi]));
      for (int64_t j = 0; j < g; j += 8) {
        uint32_t word;
        std::memcpy(&word, &a.packed[(b + j) / 8], 4);
        for (int i = 0; i < 8; i++) {
          const int q = static_cast<int>((word >> (4 * i)) & 0xFu) - 8;
          store(a.out, a.out_dtype, b + j + i, glmk_int4_dequant(q, s));
        }
      }
    }
  });
  return ok(st);
}

int int4_fake_quant_grad_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st) {
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  const size_t es = a.out_dtype == GLMK_BF16 ? 2 : 4;
  for_rows(pool, a.n, [&](int64_t r) {
    char* out = static_cast<char*>(a.out) + r * k * es;
    std::memcpy(out, static_cast<const char*>(a.grad) + r * k * es, static_cast<size_t>(k) * es);
    if (!a.clip) return;
    for (int64_t gi = 0; gi < groups; gi++) {
      const int64_t b = r * k + gi * g;
      const uint16_t sb = glmk_int4_scale(group_amax(a.w, a.w_dtype, b, b + g), a.levels);
      const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(sb));
      for (int64_t i = 0; i < g; i++) {
        int clamped;
        glmk_int4_code(widen(a.w, a.w_dtype, b + i), s, a.levels, &clamped);
        if (clamped) std::memset(out + (gi * g + i) * static_cast<int64_t>(es), 0, es);  // +0
      }
    }
  });
  return ok(st);
}

}  // namespace glmk::cpu
