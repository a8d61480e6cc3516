// The fake libopapi_nn.so: aclnnGather (out[..., j, ...] = self[..., index[..., j, ...], ...] along dim); aclnnMatmul is in ops-matmul.cc.
#include "ops-common.hpp"

extern "C" {

int aclnnGatherGetWorkspaceSize(const aclTensor* self, int64_t dim, const aclTensor* index, aclTensor* out, uint64_t* ws,
                                aclOpExecutor** ex) {
  const char* op = "aclnnGather";
  if (fakecann_inject("aclnnGatherGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnGatherGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"index", index}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  const int64_t nd = static_cast<int64_t>(self->dims.size());
  if (dim < -nd || dim >= nd) return fakecann_error(kAclnnErrParamInvalid, "%s: dim %lld out of range", op, static_cast<long long>(dim));
  dim = (dim + nd) % nd;
  if (index->dtype != kI32 && index->dtype != kI64) return fakecann_error(kAclnnErrParamInvalid, "%s: index must be INT32 or INT64", op);
  if (out->dtype != self->dtype) return fakecann_error(kAclnnErrParamInvalid, "%s: out must have self's dtype", op);
  if (index->dims.size() != self->dims.size() || out->dims != index->dims)
    return fakecann_error(kAclnnErrParamInvalid, "%s: index must have self's rank and out index's shape", op);
  for (int64_t d = 0; d < nd; d++)
    if (d != dim && index->dims[d] > self->dims[d])
      return fakecann_error(kAclnnErrParamInvalid, "%s: index dim %lld is larger than self's", op, static_cast<long long>(d));
  aclOpExecutor* e = fake::executor(op, {self, index, out});
  const aclTensor s = *self, x = *index, o = *out;
  e->run = [s, x, o, dim](char*, std::string& m) {
    const int64_t n = fake_numel(&o);
    const size_t es = fake_dtype_size(o.dtype);
    const int64_t nd = static_cast<int64_t>(o.dims.size());
    std::vector<int64_t> idx(nd);
    for (int64_t i = 0; i < n; i++) {
      int64_t lin = i;
      for (int64_t d = nd; d-- > 0;) idx[d] = lin % o.dims[d], lin /= o.dims[d];
      const int64_t j = static_cast<int64_t>(fake::read(x, fake::at(x, i)));
      if (j < 0 || j >= s.dims[dim]) {
        m = "aclnnGather: index " + std::to_string(j) + " out of range [0, " + std::to_string(s.dims[dim]) + ") (AI Core exception)";
        return kAclErrRtAicoreException;
      }
      idx[dim] = j;
      int64_t off = s.offset;
      for (int64_t d = 0; d < nd; d++) off += idx[d] * s.strides[d];
      std::memcpy(fake::at(o, i), s.data + off * static_cast<int64_t>(es), es);
    }
    return 0;
  };
  *ws = 0;
  *ex = e;
  return 0;
}
int aclnnGather(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnGather"); }

}  // extern "C"
