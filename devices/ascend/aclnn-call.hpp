// Calling aclnn ops from the queue thread: the descriptors of one launch (destroyed once its ops are
// enqueued) and the two-phase call (workspace size + executor, the workspace, the op on the stream).
// Shared by topk.cc, matmul.cc, fp8-matmul.cc and moe.cc.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "acl-api.hpp"
#include "device.hpp"

namespace glmk::ascend {

// The tensors and scalars of one launch, destroyed once its ops are enqueued.
class Descs {
 public:
  explicit Descs(const AclApi* acl) : acl_(acl) {}
  ~Descs() {
    for (aclTensorList* l : lists_) acl_->aclDestroyTensorList(l);  // destroys the tensors it holds
    for (aclTensor* t : tensors_) acl_->aclDestroyTensor(t);
    for (aclScalar* s : scalars_) acl_->aclDestroyScalar(s);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
  // A 2-D view [r, c] with row stride `ld` (elements) at element `offset` of `data`, whose storage holds
  // `storage` elements.
  aclTensor* view(void* data, int dtype, int64_t r, int64_t c, int64_t ld, int64_t offset, int64_t storage) {
    return strided(data, dtype, r, c, ld, 1, offset, storage);
  }
  // A 2-D view [r, c] with strides (rs, cs) in elements: (1, K) over an [N, K] storage is its transpose.
  aclTensor* strided(void* data, int dtype, int64_t r, int64_t c, int64_t rs, int64_t cs, int64_t offset, int64_t storage) {
    const int64_t dims[2] = {r, c}, strides[2] = {rs, cs}, st[1] = {storage};
    aclTensor* t = acl_->aclCreateTensor(dims, 2, dtype, strides, offset, kAclFormatNd, st, 1, data);
    keep(t, "aclCreateTensor");
    return t;
  }
  // A [1] tensor of a 4-byte dtype: word i of the device's constants (a 32-byte aligned [8]), broadcast.
  aclTensor* constant(float* constants, int64_t i, int dtype = kAclFloat) {
    const int64_t dims[1] = {1}, strides[1] = {1}, st[1] = {8};
    aclTensor* t = acl_->aclCreateTensor(dims, 1, dtype, strides, i, kAclFormatNd, st, 1, constants);
    keep(t, "aclCreateTensor");
    return t;
  }
  // A list of one tensor: a view with `dims` and `strides` (elements) at element 0 of `data`, whose storage
  // holds `storage` elements. The list owns the tensor (CANN: aclDestroyTensorList destroys it).
  aclTensorList* list1(void* data, int dtype, std::initializer_list<int64_t> dims, std::initializer_list<int64_t> strides,
                       int64_t storage) {
    const std::vector<int64_t> d(dims), s(strides);
    const int64_t st[1] = {storage};
    aclTensor* t = acl_->aclCreateTensor(d.data(), d.size(), dtype, s.data(), 0, kAclFormatNd, st, 1, data);
    if (!t) return note("aclCreateTensor"), nullptr;
    aclTensorList* l = acl_->aclCreateTensorList(&t, 1);
    if (!l) {
      acl_->aclDestroyTensor(t);
      return note("aclCreateTensorList"), nullptr;
    }
    lists_.push_back(l);
    return l;
  }
  // A 1-D view [n] of `data`.
  aclTensor* vec(void* data, int dtype, int64_t n) {
    const int64_t dims[1] = {n}, strides[1] = {1};
    aclTensor* t = acl_->aclCreateTensor(dims, 1, dtype, strides, 0, kAclFormatNd, dims, 1, data);
    keep(t, "aclCreateTensor");
    return t;
  }
  aclScalar* scalar(float v) {
    aclScalar* s = acl_->aclCreateScalar(&v, kAclFloat);
    if (s) scalars_.push_back(s);
    else note("aclCreateScalar");
    return s;
  }
  // Empty while every descriptor was made; else "aclCreateTensor failed: <CANN's message>" (the first).
  const std::string& error() const { return error_; }

 private:
  const AclApi* acl_;
  std::vector<aclTensor*> tensors_;
  std::vector<aclScalar*> scalars_;
  std::vector<aclTensorList*> lists_;
  std::string error_;

  void keep(aclTensor* t, const char* what) {
    if (t) tensors_.push_back(t);
    else note(what);
  }
  void note(const char* what) {
    if (!error_.empty()) return;
    const char* m = acl_->aclGetRecentErrMsg();
    error_ = std::string(what) + " failed: " + (m && *m ? m : "(CANN gave no message)");
  }
};

// One aclnn op of `op` (the package op, for messages: "<op>: <name>GetWorkspaceSize: ACL error ..."):
// phase one, the workspace (d->workspace, grown on demand), phase two on the stream.
template <typename Phase1>
int aclnn_launch(glmk_device* d, std::string& msg, const char* op, const char* name, Phase1 phase1, RunFn run) {
  uint64_t ws = 0;
  aclOpExecutor* ex = nullptr;
  aclnnStatus s = phase1(&ws, &ex);
  if (s != 0) return acl_error(d, msg, GLMK_E_DEVICE, std::string(op) + ": " + name + "GetWorkspaceSize", s);
  if (ws && reserve(d, &d->workspace, &d->workspace_bytes, ws, msg) != GLMK_OK) {
    if (d->acl->aclDestroyAclOpExecutor && ex) d->acl->aclDestroyAclOpExecutor(ex);  // phase two never runs
    msg = std::string(op) + ": " + msg;
    return GLMK_E_OOM;
  }
  s = run(ws ? d->workspace : nullptr, ws, ex, d->stream);
  return s == 0 ? GLMK_OK : acl_error(d, msg, GLMK_E_DEVICE, std::string(op) + ": " + name, s);
}

}  // namespace glmk::ascend
