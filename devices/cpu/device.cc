// The CPU device: the device ABI implemented inside the addon (host memory, one in-order stream).
#include "device.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include "block-cache.hpp"
#include "glmk/fp8-check.hpp"
#include "glmk/moe-check.hpp"
#include "glmk/int4-check.hpp"
#include "glmk/matmul-check.hpp"
#include "glmk/status.hpp"
#include "fp8.hpp"
#include "moe.hpp"
#include "gemm.hpp"
#include "int4.hpp"
#include "isa.hpp"
#include "stream.hpp"
#include "topk.hpp"

struct glmk_device {
  int threads;
  glmk::cpu::Isa isa;
  // std::thread::hardware_concurrency(), read once: it reads /sys on every call (5.7 us here), which a
  // decode matmul paid per call
  int hardware_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  // NOTE: members die in reverse order, and the stream's destructor drains its queue, so whatever a queued
  // task touches is declared before the stream (a device closed with a top-k still queued, as when a worker
  // thread is terminated, ran that top-k on freed scratch).
  glmk::cpu::BlockCache blocks{size_t{64} << 20};    // outlives the stream's last free
  std::vector<glmk::cpu::TopkScratch> topk_scratch;  // touched only by the task that runs (one at a time)
  glmk::cpu::TopkSplitTuner topk_tuner;              // (the same)
  glmk::cpu::Pool inline_pool{1, 0};                 // no threads: for small ops run inline
  glmk::cpu::Stream stream;
  glmk_device(int t, glmk::cpu::Isa i, int spin_us) : threads(t), isa(i), stream(t, spin_us) {
    // NOTE: the cache saves page faults between back-to-back calls; after a second with no work it goes
    // back to the system, so that an idle process (or one whose tensors were collected) does not sit on it.
    stream.on_idle(std::chrono::milliseconds(1000), [this] { blocks.empty(); });
  }
};

