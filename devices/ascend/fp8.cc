// FP8 block quantization on the ascend device (SPEC 5): host-computed by the CPU device's row kernels
// (glmk/host-rows.hpp) on staged copies.
#include "fp8.hpp"

#include <algorithm>
#include <cmath>

#include "device.hpp"
#include "host-step.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/fp8-check.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {
namespace {

size_t scale_count(const glmk_fp8_args& a) {
  return static_cast<size_t>(a.batch * ((a.n + a.block_n - 1) / a.block_n) * ((a.k + a.block_k - 1) / a.block_k));
}

int quantize_run(glmk_device* d, const glmk_fp8_args a, std::string& msg) {
  const char* op = "fp8.quantize";
  const size_t elems = static_cast<size_t>(a.batch * a.n * a.k), wbytes = elems * dtype_size(a.w_dtype);
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n;
  char* w = stage(d, op, wbytes, msg);
  char* data = w ? stage(d, op, elems, msg) : nullptr;
  char* scales = data ? stage(d, op, scale_count(a) * 4, msg) : nullptr;
  if (!scales) return GLMK_E_OOM;
  int rc = fetch(d, op, w, a.w, wbytes, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  glmk_fp8_args h = a;  // the same op on the staged host copies
  h.w = w;
  h.data = reinterpret_cast<uint8_t*>(data);
  h.scale_inv = reinterpret_cast<float*>(scales);
  {
    HostFpEnv env;
    for (int64_t b = 0; b < a.batch; b++)
      for (int64_t rb = 0; rb < rows; rb++) fp8_quantize_row(h, b, rb);
  }
  if ((rc = put(d, op, a.data, data, elems, msg)) != GLMK_OK) return rc;
  if ((rc = put(d, op, a.scale_inv, scales, scale_count(a) * 4, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

int dequantize_run(glmk_device* d, const glmk_fp8_args a, std::string& msg) {
  const char* op = "fp8.dequantize";
  const size_t elems = static_cast<size_t>(a.batch * a.n * a.k), obytes = elems * dtype_size(a.out_dtype);
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n;
  char* data = stage(d, op, elems, msg);
  char* scales = data ? stage(d, op, scale_count(a) * 4, msg) : nullptr;
  char* out = scales ? stage(d, op, obytes, msg) : nullptr;
  if (!out) return GLMK_E_OOM;
  int rc = fetch(d, op, data, a.data, elems, msg);
  if (rc == GLMK_OK) rc = fetch(d, op, scales, a.scale_inv, scale_count(a) * 4, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  glmk_fp8_args h = a;
  h.data = reinterpret_cast<uint8_t*>(data);
  h.scale_inv = reinterpret_cast<float*>(scales);
  h.out = out;
  {
    HostFpEnv env;
    for (int64_t b = 0; b < a.batch; b++)
      for (int64_t rb = 0; rb < rows; rb++) fp8_dequantize_row(h, b, rb);
  }
  if ((rc = put(d, op, a.out, out, obytes, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

int fp8_quantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st) {
  if (fp8_check(a, true, st) != GLMK_OK) return st->code;
  if (a->batch * a->n * a->k == 0) return ok(st);
  const glmk_fp8_args args = *a;
  d->queue->push([d, args](std::string& msg) { return quantize_run(d, args, msg); });
  return ok(st);
}

int fp8_dequantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st) {
  if (fp8_check(a, false, st) != GLMK_OK) return st->code;
  if (a->batch * a->n * a->k == 0) return ok(st);
  const glmk_fp8_args args = *a;
  d->queue->push([d, args](std::string& msg) { return dequantize_run(d, args, msg); });
  return ok(st);
}

}  // namespace glmk::ascend
