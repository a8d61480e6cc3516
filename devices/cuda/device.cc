// The cuda device: the device ABI on the CUDA runtime (one stream per device, stream-ordered device
// memory from cudaMallocAsync, async copies). Built twice from this source: by the host compiler against
// CUDA's cudart (libglmk-cuda.so, GLMK_CUDA_BUILD) and by g++ against the SIMT emulator
// (libglmk-cuda-sim.so, GLMK_SIM).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "cuda-compat.h"
#include "fp8-matmul.hpp"
#include "fp8.hpp"
#include "glmk/fp8-check.hpp"
#include "glmk/int4-check.hpp"
#include "glmk/matmul-check.hpp"
#include "glmk/moe-check.hpp"
#include "glmk/status.hpp"
#include "int4.hpp"
#include "matmul.hpp"
#include "moe.hpp"
#include "topk.hpp"
#include "upload.hpp"

#if defined(GLMK_SIM)
#define GLMK_KIND "cuda-sim"
#else
#define GLMK_KIND "cuda"
#endif
#ifndef GLMK_BUILD_TEXT
#define GLMK_BUILD_TEXT "unknown"
#endif

struct glmk_device {
  int ordinal = 0;
  int multiprocessors = 0;
  // fp8.matmul's mma (fp8-matmul-mma.cuh): e4m3 m16n8k32 from compute capability 8.9 (cuda-sim reports 9.0),
  // else bf16 m16n8k16 on the widened codes; GLM_KERNELS_CUDA_FP8_MMA=bf16 forces the latter (tests, sm_80 parity)
  bool fp8_e4m3_mma = false;
  // the pipelined kernels (matmul-pipe.cuh, fp8-matmul-pipe.cuh) where the shapes fit; GLM_KERNELS_CUDA_PIPE=0
  // takes the simple ones everywhere (the same bits: the parity check and A / B timing)
  bool pipe = true;
  // int4's decode in the pipelined kernel: two fma.rn.bf16x2 per pair of codes where int4_fma_decode_exact
  // found them exact on this device at open, else f32 and cvt (GLM_KERNELS_CUDA_INT4_DECODE=f32 forces it)
  bool int4_fma = false;
  size_t memory = 0;
  std::string name;
  cudaStream_t stream = nullptr;
  // [kErrorWords]: the first execution-time argument error since the last sync: {kind, ...}; kind 1, 2:
  // top-k's (TopkParams::error), 3: moe.experts' bad id {3, t, id, e, slot} (moe.cuh)
  uint32_t* error = nullptr;
  std::atomic<bool> check_error{false};  // an op that checks values on the device ran since the last sync
  glmk::cuda::Workspace workspace;
  std::unique_ptr<glmk::cuda::Uploader> uploader;  // deferred uploads, idle pool trim (upload.hpp)
};

