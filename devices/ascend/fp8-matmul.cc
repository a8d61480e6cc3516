// fp8.matmul (SPEC 5) on the ascend device:
//
//   X32 = the activations quantized per row and 128 channels as SPEC 5 says, as f32 values f32(a8) * s_a
//         (host, fp8_activations_f32)
//   W32 = the weights dequantized with their block scales, f32(code) * scaleInv (host, fp8_weights_f32)
//   Y32 = aclnnMatmul(X32 [M, K], W32 viewed as [K, N] with strides (1, K), cubeMathType 0 = KEEP_DTYPE)
//   y   = Y32 rounded to bf16 (aclnnCast), or Y32 itself for an f32 output
//
// NOTE: SPEC 5 scales each 128-K block's partial sum, (p * s_a) * scaleInv, and adds the blocks in order;
// here the scales are applied to the operands before one f32 matmul in CANN's order. Same products up to
// one f32 rounding per operand, different sums: within tolerance of the CPU device, not bitwise. Bound:
// |y - exact| <= (K + 3) 2^-24 sum |terms| (f32), plus half a bf16 ulp for a bf16 output.
//
// On an Ascend 950 (and [128, 128] weight blocks) the FP8 cube does the work instead, aclnnQuantMatmulV5 in
// its G-B mode on the codes themselves:
//
//   A8, SA = the activations' e4m3 codes [M, K] and scales [M, ceil(K/128)] (host, SPEC 5's bits)
//   y      = aclnnQuantMatmulV5(A8, the weight codes [N, K] (transposeX2), SA, scaleInv [ceil(N/128),
//            ceil(K/128)] (transposed with them), groupSize [1, 128, 128]), bf16 or f32 out
//
// CANN's formula: y = sum_j (sum_k a8 w) * (sa[j] * scaleInv[j]) (its docs), i.e. p * (s_a * s_w) where SPEC 5
// has (p * s_a) * s_w: one rounding apart per block, inside the same bound. The weights are never read back.
// [1, 128] weight blocks are not a mode the op has (G-B wants 128 weight rows per scale): the path above.
#include "fp8-matmul.hpp"

#include <cstring>
#include <vector>

#include "aclnn-call.hpp"
#include "device.hpp"
#include "host-step.hpp"
#include "glmk/fp8-check.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {

namespace {

// SPEC 5's activation blocks: [1, 128] over the rows of x.
glmk_fp8_args activation_args(const uint16_t* x, int64_t rows, int64_t k, uint8_t* codes, float* scales, float* out) {
  glmk_fp8_args a{};
  a.w = x;
  a.w_dtype = GLMK_BF16;
  a.out_dtype = GLMK_F32;
  a.batch = 1;
  a.n = rows;
  a.k = k;
  a.block_n = 1;
  a.block_k = 128;
  a.data = codes;
  a.scale_inv = scales;
  a.out = out;
  return a;
}

}  // namespace

void fp8_activations_f32(const uint16_t* x, int64_t rows, int64_t k, float* out) {
  std::vector<uint8_t> codes(static_cast<size_t>(rows * k));
  std::vector<float> scales(static_cast<size_t>(rows * ((k + 127) / 128)));
  const glmk_fp8_args a = activation_args(x, rows, k, codes.data(), scales.data(), out);
  for (int64_t r = 0; r < rows; r++) {
    fp8_quantize_row(a, 0, r);
    fp8_dequantize_row(a, 0, r);
  }
}

void fp8_activations_codes(const uint16_t* x, int64_t rows, int64_t k, uint8_t* codes, float* scales) {
  const glmk_fp8_args a = activation_args(x, rows, k, codes, scales, nullptr);
  for (int64_t r = 0; r < rows; r++) fp8_quantize_row(a, 0, r);
}

void fp8_weights_f32(const uint8_t* codes, const float* scale_inv, int64_t n, int64_t k, int64_t block_n, float* out) {
  glmk_fp8_args a{};
  a.out_dtype = GLMK_F32;
  a.batch = 1;
  a.n = n;
  a.k = k;
  a.block_n = block_n;
  a.block_k = 128;
  a.data = const_cast<uint8_t*>(codes);
  a.scale_inv = const_cast<float*>(scale_inv);
  a.out = out;
  for (int64_t rb = 0; rb < (n + block_n - 1) / block_n; rb++) fp8_dequantize_row(a, 0, rb);
}

