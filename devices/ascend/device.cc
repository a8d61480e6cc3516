// The ascend device: the device ABI on CANN's ACL runtime. CANN is not linked: acl-api.cc finds it at run
// time, so that this plugin builds and ships everywhere and says why it cannot open where CANN is absent.
// One ACL stream per device, driven by one queue thread (queue.hpp): uploads, downloads, frees and ops
// run there in call order; alloc runs on the caller's thread.
#include "device.hpp"

#include <cfloat>
#include <cstdarg>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "glmk/status.hpp"
#include "fp8-matmul.hpp"
#include "fp8.hpp"
#include "int4.hpp"
#include "matmul.hpp"
#include "moe.hpp"
#include "topk.hpp"

#ifndef GLMK_BUILD_TEXT
#define GLMK_BUILD_TEXT "unknown"
#endif

namespace glmk::ascend {

int acl_error(const glmk_device* d, std::string& message, int code, const std::string& what, int e) {
  const char* m = d && d->acl && d->acl->aclGetRecentErrMsg ? d->acl->aclGetRecentErrMsg() : nullptr;
  message = what + ": ACL error " + std::to_string(e) + ": " + (m && *m ? m : "(CANN gave no message)");
  return code;
}

int fail_text(std::string& message, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  message = buf;
  return GLMK_E_ARG;
}

int stream_wait(glmk_device* d, std::string& message, const char* what) {
  const int e = d->acl->aclrtSynchronizeStream(d->stream);
  return e == kAclSuccess ? GLMK_OK : acl_error(d, message, GLMK_E_DEVICE, what, e);
}

int reserve(glmk_device* d, void** buf, size_t* have, size_t bytes, std::string& message) {
  if (*have >= bytes && *buf) return GLMK_OK;
  if (*buf) {
    if (stream_wait(d, message, "execution failed (aclrtSynchronizeStream)") != GLMK_OK) return GLMK_E_DEVICE;
    d->acl->aclrtFree(*buf);
    *buf = nullptr;
    *have = 0;
  }
  const size_t want = (bytes + bytes / 4 + 63) / 64 * 64;  // some room, so that slightly bigger calls reuse it
  const int e = d->acl->aclrtMalloc(buf, want ? want : 64, kMallocHugeFirst);
  if (e != kAclSuccess) {
    *buf = nullptr;
    return acl_error(d, message, GLMK_E_OOM, "cannot allocate " + std::to_string(want) + " bytes of scratch (aclrtMalloc)", e);
  }
  *have = want ? want : 64;
  return GLMK_OK;
}

int drain(glmk_device* d, std::string& message) {
  const int code = stream_wait(d, message, "execution failed (aclrtSynchronizeStream)");
  for (void* p : d->pending_free) d->acl->aclrtFree(p);
  d->pending_free.clear();
  d->keep_alive.clear();
  for (const auto& r : d->releases) r.fn(r.user, code, code ? message.c_str() : "");
  d->releases.clear();
  d->held_bytes = 0;
  return code;
}

int drain_if_heavy(glmk_device* d, std::string& message) {
  return d->held_bytes > (size_t{256} << 20) ? drain(d, message) : GLMK_OK;
}

namespace {

// The ACL context is per host thread: each thread that calls into the device sets it once.
thread_local int t_bound = -1;

int bind(glmk_device* d, glmk_status* st) {
  if (t_bound == d->ordinal) return ok(st);
  const int e = d->acl->aclrtSetDevice(d->ordinal);
  if (e != kAclSuccess) {
    std::string m;
    acl_error(d, m, GLMK_E_DEVICE, "aclrtSetDevice(" + std::to_string(d->ordinal) + ")", e);
    return fail(st, GLMK_E_DEVICE, "%s", m.c_str());
  }
  t_bound = d->ordinal;
  return ok(st);
}

int fail_msg(glmk_status* st, int code, const std::string& m) { return fail(st, code, "%s", m.c_str()); }

// Loads CANN and runs aclInit once per process ("already initialized" by someone else is fine).
const AclApi* init(std::string* why) {
  const AclApi* acl = acl_load(why);
  if (!acl) return nullptr;
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [&] { rc = acl->aclInit(nullptr); });
  if (rc != kAclSuccess && rc != kAclRepeatInitialize) {
    const char* m = acl->aclGetRecentErrMsg();
    *why = "aclInit failed: ACL error " + std::to_string(rc) + ": " + (m && *m ? m : "(CANN gave no message)");
    return nullptr;
  }
  return acl;
}

int device_count(int32_t* count, glmk_status* st) {
  *count = 0;
  std::string why;
  const AclApi* acl = init(&why);
  uint32_t n = 0;
  if (acl && acl->aclrtGetDeviceCount(&n) == kAclSuccess) *count = static_cast<int32_t>(n);
  return ok(st);  // no CANN or no NPU: zero devices, not an error (open() says why)
}

void close(glmk_device* d) {
  if (!d) return;
  d->queue.reset();  // runs what is queued and waits for the stream
  if (d->acl && t_bound != d->ordinal) d->acl->aclrtSetDevice(d->ordinal), t_bound = d->ordinal;
  if (d->stream) d->acl->aclrtSynchronizeStream(d->stream);
  for (void* p : d->pending_free) d->acl->aclrtFree(p);
  if (d->scratch) d->acl->aclrtFree(d->scratch);
  if (d->workspace) d->acl->aclrtFree(d->workspace);
  if (d->constants) d->acl->aclrtFree(d->constants);
  if (d->stream) d->acl->aclrtDestroyStream(d->stream);
  delete d;
}

int open(const glmk_open_options* o, glmk_device** out, glmk_status* st) {
  std::string why;
  const AclApi* acl = init(&why);
  if (!acl) return fail_msg(st, GLMK_E_DEVICE, "ascend is not available: " + why);
  uint32_t n = 0;
  int e = acl->aclrtGetDeviceCount(&n);
  if (e != kAclSuccess) {
    const char* cm = acl->aclGetRecentErrMsg();
    return fail_msg(st, GLMK_E_DEVICE, "no usable Ascend driver: aclrtGetDeviceCount failed: ACL error " + std::to_string(e) + ": " +
                                           (cm && *cm ? cm : "(CANN gave no message)") +
                                           ". Install the Ascend driver (npu-smi info lists the NPUs) or choose another device");
  }
  if (o->ordinal < 0 || static_cast<uint32_t>(o->ordinal) >= n)
    return fail(st, GLMK_E_DEVICE, "there is no ascend:%d: this machine has %u Ascend NPU(s)", o->ordinal, n);
  // GLM_KERNELS_ASCEND_INT4: exact (default) | wqbmm (int4.matmul with bf16 x on aclnnWeightQuantBatchMatmulV2; README)
  bool wqbmm = false;
  if (const char* mode = std::getenv("GLM_KERNELS_ASCEND_INT4"); mode && *mode && std::strcmp(mode, "exact") != 0) {
    if (std::strcmp(mode, "wqbmm") != 0)
      return fail(st, GLMK_E_ARG, "Expected exact or wqbmm for GLM_KERNELS_ASCEND_INT4 but received \"%.60s\"", mode);
    const bool has_xor = acl->aclnnBitwiseXorTensorGetWorkspaceSize && acl->aclnnBitwiseXorTensor;
    const bool has_wq = acl->aclnnWeightQuantBatchMatmulV2GetWorkspaceSize && acl->aclnnWeightQuantBatchMatmulV2;
    if (!has_xor || !has_wq)
      return fail(st, GLMK_E_DEVICE,
                  "GLM_KERNELS_ASCEND_INT4=wqbmm needs %s%s%s, which this CANN's op libraries lack (looked in %s); unset it for the exact path",
                  has_wq ? "" : "aclnnWeightQuantBatchMatmulV2", !has_wq && !has_xor ? " and " : "", has_xor ? "" : "aclnnBitwiseXorTensor",
                  acl_search_text().c_str());
    wqbmm = true;
  }
  glmk_device* d = new (std::nothrow) glmk_device();
  if (!d) return fail(st, GLMK_E_OOM, "cannot allocate the device");
  d->int4_wqbmm = wqbmm;
  d->acl = acl;
  d->ordinal = o->ordinal;
  std::string m;
  auto bail = [&](const std::string& what, int err) {
    acl_error(d, m, GLMK_E_DEVICE, "cannot open ascend:" + std::to_string(d->ordinal) + ": " + what, err);
    close(d);
    return fail_msg(st, GLMK_E_DEVICE, m);
  };
  if ((e = acl->aclrtSetDevice(d->ordinal)) != kAclSuccess) return bail("aclrtSetDevice", e);
  t_bound = d->ordinal;
  // Deterministic computation for this device's context and, where the runtime has it, the process.
  if ((e = acl->aclrtCtxSetSysParamOpt(kOptDeterministic, 1)) != kAclSuccess)
    return bail("aclrtCtxSetSysParamOpt(ACL_OPT_DETERMINISTIC, 1)", e);
  if (acl->aclrtSetSysParamOpt && (e = acl->aclrtSetSysParamOpt(kOptDeterministic, 1)) != kAclSuccess)
    return bail("aclrtSetSysParamOpt(ACL_OPT_DETERMINISTIC, 1)", e);
  if ((e = acl->aclrtCreateStream(&d->stream)) != kAclSuccess) {
    d->stream = nullptr;
    return bail("aclrtCreateStream", e);
  }
  float host_constants[8] = {0.0f, std::numeric_limits<float>::infinity(), FLT_MAX, std::numeric_limits<float>::quiet_NaN()};
  const uint32_t xor88 = 0x88888888u;
  std::memcpy(&host_constants[glmk_device::kConstXor88], &xor88, 4);
  static_assert(sizeof host_constants == 32, "eight 4-byte constants");
  void* c = nullptr;
  if ((e = acl->aclrtMalloc(&c, 64, kMallocHugeFirst)) != kAclSuccess) return bail("aclrtMalloc", e);
  d->constants = static_cast<float*>(c);
  if ((e = acl->aclrtMemcpy(c, 64, host_constants, sizeof host_constants, kHostToDevice)) != kAclSuccess)
    return bail("aclrtMemcpy", e);
  if (acl->aclrtGetSocName) {
    const char* s = acl->aclrtGetSocName();
    d->soc = s ? s : "";
  }
  d->fp8_cube = d->soc.rfind("Ascend950", 0) == 0 && acl->aclnnQuantMatmulV5GetWorkspaceSize && acl->aclnnQuantMatmulV5;
  size_t free_b = 0, total_b = 0;
  if (acl->aclrtGetMemInfo && acl->aclrtGetMemInfo(1 /* ACL_HBM_MEM */, &free_b, &total_b) == kAclSuccess) d->memory = total_b;

  const int ordinal = d->ordinal;
  d->queue = std::make_unique<TaskQueue>(
      [acl, ordinal] {
        acl->aclrtSetDevice(ordinal);
        t_bound = ordinal;
      },
      [d](std::string& msg) { return drain(d, msg); });
  *out = d;
  return ok(st);
}

int info(glmk_device* d, glmk_device_info* out, glmk_status* st) {
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->kind, sizeof out->kind, "ascend");
  const bool named = d->soc.rfind("Ascend", 0) == 0;  // aclrtGetSocName gives e.g. "Ascend910B4"
  std::snprintf(out->name, sizeof out->name, "%s%s", named ? "" : "Ascend ", d->soc.empty() ? "NPU" : d->soc.c_str());
  std::snprintf(out->build, sizeof out->build, "%s", GLMK_BUILD_TEXT);
  // NOTE: exactly the ops that pass the shared suites on ascend (through the CPU fake of CANN).
  std::snprintf(out->capabilities, sizeof out->capabilities,
                "topk,int4.quantize,int4.dequantize,int4.fakeQuant,int4.fakeQuantGrad,matmul,int4.matmul,fp8.quantize,fp8.dequantize,"
                "fp8.matmul,moe.route,moe.experts");
  out->memory_bytes = d->memory;
  out->threads = 0;
  out->ordinal = d->ordinal;
  return ok(st);
}

