// Int4 quantizer on the CPU device (SPEC 4). The arithmetic lives in native/include/glmk/int4-arith.h and
// the per-row walk in glmk/host-rows.hpp (shared with the ascend device); this file spreads rows over the
// pool. Rows are independent work items, so the result never depends on the thread count.
#include "int4.hpp"

#include <algorithm>
#include <cstring>

#include "fp-env.hpp"
#include "glmk/host-rows.hpp"
#include "glmk/status.hpp"

namespace glmk::cpu {
namespace {

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
  for_rows(pool, a.n, [&](int64_t r) { int4_quantize_row(a, r); });
  return ok(st);
}

int int4_dequantize_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st) {
  for_rows(pool, a.n, [&](int64_t r) { int4_dequantize_row(a, r); });
  return ok(st);
}

int int4_fake_quant_grad_execute(Pool& pool, const glmk_int4_args& a, glmk_status* st) {
  const size_t es = a.out_dtype == GLMK_BF16 ? 2 : 4;
  for_rows(pool, a.n, [&](int64_t r) {
    const size_t row = static_cast<size_t>(a.k) * es;
    std::memcpy(static_cast<char*>(a.out) + r * row, static_cast<const char*>(a.grad) + r * row, row);
    if (a.clip) int4_clip_row(a, r);
  });
  return ok(st);
}

}  // namespace glmk::cpu
