// The fake libnnopbase.so: tensor descriptors (view dims, strides and offset in elements over a storage),
// tensor lists (which own their tensors), scalars, and single-use op executors.
#include <mutex>
#include <set>
#include <string>

#include "fake.hpp"

namespace {
std::mutex g_mu;
std::set<const aclTensor*> g_tensors;
std::set<aclOpExecutor*> g_executors;
std::set<const aclTensorList*> g_lists;
}  // namespace

extern "C" {

aclTensor* aclCreateTensor(const int64_t* view_dims, uint64_t view_dims_num, int data_type, const int64_t* stride,
                           int64_t offset, int format, const int64_t* storage_dims, uint64_t storage_dims_num, void* data) {
  fakecann_trace("aclCreateTensor dtype %d ndim %llu offset %lld", data_type, static_cast<unsigned long long>(view_dims_num),
                 static_cast<long long>(offset));
  if (fakecann_inject("aclCreateTensor")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclCreateTensor"), nullptr;
  if (view_dims_num > 8 || (view_dims_num && (!view_dims || !stride)) || !storage_dims || storage_dims_num == 0)
    return fakecann_error(kAclnnErrNullptr, "aclCreateTensor: bad dims / strides / storage dims"), nullptr;
  if (!fake_dtype_known(data_type)) return fakecann_error(kAclnnErrParamInvalid, "aclCreateTensor: unsupported data type %d", data_type), nullptr;
  if (format != 2) return fakecann_error(kAclnnErrParamInvalid, "aclCreateTensor: the fake knows format ND (2) only, got %d", format), nullptr;
  auto* t = new aclTensor();
  t->dtype = data_type;
  t->offset = offset;
  t->data = static_cast<char*>(data);
  t->storage = 1;
  for (uint64_t i = 0; i < storage_dims_num; i++) t->storage *= storage_dims[i];
  int64_t last = offset, n = 1;
  for (uint64_t i = 0; i < view_dims_num; i++) {
    if (view_dims[i] < 0 || stride[i] < 0) {
      delete t;
      return fakecann_error(kAclnnErrParamInvalid, "aclCreateTensor: negative dim or stride"), nullptr;
    }
    t->dims.push_back(view_dims[i]);
    t->strides.push_back(stride[i]);
    last += (view_dims[i] - 1) * stride[i];
    n *= view_dims[i];
  }
  // The view must lie inside the storage, and the storage inside device memory; data 32-byte aligned.
  if (n > 0 && (offset < 0 || last >= t->storage)) {
    fakecann_error(kAclnnErrParamInvalid, "aclCreateTensor: the view (offset %lld, last element %lld) exceeds the storage of %lld elements",
                   static_cast<long long>(offset), static_cast<long long>(last), static_cast<long long>(t->storage));
    delete t;
    return nullptr;
  }
  std::string why;
  if (data && reinterpret_cast<uintptr_t>(data) % 32 != 0) {
    delete t;
    return fakecann_error(kAclnnErrParamInvalid, "aclCreateTensor: tensorData %p is not 32-byte aligned", data), nullptr;
  }
  if (n > 0 && !fakecann_device_range(data, fake_storage_bytes(data_type, t->storage), &why)) {
    delete t;
    return fakecann_error(kAclnnErrParamInvalid, "aclCreateTensor: storage %s", why.c_str()), nullptr;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_tensors.insert(t);
  return t;
}

int aclDestroyTensor(const aclTensor* tensor) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_tensors.erase(tensor)) return fakecann_error(kAclnnErrParamInvalid, "aclDestroyTensor: %p is not a live tensor", static_cast<const void*>(tensor));
  delete tensor;
  return 0;
}

// As CANN documents: the list takes the tensors, and aclDestroyTensorList destroys them with it.
aclTensorList* aclCreateTensorList(const aclTensor* const* value, uint64_t size) {
  fakecann_trace("aclCreateTensorList size %llu", static_cast<unsigned long long>(size));
  if (fakecann_inject("aclCreateTensorList")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclCreateTensorList"), nullptr;
  if (!value && size) return fakecann_error(kAclnnErrNullptr, "aclCreateTensorList: value is NULL"), nullptr;
  std::lock_guard<std::mutex> lock(g_mu);
  auto* l = new aclTensorList();
  for (uint64_t i = 0; i < size; i++) {
    if (!value[i] || !g_tensors.count(value[i])) {
      delete l;
      return fakecann_error(kAclnnErrParamInvalid, "aclCreateTensorList: element %llu is not a live tensor", static_cast<unsigned long long>(i)), nullptr;
    }
    l->tensors.push_back(const_cast<aclTensor*>(value[i]));
  }
  g_lists.insert(l);
  return l;
}

int aclDestroyTensorList(const aclTensorList* list) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_lists.erase(list)) return fakecann_error(kAclnnErrParamInvalid, "aclDestroyTensorList: %p is not a live tensor list", static_cast<const void*>(list));
  for (aclTensor* t : list->tensors)
    if (g_tensors.erase(t)) delete t;
  delete list;
  return 0;
}