namespace {

size_t align64(size_t b) { return (b + 63) / 64 * 64; }

}  // namespace

int fp8_cube_product(glmk_device* d, std::string& msg, const char* op, const CubeOperand& a, int64_t m, int64_t k, const CubeWeights& w,
                     int64_t n, void* y, int64_t y_off, bool y_f32) {
  const int64_t kb = (k + 127) / 128, nb = (n + 127) / 128;
  const AclApi* acl = d->acl;
  Descs t(acl);
  aclTensor* A8 = t.view(a.codes, kAclFloat8E4m3fn, m, k, k, a.row * k, (a.row + m) * k);
  aclTensor* SA = t.view(a.scales, kAclFloat, m, kb, kb, a.row * kb, (a.row + m) * kb);
  const int64_t w_off = w.index * n * k, s_off = w.index * nb * kb;  // (element offsets: the bases stay aligned)
  aclTensor* W8 = t.view(const_cast<uint8_t*>(w.codes), kAclFloat8E4m3fn, n, k, k, w_off, w_off + n * k);  // transposeX2: [N, K]
  aclTensor* SW = t.view(const_cast<float*>(w.scale_inv), kAclFloat, nb, kb, kb, s_off, s_off + nb * kb);
  aclTensor* Y = t.view(y, y_f32 ? kAclFloat : kAclBf16, m, n, n, y_off * n, (y_off + m) * n);
  if (!t.error().empty()) return (msg = std::string(op) + ": " + t.error()), GLMK_E_DEVICE;
  constexpr int64_t kGroupSize = 128 | int64_t{128} << 16 | int64_t{1} << 32;  // [gsM, gsN, gsK] = [1, 128, 128]
  return aclnn_launch(d, msg, op, "aclnnQuantMatmulV5",
                      [&](uint64_t* ws, aclOpExecutor** ex) {
                        return acl->aclnnQuantMatmulV5GetWorkspaceSize(A8, W8, SA, SW, nullptr, nullptr, nullptr, nullptr, nullptr, false,
                                                                       true, kGroupSize, Y, ws, ex);
                      },
                      acl->aclnnQuantMatmulV5);
}

