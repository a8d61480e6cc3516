// The fake libascendcl.so: init, devices and contexts, streams as in-order task queues run at
// synchronization, tracked "device" memory, copies, error messages, system options.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "fake.hpp"

namespace {

std::recursive_mutex g_mu;
bool g_inited = false;
std::map<const char*, size_t, std::greater<const char*>> g_allocs;  // base -> bytes, highest address first
struct Queued {
  FakeTask task;
  std::vector<const void*> touches;
};
struct Stream {
  std::deque<Queued> q;
  int device = 0;
};
std::map<void*, Stream*> g_streams;
std::map<std::string, long> g_calls;
thread_local std::string t_msg;
thread_local int t_device = -1;  // this thread's current context (aclrtSetDevice)

int device_count() {
  const char* e = std::getenv("GLMK_FAKE_CANN_DEVICES");
  return e ? std::atoi(e) : 1;
}

const void* range_locked(const void* p, size_t bytes) {
  auto it = g_allocs.lower_bound(static_cast<const char*>(p));  // the highest base <= p
  if (it == g_allocs.end()) return nullptr;
  const char* c = static_cast<const char*>(p);
  return c + bytes <= it->first + it->second ? it->first : nullptr;
}

bool is_device(const void* p) { return range_locked(p, 1) != nullptr; }

}  // namespace

extern "C" {

int fakecann_error(int code, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_msg = buf;
  fakecann_trace("error %d: %s", code, buf);
  return code;
}

bool fakecann_inject(const char* name) {
  const char* spec = std::getenv("GLMK_FAKE_CANN_FAIL");
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  const long n = ++g_calls[name];
  if (!spec) return false;
  std::string s = spec;
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    std::string item = s.substr(b, e - b);
    long from = 1, only = 0;
    if (size_t at = item.find('@'); at != std::string::npos) from = std::atol(item.c_str() + at + 1), item.resize(at);
    if (size_t at = item.find('#'); at != std::string::npos) only = std::atol(item.c_str() + at + 1), item.resize(at);
    if (item == name && (only ? n == only : n >= from)) return true;
    b = e + 1;
  }
  return false;
}

void fakecann_trace(const char* fmt, ...) {
  const char* file = std::getenv("GLMK_FAKE_CANN_TRACE");
  if (!file) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  if (FILE* f = std::fopen(file, "a")) {
    std::fprintf(f, "%s\n", buf);
    std::fclose(f);
  }
}

const void* fakecann_device_range(const void* p, size_t bytes, std::string* why) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  const void* base = range_locked(p, bytes ? bytes : 1);
  if (!base && why) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "[%p, +%zu bytes) is not inside one live device allocation", p, bytes);
    *why = buf;
  }
  return base;
}

int fakecann_enqueue(void* stream, FakeTask task, const std::vector<const void*>& touches) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto it = g_streams.find(stream);
  if (it == g_streams.end()) return fakecann_error(kAclErrRtParam, "stream %p is not a live stream", stream);
  it->second->q.push_back({std::move(task), touches});
  return kAclOk;
}

// ---- CANN's entry points ----

int aclInit(const char* config) {
  (void)config;
  fakecann_trace("aclInit");
  if (fakecann_inject("aclInit")) return fakecann_error(kAclErrInvalidParam, "fake CANN: injected failure in aclInit");
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  // GLMK_FAKE_CANN_PREINIT=1: as if another library in the process had called aclInit first.
  if (g_inited || std::getenv("GLMK_FAKE_CANN_PREINIT")) {
    g_inited = true;
    return fakecann_error(kAclErrRepeatInit, "aclInit: repeated initialization");
  }
  g_inited = true;
  return kAclOk;
}

int aclrtGetDeviceCount(uint32_t* count) {
  if (!count) return fakecann_error(kAclErrInvalidParam, "aclrtGetDeviceCount: count is NULL");
  if (fakecann_inject("aclrtGetDeviceCount"))
    return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtGetDeviceCount (drvGetDevNum failed)");
  *count = static_cast<uint32_t>(device_count());
  return kAclOk;
}

int aclrtSetDevice(int32_t device) {
  fakecann_trace("aclrtSetDevice %d", device);
  if (!g_inited) return fakecann_error(kAclErrRtContextNull, "aclrtSetDevice: aclInit was not called");
  if (fakecann_inject("aclrtSetDevice")) return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtSetDevice");
  if (device < 0 || device >= device_count())
    return fakecann_error(kAclErrRtDeviceId, "aclrtSetDevice: invalid device id %d (%d devices)", device, device_count());
  t_device = device;
  return kAclOk;
}