aclScalar* aclCreateScalar(void* value, int data_type) {
  if (!value) return fakecann_error(kAclnnErrNullptr, "aclCreateScalar: value is NULL"), nullptr;
  auto* s = new aclScalar();
  s->dtype = data_type;
  switch (data_type) {
    case kF32: s->value = *static_cast<float*>(value); break;
    case kI32: s->value = *static_cast<int32_t*>(value); break;
    case kI64: s->value = static_cast<double>(*static_cast<int64_t*>(value)); break;
    default:
      delete s;
      return fakecann_error(kAclnnErrParamInvalid, "aclCreateScalar: the fake knows FLOAT, INT32, INT64 scalars, got %d", data_type), nullptr;
  }
  return s;
}

int aclDestroyScalar(const aclScalar* scalar) {
  delete scalar;
  return 0;
}

// Executors are single-use: phase two consumes them. Destroying one that phase two never ran is allowed.
int aclDestroyAclOpExecutor(aclOpExecutor* executor) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_executors.erase(executor)) return fakecann_error(kAclnnErrParamInvalid, "aclDestroyAclOpExecutor: %p is not a live executor", static_cast<void*>(executor));
  delete executor;
  return 0;
}

// ---- for the fake's op libraries ----

bool fakecann_tensor_alive(const aclTensor* t) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_tensors.count(t) != 0;
}

bool fakecann_tensor_list_alive(const aclTensorList* l) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_lists.count(l) != 0;
}

aclOpExecutor* fakecann_new_executor(const char* name) {
  auto* e = new aclOpExecutor();
  e->name = name;
  std::lock_guard<std::mutex> lock(g_mu);
  g_executors.insert(e);
  return e;
}

int fakecann_launch(void* workspace, uint64_t workspace_size, aclOpExecutor* executor, void* stream, const char* name) {
  fakecann_trace("%s workspace %llu", name, static_cast<unsigned long long>(workspace_size));
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!g_executors.erase(executor))
      return fakecann_error(kAclnnErrParamInvalid, "%s: executor %p was already used or never created (executors are single-use)", name,
                            static_cast<void*>(executor));
  }
  aclOpExecutor* e = executor;
  auto done = [e](int rc) {
    delete e;
    return rc;
  };
  if (e->name != name) return done(fakecann_error(kAclnnErrParamInvalid, "%s: the executor was made by %sGetWorkspaceSize", name, e->name.c_str()));
  if (fakecann_inject(name)) return done(fakecann_error(kAclnnErrInner, "fake CANN: injected failure in %s (EZ9999: inner error)", name));
  if (workspace_size < e->workspace)
    return done(fakecann_error(kAclnnErrParamInvalid, "%s: workspaceSize %llu is smaller than the %llu bytes phase one asked for", name,
                               static_cast<unsigned long long>(workspace_size), static_cast<unsigned long long>(e->workspace)));
  std::vector<const void*> touches = e->touches;
  if (e->workspace) {
    std::string why;
    const void* base = fakecann_device_range(workspace, e->workspace, &why);
    if (!base) return done(fakecann_error(kAclnnErrParamInvalid, "%s: workspace %s", name, why.c_str()));
    touches.push_back(base);
  }
  for (const aclTensor* t : e->uses)
    if (t && !fakecann_tensor_alive(t)) return done(fakecann_error(kAclnnErrParamInvalid, "%s: a tensor was destroyed before phase two", name));
  const bool fail_exec = fakecann_inject((std::string("exec:") + name).c_str());
  std::string op = name;
  char* ws = static_cast<char*>(workspace);
  auto run = std::move(e->run);
  delete e;
  return fakecann_enqueue(stream, [run, ws, fail_exec, op](std::string& m) {
    if (fail_exec) {
      m = "fake CANN: injected execution failure in " + op + " (EZ9999: AI Core exception)";
      return kAclErrRtAicoreException;
    }
    return run(ws, m);
  }, touches);
}

}  // extern "C"
