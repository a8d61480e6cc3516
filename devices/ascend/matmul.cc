// matmul and int4.matmul (SPEC 4) on the ascend device. Both run the same computation on the NPU:
//
//   X32 = x widened to f32 (aclnnCast; an f32 x is used as it is)
//   W32 = dense w widened to f32 (aclnnCast; an f32 w as it is), or, for int4, the weights decoded on the
//         host to the f32 values of bf16(q * s) (what int4.dequantize gives, int4.cc) and copied up
//   Y32 = aclnnMatmul(X32 [M, K], W32 viewed as [K, N] with strides (1, K), cubeMathType 0 = KEEP_DTYPE)
//   y   = Y32 rounded to x's dtype (aclnnCast), or Y32 itself for f32 x
//
// so that int4.matmul(x, int4.quantize(w)) and matmul(x, int4.fakeQuant(w)) hand aclnnMatmul the same f32
// operands of the same shapes: the same bits wherever aclnnMatmul is deterministic for equal inputs
// (ACL_OPT_DETERMINISTIC is on, device.cc).
// NOTE: the sums are f32 in aclnnMatmul's own order: within tolerance of the CPU device, not bitwise.
//
// GLM_KERNELS_ASCEND_INT4=wqbmm (opt-in, read at open) runs int4.matmul with bf16 x on
// aclnnWeightQuantBatchMatmulV2 instead, where CANN allows it (group a multiple of 32 below K, K and N at most
// 65535; any other call takes the path above):
//
//   W4 = packed ^ 0x88888888 (aclnnBitwiseXorTensor on the int32 words, into scratch): SPEC 4's offset-8
//        nibbles become two's-complement q, element 2i still in the low nibble of byte i, as CANN's INT4 wants;
//        viewed as INT4 [K, N] with strides (1, K) over the [N, K] nibbles
//   S  = the bf16 scales viewed as [K/G, N] with strides (1, K/G) (per-group antiquantScale, x's dtype)
//   y  = aclnnWeightQuantBatchMatmulV2(x, W4, S, no offset, no output quantization, no bias, G), bf16
//
// The int4 weights stay packed on the NPU (no host decode, no f32 copy). CANN dequantizes (q + 0) * s in f32
// for bf16 x (its golden model) and feeds the cube bf16, i.e. bf16(q * s), int4.dequantize's values, with f32
// accumulation: within tolerance of cpu. But it is another kernel than aclnnMatmul, with its own K order, so
// SPEC 4's identity int4.matmul(x, quantize(w)) == matmul(x, fakeQuant(w)) is NOT promised on this path; that
// is why it is opt-in.
#include "matmul.hpp"

#include <cstring>