int aclrtResetDevice(int32_t device) {
  fakecann_trace("aclrtResetDevice %d", device);
  if (device < 0 || device >= device_count()) return fakecann_error(kAclErrRtDeviceId, "aclrtResetDevice: invalid device id %d", device);
  return kAclOk;
}

// Deterministic computation (ACL_OPT_DETERMINISTIC = 0) for the current context / the process.
int aclrtCtxSetSysParamOpt(int opt, int64_t value) {
  fakecann_trace("aclrtCtxSetSysParamOpt %d %lld device %d", opt, static_cast<long long>(value), t_device);
  if (t_device < 0) return fakecann_error(kAclErrRtContextNull, "aclrtCtxSetSysParamOpt: no current context (call aclrtSetDevice)");
  if (opt < 0 || opt > 1) return fakecann_error(kAclErrInvalidParam, "aclrtCtxSetSysParamOpt: unknown option %d", opt);
  if (fakecann_inject("aclrtCtxSetSysParamOpt")) return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtCtxSetSysParamOpt");
  return kAclOk;
}

#ifndef GLMK_FAKE_CANN_OLD  // the variant built without these stands for an older CANN that lacks them
int aclrtSetSysParamOpt(int opt, int64_t value) {
  fakecann_trace("aclrtSetSysParamOpt %d %lld", opt, static_cast<long long>(value));
  if (opt < 0 || opt > 1) return fakecann_error(kAclErrInvalidParam, "aclrtSetSysParamOpt: unknown option %d", opt);
  return kAclOk;
}

const char* aclrtGetSocName() {
  static thread_local std::string name;
  const char* soc = std::getenv("GLMK_FAKE_CANN_SOC");
  name = std::string(soc && *soc ? soc : "Ascend910B4") + " (fake CANN on the CPU)";
  return name.c_str();
}

int aclrtGetMemInfo(int attr, size_t* free_bytes, size_t* total) {
  if (t_device < 0) return fakecann_error(kAclErrRtContextNull, "aclrtGetMemInfo: no current context");
  (void)attr;
  *total = size_t{64} << 30;
  *free_bytes = *total;
  return kAclOk;
}
#endif

int aclrtCreateStream(void** stream) {
  if (t_device < 0) return fakecann_error(kAclErrRtContextNull, "aclrtCreateStream: no current context (call aclrtSetDevice)");
  if (fakecann_inject("aclrtCreateStream")) return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtCreateStream");
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  Stream* s = new Stream();
  s->device = t_device;
  g_streams[s] = s;
  *stream = s;
  return kAclOk;
}

int aclrtSynchronizeStream(void* stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto it = g_streams.find(stream);
  if (it == g_streams.end()) return fakecann_error(kAclErrRtParam, "aclrtSynchronizeStream: %p is not a live stream", stream);
  if (t_device < 0) return fakecann_error(kAclErrRtContextNull, "aclrtSynchronizeStream: no current context");
  int first = kAclOk;
  std::string first_msg;
  // NOTE: like an NPU stream after a failed task: the rest still runs, the first failure is reported.
  while (!it->second->q.empty()) {
    Queued t = std::move(it->second->q.front());
    it->second->q.pop_front();
    std::string m;
    const int rc = t.task(m);
    if (rc != kAclOk && first == kAclOk) first = rc, first_msg = m;
  }
  if (first != kAclOk) return fakecann_error(first, "%s", first_msg.c_str());
  return kAclOk;
}

int aclrtDestroyStream(void* stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto it = g_streams.find(stream);
  if (it == g_streams.end()) return fakecann_error(kAclErrRtParam, "aclrtDestroyStream: %p is not a live stream", stream);
  if (!it->second->q.empty()) return fakecann_error(kAclErrRtParam, "aclrtDestroyStream: the stream still has %zu queued tasks", it->second->q.size());
  delete it->second;
  g_streams.erase(it);
  return kAclOk;
}