int alloc(glmk_device* d, size_t bytes, void** out, glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  // NOTE: never a zero-byte request (ACL refuses it); 32-byte multiples keep every tensor's data aligned.
  const size_t want = bytes < 32 ? 32 : (bytes + 31) / 32 * 32;
  const int e = d->acl->aclrtMalloc(out, want, kMallocHugeFirst);
  if (e != kAclSuccess) {
    *out = nullptr;
    std::string m;
    acl_error(d, m, GLMK_E_OOM, "cannot allocate " + std::to_string(bytes) + " bytes on ascend:" + std::to_string(d->ordinal) + " (aclrtMalloc)", e);
    return fail_msg(st, GLMK_E_OOM, m);
  }
  std::lock_guard<std::mutex> lock(d->mem_mu);
  d->live[*out] = want;
  d->live_bytes += want;
  return ok(st);
}

int free_(glmk_device* d, void* p, glmk_status* st) {
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(d->mem_mu);
    auto it = d->live.find(p);
    if (it == d->live.end()) return fail(st, GLMK_E_ARG, "free: %p is not a live allocation of ascend:%d", p, d->ordinal);
    bytes = it->second;
    d->live_bytes -= it->second;
    d->live.erase(it);
  }
  d->queue->push([d, p, bytes](std::string& msg) {
    d->pending_free.push_back(p);  // released once the stream has run everything launched before
    d->held_bytes += bytes;
    return drain_if_heavy(d, msg);
  });
  return ok(st);
}

