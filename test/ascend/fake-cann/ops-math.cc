// The fake libopapi_math.so (newer CANN's split op library): aclnnCast, aclnnEqScalar, aclnnNeTensor,
// aclnnSWhere, aclnnSort, aclnnBitwiseXorTensor.
#include <algorithm>
#include <numeric>

#include "ops-common.hpp"

using fake::at;
using fake::at_bcast;

namespace {

bool same_dims(const aclTensor* a, const aclTensor* b) { return a->dims == b->dims; }

std::string dims_text(const aclTensor* t) {
  std::string s = "[";
  for (size_t i = 0; i < t->dims.size(); i++) s += (i ? ", " : "") + std::to_string(t->dims[i]);
  return s + "]";
}

#ifndef GLMK_FAKE_CANN_NO_SORT
// The fake NPU's own sort order of a float's bits (CANN documents none): the plain bit order of a radix
// sort, so -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN, NaNs ordered by payload. SPEC 3 wants another
// one (every NaN above +inf and equal, -0 == +0): a plugin that does not canonicalize first gets it wrong.
uint64_t sort_key(const aclTensor& t, const char* p) {
  switch (t.dtype) {
    case kF32: {
      uint32_t b;
      std::memcpy(&b, p, 4);
      return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    }
    case kF16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return (b & 0x8000u) ? static_cast<uint16_t>(~b) : static_cast<uint16_t>(b | 0x8000u);
    }
    default:
      return static_cast<uint64_t>(static_cast<int64_t>(fake::read(t, p))) ^ 0x8000000000000000ull;
  }
}
#endif

}  // namespace

