// The fake's aclnnMatmul (in libopapi_nn.so, as ops-nn's mat_mul_v3): out[M, N] = self[M, K] @ mat2[K, N],
// 2-D only, any strides (mat2 may be the transposed view (1, K) of [N, K] rows). As CANN documents for
// Atlas A2: self and mat2 of one dtype (FLOAT, FLOAT16 or BFLOAT16: no mixed promotion in the fake, and
// BFLOAT16 with FLOAT is refused on 910B too), f32 accumulation, out FLOAT or self's dtype (one rounding).
// Its own order, not the CPU device's: per output, one f32 sum over k in increasing order of the f32
// products, kept in the workspace (phase one asks for M * N f32). cubeMathType: the fake implements 0
// (KEEP_DTYPE) and refuses the down-precision modes (1 ALLOW_FP32_DOWN_PRECISION, 2 USE_FP16, 3 USE_HF32),
// so a caller that asks for HF32 is caught.
#include "ops-common.hpp"

extern "C" {

int aclnnMatmulGetWorkspaceSize(const aclTensor* self, const aclTensor* mat2, aclTensor* out, int8_t cube_math_type, uint64_t* ws,
                                aclOpExecutor** ex) {
  const char* op = "aclnnMatmul";
  fakecann_trace("aclnnMatmulGetWorkspaceSize cubeMathType %d dtype %d", cube_math_type, self ? self->dtype : -1);
  if (fakecann_inject("aclnnMatmulGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnMatmulGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"mat2", mat2}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  if (cube_math_type < 0 || cube_math_type > 3) return fakecann_error(kAclnnErrParamInvalid, "%s: cubeMathType %d is not 0..3", op, cube_math_type);
  if (cube_math_type != 0)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements cubeMathType 0 (KEEP_DTYPE) only, got %d", op, cube_math_type);
  if (self->dims.size() != 2 || mat2->dims.size() != 2 || out->dims.size() != 2)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake multiplies 2-D tensors only", op);
  const int64_t m = self->dims[0], k = self->dims[1], n = mat2->dims[1];
  if (mat2->dims[0] != k || out->dims[0] != m || out->dims[1] != n)
    return fakecann_error(kAclnnErrParamInvalid, "%s: self [%lld, %lld], mat2 [%lld, %lld] and out [%lld, %lld] do not match", op,
                          static_cast<long long>(m), static_cast<long long>(k), static_cast<long long>(mat2->dims[0]),
                          static_cast<long long>(n), static_cast<long long>(out->dims[0]), static_cast<long long>(out->dims[1]));
  if (self->dtype != kF32 && self->dtype != kF16 && self->dtype != kBf16)
    return fakecann_error(kAclnnErrParamInvalid, "%s: self dtype %d is not FLOAT, FLOAT16 or BFLOAT16", op, self->dtype);
  if (mat2->dtype != self->dtype)
    return fakecann_error(kAclnnErrParamInvalid, "%s: self dtype %d and mat2 dtype %d differ (no promotion in the fake)", op, self->dtype, mat2->dtype);
  if (out->dtype != kF32 && out->dtype != self->dtype)
    return fakecann_error(kAclnnErrParamInvalid, "%s: out dtype %d is neither FLOAT nor self's", op, out->dtype);
  aclOpExecutor* e = fake::executor(op, {self, mat2, out});
  e->workspace = static_cast<uint64_t>(m * n) * 4 + 64;
  const aclTensor a = *self, b = *mat2, o = *out;
  e->run = [a, b, o, m, n, k](char* wsp, std::string&) {
    auto* acc = reinterpret_cast<float*>(wsp);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        float s = 0.0f;
        for (int64_t kk = 0; kk < k; kk++) {
          const float p = static_cast<float>(fake::read(a, fake::at(a, i * k + kk))) * static_cast<float>(fake::read(b, fake::at(b, kk * n + j)));
          s = s + p;
        }
        acc[i * n + j] = s;
      }
    for (int64_t i = 0; i < m * n; i++) fake::write(o, fake::at(o, i), acc[i]);
    return 0;
  };
  *ws = e->workspace;
  *ex = e;
  return 0;
}
int aclnnMatmul(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnMatmul"); }

}  // extern "C"
