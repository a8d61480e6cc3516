// FP8 block quantization on the ascend device (SPEC 5): host-computed, block by block in the CPU device's
// order (devices/cpu/fp8.cc), with the shared definitions of glmk/fp8-arith.h.
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
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  char* w = stage(d, op, wbytes, msg);
  char* data = w ? stage(d, op, elems, msg) : nullptr;
  char* scales = data ? stage(d, op, scale_count(a) * 4, msg) : nullptr;
  if (!scales) return GLMK_E_OOM;
  int rc = fetch(d, op, w, a.w, wbytes, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  auto* q = reinterpret_cast<uint8_t*>(data);
  auto* si = reinterpret_cast<float*>(scales);
  {
    HostFpEnv env;
    for (int64_t b = 0; b < a.batch; b++)
      for (int64_t rb = 0; rb < rows; rb++) {
        const int64_t r0 = rb * a.block_n, r1 = std::min(a.n, r0 + a.block_n);
        for (int64_t cb = 0; cb < cols; cb++) {
          const int64_t c0 = cb * a.block_k, c1 = std::min(a.k, c0 + a.block_k);
          float amax = 0.0f;
          for (int64_t r = r0; r < r1 && amax == amax; r++)
            for (int64_t c = c0; c < c1; c++) {
              const float v = std::fabs(widen(w, a.w_dtype, (b * a.n + r) * a.k + c));
              if (v != v) {
                amax = v;
                break;
              }
              amax = v > amax ? v : amax;
            }
          const float s = glmk_fp8_scale_inv(amax);
          si[(b * rows + rb) * cols + cb] = s;
          for (int64_t r = r0; r < r1; r++)
            for (int64_t c = c0; c < c1; c++) {
              const int64_t i = (b * a.n + r) * a.k + c;
              q[i] = glmk_e4m3_from_f32_bits(glmk_bits_from_f32(widen(w, a.w_dtype, i) / s));
            }
        }
      }
  }
  if ((rc = put(d, op, a.data, data, elems, msg)) != GLMK_OK) return rc;
  if ((rc = put(d, op, a.scale_inv, scales, scale_count(a) * 4, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

int dequantize_run(glmk_device* d, const glmk_fp8_args a, std::string& msg) {
  const char* op = "fp8.dequantize";
  const size_t elems = static_cast<size_t>(a.batch * a.n * a.k), obytes = elems * dtype_size(a.out_dtype);
  const int64_t rows = (a.n + a.block_n - 1) / a.block_n, cols = (a.k + a.block_k - 1) / a.block_k;
  char* data = stage(d, op, elems, msg);
  char* scales = data ? stage(d, op, scale_count(a) * 4, msg) : nullptr;
  char* out = scales ? stage(d, op, obytes, msg) : nullptr;
  if (!out) return GLMK_E_OOM;
  int rc = fetch(d, op, data, a.data, elems, msg);
  if (rc == GLMK_OK) rc = fetch(d, op, scales, a.scale_inv, scale_count(a) * 4, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  const auto* q = reinterpret_cast<const uint8_t*>(data);
  const auto* si = reinterpret_cast<const float*>(scales);
  {
    HostFpEnv env;
    for (int64_t b = 0; b < a.batch; b++)
      for (int64_t r = 0; r < a.n; r++)
        for (int64_t c = 0; c < a.k; c++) {
          const int64_t i = (b * a.n + r) * a.k + c;
          const uint32_t bits = glmk_fp8_dequant_bits(q[i], si[(b * rows + r / a.block_n) * cols + c / a.block_k]);
          if (a.out_dtype == GLMK_F32) reinterpret_cast<uint32_t*>(out)[i] = bits;
          else if (a.out_dtype == GLMK_BF16) reinterpret_cast<uint16_t*>(out)[i] = glmk_bf16_rne(bits);
          else reinterpret_cast<uint16_t*>(out)[i] = glmk_f16_rne(bits);
        }
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