namespace glmk::cuda {
namespace {

constexpr int kErrorWords = 8;

// "<what>: cudaErrorX: text" (+ the emulator's account under cuda-sim).
int cuda_fail(glmk_status* st, int code, const char* what, cudaError_t e, glmk_device* d = nullptr) {
  std::string detail;
#if defined(GLMK_SIM)
  if (d) detail = simt::stream_error_detail(d->stream);
#else
  (void)d;
#endif
  return fail(st, code, "%s: %s: %s%s%s", what, cudaGetErrorName(e), cudaGetErrorString(e), detail.empty() ? "" : ": ",
              detail.c_str());
}

// The CUDA current device is per host thread: set it on every entry (the addon calls from several).
int bind(glmk_device* d, glmk_status* st) {
  cudaError_t e = cudaSetDevice(d->ordinal);
  return e == cudaSuccess ? ok(st) : cuda_fail(st, GLMK_E_DEVICE, "cudaSetDevice", e);
}

int device_count(int32_t* count, glmk_status* st) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;  // no driver or no GPU: zero devices, not an error
  *count = n;
  return ok(st);
}

void close(glmk_device* d) {
  if (!d) return;
  if (d->stream) {
    cudaSetDevice(d->ordinal);
    if (d->workspace.ptr) cudaFreeAsync(d->workspace.ptr, d->stream);  // from the stream-ordered pool
    cudaStreamSynchronize(d->stream);
    if (d->uploader) d->uploader->stop();
    if (d->error) cudaFree(d->error);
    cudaStreamDestroy(d->stream);
  }
  delete d;
}

int open(const glmk_open_options* o, glmk_device** out, glmk_status* st) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    return fail(st, GLMK_E_DEVICE,
                "no usable CUDA driver: cudaGetDeviceCount failed with %s: %s. Install the NVIDIA driver "
                "(libcuda.so.1, version 580 or newer for CUDA 13) or choose another device, e.g. GLM_KERNELS_DEVICE=cpu",
                cudaGetErrorName(e), cudaGetErrorString(e));
  if (o->ordinal < 0 || o->ordinal >= n)
    return fail(st, GLMK_E_DEVICE, "there is no %s:%d: this machine has %d CUDA device(s)", GLMK_KIND, o->ordinal, n);
  glmk_device* d = new (std::nothrow) glmk_device();
  if (!d) return fail(st, GLMK_E_OOM, "cannot allocate the device");
  d->ordinal = o->ordinal;
  cudaDeviceProp prop;
  if ((e = cudaSetDevice(d->ordinal)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, d->ordinal)) != cudaSuccess ||
      (e = cudaStreamCreateWithFlags(&d->stream, cudaStreamNonBlocking)) != cudaSuccess ||
      (e = cudaMalloc(reinterpret_cast<void**>(&d->error), kErrorWords * sizeof(uint32_t))) != cudaSuccess ||
      (e = cudaMemsetAsync(d->error, 0, kErrorWords * sizeof(uint32_t), d->stream)) != cudaSuccess ||
      (e = cudaStreamSynchronize(d->stream)) != cudaSuccess) {
    close(d);
    return cuda_fail(st, GLMK_E_DEVICE, "cannot open the CUDA device", e);
  }
  d->name = prop.name;
  d->memory = prop.totalGlobalMem;
  d->multiprocessors = prop.multiProcessorCount;
  {
    const char* mma = std::getenv("GLM_KERNELS_CUDA_FP8_MMA");
    d->fp8_e4m3_mma = prop.major * 10 + prop.minor >= 89 && !(mma && std::strcmp(mma, "bf16") == 0);
    const char* pipe = std::getenv("GLM_KERNELS_CUDA_PIPE");
    d->pipe = !(pipe && std::strcmp(pipe, "0") == 0);
    const char* decode = std::getenv("GLM_KERNELS_CUDA_INT4_DECODE");
#if defined(GLMK_SIM)
    constexpr unsigned kScaleStep = 257;  // the model is exact by construction: a sample keeps open fast
#else
    constexpr unsigned kScaleStep = 1;
#endif
    d->int4_fma = !(decode && std::strcmp(decode, "f32") == 0) && int4_fma_decode_exact(d->stream, kScaleStep);
  }
#if defined(GLMK_SIM)
  simt::set_stream_seed(d->stream, o->sim_seed);
#endif
  // Keep freed memory in the stream-ordered pool instead of returning it to the driver at every sync; the
  // uploader's thread trims it after a second idle (and emptyCache() at once).
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, d->ordinal) == cudaSuccess) {
    uint64_t keep = UINT64_MAX;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  }
  try {
    d->uploader.reset(new Uploader(d->ordinal, d->stream));
  } catch (const std::exception& x) {
    close(d);
    return fail(st, GLMK_E_DEVICE, "cannot open the CUDA device: cannot start its upload thread: %s", x.what());
  }
  *out = d;
  return ok(st);
}

int info(glmk_device* d, glmk_device_info* out, glmk_status* st) {
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->kind, sizeof out->kind, "%s", GLMK_KIND);
  std::snprintf(out->name, sizeof out->name, "%s", d->name.c_str());
  std::snprintf(out->build, sizeof out->build, "%s", GLMK_BUILD_TEXT);
  // the paths chosen at open: fp8.matmul's mma (e4m3 or bf16) / int4's decode in the pipelined kernel (fma or f32)
  std::snprintf(out->isa, sizeof out->isa, "%s/%s", d->fp8_e4m3_mma ? "e4m3" : "bf16", d->int4_fma ? "fma" : "f32");
  std::snprintf(out->capabilities, sizeof out->capabilities, "topk,int4.quantize,int4.dequantize,int4.fakeQuant,int4.fakeQuantGrad,matmul,int4.matmul,fp8.quantize,fp8.dequantize,fp8.matmul,moe.route,moe.experts");
  out->memory_bytes = d->memory;
  out->threads = d->multiprocessors;
  out->ordinal = d->ordinal;
  return ok(st);
}