namespace {

// The Ascend 950 path (see the top): activations quantized on the host, one aclnnQuantMatmulV5 on the codes.
int fp8_cube_run(glmk_device* d, const glmk_fp8_matmul_args& a, std::string& msg) {
  const char* op = "fp8.matmul";
  const int64_t m = a.m, k = a.k, kb = (k + 127) / 128;
  const size_t xb = static_cast<size_t>(m * k) * 2, cb = static_cast<size_t>(m * k), sb = static_cast<size_t>(m * kb) * 4;
  char* x = stage(d, op, xb, msg);
  char* codes = x ? stage(d, op, cb, msg) : nullptr;
  char* scales = codes ? stage(d, op, sb, msg) : nullptr;
  if (!scales) return GLMK_E_OOM;
  int rc = fetch(d, op, x, a.x, xb, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  {
    HostFpEnv env;
    fp8_activations_codes(reinterpret_cast<const uint16_t*>(x), m, k, reinterpret_cast<uint8_t*>(codes), reinterpret_cast<float*>(scales));
  }
  const size_t cs = align64(cb);
  if (reserve(d, &d->scratch, &d->scratch_bytes, cs + sb, msg) != GLMK_OK) return (msg = std::string(op) + ": " + msg), GLMK_E_OOM;
  char* s = static_cast<char*>(d->scratch);
  if ((rc = put(d, op, s, codes, cb, msg)) != GLMK_OK) return rc;
  if ((rc = put(d, op, s + cs, scales, sb, msg)) != GLMK_OK) return rc;
  rc = fp8_cube_product(d, msg, op, CubeOperand{s, s + cs, 0}, m, k, CubeWeights{a.data, a.scale_inv, 0}, a.n, a.y, 0, a.y_dtype == GLMK_F32);
  if (rc != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

int fp8_matmul_run(glmk_device* d, const glmk_fp8_matmul_args a, std::string& msg) {
  const char* op = "fp8.matmul";
  const int64_t m = a.m, n = a.n, k = a.k;
  const size_t ye = a.y_dtype == GLMK_F32 ? 4 : 2, yb = static_cast<size_t>(m * n) * ye;
  if (k == 0) {  // empty sums: +0 (a host-side zero fill, no aclnn call on an empty K)
    char* z = stage(d, op, yb, msg);
    if (!z) return GLMK_E_OOM;
    std::memset(z, 0, yb);
    return put(d, op, a.y, z, yb, msg);
  }
  if (d->fp8_cube && a.block_n == 128) return fp8_cube_run(d, a, msg);
  // Section: the operands, read back and made f32 on the host (stream order)
  const size_t xb = static_cast<size_t>(m * k) * 2, cb = static_cast<size_t>(n * k);
  const size_t sb = static_cast<size_t>(((n + a.block_n - 1) / a.block_n) * ((k + 127) / 128)) * 4;
  char* x = stage(d, op, xb, msg);
  char* codes = x ? stage(d, op, cb, msg) : nullptr;
  char* scales = codes ? stage(d, op, sb, msg) : nullptr;
  char* xf = scales ? stage(d, op, static_cast<size_t>(m * k) * 4, msg) : nullptr;
  char* wf = xf ? stage(d, op, static_cast<size_t>(n * k) * 4, msg) : nullptr;
  if (!wf) return GLMK_E_OOM;
  int rc = fetch(d, op, x, a.x, xb, msg);
  if (rc == GLMK_OK) rc = fetch(d, op, codes, a.data, cb, msg);
  if (rc == GLMK_OK) rc = fetch(d, op, scales, a.scale_inv, sb, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  {
    HostFpEnv env;
    fp8_activations_f32(reinterpret_cast<const uint16_t*>(x), m, k, reinterpret_cast<float*>(xf));
    fp8_weights_f32(reinterpret_cast<const uint8_t*>(codes), reinterpret_cast<const float*>(scales), n, k, a.block_n,
                    reinterpret_cast<float*>(wf));
  }
  // Section: device scratch for X32, W32 and (bf16 output) Y32
  const bool cast_y = a.y_dtype != GLMK_F32;
  const size_t xs = align64(static_cast<size_t>(m * k) * 4), ws = align64(static_cast<size_t>(n * k) * 4);
  const size_t ys = cast_y ? align64(static_cast<size_t>(m * n) * 4) : 0;
  if (reserve(d, &d->scratch, &d->scratch_bytes, xs + ws + ys, msg) != GLMK_OK) return (msg = std::string(op) + ": " + msg), GLMK_E_OOM;
  char* s = static_cast<char*>(d->scratch);
  void *x32 = s, *w32 = s + xs, *y32 = cast_y ? s + xs + ws : a.y;
  if ((rc = put(d, op, x32, xf, static_cast<size_t>(m * k) * 4, msg)) != GLMK_OK) return rc;
  if ((rc = put(d, op, w32, wf, static_cast<size_t>(n * k) * 4, msg)) != GLMK_OK) return rc;
  // Section: the aclnn calls
  const AclApi* acl = d->acl;
  Descs t(acl);
  aclTensor* X32 = t.view(x32, kAclFloat, m, k, k, 0, m * k);
  aclTensor* W32T = t.strided(w32, kAclFloat, k, n, 1, k, 0, n * k);  // [K, N] view of the [N, K] rows
  aclTensor* Y32 = t.view(y32, kAclFloat, m, n, n, 0, m * n);
  aclTensor* Y = cast_y ? t.view(a.y, kAclBf16, m, n, n, 0, m * n) : Y32;
  if (!t.error().empty()) return (msg = std::string(op) + ": " + t.error()), GLMK_E_DEVICE;
  rc = aclnn_launch(d, msg, op, "aclnnMatmul",
                    [&](uint64_t* w, aclOpExecutor** ex) { return acl->aclnnMatmulGetWorkspaceSize(X32, W32T, Y32, 0, w, ex); }, acl->aclnnMatmul);
  if (rc == GLMK_OK && cast_y)
    rc = aclnn_launch(d, msg, op, "aclnnCast",
                      [&](uint64_t* w, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(Y32, kAclBf16, Y, w, ex); }, acl->aclnnCast);
  if (rc != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

int fp8_matmul(glmk_device* d, const glmk_fp8_matmul_args* a, glmk_status* st) {
  if (fp8_matmul_check(a, st) != GLMK_OK) return st->code;
  if (a->m == 0 || a->n == 0) return ok(st);
  const glmk_fp8_matmul_args args = *a;
  d->queue->push([d, args](std::string& msg) { return fp8_matmul_run(d, args, msg); });
  return ok(st);
}

}  // namespace glmk::ascend