namespace glmk::cpu {
namespace {

// Copies up to this size run on the calling thread when the stream is idle (1 MiB: about 0.1 ms).
constexpr size_t kInlineCopyBytes = size_t{1} << 20;
// A top-k this small (scores bytes, rows) runs on the calling thread when the stream is idle: about 50 us
// of work or less on one core, much less than the two thread hand-offs it saves under load.
constexpr size_t kInlineTopkBytes = size_t{640} << 10;
constexpr int64_t kInlineTopkRows = 4;

// A matmul of at most 4 rows of x (decode) whose weights this device streams in well under a millisecond
// runs on the calling thread with the stream's pool when the stream is idle, as the decode top-k does:
// handing it to the stream thread and its result back cost 35 us of a 44 us call (64 x 6144 int4, idle).
// The bound (weight bytes plus x widened to f32) is per thread, from one thread's cold rates here (Zen 4):
// with AVX-512 BF16 (VDPBF16PS), int4 13.5 GB/s (group 32), dense bf16 20, fp8 19.7 (12 MiB: 0.93 ms at
// worst); half that for AVX-512 without it (the fma kernels, and older cores: untimed here); AVX2 int4 4.6,
// dense 7.5 (3 MiB: 0.68 ms). fp8 without AVX-512 (scalar: 0.3 GB/s) and every scalar path run on the
// stream. Counted for at most 4 threads and the machine's hardware threads:
// more cores than that share a memory system that does not grow with them (48 MiB at 60 GB/s, a desktop's
// two DDR5 channels, is 0.84 ms).
size_t inline_matmul_bytes(const glmk_device* d, bool fp8) {
  size_t per_thread = 0;
  if (d->isa >= Isa::avx512bf16) per_thread = size_t{12} << 20;
  else if (d->isa >= Isa::avx512) per_thread = size_t{6} << 20;
  else if (d->isa == Isa::avx2 && !fp8) per_thread = size_t{3} << 20;
  return per_thread * static_cast<size_t>(std::min({d->threads, 4, d->hardware_threads}));
}

// Runs kernel(pool, status) in stream order: on the calling thread when `small` and the stream is idle,
// else on the stream thread with the worker pool (results never depend on which). Inline, the pool is a
// one-thread pool, or with `wide` the stream's own pool with the calling thread as its worker 0: the stream
// is idle then, so nothing else uses that pool. The calling thread takes the items a worker has not started
// (one that is asleep costs only the wake-up call), but waits for an item a worker has started.
template <class Kernel>
void run_op(glmk_device* d, const char* op, bool small, Kernel kernel, bool wide = false) {
  if (small && d->stream.run_inline(op, [d, &kernel, wide](glmk_status* s) {
        return kernel(wide ? d->stream.pool() : d->inline_pool, s);
      }))
    return;
  d->stream.enqueue(op, [d, kernel](glmk_status* s) { return kernel(d->stream.pool(), s); });
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  return "unknown CPU";
}

int device_count(int32_t* count, glmk_status* st) {
  *count = 1;
  return ok(st);
}

int open(const glmk_open_options* o, glmk_device** out, glmk_status* st) {
  if (o->ordinal != 0) return fail(st, GLMK_E_DEVICE, "there is one CPU device, cpu:0; received cpu:%d", o->ordinal);
  if (o->threads < 1 || o->threads > 1024)
    return fail(st, GLMK_E_ARG, "Expected threads between 1 and 1024 but received %d", o->threads);
  if (o->spin_us < 0 || o->spin_us > kMaxSpinUs)
    return fail(st, GLMK_E_ARG, "Expected GLM_KERNELS_SPIN_US between 0 and %d but received %d", kMaxSpinUs,
                o->spin_us);
  Isa want;
  if (!isa_parse(o->isa, &want))
    return fail(st, GLMK_E_ARG, "Expected GLM_KERNELS_ISA auto, avx512bf16, avx512vbmi, avx512, avx2 or scalar but received %s", o->isa);
  Isa have = isa_detect();
  Isa use = static_cast<int>(want) < static_cast<int>(have) ? want : have;
  try {
    *out = new glmk_device(o->threads, use, o->spin_us);
  } catch (const std::exception& e) {
    return fail(st, GLMK_E_DEVICE, "cannot start %d CPU worker threads: %s", o->threads, e.what());
  }
  return ok(st);
}

void close(glmk_device* d) { delete d; }

int info(glmk_device* d, glmk_device_info* out, glmk_status* st) {
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->kind, sizeof out->kind, "cpu");
  std::snprintf(out->name, sizeof out->name, "%s", cpu_model().c_str());
  std::snprintf(out->isa, sizeof out->isa, "%s", isa_name(d->isa));
  std::snprintf(out->build, sizeof out->build, "g++ %d.%d.%d, C++17", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
  std::snprintf(out->capabilities, sizeof out->capabilities, "topk,int4.quantize,int4.dequantize,int4.fakeQuant,int4.fakeQuantGrad,matmul,int4.matmul,fp8.quantize,fp8.dequantize,fp8.matmul,moe.route,moe.experts");
  out->memory_bytes = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  out->threads = d->threads;
  out->ordinal = 0;
  return ok(st);
}

int alloc(glmk_device* d, size_t bytes, void** out, glmk_status* st) {
  // 64-byte aligned, never zero-sized (so every tensor has a distinct address).
  void* p = d->blocks.alloc(bytes);
  if (!p) return fail(st, GLMK_E_OOM, "cannot allocate %zu bytes of host memory", bytes);
  *out = p;
  return ok(st);
}

int free_(glmk_device* d, void* p, glmk_status* st) {
  run_op(d, "free", true, [d, p](Pool&, glmk_status* s) {
    d->blocks.free(p);
    return ok(s);
  });
  return ok(st);
}

int upload(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_status* st) {
  if (bytes <= kInlineCopyBytes && d->stream.run_inline("upload", [dst, src, bytes](glmk_status* s) {
        std::memcpy(dst, src, bytes);
        return ok(s);
      }))
    return ok(st);
  std::shared_ptr<char[]> staged;
  try {
    staged.reset(new char[bytes ? bytes : 1]);
  } catch (const std::bad_alloc&) {
    return fail(st, GLMK_E_OOM, "cannot stage %zu bytes for upload", bytes);
  }
  std::memcpy(staged.get(), src, bytes);
  d->stream.enqueue("upload", [dst, staged, bytes](glmk_status* s) {
    std::memcpy(dst, staged.get(), bytes);
    return ok(s);
  });
  return ok(st);
}

int upload_deferred(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_done_fn release, void* user,
                    glmk_status* st) {
  d->stream.enqueue("upload", [dst, src, bytes, release, user](glmk_status* s) {
    std::memcpy(dst, src, bytes);
    release(user, GLMK_OK, "");
    return ok(s);
  });
  return ok(st);
}

int download(glmk_device* d, void* dst, const void* src, size_t bytes, glmk_status* st) {
  run_op(d, "download", bytes <= kInlineCopyBytes, [dst, src, bytes](Pool&, glmk_status* s) {
    std::memcpy(dst, src, bytes);
    return ok(s);
  });
  return ok(st);
}

int sync(glmk_device* d, glmk_status* st) { return d->stream.sync(st); }

int sync_poll(glmk_device* d, int32_t* done, glmk_status* st) {
  bool idle = false;
  const int rc = d->stream.poll(&idle, st);
  *done = idle ? 1 : 0;
  return rc;
}

int memory_stats(glmk_device* d, glmk_memory_stats* out, glmk_status* st) {
  out->live_bytes = d->blocks.live_bytes();
  out->cached_bytes = d->blocks.cached_bytes();
  return ok(st);
}

int empty_cache(glmk_device* d, glmk_status* st) {
  d->blocks.empty();
  return ok(st);
}

int sync_notify(glmk_device* d, glmk_done_fn done, void* user, glmk_status* st) {
  d->stream.notify([done, user](int code, const char* message) { done(user, code, message); });
  return ok(st);
}

int topk(glmk_device* d, const glmk_topk_args* a, glmk_status* st) {
  if (a->dtype != GLMK_F32 && a->dtype != GLMK_BF16 && a->dtype != GLMK_F16)
    return fail(st, GLMK_E_DTYPE, "topk: Expected scores dtype f32, bf16 or f16 but received dtype %d", a->dtype);
  if (a->rows < 0 || a->cols < 1 || a->cols > INT32_MAX)
    return fail(st, GLMK_E_SHAPE, "topk: Expected scores [rows, cols] with 1 <= cols <= 2^31-1 but received [%lld, %lld]",
                static_cast<long long>(a->rows), static_cast<long long>(a->cols));
  if (a->k < 1 || a->k > a->cols)
    return fail(st, GLMK_E_ARG, "topk: Expected k between 1 and %lld but received %lld",
                static_cast<long long>(a->cols), static_cast<long long>(a->k));
  const glmk_topk_args args = *a;
  const size_t bytes = static_cast<size_t>(a->rows) * static_cast<size_t>(a->cols) * (a->dtype == GLMK_F32 ? 4 : 2);
  run_op(
      d, "topk", a->rows <= kInlineTopkRows && bytes <= kInlineTopkBytes,
      [d, args](Pool& pool, glmk_status* s) { return topk_execute(pool, d->isa, d->topk_scratch, args, s, &d->topk_tuner); },
      topk_splits_rows(d->threads, a->rows, a->cols));
  return ok(st);
}

// An int4 kernel in stream order (inline up to 64K weights, when the stream is idle).
int int4_submit(glmk_device* d, const char* op, const glmk_int4_args* a,
                int (*kernel)(Pool&, const glmk_int4_args&, glmk_status*), glmk_status* st) {
  const glmk_int4_args args = *a;
  run_op(d, op, args.n * args.k <= (int64_t{1} << 16),
         [args, kernel](Pool& pool, glmk_status* s) { return kernel(pool, args, s); });
  return ok(st);
}

int int4_quantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (glmk::int4_check(a, true, false, st) != GLMK_OK) return st->code;
  return int4_submit(d, "int4.quantize", a, int4_quantize_execute, st);
}

int int4_dequantize(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (glmk::int4_check(a, false, true, st) != GLMK_OK) return st->code;
  return int4_submit(d, "int4.dequantize", a, int4_dequantize_execute, st);
}

int int4_fake_quant_grad(glmk_device* d, const glmk_int4_args* a, glmk_status* st) {
  if (glmk::int4_check(a, true, true, st) != GLMK_OK) return st->code;
  return int4_submit(d, "int4.fakeQuantGrad", a, int4_fake_quant_grad_execute, st);
}

int matmul(glmk_device* d, const glmk_matmul_args* a, glmk_status* st) {
  if (glmk::matmul_check(a, st) != GLMK_OK) return st->code;
  const glmk_matmul_args args = *a;
  const size_t w_bytes = a->w_dtype == GLMK_W_INT4 ? static_cast<size_t>(a->n) * static_cast<size_t>(a->k / 2 + a->k / a->group_size * 2)
                                                   : static_cast<size_t>(a->n) * static_cast<size_t>(a->k) * (a->w_dtype == GLMK_F32 ? 4 : 2);
  const size_t x_bytes = static_cast<size_t>(a->m) * static_cast<size_t>(a->k) * 4;  // (widened to f32 on one thread)
  run_op(
      d, glmk::matmul_op_name(a), a->m <= 4 && w_bytes + x_bytes <= inline_matmul_bytes(d, false),
      [d, args](Pool& pool, glmk_status* s) { return matmul_execute(pool, d->isa, args, s); }, true);
  return ok(st);
}

int fp8_quantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st) {
  if (glmk::fp8_check(a, true, st) != GLMK_OK) return st->code;
  const glmk_fp8_args args = *a;
  run_op(d, "fp8.quantize", false, [args](Pool& pool, glmk_status* s) { return fp8_quantize_execute(pool, args, s); });
  return ok(st);
}

