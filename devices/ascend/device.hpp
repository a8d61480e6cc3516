// The ascend device (device.cc) as the op files see it: CANN's entry points, the ACL stream, and helpers
// that turn an ACL / aclnn status into a glmk status carrying CANN's own message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "acl-api.hpp"
#include "glmk/device.h"
#include "queue.hpp"

struct glmk_device {
  const glmk::ascend::AclApi* acl = nullptr;
  int ordinal = 0;
  glmk::ascend::aclrtStream stream = nullptr;
  std::string soc;
  size_t memory = 0;

  // Device constants, 4-byte words used as [1] tensors (broadcast): the f32 +0, +inf, FLT_MAX and canonical NaN
  // (SWhere's other operand, topk.cc), then the int32 0x88888888 (the int4 repack's XOR mask, matmul.cc).
  float* constants = nullptr;
  static constexpr int kConstXor88 = 4;

  // GLM_KERNELS_ASCEND_INT4=wqbmm (read at open): int4.matmul with bf16 x on aclnnWeightQuantBatchMatmulV2.
  bool int4_wqbmm = false;
  // An Ascend 950 (aclrtGetSocName "Ascend950...") whose CANN has aclnnQuantMatmulV5: fp8.matmul with [128, 128]
  // weight blocks runs on its FP8 cube (fp8-matmul.cc).
  bool fp8_cube = false;

  std::mutex mem_mu;  // live allocations (alloc runs on the caller's thread, free on the queue's)
  std::unordered_map<void*, size_t> live;
  uint64_t live_bytes = 0;

  // Queue-thread state (only the queue's thread touches these).
  std::vector<void*> pending_free;                 // freed in stream order: released after the next drain
  std::vector<std::unique_ptr<char[]>> keep_alive; // upload staging copies, kept until the next drain
  struct Release {
    glmk_done_fn fn;
    void* user;
  };
  std::vector<Release> releases;                   // deferred uploads' sources, released after the next drain
  size_t held_bytes = 0;                           // pending frees + staging copies: drained early past a limit
  void* scratch = nullptr;                         // top-k scratch and aclnn workspaces, grown on demand
  size_t scratch_bytes = 0;
  void* workspace = nullptr;                       // aclnn workspaces (one op at a time on the stream)
  size_t workspace_bytes = 0;

  std::unique_ptr<glmk::ascend::TaskQueue> queue;
};

namespace glmk::ascend {

// "<what>: ACL error <e>: <aclGetRecentErrMsg()>" into message; returns code.
int acl_error(const glmk_device* d, std::string& message, int code, const std::string& what, int e);

// printf into message; returns GLMK_E_ARG.
int fail_text(std::string& message, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Waits for the ACL stream (queue thread only).
int stream_wait(glmk_device* d, std::string& message, const char* what);

// Waits for the stream, then frees what was freed in stream order and lets go of the sources it read
// (queue thread only). Returns the stream's status.
int drain(glmk_device* d, std::string& message);

// After a task that added to held_bytes: drains now when they exceed 256 MiB, so that a queue that never
// runs dry does not hold freed memory forever.
int drain_if_heavy(glmk_device* d, std::string& message);

// Makes *buf (d->scratch or d->workspace) at least `bytes` (queue thread only; waits for the stream before
// replacing it).
int reserve(glmk_device* d, void** buf, size_t* have, size_t bytes, std::string& message);

}  // namespace glmk::ascend