int upload(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_status* st) {
  if (!bytes) return ok(st);
  std::unique_ptr<char[]> copy(new (std::nothrow) char[bytes]);
  if (!copy) return fail(st, GLMK_E_OOM, "upload: cannot stage %zu bytes on the host", bytes);
  std::memcpy(copy.get(), src, bytes);
  auto* staged = copy.release();
  d->queue->push([d, dst, staged, bytes](std::string& msg) {
    d->keep_alive.emplace_back(staged);  // the async copy reads it until the next drain
    d->held_bytes += bytes;
    const int e = d->acl->aclrtMemcpyAsync(dst, bytes, staged, bytes, kHostToDevice, d->stream);
    return e == kAclSuccess ? drain_if_heavy(d, msg) : acl_error(d, msg, GLMK_E_DEVICE, "upload (aclrtMemcpyAsync)", e);
  });
  return ok(st);
}

// Like upload, but src is read in stream order (no staging copy, nothing copied on the caller's thread):
// release(user, ...) once the stream has run the copy.
int upload_deferred(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_done_fn release, void* user,
                    glmk_status* st) {
  d->queue->push([d, dst, src, bytes, release, user](std::string& msg) {
    const int e = bytes ? d->acl->aclrtMemcpyAsync(dst, bytes, src, bytes, kHostToDevice, d->stream) : kAclSuccess;
    if (e != kAclSuccess) {
      acl_error(d, msg, GLMK_E_DEVICE, "upload (aclrtMemcpyAsync)", e);
      release(user, GLMK_E_DEVICE, msg.c_str());
      return GLMK_E_DEVICE;
    }
    d->releases.push_back({release, user});
    return GLMK_OK;
  });
  return ok(st);
}

