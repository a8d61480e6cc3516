// int4 quantizer on the ascend device (SPEC 4): host-computed. Each op reads its inputs back after the work
// queued before it, runs the CPU device's row kernels (glmk/host-rows.hpp) on the staged copies, and writes
// its outputs in stream order.
#include "int4.hpp"

#include <cmath>
#include <cstring>

#include "device.hpp"
#include "host-step.hpp"
#include "glmk/int4-check.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {
namespace {

size_t es(int dtype) { return dtype == GLMK_BF16 ? 2 : 4; }

int quantize_run(glmk_device* d, const glmk_int4_args a, std::string& msg) {
  const char* op = "int4.quantize";
  const int64_t k = a.k, g = a.group_size, groups = k / g;
  const size_t n_elems = static_cast<size_t>(a.n * k), sbytes = static_cast<size_t>(a.n * groups) * 2;
  char* w = stage(d, op, n_elems * es(a.w_dtype), msg);
  char* packed = w ? stage(d, op, n_elems / 2, msg) : nullptr;
  char* scales = packed ? stage(d, op, sbytes, msg) : nullptr;
  if (!scales) return GLMK_E_OOM;
  int rc = fetch(d, op, w, a.w, n_elems * es(a.w_dtype), msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  glmk_int4_args h = a;  // the same op on the staged host copies
  h.w = w;
  h.packed = reinterpret_cast<int32_t*>(packed);
  h.scales = reinterpret_cast<uint16_t*>(scales);
  {
    HostFpEnv env;
    for (int64_t r = 0; r < a.n; r++) int4_quantize_row(h, r);
  }
  if ((rc = put(d, op, a.packed, packed, n_elems / 2, msg)) != GLMK_OK) return rc;
  if ((rc = put(d, op, a.scales, scales, sbytes, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

int dequantize_run(glmk_device* d, const glmk_int4_args a, std::string& msg) {
  const char* op = "int4.dequantize";
  const int64_t k = a.k, groups = k / a.group_size;
  const size_t n_elems = static_cast<size_t>(a.n * k), sbytes = static_cast<size_t>(a.n * groups) * 2;
  char* pk = stage(d, op, n_elems / 2, msg);
  char* sc = pk ? stage(d, op, sbytes, msg) : nullptr;
  char* out = sc ? stage(d, op, n_elems * es(a.out_dtype), msg) : nullptr;
  if (!out) return GLMK_E_OOM;
  int rc = fetch(d, op, pk, a.packed, n_elems / 2, msg);
  if (rc == GLMK_OK) rc = fetch(d, op, sc, a.scales, sbytes, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  glmk_int4_args h = a;
  h.packed = reinterpret_cast<int32_t*>(pk);
  h.scales = reinterpret_cast<uint16_t*>(sc);
  h.out = out;
  {
    HostFpEnv env;
    for (int64_t r = 0; r < a.n; r++) int4_dequantize_row(h, r);
  }
  if ((rc = put(d, op, a.out, out, n_elems * es(a.out_dtype), msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

int fake_quant_grad_run(glmk_device* d, const glmk_int4_args a, std::string& msg) {
  const char* op = "int4.fakeQuantGrad";
  const int64_t k = a.k;
  const size_t n_elems = static_cast<size_t>(a.n * k), ge = es(a.out_dtype);
  if (!a.clip) {  // straight through: a device-to-device copy, no host step
    const int e = d->acl->aclrtMemcpyAsync(a.out, n_elems * ge, a.grad, n_elems * ge, kDeviceToDevice, d->stream);
    return e == kAclSuccess ? GLMK_OK : acl_error(d, msg, GLMK_E_DEVICE, std::string(op) + ": copying grad (aclrtMemcpyAsync)", e);
  }
  char* w = stage(d, op, n_elems * es(a.w_dtype), msg);
  char* out = w ? stage(d, op, n_elems * ge, msg) : nullptr;
  if (!out) return GLMK_E_OOM;
  int rc = fetch(d, op, w, a.w, n_elems * es(a.w_dtype), msg);
  if (rc == GLMK_OK) rc = fetch(d, op, out, a.grad, n_elems * ge, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  glmk_int4_args h = a;
  h.w = w;
  h.out = out;  // holds the gradient
  {
    HostFpEnv env;
    for (int64_t r = 0; r < a.n; r++) int4_clip_row(h, r);
  }
  if ((rc = put(d, op, a.out, out, n_elems * ge, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

void int4_decode_f32(const int32_t* packed, const uint16_t* scales, int64_t n, int64_t k, int64_t group_size, float* out) {
  glmk_int4_args h{};
  h.packed = const_cast<int32_t*>(packed);
  h.scales = const_cast<uint16_t*>(scales);
  h.n = n, h.k = k, h.group_size = group_size;
  h.out = out;
  h.out_dtype = GLMK_F32;
  HostFpEnv env;
  for (int64_t r = 0; r < n; r++) int4_dequantize_row(h, r);
}

int int4_quantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (int4_check(a, true, false, st) != GLMK_OK) return st->code;
  if (a->n * a->k == 0) return ok(st);
  const glmk_int4_args args = *a;
  d->queue->push([d, args](std::string& msg) { return quantize_run(d, args, msg); });
  return ok(st);
}

int int4_dequantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (int4_check(a, false, true, st) != GLMK_OK) return st->code;
  if (a->n * a->k == 0) return ok(st);
  const glmk_int4_args args = *a;
  d->queue->push([d, args](std::string& msg) { return dequantize_run(d, args, msg); });
  return ok(st);
}

int int4_fake_quant_grad(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (int4_check(a, true, true, st) != GLMK_OK) return st->code;
  if (a->n * a->k == 0) return ok(st);
  const glmk_int4_args args = *a;
  d->queue->push([d, args](std::string& msg) { return fake_quant_grad_run(d, args, msg); });
  return ok(st);
}

}  // namespace glmk::ascend
