// CUDA runtime calls on the CPU for the cuda-sim device (see cuda-sim-runtime.h).
#include "cuda-sim-runtime.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

struct CUstream_st {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool busy = false, stop = false;
  cudaError_t error = cudaSuccess;  // first execution failure since the last synchronize
  std::string detail;
  uint64_t seed = 1, launches = 0;
  std::thread worker;

  CUstream_st() : worker([this] { loop(); }) {}
  ~CUstream_st() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    cv.notify_all();
    worker.join();
  }
  void loop() {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      cv.wait(l, [this] { return stop || !queue.empty(); });
      if (queue.empty()) return;
      auto task = std::move(queue.front());
      queue.pop_front();
      busy = true;
      l.unlock();
      task();
      l.lock();
      busy = false;
      cv.notify_all();
    }
  }
  void enqueue(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> l(mu);
      queue.push_back(std::move(f));
    }
    cv.notify_all();
  }
  void fail(cudaError_t e, std::string text) {
    std::lock_guard<std::mutex> l(mu);
    if (error == cudaSuccess) error = e, detail = std::move(text);
  }
  cudaError_t synchronize() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [this] { return queue.empty() && !busy; });
    cudaError_t e = error;
    error = cudaSuccess;
    last_detail = detail;
    detail.clear();
    return e;
  }
  std::string last_detail;
  // cudaStreamQuery: nothing queued or running (the emulator's streams keep no sticky error state)
  bool idle() {
    std::lock_guard<std::mutex> l(mu);
    return queue.empty() && !busy;
  }
};

// The default stream-ordered memory pool (cudaMallocAsync / cudaFreeAsync), emulated small: a block freed in
// stream order goes to the pool's cache, a later cudaMallocAsync of the same rounded size takes it back
// (exact-size reuse only, unlike CUDA's pool, which also splits and maps in bigger granules), and the cache
// is given back to the system by cudaMemPoolTrimTo and, above cudaMemPoolAttrReleaseThreshold (default 0),
// at every cudaStreamSynchronize, as CUDA does. Reserved = in use + cached, in the emulator's own bytes.
// Since exact-size reuse can strand more than CUDA's pool would, the cache is also capped (kCacheCap: the
// blocks beyond it are freed at once), and a failed allocation empties the cache and tries again.
struct CUmemPoolHandle_st {
  std::mutex mu;
  std::multimap<size_t, void*> cache;             // freed blocks by size
  std::unordered_map<void*, size_t> live;         // allocated blocks and their rounded sizes
  uint64_t used = 0, cached = 0, threshold = 0;
  static constexpr uint64_t kCacheCap = uint64_t{256} << 20;
  void trim_to(uint64_t keep) {
    std::lock_guard<std::mutex> l(mu);
    trim_locked(keep);
  }
  void trim_locked(uint64_t keep) {
    for (auto it = cache.begin(); it != cache.end() && used + cached > keep;) {
      cached -= it->first;
      std::free(it->second);
      it = cache.erase(it);
    }
  }
};