extern "C" {

int aclnnCastGetWorkspaceSize(const aclTensor* self, int dtype, aclTensor* out, uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnCast";
  if (fakecann_inject("aclnnCastGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnCastGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  if (out->dtype != dtype) return fakecann_error(kAclnnErrParamInvalid, "%s: out has dtype %d but dtype %d was asked for", op, out->dtype, dtype);
  if (!fake::writable(dtype)) return fakecann_error(kAclnnErrParamInvalid, "%s: the fake cannot cast to dtype %d", op, dtype);
  if (!same_dims(self, out)) return fakecann_error(kAclnnErrParamInvalid, "%s: self %s and out %s differ in shape", op, dims_text(self).c_str(), dims_text(out).c_str());
  aclOpExecutor* e = fake::executor(op, {self, out});
  const aclTensor s = *self, o = *out;
  e->run = [s, o](char*, std::string&) {
    const int64_t n = fake_numel(&o);
    for (int64_t i = 0; i < n; i++) fake::write(o, at(o, i), fake::read(s, at(s, i)));
    return 0;
  };
  *ws = 0;
  *ex = e;
  return 0;
}
int aclnnCast(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnCast"); }

int aclnnEqScalarGetWorkspaceSize(const aclTensor* self, const aclScalar* other, aclTensor* out, uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnEqScalar";
  if (fakecann_inject("aclnnEqScalarGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnEqScalarGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"out", out}})) return rc;
  if (!other || !ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: other, workspaceSize or executor is NULL", op);
  if (out->dtype != kBool) return fakecann_error(kAclnnErrParamInvalid, "%s: out must be BOOL, got dtype %d", op, out->dtype);
  if (!same_dims(self, out)) return fakecann_error(kAclnnErrParamInvalid, "%s: self %s and out %s differ in shape", op, dims_text(self).c_str(), dims_text(out).c_str());
  aclOpExecutor* e = fake::executor(op, {self, out});
  const aclTensor s = *self, o = *out;
  const double v = other->value;
  e->run = [s, o, v](char*, std::string&) {
    const int64_t n = fake_numel(&o);
    for (int64_t i = 0; i < n; i++) *at(o, i) = fake::read(s, at(s, i)) == v;
    return 0;
  };
  *ws = 0;
  *ex = e;
  return 0;
}
int aclnnEqScalar(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnEqScalar"); }

int aclnnNeTensorGetWorkspaceSize(const aclTensor* self, const aclTensor* other, aclTensor* out, uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnNeTensor";
  if (fakecann_inject("aclnnNeTensorGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnNeTensorGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"other", other}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  if (out->dtype != kBool) return fakecann_error(kAclnnErrParamInvalid, "%s: out must be BOOL, got dtype %d", op, out->dtype);
  if (!fake::broadcastable(*self, out->dims) || !fake::broadcastable(*other, out->dims))
    return fakecann_error(kAclnnErrParamInvalid, "%s: self %s and other %s do not broadcast to out %s", op, dims_text(self).c_str(),
                          dims_text(other).c_str(), dims_text(out).c_str());
  aclOpExecutor* e = fake::executor(op, {self, other, out});
  const aclTensor s = *self, t = *other, o = *out;
  e->run = [s, t, o](char*, std::string&) {
    const int64_t n = fake_numel(&o);
    for (int64_t i = 0; i < n; i++) *at(o, i) = fake::read(s, at_bcast(s, o.dims, i)) != fake::read(t, at_bcast(t, o.dims, i));
    return 0;
  };
  *ws = 0;
  *ex = e;
  return 0;
}
int aclnnNeTensor(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnNeTensor"); }

int aclnnSWhereGetWorkspaceSize(const aclTensor* condition, const aclTensor* self, const aclTensor* other, aclTensor* out, uint64_t* ws,
                                aclOpExecutor** ex) {
  const char* op = "aclnnSWhere";
  if (fakecann_inject("aclnnSWhereGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnSWhereGetWorkspaceSize");
  if (int rc = fake::need(op, {{"condition", condition}, {"self", self}, {"other", other}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  if (condition->dtype != kBool && condition->dtype != kU8) return fakecann_error(kAclnnErrParamInvalid, "%s: condition must be BOOL or UINT8", op);
  if (self->dtype != out->dtype || other->dtype != out->dtype)
    return fakecann_error(kAclnnErrParamInvalid, "%s: self, other and out must share a dtype (the fake does no promotion)", op);
  for (const aclTensor* t : {condition, self, other})
    if (!fake::broadcastable(*t, out->dims))
      return fakecann_error(kAclnnErrParamInvalid, "%s: %s does not broadcast to out %s", op, dims_text(t).c_str(), dims_text(out).c_str());
  aclOpExecutor* e = fake::executor(op, {condition, self, other, out});
  const aclTensor c = *condition, s = *self, t = *other, o = *out;
  e->run = [c, s, t, o](char*, std::string&) {
    const int64_t n = fake_numel(&o);
    const size_t es = fake_dtype_size(o.dtype);
    for (int64_t i = 0; i < n; i++) {
      const bool pick = *at_bcast(c, o.dims, i) != 0;
      std::memcpy(at(o, i), pick ? at_bcast(s, o.dims, i) : at_bcast(t, o.dims, i), es);  // bits, NaN payloads too
    }
    return 0;
  };
  *ws = 0;
  *ex = e;
  return 0;
}
int aclnnSWhere(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnSWhere"); }

// out = self ^ other on the bits (CANN: INT8, INT16, INT32, INT64, UINT8, BOOL; the fake: one dtype for all
// three, no promotion), self and other broadcast to out.
int aclnnBitwiseXorTensorGetWorkspaceSize(const aclTensor* self, const aclTensor* other, aclTensor* out, uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnBitwiseXorTensor";
  fakecann_trace("aclnnBitwiseXorTensorGetWorkspaceSize dtype %d", self ? self->dtype : -1);
  if (fakecann_inject("aclnnBitwiseXorTensorGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnBitwiseXorTensorGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"other", other}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  const int dt = out->dtype;
  if (dt != kI8 && dt != kI16 && dt != kI32 && dt != kI64 && dt != kU8 && dt != kBool)
    return fakecann_error(kAclnnErrParamInvalid, "%s: dtype %d is not INT8, INT16, INT32, INT64, UINT8 or BOOL", op, dt);
  if (self->dtype != dt || other->dtype != dt)
    return fakecann_error(kAclnnErrParamInvalid, "%s: self, other and out must share a dtype (the fake does no promotion)", op);
  if (!fake::broadcastable(*self, out->dims) || !fake::broadcastable(*other, out->dims))
    return fakecann_error(kAclnnErrParamInvalid, "%s: self %s and other %s do not broadcast to out %s", op, dims_text(self).c_str(),
                          dims_text(other).c_str(), dims_text(out).c_str());
  aclOpExecutor* e = fake::executor(op, {self, other, out});
  const aclTensor s = *self, t = *other, o = *out;
  e->run = [s, t, o](char*, std::string&) {
    const int64_t n = fake_numel(&o);
    const size_t es = fake_dtype_size(o.dtype);
    for (int64_t i = 0; i < n; i++) {
      uint64_t a = 0, b = 0;
      std::memcpy(&a, at_bcast(s, o.dims, i), es);
      std::memcpy(&b, at_bcast(t, o.dims, i), es);
      a ^= b;
      std::memcpy(at(o, i), &a, es);  // little-endian: the low es bytes
    }
    return 0;
  };
  *ws = 0;
  *ex = e;
  return 0;
}
int aclnnBitwiseXorTensor(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnBitwiseXorTensor"); }

#ifndef GLMK_FAKE_CANN_NO_SORT  // the variant built without it stands for a CANN that lacks an entry point
// Sort along `dim` (the fake: the last one). stable = true keeps equal keys in index order (std::stable_sort);
// stable = false gives them in reverse index order, an order an unstable sort may well produce.
int aclnnSortGetWorkspaceSize(const aclTensor* self, bool stable, int64_t dim, bool descending, aclTensor* values, aclTensor* indices,
                              uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnSort";
  fakecann_trace("aclnnSortGetWorkspaceSize stable %d dim %lld descending %d dtype %d", stable, static_cast<long long>(dim), descending,
                 self ? self->dtype : -1);
  if (fakecann_inject("aclnnSortGetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnSortGetWorkspaceSize");
  if (int rc = fake::need(op, {{"self", self}, {"valuesOut", values}, {"indicesOut", indices}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  const int64_t nd = static_cast<int64_t>(self->dims.size());
  if (dim < -nd || dim >= nd) return fakecann_error(kAclnnErrParamInvalid, "%s: dim %lld out of range for %lld dims", op, static_cast<long long>(dim), static_cast<long long>(nd));
  if ((dim + nd) % nd != nd - 1) return fakecann_error(kAclnnErrParamInvalid, "%s: the fake sorts along the last dim only", op);
  if (self->dtype != kF32 && self->dtype != kF16 && self->dtype != kI32 && self->dtype != kI64)
    return fakecann_error(kAclnnErrParamInvalid, "%s: self dtype %d not supported", op, self->dtype);
  if (values->dtype != self->dtype || indices->dtype != kI64)
    return fakecann_error(kAclnnErrParamInvalid, "%s: valuesOut must have self's dtype and indicesOut INT64", op);
  if (!same_dims(self, values) || !same_dims(self, indices))
    return fakecann_error(kAclnnErrParamInvalid, "%s: self %s, valuesOut %s, indicesOut %s differ in shape", op, dims_text(self).c_str(),
                          dims_text(values).c_str(), dims_text(indices).c_str());
  aclOpExecutor* e = fake::executor(op, {self, values, indices});
  const int64_t w = nd ? self->dims.back() : 1, rows = w ? fake_numel(self) / w : 0;
  e->workspace = static_cast<uint64_t>(rows * w) * 16 + 64;  // the permutation and the keys live in the workspace
  const aclTensor s = *self, v = *values, x = *indices;
  e->run = [s, v, x, w, rows, stable, descending](char* wsp, std::string&) {
    auto* perm = reinterpret_cast<int64_t*>(wsp);
    auto* keys = reinterpret_cast<uint64_t*>(wsp + rows * w * 8);
    const size_t es = fake_dtype_size(s.dtype);
    for (int64_t r = 0; r < rows; r++) {
      int64_t* p = perm + r * w;
      uint64_t* k = keys + r * w;
      for (int64_t j = 0; j < w; j++) k[j] = sort_key(s, at(s, r * w + j)), p[j] = j;
      auto before = [&](int64_t a, int64_t b) { return descending ? k[a] > k[b] : k[a] < k[b]; };
      if (stable) std::stable_sort(p, p + w, before);
      else std::sort(p, p + w, [&](int64_t a, int64_t b) { return before(a, b) || (!before(b, a) && a > b); });
      for (int64_t j = 0; j < w; j++) {
        std::memcpy(at(v, r * w + j), at(s, r * w + p[j]), es);
        std::memcpy(at(x, r * w + j), &p[j], 8);
      }
    }
    return 0;
  };
  *ws = e->workspace;
  *ex = e;
  return 0;
}
int aclnnSort(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnSort"); }
#endif

}  // extern "C"