int alloc(glmk_device* d, size_t bytes, void** out, glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  cudaError_t e = cudaMallocAsync(out, bytes ? bytes : 1, d->stream);
  if (e != cudaSuccess) {
    char what[96];
    std::snprintf(what, sizeof what, "cannot allocate %zu bytes on %s:%d", bytes, GLMK_KIND, d->ordinal);
    return cuda_fail(st, GLMK_E_OOM, what, e);
  }
  d->uploader->touch();
  return ok(st);
}

int free_(glmk_device* d, void* p, glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  cudaError_t e = cudaFreeAsync(p, d->stream);
  d->uploader->touch();
  return e == cudaSuccess ? ok(st) : cuda_fail(st, GLMK_E_DEVICE, "cudaFreeAsync", e);
}

int upload(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, d->stream);
  d->uploader->touch();
  return e == cudaSuccess ? ok(st) : cuda_fail(st, GLMK_E_DEVICE, "upload (cudaMemcpyAsync)", e);
}

// src is read in stream order by the uploader's thread, through pinned staging (upload.hpp): the call
// returns once the copies are enqueued.
int upload_deferred(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_done_fn release, void* user,
                    glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  return d->uploader->upload(dst, src, bytes, release, user, st);
}

int download(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, d->stream);
  return e == cudaSuccess ? ok(st) : cuda_fail(st, GLMK_E_DEVICE, "download (cudaMemcpyAsync)", e);
}

int sync(glmk_device* d, glmk_status* st) {
  if (bind(d, st) != GLMK_OK) return st->code;
  // NOTE: take the flag before waiting: a top-k enqueued after this point leaves it set for the next sync.
  const bool check = d->check_error.exchange(false);
  cudaError_t e = cudaStreamSynchronize(d->stream);
  glmk_status up{};
  const bool upload_failed = d->uploader->take_failure(&up) != GLMK_OK;  // a deferred upload's source not copied
  if (e != cudaSuccess) return cuda_fail(st, GLMK_E_DEVICE, "execution failed", e, d);
  if (upload_failed) {
    *st = up;
    return st->code;
  }
  if (!check) return ok(st);
  uint32_t rec[kErrorWords];
  if ((e = cudaMemcpyAsync(rec, d->error, sizeof rec, cudaMemcpyDeviceToHost, d->stream)) != cudaSuccess ||
      (e = cudaStreamSynchronize(d->stream)) != cudaSuccess)
    return cuda_fail(st, GLMK_E_DEVICE, "reading the error record", e, d);
  if (rec[0] == 0) return ok(st);
  cudaMemsetAsync(d->error, 0, sizeof rec, d->stream);
  long long row = rec[1], value = static_cast<int32_t>(rec[2]), limit = static_cast<int32_t>(rec[3]);
  if (rec[0] == 3)
    return fail(st, GLMK_E_ARG, "moe.experts: Expected route.ids in [0, %lld) or -1 (an unused slot) but received %lld at [%lld, %lld]",
                static_cast<long long>(rec[3]), value, row, static_cast<long long>(rec[4]));
  if (rec[0] == 1)
    return fail(st, GLMK_E_ARG, "topk: Expected rowStarts[%lld] between 0 and %lld but received %lld", row, limit, value);
  return fail(st, GLMK_E_ARG, "topk: Expected lengths[%lld] between 0 and cols - rowStarts[%lld] = %lld but received %lld",
              row, row, limit, value);
}

int topk(glmk_device* d, const glmk_topk_args* a, glmk_status* st) {
  if (a->dtype != GLMK_F32 && a->dtype != GLMK_BF16 && a->dtype != GLMK_F16)
    return fail(st, GLMK_E_DTYPE, "topk: Expected scores dtype f32, bf16 or f16 but received dtype %d", a->dtype);
  if (a->rows < 0 || a->rows > INT32_MAX || a->cols < 1 || a->cols > INT32_MAX)
    return fail(st, GLMK_E_SHAPE, "topk: Expected scores [rows, cols] with rows and cols below 2^31 but received [%lld, %lld]",
                static_cast<long long>(a->rows), static_cast<long long>(a->cols));
  if (a->k < 1 || a->k > a->cols)
    return fail(st, GLMK_E_ARG, "topk: Expected k between 1 and %lld but received %lld", static_cast<long long>(a->cols),
                static_cast<long long>(a->k));
  if (bind(d, st) != GLMK_OK) return st->code;
  TopkContext ctx{d->stream, d->multiprocessors, d->error, &d->workspace};
  if (topk_enqueue(ctx, *a, st) != GLMK_OK) return st->code;
  if (a->lengths || a->row_starts) d->check_error = true;
  return ok(st);
}