int fp8_dequantize(glmk_device* d, const glmk_fp8_args* a, glmk_status* st) {
  if (glmk::fp8_check(a, false, st) != GLMK_OK) return st->code;
  const glmk_fp8_args args = *a;
  run_op(d, "fp8.dequantize", false, [args](Pool& pool, glmk_status* s) { return fp8_dequantize_execute(pool, args, s); });
  return ok(st);
}

int fp8_matmul(glmk_device* d, const glmk_fp8_matmul_args* a, glmk_status* st) {
  if (glmk::fp8_matmul_check(a, st) != GLMK_OK) return st->code;
  const glmk_fp8_matmul_args args = *a;
  run_op(
      d, "fp8.matmul", a->m <= 4 && static_cast<size_t>(a->n + a->m * 4) * static_cast<size_t>(a->k) <= inline_matmul_bytes(d, true),
      [d, args](Pool& pool, glmk_status* s) { return fp8_matmul_execute(pool, d->isa, args, s); }, true);
  return ok(st);
}

int moe_route(glmk_device* d, const glmk_moe_route_args* a, glmk_status* st) {
  if (glmk::moe_route_check(a, st) != GLMK_OK) return st->code;
  const glmk_moe_route_args args = *a;
  run_op(d, "moe.route", false, [d, args](Pool& pool, glmk_status* s) { return moe_route_execute(pool, d->isa, args, s); });
  return ok(st);
}