namespace {

thread_local cudaError_t g_last = cudaSuccess;

cudaError_t set(cudaError_t e) {
  if (e != cudaSuccess) g_last = e;
  return e;
}

CUmemPoolHandle_st* default_pool() {
  static CUmemPoolHandle_st* pool = new CUmemPoolHandle_st();  // lives as long as the process
  return pool;
}

// Pinned host memory (cudaMallocHost): a host-to-device copy from it is read in stream order, as on a GPU
// (a copy from pageable memory is staged during the call instead).
std::mutex g_pinned_mu;
std::map<uintptr_t, size_t> g_pinned;  // start -> bytes

bool is_pinned(const void* p, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> l(g_pinned_mu);
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

CUstream_st* stream_of(cudaStream_t s) {
  static CUstream_st* def = new CUstream_st();  // the default stream lives as long as the process
  return s ? s : def;
}

}  // namespace

namespace simt {

std::mutex g_attr_mu;
std::map<const void*, int> g_max_dyn_smem;  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel

void launch(cudaStream_t s, dim3 grid, dim3 block, size_t dyn_smem, const char* name, const void* kernel,
            std::function<void()> body) {
  if (dyn_smem > 48 * 1024) {
    std::lock_guard<std::mutex> l(g_attr_mu);
    auto it = g_max_dyn_smem.find(kernel);
    if (it == g_max_dyn_smem.end() || static_cast<size_t>(it->second) < dyn_smem) {
      set(cudaErrorInvalidValue);
      return;
    }
  }
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535 || dyn_smem > 227 * 1024) {
    set(cudaErrorInvalidConfiguration);
    return;
  }
  CUstream_st* st = stream_of(s);
  uint64_t seed;
  {
    std::lock_guard<std::mutex> l(st->mu);
    seed = st->seed ^ (0xD1B54A32D192ED03ull * ++st->launches);
  }
  st->enqueue([st, grid, block, dyn_smem, name, seed, body = std::move(body)] {
    if (!run(grid, block, dyn_smem, seed, name, body)) st->fail(cudaErrorLaunchFailure, last_error());
  });
}

void set_stream_seed(cudaStream_t s, uint64_t seed) {
  CUstream_st* st = stream_of(s);
  std::lock_guard<std::mutex> l(st->mu);
  st->seed = seed, st->launches = 0;
}

std::string stream_error_detail(cudaStream_t s) {
  CUstream_st* st = stream_of(s);
  std::lock_guard<std::mutex> l(st->mu);
  return st->last_detail;
}

}  // namespace simt

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return set(device == 0 ? cudaSuccess : cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return set(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "cuda-sim (SIMT emulator on the CPU)");
  p->totalGlobalMem = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGE_SIZE));
  p->sharedMemPerBlock = 48 * 1024;
  p->maxThreadsPerBlock = 1024;
  p->warpSize = 32;
  p->multiProcessorCount = 132;  // an H100 SXM, so that the host code takes the same paths
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  *s = new CUstream_st();
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s) return set(cudaErrorInvalidResourceHandle);
  s->synchronize();
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  cudaError_t e = stream_of(s)->synchronize();
  CUmemPoolHandle_st* pool = default_pool();
  uint64_t keep;
  {
    std::lock_guard<std::mutex> l(pool->mu);
    keep = pool->threshold;
  }
  pool->trim_to(keep);
  return set(e);
}
cudaError_t cudaStreamQuery(cudaStream_t s) { return stream_of(s)->idle() ? cudaSuccess : cudaErrorNotReady; }
cudaError_t cudaLaunchHostFunc(cudaStream_t s, cudaHostFn_t fn, void* user) {
  if (!fn) return set(cudaErrorInvalidValue);
  // A test hook: GLMK_SIM_HOSTFN_FAIL_AT=n makes the n-th call of the process fail (the plugin's paths for
  // an upload whose enqueue fails part way).
  static const long fail_at = [] {
    const char* v = std::getenv("GLMK_SIM_HOSTFN_FAIL_AT");
    return v ? std::atol(v) : 0L;
  }();
  static std::atomic<long> calls{0};
  if (fail_at > 0 && ++calls == fail_at) return set(cudaErrorInvalidValue);
  stream_of(s)->enqueue([fn, user] { fn(user); });
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { return set(stream_of(nullptr)->synchronize()); }

cudaError_t cudaMalloc(void** p, size_t bytes) {
  // 256-byte aligned like cudaMalloc; never zero-sized
  *p = std::aligned_alloc(256, ((bytes ? bytes : 1) + 255) & ~static_cast<size_t>(255));
  return *p ? cudaSuccess : set(cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  // A test hook: GLMK_SIM_NO_PINNED=1 makes pinned memory unavailable (the plugin's fallback paths).
  static const bool no_pinned = [] {
    const char* v = std::getenv("GLMK_SIM_NO_PINNED");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  if (no_pinned) {
    *p = nullptr;
    return set(cudaErrorMemoryAllocation);
  }
  const size_t n = ((bytes ? bytes : 1) + 4095) & ~static_cast<size_t>(4095);
  *p = std::aligned_alloc(4096, n);
  if (!*p) return set(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> l(g_pinned_mu);
  g_pinned[reinterpret_cast<uintptr_t>(*p)] = n;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> l(g_pinned_mu);
    if (!g_pinned.erase(reinterpret_cast<uintptr_t>(p))) return set(cudaErrorInvalidValue);
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) {
  CUmemPoolHandle_st* pool = default_pool();
  const size_t n = ((bytes ? bytes : 1) + 255) & ~static_cast<size_t>(255);
  std::lock_guard<std::mutex> l(pool->mu);
  auto it = pool->cache.find(n);
  if (it != pool->cache.end()) {
    *p = it->second;
    pool->cache.erase(it);
    pool->cached -= n;
  } else if (!(*p = std::aligned_alloc(256, n))) {
    pool->trim_locked(0);
    if (!(*p = std::aligned_alloc(256, n))) return set(cudaErrorMemoryAllocation);
  }
  pool->live[*p] = n;
  pool->used += n;
  return cudaSuccess;
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  stream_of(s)->enqueue([p] {
    CUmemPoolHandle_st* pool = default_pool();
    std::lock_guard<std::mutex> l(pool->mu);
    auto it = pool->live.find(p);
    if (it == pool->live.end()) {  // not from the pool (cudaMalloc): freed at once
      std::free(p);
      return;
    }
    pool->used -= it->second;
    pool->cached += it->second;
    pool->cache.emplace(it->second, p);
    pool->live.erase(it);
    if (pool->cached > CUmemPoolHandle_st::kCacheCap) pool->trim_locked(pool->used + CUmemPoolHandle_st::kCacheCap / 2);
  });
  return cudaSuccess;
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return set(cudaErrorInvalidDevice);
  *pool = default_pool();
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (!pool || attr != cudaMemPoolAttrReleaseThreshold) return set(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> l(pool->mu);
  pool->threshold = *static_cast<uint64_t*>(value);
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (!pool) return set(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> l(pool->mu);
  uint64_t v;
  switch (attr) {
    case cudaMemPoolAttrReservedMemCurrent: v = pool->used + pool->cached; break;
    case cudaMemPoolAttrUsedMemCurrent: v = pool->used; break;
    case cudaMemPoolAttrReleaseThreshold: v = pool->threshold; break;
    default: return set(cudaErrorInvalidValue);
  }
  *static_cast<uint64_t*>(value) = v;
  return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep) {
  if (!pool) return set(cudaErrorInvalidValue);
  pool->trim_to(keep);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
  if (kind == cudaMemcpyHostToDevice && !is_pinned(src, n)) {  // pageable: src is free once this returns
    std::shared_ptr<char[]> staged(new (std::nothrow) char[n ? n : 1]);
    if (!staged) return set(cudaErrorMemoryAllocation);
    std::memcpy(staged.get(), src, n);
    stream_of(s)->enqueue([dst, staged, n] { std::memcpy(dst, staged.get(), n); });
  } else {
    stream_of(s)->enqueue([dst, src, n] { std::memmove(dst, src, n); });
  }
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, nullptr);
  return e != cudaSuccess ? e : cudaDeviceSynchronize();
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t n, cudaStream_t s) {
  stream_of(s)->enqueue([dst, value, n] { std::memset(dst, value, n); });
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > 227 * 1024) return set(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> l(simt::g_attr_mu);
    simt::g_max_dyn_smem[func] = value;
  }
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_last; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotReady: return "device not ready";
    default: return "unknown error";
  }
}

}  // extern "C"