int aclrtMalloc(void** ptr, size_t size, int policy) {
  if (!ptr) return fakecann_error(kAclErrInvalidParam, "aclrtMalloc: devPtr is NULL");
  if (size == 0) return fakecann_error(kAclErrInvalidParam, "aclrtMalloc: size must be greater than 0");
  if (policy < 0 || policy > 2) return fakecann_error(kAclErrInvalidParam, "aclrtMalloc: unknown policy %d", policy);
  if (t_device < 0) return fakecann_error(kAclErrRtContextNull, "aclrtMalloc: no current context (call aclrtSetDevice)");
  if (fakecann_inject("aclrtMalloc"))
    return fakecann_error(kAclErrRtMemAlloc, "fake CANN: injected failure in aclrtMalloc: out of device memory (%zu bytes)", size);
  const size_t bytes = (size + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) return fakecann_error(kAclErrRtMemAlloc, "aclrtMalloc: out of memory (%zu bytes)", size);
  std::memset(p, 0xFF, bytes);  // NaN-looking garbage: a result read from memory nobody wrote shows up
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  g_allocs[static_cast<const char*>(p)] = size;
  *ptr = p;
  return kAclOk;
}

int aclrtFree(void* ptr) {
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  auto it = g_allocs.find(static_cast<const char*>(ptr));
  if (it == g_allocs.end()) return fakecann_error(kAclErrInvalidParam, "aclrtFree: %p is not the start of a live allocation", ptr);
  for (auto& [k, s] : g_streams)
    for (auto& q : s->q)
      for (const void* t : q.touches)
        if (t == ptr) return fakecann_error(kAclErrRtParam, "aclrtFree: %p is still used by a task queued on stream %p", ptr, k);
  g_allocs.erase(it);
  std::free(ptr);
  return kAclOk;
}

// Copies: kind 0 host->host, 1 host->device, 2 device->host, 3 device->device; count <= destMax.
static int check_copy(const char* what, void* dst, size_t dst_max, const void* src, size_t count, int kind,
                      std::vector<const void*>* touches) {
  if (!dst || !src) return fakecann_error(kAclErrInvalidParam, "%s: dst or src is NULL", what);
  if (count > dst_max) return fakecann_error(kAclErrInvalidParam, "%s: count %zu exceeds destMax %zu", what, count, dst_max);
  if (kind < 0 || kind > 3) return fakecann_error(kAclErrInvalidParam, "%s: unknown kind %d", what, kind);
  const bool dst_dev = kind == 1 || kind == 3, src_dev = kind == 2 || kind == 3;
  std::lock_guard<std::recursive_mutex> lock(g_mu);
  const void* db = dst_dev ? range_locked(dst, count) : nullptr;
  const void* sb = src_dev ? range_locked(src, count) : nullptr;
  if (dst_dev && !db) return fakecann_error(kAclErrInvalidParam, "%s: destination [%p, +%zu) is not device memory", what, dst, count);
  if (src_dev && !sb) return fakecann_error(kAclErrInvalidParam, "%s: source [%p, +%zu) is not device memory", what, src, count);
  if (!dst_dev && is_device(dst)) return fakecann_error(kAclErrInvalidParam, "%s: kind %d but the destination is device memory", what, kind);
  if (!src_dev && is_device(src)) return fakecann_error(kAclErrInvalidParam, "%s: kind %d but the source is device memory", what, kind);
  if (touches) {
    if (db) touches->push_back(db);
    if (sb) touches->push_back(sb);
  }
  return kAclOk;
}

int aclrtMemcpy(void* dst, size_t dst_max, const void* src, size_t count, int kind) {
  if (fakecann_inject("aclrtMemcpy")) return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtMemcpy");
  if (int rc = check_copy("aclrtMemcpy", dst, dst_max, src, count, kind, nullptr)) return rc;
  std::memmove(dst, src, count);
  return kAclOk;
}

int aclrtMemcpyAsync(void* dst, size_t dst_max, const void* src, size_t count, int kind, void* stream) {
  if (fakecann_inject("aclrtMemcpyAsync")) return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtMemcpyAsync");
  if (kind == 2 && fakecann_inject("aclrtMemcpyAsync:d2h"))
    return fakecann_error(kAclErrRtInternal, "fake CANN: injected failure in aclrtMemcpyAsync (device to host)");
  std::vector<const void*> touches;
  if (int rc = check_copy("aclrtMemcpyAsync", dst, dst_max, src, count, kind, &touches)) return rc;
  return fakecann_enqueue(stream, [dst, src, count](std::string&) {
    std::memmove(dst, src, count);
    return kAclOk;
  }, touches);
}

const char* aclGetRecentErrMsg() {
  if (std::getenv("GLMK_FAKE_CANN_NO_MSG") || t_msg.empty()) return nullptr;
  static thread_local std::string out;
  out = std::move(t_msg);  // like CANN: the message is handed out once
  t_msg.clear();
  return out.c_str();
}

}  // extern "C"