int moe_experts(glmk_device* d, const glmk_moe_experts_args* a, glmk_status* st) {
  if (glmk::moe_experts_check(a, st) != GLMK_OK) return st->code;
  const glmk_moe_experts_args args = *a;
  run_op(d, "moe.experts", false, [d, args](Pool& pool, glmk_status* s) { return moe_experts_execute(pool, d->isa, args, s); });
  return ok(st);
}

const glmk_device_api kApi = {
    /* .abi_version = */ GLMK_ABI_VERSION,
    /* .struct_size = */ sizeof(glmk_device_api),
    /* .kind = */ "cpu",
    /* .device_count = */ device_count,
    /* .open = */ open,
    /* .close = */ close,
    /* .info = */ info,
    /* .alloc = */ alloc,
    /* .free = */ free_,
    /* .upload = */ upload,
    /* .download = */ download,
    /* .sync = */ sync,
    /* .sync_notify = */ sync_notify,
    /* .topk = */ topk,
    /* .memory_stats = */ memory_stats,
    /* .empty_cache = */ empty_cache,
    /* .upload_deferred = */ upload_deferred,
    /* .sync_poll = */ sync_poll,
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
}  // namespace glmk::cpu

const glmk_device_api* glmk_cpu_device_api() { return &glmk::cpu::kApi; }
