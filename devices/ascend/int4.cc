// int4 quantizer on the ascend device (SPEC 4): host-computed. Each op reads its inputs back after the work
// queued before it, computes per row of groups with glmk/int4-arith.h (the definitions the CPU device
// runs, in the same per-group order), and writes its outputs in stream order.
#include "int4.hpp"

#include <cmath>
#include <cstring>

#include "device.hpp"
#include "host-step.hpp"
#include "glmk/int4-check.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {
namespace {

// max |w| over [b, e): exact; NaN if any weight is NaN (the CPU device's group_amax).
float group_amax(const void* w, int dtype, int64_t b, int64_t e) {
  float amax = 0.0f;
  for (int64_t i = b; i < e; i++) {
    const float v = std::fabs(widen(w, dtype, i));
    if (v != v) return v;
    if (v > amax) amax = v;
  }
  return amax;
}

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
  auto* pk = reinterpret_cast<uint32_t*>(packed);
  auto* sc = reinterpret_cast<uint16_t*>(scales);
  {
    HostFpEnv env;
    for (int64_t r = 0; r < a.n; r++)
      for (int64_t gi = 0; gi < groups; gi++) {
        const int64_t b = r * k + gi * g;
        const uint16_t sb = glmk_int4_scale(group_amax(w, a.w_dtype, b, b + g), a.levels);
        sc[r * groups + gi] = sb;
        const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(sb));
        for (int64_t j = 0; j < g; j += 8) {
          uint32_t word = 0;
          for (int i = 0; i < 8; i++) {
            int clamped;
            const int q = glmk_int4_code(widen(w, a.w_dtype, b + j + i), s, a.levels, &clamped);
            word |= static_cast<uint32_t>(q + 8) << (4 * i);
          }
          pk[(b + j) / 8] = word;
        }
      }
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
  if (a.out_dtype == GLMK_F32) {
    int4_decode_f32(reinterpret_cast<const int32_t*>(pk), reinterpret_cast<const uint16_t*>(sc), a.n, k, a.group_size,
                    reinterpret_cast<float*>(out));
  } else {
    HostFpEnv env;
    for (int64_t i = 0; i < a.n * k; i++) {
      const int q = static_cast<int>((reinterpret_cast<const uint32_t*>(pk)[i / 8] >> (4 * (i % 8))) & 0xFu) - 8;
      const uint16_t sb = reinterpret_cast<const uint16_t*>(sc)[(i / k) * groups + (i % k) / a.group_size];
      reinterpret_cast<uint16_t*>(out)[i] = glmk_int4_dequant(q, glmk_f32_from_bits(glmk_bf16_to_f32_bits(sb)));
    }
  }
  if ((rc = put(d, op, a.out, out, n_elems * es(a.out_dtype), msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

int fake_quant_grad_run(glmk_device* d, const glmk_int4_args a, std::string& msg) {
  const char* op = "int4.fakeQuantGrad";
  const int64_t k = a.k, g = a.group_size, groups = k / g;
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
  {
    HostFpEnv env;
    for (int64_t r = 0; r < a.n; r++)
      for (int64_t gi = 0; gi < groups; gi++) {
        const int64_t b = r * k + gi * g;
        const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(glmk_int4_scale(group_amax(w, a.w_dtype, b, b + g), a.levels)));
        for (int64_t i = b; i < b + g; i++) {
          int clamped;
          glmk_int4_code(widen(w, a.w_dtype, i), s, a.levels, &clamped);
          if (clamped) std::memset(out + i * static_cast<int64_t>(ge), 0, ge);  // +0
        }
      }
  }
  if ((rc = put(d, op, a.out, out, n_elems * ge, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

void int4_decode_f32(const int32_t* packed, const uint16_t* scales, int64_t n, int64_t k, int64_t group_size, float* out) {
  HostFpEnv env;
  const int64_t groups = k / group_size;
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t i = r * k + c;
      const int q = static_cast<int>((static_cast<uint32_t>(packed[i / 8]) >> (4 * (i % 8))) & 0xFu) - 8;
      const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(scales[r * groups + c / group_size]));
      out[i] = glmk_f32_from_bits(glmk_bf16_to_f32_bits(glmk_int4_dequant(q, s)));
    }
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