int int4_quantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (int4_check(a, true, false, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return int4_quantize_enqueue(d->stream, *a, st);
}

int int4_dequantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (int4_check(a, false, true, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return int4_dequantize_enqueue(d->stream, *a, st);
}

int int4_fake_quant_grad(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (int4_check(a, true, true, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return int4_fake_quant_grad_enqueue(d->stream, *a, st);
}

int matmul(glmk_device* d, const glmk_matmul_args* a, glmk_status* st) {
  if (matmul_check(a, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return matmul_enqueue(d->stream, *a, d->pipe, d->int4_fma, st);
}

int fp8_quantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st) {
  if (fp8_check(a, true, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return fp8_quantize_enqueue(d->stream, *a, st);
}

int fp8_dequantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st) {
  if (fp8_check(a, false, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return fp8_dequantize_enqueue(d->stream, *a, st);
}

int fp8_matmul(glmk_device* d, const glmk_fp8_matmul_args* a, glmk_status* st) {
  if (fp8_matmul_check(a, st) != GLMK_OK) return st->code;
  if (bind(d, st) != GLMK_OK) return st->code;
  return fp8_matmul_enqueue(d->stream, *a, d->fp8_e4m3_mma, d->pipe, st);
}

int moe_route(glmk_device* d, const glmk_moe_route_args* a, glmk_status* st) {
  if (moe_route_check(a, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  return moe_route_enqueue(d->stream, *a, st);
}

int moe_experts(glmk_device* d, const glmk_moe_experts_args* a, glmk_status* st) {
  if (moe_experts_check(a, st) != GLMK_OK || bind(d, st) != GLMK_OK) return st->code;
  if (moe_experts_enqueue(d->stream, *a, d->fp8_e4m3_mma, d->pipe, d->error, st) != GLMK_OK) return st->code;
  if (a->t > 0) d->check_error = true;
  return ok(st);
}

// What the stream-ordered pool holds: in use, and freed but kept (its release threshold is set to keep
// everything; the uploader's thread trims it after a second idle). cuda-sim emulates the pool
// (sim/cuda-sim-runtime.cc). The pool is the device's default one: shared by every open of the device.
int memory_stats(glmk_device* d, glmk_memory_stats* out, glmk_status* st) {
  *out = glmk_memory_stats{};
  cudaMemPool_t pool;
  cudaError_t e = cudaDeviceGetDefaultMemPool(&pool, d->ordinal);
  uint64_t reserved = 0, used = 0;
  if (e == cudaSuccess) e = cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
  if (e == cudaSuccess) e = cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used);
  if (e != cudaSuccess) return cuda_fail(st, GLMK_E_DEVICE, "memory (cudaMemPoolGetAttribute)", e);
  out->live_bytes = used;
  out->cached_bytes = reserved > used ? reserved - used : 0;
  return ok(st);
}

// Returns the pool's free memory to the driver (blocks whose stream-ordered free has not run yet stay).
int empty_cache(glmk_device* d, glmk_status* st) {
  cudaMemPool_t pool;
  cudaError_t e = cudaDeviceGetDefaultMemPool(&pool, d->ordinal);
  if (e == cudaSuccess) e = cudaMemPoolTrimTo(pool, 0);
  if (e != cudaSuccess) return cuda_fail(st, GLMK_E_DEVICE, "emptyCache (cudaMemPoolTrimTo)", e);
  return ok(st);
}

const glmk_device_api kApi = {
    /* .abi_version = */ GLMK_ABI_VERSION,
    /* .struct_size = */ sizeof(glmk_device_api),
    /* .kind = */ GLMK_KIND,
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
    /* .int4_quantize = */ int4_quantize,
    /* .int4_dequantize = */ int4_dequantize,
    /* .int4_fake_quant_grad = */ int4_fake_quant_grad,
    /* .matmul = */ matmul,
    /* .fp8_quantize = */ fp8_quantize,
    /* .fp8_dequantize = */ fp8_dequantize,
    /* .fp8_matmul = */ fp8_matmul,
    /* .moe_route = */ moe_route,
    /* .moe_experts = */ moe_experts,
};

}  // namespace
}  // namespace glmk::cuda

extern "C" GLMK_EXPORT const glmk_device_api* glmk_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;  // the host checks our abi_version and struct_size
  return &glmk::cuda::kApi;
}
