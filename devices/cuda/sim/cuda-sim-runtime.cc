// CUDA runtime calls on the CPU for the cuda-sim device (see cuda-sim-runtime.h).
#include "cuda-sim-runtime.h"

#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

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
};

namespace {

thread_local cudaError_t g_last = cudaSuccess;

cudaError_t set(cudaError_t e) {
  if (e != cudaSuccess) g_last = e;
  return e;
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
cudaError_t cudaStreamSynchronize(cudaStream_t s) { return set(stream_of(s)->synchronize()); }
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
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  stream_of(s)->enqueue([p] { std::free(p); });
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
  if (kind == cudaMemcpyHostToDevice) {  // like pageable memory on CUDA: src is free once this returns
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
    default: return "unknown error";
  }
}

}  // extern "C"
