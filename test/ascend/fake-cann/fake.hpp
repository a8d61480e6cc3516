// A CPU fake of the CANN entry points that devices/ascend resolves, for tests only (never shipped).
// "Device" memory is host memory that the fake tracks (every access is checked against a live allocation);
// a stream is a queue of host tasks that runs, in order, when the stream is synchronized; aclnn ops are
// two-phase with single-use executors. Semantics follow CANN's documentation; where CANN leaves an order
// undocumented (the NaN and signed-zero order of aclnnSort) the fake picks one that differs from SPEC 3's.
//
// Shared between the fake's libraries through a few C functions of libascendcl.so (fakecann_*); the
// plugin never resolves those.
//
// Test controls (read at each call):
//   GLMK_FAKE_CANN_FAIL=name[@n|#n][,...]  the entry point `name` fails from its n-th call on (@n, default
//                                       the 1st) or at its n-th call only (#n); `exec:aclnnX` makes op X
//                                       fail when the stream runs it; `aclrtMemcpyAsync:d2h` counts and
//                                       fails only the device-to-host copies
//   GLMK_FAKE_CANN_PREINIT=1            aclInit answers "repeated initialization" (100002) from the start
//   GLMK_FAKE_CANN_NO_MSG=1             aclGetRecentErrMsg returns NULL
//   GLMK_FAKE_CANN_DEVICES=n            how many NPUs aclrtGetDeviceCount reports (default 1)
//   GLMK_FAKE_CANN_TRACE=file           appends one line per call (entry point and its key arguments)
//   GLMK_FAKE_CANN_SOC=name             the chip aclrtGetSocName names (default Ascend910B4); Ascend950...
//                                       enables the FP8 dtypes of aclnnQuantMatmulV5
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

// Status codes (CANN's acl_base.h / aclnn/acl_meta.h).
constexpr int kAclOk = 0;
constexpr int kAclErrInvalidParam = 100000;
constexpr int kAclErrRepeatInit = 100002;
constexpr int kAclErrRtParam = 107000;
constexpr int kAclErrRtDeviceId = 107001;
constexpr int kAclErrRtContextNull = 107002;
constexpr int kAclErrRtMemAlloc = 207001;
constexpr int kAclErrRtInternal = 507000;
constexpr int kAclErrRtAicoreException = 507015;
constexpr int kAclnnErrNullptr = 161001;
constexpr int kAclnnErrParamInvalid = 161002;
constexpr int kAclnnErrInner = 561000;

// aclDataType values the fake knows.
enum FakeDtype { kF32 = 0, kF16 = 1, kI8 = 2, kI32 = 3, kU8 = 4, kI16 = 6, kI64 = 9, kBool = 12, kBf16 = 27, kInt4 = 29, kF8E4m3 = 36 };

struct aclTensor {
  std::vector<int64_t> dims, strides;  // view, in elements
  int64_t offset = 0;                  // elements from data
  int dtype = 0;
  int64_t storage = 0;                 // elements of the storage
  char* data = nullptr;
};

// A list owns its tensors: aclDestroyTensorList destroys them (a second aclDestroyTensor of one is an error).
struct aclTensorList {
  std::vector<aclTensor*> tensors;
};

struct aclScalar {
  double value = 0;
  int dtype = 0;
};

// What an op does when its stream runs it: returns 0 or an ACL error code with a message.
using FakeTask = std::function<int(std::string& message)>;

struct aclOpExecutor {
  std::string name;                     // "aclnnSort"
  uint64_t workspace = 0;               // bytes phase two must be given
  std::vector<const aclTensor*> uses;   // must still be alive at phase two
  std::vector<const void*> touches;     // allocations the task reads or writes
  std::function<int(char* workspace, std::string& message)> run;
};

extern "C" {
// Errors: sets the thread's recent message and returns code.
int fakecann_error(int code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Whether GLMK_FAKE_CANN_FAIL names this call (counts calls per name).
bool fakecann_inject(const char* name);
void fakecann_trace(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The base of the live allocation holding [p, p + bytes), or NULL (and *why says what is wrong).
const void* fakecann_device_range(const void* p, size_t bytes, std::string* why);
// Queues a task on a stream; `touches` are the allocations it uses (a free of one of them while queued is
// an error). Returns 0 or an error code (an unknown stream).
int fakecann_enqueue(void* stream, FakeTask task, const std::vector<const void*>& touches);
// nnopbase: is this tensor alive / this executor alive (unused)? Takes and consumes an executor.
bool fakecann_tensor_alive(const aclTensor* t);
bool fakecann_tensor_list_alive(const aclTensorList* l);
int fakecann_launch(void* workspace, uint64_t workspace_size, aclOpExecutor* executor, void* stream, const char* name);
aclOpExecutor* fakecann_new_executor(const char* name);
}

// Helpers for the op libraries (header-only).
inline int64_t fake_numel(const aclTensor* t) {
  int64_t n = 1;
  for (int64_t d : t->dims) n *= d;
  return n;
}
// Bytes per element; 0 for INT4 (two per byte: strides and offsets count nibbles, fake_storage_bytes) and
// for dtypes the fake does not know.
inline size_t fake_dtype_size(int dt) {
  switch (dt) {
    case kF32: case kI32: return 4;
    case kF16: case kBf16: case kI16: return 2;
    case kI64: return 8;
    case kBool: case kI8: case kU8: case kF8E4m3: return 1;
    default: return 0;
  }
}
inline bool fake_dtype_known(int dt) { return dt == kInt4 || fake_dtype_size(dt) != 0; }
inline size_t fake_storage_bytes(int dt, int64_t elements) {
  return dt == kInt4 ? static_cast<size_t>(elements + 1) / 2 : static_cast<size_t>(elements) * fake_dtype_size(dt);
}