#include "aclnn-call.hpp"
#include "device.hpp"
#include "host-step.hpp"
#include "int4.hpp"
#include "glmk/matmul-check.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {
namespace {

size_t align64(size_t b) { return (b + 63) / 64 * 64; }

int acl_dtype(int t) { return t == GLMK_F32 ? kAclFloat : t == GLMK_BF16 ? kAclBf16 : kAclFloat16; }

// Whether this int4.matmul call takes aclnnWeightQuantBatchMatmulV2 (CANN's limits, its docs: bf16 or f16 x, but
// f16 x would dequantize in f16 with an f16 scale: not SPEC 4's bf16(q * s), so bf16 x only).
bool wqbmm_fits(const glmk_device* d, const glmk_matmul_args& a) {
  return d->int4_wqbmm && a.w_dtype == GLMK_W_INT4 && a.x_dtype == GLMK_BF16 && a.group_size % 32 == 0 && a.group_size < a.k &&
         a.k <= 65535 && a.n <= 65535;
}

int wqbmm_run(glmk_device* d, const glmk_matmul_args& a, std::string& msg) {
  const char* op = "int4.matmul";
  const int64_t m = a.m, n = a.n, k = a.k, groups = k / a.group_size, words = k / 8;
  if (reserve(d, &d->scratch, &d->scratch_bytes, align64(static_cast<size_t>(n * words) * 4), msg) != GLMK_OK)
    return (msg = std::string(op) + ": " + msg), GLMK_E_OOM;
  const AclApi* acl = d->acl;
  Descs t(acl);
  aclTensor* P = t.view(const_cast<int32_t*>(a.packed), kAclInt32, n, words, words, 0, n * words);
  aclTensor* MASK = t.constant(d->constants, glmk_device::kConstXor88, kAclInt32);
  aclTensor* R = t.view(d->scratch, kAclInt32, n, words, words, 0, n * words);
  aclTensor* W4 = t.strided(d->scratch, kAclInt4, k, n, 1, k, 0, n * k);  // [K, N] view of the [N, K] nibbles
  aclTensor* S = t.strided(const_cast<uint16_t*>(a.scales), kAclBf16, groups, n, 1, groups, 0, n * groups);
  aclTensor* X = t.view(const_cast<void*>(a.x), kAclBf16, m, k, k, 0, m * k);
  aclTensor* Y = t.view(a.y, kAclBf16, m, n, n, 0, m * n);
  if (!t.error().empty()) return (msg = std::string(op) + ": " + t.error()), GLMK_E_DEVICE;
  int rc = aclnn_launch(d, msg, op, "aclnnBitwiseXorTensor",
                        [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnBitwiseXorTensorGetWorkspaceSize(P, MASK, R, ws, ex); },
                        acl->aclnnBitwiseXorTensor);
  if (rc == GLMK_OK)
    rc = aclnn_launch(d, msg, op, "aclnnWeightQuantBatchMatmulV2",
                      [&](uint64_t* ws, aclOpExecutor** ex) {
                        return acl->aclnnWeightQuantBatchMatmulV2GetWorkspaceSize(X, W4, S, nullptr, nullptr, nullptr, nullptr,
                                                                                   static_cast<int>(a.group_size), Y, ws, ex);
                      },
                      acl->aclnnWeightQuantBatchMatmulV2);
  return rc;
}

int matmul_run(glmk_device* d, const glmk_matmul_args a, std::string& msg) {
  const bool int4 = a.w_dtype == GLMK_W_INT4;
  if (a.k > 0 && wqbmm_fits(d, a)) return wqbmm_run(d, a, msg);
  const char* op = int4 ? "int4.matmul" : "matmul";
  const int64_t m = a.m, n = a.n, k = a.k;
  const size_t ye = dtype_size(a.x_dtype);
  if (k == 0) {  // empty sums: +0 (a host-side zero fill, no aclnn call on an empty K)
    char* z = stage(d, op, static_cast<size_t>(m * n) * ye, msg);
    if (!z) return GLMK_E_OOM;
    std::memset(z, 0, static_cast<size_t>(m * n) * ye);
    return put(d, op, a.y, z, static_cast<size_t>(m * n) * ye, msg);
  }
  // Section: scratch for the f32 operands and result that are not the caller's own tensors
  const bool cast_x = a.x_dtype != GLMK_F32, cast_w = int4 || a.w_dtype != GLMK_F32;
  const size_t xb = cast_x ? align64(static_cast<size_t>(m * k) * 4) : 0;
  const size_t wb = cast_w ? align64(static_cast<size_t>(n * k) * 4) : 0;
  const size_t yb = cast_x ? align64(static_cast<size_t>(m * n) * 4) : 0;
  if (reserve(d, &d->scratch, &d->scratch_bytes, xb + wb + yb, msg) != GLMK_OK) return (msg = std::string(op) + ": " + msg), GLMK_E_OOM;
  char* s = static_cast<char*>(d->scratch);
  void* x32 = cast_x ? s : const_cast<void*>(a.x);
  void* w32 = cast_w ? s + xb : const_cast<void*>(a.w);
  void* y32 = cast_x ? s + xb + wb : a.y;

  // Section: int4 weights decoded on the host (stream order), then copied into W32
  if (int4) {
    const size_t pb = static_cast<size_t>(n * k / 2), sb = static_cast<size_t>(n * (k / a.group_size)) * 2;
    char* pk = stage(d, op, pb, msg);
    char* sc = pk ? stage(d, op, sb, msg) : nullptr;
    char* wf = sc ? stage(d, op, static_cast<size_t>(n * k) * 4, msg) : nullptr;
    if (!wf) return GLMK_E_OOM;
    int rc = fetch(d, op, pk, a.packed, pb, msg);
    if (rc == GLMK_OK) rc = fetch(d, op, sc, a.scales, sb, msg);
    if (rc == GLMK_OK) rc = wait_inputs(d, msg);
    if (rc != GLMK_OK) return rc;
    int4_decode_f32(reinterpret_cast<const int32_t*>(pk), reinterpret_cast<const uint16_t*>(sc), n, k, a.group_size,
                    reinterpret_cast<float*>(wf));
    if ((rc = put(d, op, w32, wf, static_cast<size_t>(n * k) * 4, msg)) != GLMK_OK) return rc;
  }

  // Section: the aclnn calls
  const AclApi* acl = d->acl;
  Descs t(acl);
  aclTensor* X = t.view(const_cast<void*>(a.x), acl_dtype(a.x_dtype), m, k, k, 0, m * k);
  aclTensor* X32 = cast_x ? t.view(x32, kAclFloat, m, k, k, 0, m * k) : X;
  aclTensor* W = int4 ? nullptr : t.view(const_cast<void*>(a.w), acl_dtype(a.w_dtype), n, k, k, 0, n * k);
  aclTensor* W32 = cast_w ? t.view(w32, kAclFloat, n, k, k, 0, n * k) : W;
  aclTensor* W32T = t.strided(w32, kAclFloat, k, n, 1, k, 0, n * k);  // [K, N] view of the [N, K] rows
  aclTensor* Y32 = t.view(y32, kAclFloat, m, n, n, 0, m * n);
  aclTensor* Y = cast_x ? t.view(a.y, acl_dtype(a.x_dtype), m, n, n, 0, m * n) : Y32;
  if (!t.error().empty()) return (msg = std::string(op) + ": " + t.error()), GLMK_E_DEVICE;
  int rc = GLMK_OK;
  auto call = [&](const char* name, auto phase1, RunFn run) {
    if (rc == GLMK_OK) rc = aclnn_launch(d, msg, op, name, phase1, run);
  };
  if (cast_x)
    call("aclnnCast", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(X, kAclFloat, X32, ws, ex); }, acl->aclnnCast);
  if (cast_w && !int4)
    call("aclnnCast", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(W, kAclFloat, W32, ws, ex); }, acl->aclnnCast);
  call("aclnnMatmul", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnMatmulGetWorkspaceSize(X32, W32T, Y32, 0, ws, ex); }, acl->aclnnMatmul);
  if (cast_x)
    call("aclnnCast", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(Y32, acl_dtype(a.x_dtype), Y, ws, ex); }, acl->aclnnCast);
  if (rc != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

int matmul(glmk_device* d, const glmk_matmul_args* a, glmk_status* st) {
  if (glmk::matmul_check(a, st) != GLMK_OK) return st->code;
  if (a->m == 0 || a->n == 0) return ok(st);
  const glmk_matmul_args args = *a;
  d->queue->push([d, args](std::string& msg) { return matmul_run(d, args, msg); });
  return ok(st);
}

}  // namespace glmk::ascend
