// FP8 block quantization on the CPU device (SPEC 5). The arithmetic lives in native/include/glmk/fp8-arith.h
// (one definition for every device) and the walk over a row of blocks in glmk/host-rows.hpp (shared with
// the ascend device); this file spreads rows of blocks over the pool. Each work item is one row of blocks of one
// batch entry, and writes only its own outputs: the result never depends on the thread count.
#include "fp8.hpp"

#include "fp-env.hpp"
#include "glmk/host-rows.hpp"
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
  for_block_rows(pool, a, [&](int64_t b, int64_t rb) { fp8_quantize_row(a, b, rb); });
  return ok(st);
}

int fp8_dequantize_execute(Pool& pool, const glmk_fp8_args& a, glmk_status* st) {
  for_block_rows(pool, a, [&](int64_t b, int64_t rb) { fp8_dequantize_row(a, b, rb); });
  return ok(st);
}

}  // namespace glmk::cpu