int download(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_status* st) {
  if (!bytes) return ok(st);
  d->queue->push([d, dst, src, bytes](std::string& msg) {
    const int e = d->acl->aclrtMemcpyAsync(dst, bytes, src, bytes, kDeviceToHost, d->stream);
    return e == kAclSuccess ? GLMK_OK : acl_error(d, msg, GLMK_E_DEVICE, "download (aclrtMemcpyAsync)", e);
  });
  return ok(st);
}

int sync(glmk_device* d, glmk_status* st) {
  std::string msg;
  const int code = d->queue->wait(msg);
  return code ? fail_msg(st, code, msg) : ok(st);
}

int topk(glmk_device* d, const glmk_topk_args* a, glmk_status* st) {
  if (topk_check(*a, st) != GLMK_OK) return st->code;
  if (a->rows == 0) return ok(st);
  const glmk_topk_args args = *a;
  d->queue->push([d, args](std::string& msg) { return topk_run(d, args, msg); });
  return ok(st);
}

int memory_stats(glmk_device* d, glmk_memory_stats* out, glmk_status* st) {
  std::lock_guard<std::mutex> lock(d->mem_mu);
  out->live_bytes = d->live_bytes;
  out->cached_bytes = 0;
  return ok(st);
}

// Returns the top-k scratch to ACL once the stream no longer uses it (in stream order).
int empty_cache(glmk_device* d, glmk_status* st) {
  d->queue->push([d](std::string& msg) {
    if (!d->scratch && !d->workspace) return GLMK_OK;
    if (stream_wait(d, msg, "emptyCache (aclrtSynchronizeStream)") != GLMK_OK) return GLMK_E_DEVICE;
    for (void** p : {&d->scratch, &d->workspace})
      if (*p) d->acl->aclrtFree(*p), *p = nullptr;
    d->scratch_bytes = d->workspace_bytes = 0;
    return GLMK_OK;
  });
  return ok(st);
}

const glmk_device_api kApi = {
    /* .abi_version = */ GLMK_ABI_VERSION,
    /* .struct_size = */ sizeof(glmk_device_api),
    /* .kind = */ "ascend",
    /* .device_count = */ device_count,
    /* .open = */ open,
    /* .close = */ close,
    /* .info = */ info,
    /* .alloc = */ alloc,
    /* .free = */ free_,
    /* .upload = */ upload,
    /* .download = */ download,
    /* .sync = */ sync,
    /* .sync_notify = */ nullptr,
    /* .topk = */ topk,
    /* .memory_stats = */ memory_stats,
    /* .empty_cache = */ empty_cache,
    /* .upload_deferred = */ upload_deferred,
    /* .sync_poll = */ nullptr,
    /* .int4_quantize = */ int4_quantize,          // host-computed (int4.cc)
    /* .int4_dequantize = */ int4_dequantize,      // host-computed (int4.cc)
    /* .int4_fake_quant_grad = */ int4_fake_quant_grad,
    /* .matmul = */ matmul,                        // aclnnMatmul in f32 (matmul.cc)
    /* .fp8_quantize = */ fp8_quantize,            // host-computed (fp8.cc)
    /* .fp8_dequantize = */ fp8_dequantize,        // host-computed (fp8.cc)
    /* .fp8_matmul = */ fp8_matmul,                // aclnnMatmul on f32 operands made on the host (fp8-matmul.cc)
    /* .moe_route = */ moe_route,                  // host-computed (moe.cc)
    /* .moe_experts = */ moe_experts,              // aclnnGroupedMatmulV4 per set of experts (moe.cc)
};

}  // namespace
}  // namespace glmk::ascend

extern "C" GLMK_EXPORT const glmk_device_api* glmk_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;  // the host checks our abi_version and struct_size
  return &glmk::ascend::kApi;
}
