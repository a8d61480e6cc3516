// simt.h: a SIMT emulator that runs our CUDA kernel source on the CPU (the cuda-sim device).
//
// Each CUDA thread is a Boost.Context fiber; the blocks of a launch run one after another on the calling
// OS thread (never move a fiber between OS threads: GCC caches TLS addresses). Fibers switch only at
// __syncthreads() (a block barrier) and at warp collectives (__shfl*_sync, __ballot_sync, __any_sync,
// __all_sync, __syncwarp, and the tensor-core models of devices/cuda/mma.cuh, mma.sync and ldmatrix, which
// gather all 32 lanes' operands through warp_model: warp rendezvous). The schedule is shuffled by a seed:
// the order of the blocks, and the order in which the runnable fibers resume after every rendezvous. A
// kernel whose output depends on that order (atomic counters that place outputs, a missing barrier)
// therefore gives different bits under different seeds, which is what the tests look for.
//
// Errors are reported, never hung on: a barrier reached by part of a block, threads that exited while
// others wait, barriers at different call sites, warp collectives whose lanes disagree or name lanes that
// do not exist, misuse that a thread finds itself (fault(): a cp.async to a misaligned or non-shared
// address), and deadlocks. The launch then fails (simt::last_error() has the text) and the stream
// reports cudaErrorLaunchFailure.
//
// Shared memory: declare it with GLMK_SHARED(type, name) (cuda-compat.h), which maps to __shared__ under
// nvcc; here it is an exactly sized heap buffer per block, filled with 0xFF at block start (so a missing
// initialization shows, and ASan sees overruns). glmk_dyn_smem<T>() is `extern __shared__`.
// There are no floating-point atomics on purpose: our kernels must not use them.
#pragma once

#include <cuda_runtime.h>  // dim3, uint3, cudaError_t; before our keyword macros (see SIMT-NOTES 5)
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/detail/fcontext.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SIMT_ASAN 1
#else
#define SIMT_ASAN 0
#endif

namespace simt {

namespace bctx = boost::context::detail;

enum class Wait { kRun, kBarrier, kWarp, kDone, kFault };
enum class WarpOp { kShfl, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll, kSyncwarp, kModel };
const char* const kWarpOpName[] = {"__shfl_sync",   "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                   "__ballot_sync", "__any_sync",     "__all_sync",       "__syncwarp", ""};
enum class BarOp { kSync, kCount, kAnd, kOr };

// A warp-collective model (mma.sync, ldmatrix: devices/cuda/mma.cuh): lane l posted arg[l] (a pointer to its
// operands and results); the model reads all 32, computes and writes every lane's results. Returns false with
// err set on a misuse (the emulator prefixes the call site).
using WarpModel = bool (*)(void* const* arg, std::string& err);

// One cp.async in flight (mma.cuh): its bytes land at dst when its commit group is waited for.
struct AsyncCopy {
  unsigned char* dst;
  unsigned char bytes[16];
  int size;
  uint64_t group;
};

struct Fiber {
  bctx::fcontext_t ctx = nullptr;
  char* stack_lo = nullptr;  // usable stack (above the guard page)
  size_t stack_size = 0;
  void* asan_fake = nullptr;
  uint3 tid{};
  Wait wait = Wait::kRun;
  // what it waits at
  const char* file = "";
  int line = 0;
  BarOp bar = BarOp::kSync;
  WarpOp op = WarpOp::kSyncwarp;
  unsigned mask = 0;
  int arg = 0, width = 32;
  uint64_t value = 0;  // posted value / predicate; the result on release
  WarpModel model = nullptr;  // WarpOp::kModel: the collective, its name, this lane's operands
  const char* model_name = "";
  void* model_arg = nullptr;
  std::vector<AsyncCopy> copies;  // cp.async issued and not yet landed (any group, committed or not)
  uint64_t open_group = 0;        // the group that new copies join; commit_group closes it
};

inline const char* op_name(const Fiber& f) { return f.op == WarpOp::kModel ? f.model_name : kWarpOpName[int(f.op)]; }

// xorshift-multiply generator (splitmix64): our own, so that a seed replays on every standard library.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  template <class T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; i--) std::swap(v[i - 1], v[next() % i]);
  }
};

// The state of the launch running on this OS thread (one per stream worker).
struct Emu {
  std::vector<Fiber> fibers;
  std::vector<std::pair<char*, size_t>> stacks;  // mmap'd, reused across blocks and launches
  bctx::fcontext_t sched = nullptr;
  const void* sched_lo = nullptr;
  size_t sched_size = 0;
  Fiber* cur = nullptr;
  dim3 grid, block, block_idx;
  std::function<void()>* body = nullptr;
  std::map<const void*, std::pair<void*, size_t>> shared;  // GLMK_SHARED variables of this block (buffer, bytes)
  std::vector<unsigned char> dyn;       // extern __shared__
  size_t dyn_bytes = 0;
  std::string error;
  ~Emu() {
    for (auto& kv : shared) std::free(kv.second.first);
    long page = sysconf(_SC_PAGESIZE);
    for (auto& st : stacks) munmap(st.first - page, st.second + static_cast<size_t>(page));
  }
};

inline Emu& emu() {
  static thread_local Emu e;
  return e;
}
inline Fiber& cur() { return *emu().cur; }

inline std::string& last_error() {
  static thread_local std::string e;
  return e;
}

constexpr size_t kStack = SIMT_ASAN ? 512 * 1024 : 128 * 1024;

inline void asan_start(void** fake, const void* lo, size_t size) {
#if SIMT_ASAN
  __sanitizer_start_switch_fiber(fake, lo, size);
#else
  (void)fake, (void)lo, (void)size;
#endif
}
inline void asan_finish(void* fake, const void** lo, size_t* size) {
#if SIMT_ASAN
  __sanitizer_finish_switch_fiber(fake, lo, size);
#else
  (void)fake, (void)lo, (void)size;
#endif
}

// Fiber side: give control back to the scheduler until released.
inline void yield() {
  Emu& e = emu();
  Fiber* f = e.cur;
  asan_start(&f->asan_fake, e.sched_lo, e.sched_size);
  bctx::transfer_t t = bctx::jump_fcontext(e.sched, nullptr);
  asan_finish(f->asan_fake, &e.sched_lo, &e.sched_size);
  e.sched = t.fctx;
}

inline void fiber_main(bctx::transfer_t t) {
  Emu& e = emu();
  asan_finish(nullptr, &e.sched_lo, &e.sched_size);
  e.sched = t.fctx;
  (*e.body)();
  Fiber* f = e.cur;
  f->wait = Wait::kDone;
  asan_start(nullptr, e.sched_lo, e.sched_size);  // this fiber's stack is finished
  bctx::jump_fcontext(e.sched, nullptr);
}

// Scheduler side.
inline void resume(Fiber& f) {
  Emu& e = emu();
  e.cur = &f;
  void* fake = nullptr;
  asan_start(&fake, f.stack_lo, f.stack_size);
  bctx::transfer_t t = bctx::jump_fcontext(f.ctx, &f);
  asan_finish(fake, nullptr, nullptr);
  f.ctx = t.fctx;
  e.cur = nullptr;
}

inline std::string where(const Fiber& f) { return std::string(f.file) + ":" + std::to_string(f.line); }

inline std::string thread_name(const Fiber& f) {
  return "thread (" + std::to_string(f.tid.x) + "," + std::to_string(f.tid.y) + "," + std::to_string(f.tid.z) + ")";
}

// Warp collectives: the lanes of one mask are all waiting; compute every lane's result.
inline bool resolve_warp(Fiber* const* lane, unsigned mask, std::string& err) {
  const Fiber& a = *lane[__builtin_ctz(mask)];
  for (int l = 0; l < 32; l++) {
    if (!(mask >> l & 1u)) continue;
    const Fiber& b = *lane[l];
    if (b.op != a.op || b.mask != a.mask || b.file != a.file || b.line != a.line || b.model != a.model) {
      err = "lanes of one warp disagree: " + thread_name(a) + " at " + op_name(a) + " (" + where(a) + ", mask " +
            std::to_string(a.mask) + ") but " + thread_name(b) + " at " + op_name(b) + " (" + where(b) + ", mask " +
            std::to_string(b.mask) + ")";
      return false;
    }
  }
  if (a.op == WarpOp::kModel) {  // posted with the full mask: release_warp has checked that all 32 lanes exist
    void* arg[32];
    for (int l = 0; l < 32; l++) arg[l] = lane[l]->model_arg;
    std::string why;
    if (!a.model(arg, why)) {
      err = op_name(a) + std::string(" at ") + where(a) + ": " + why;
      return false;
    }
    for (int l = 0; l < 32; l++) lane[l]->wait = Wait::kRun;
    return true;
  }
  uint64_t ballot = 0;
  for (int l = 0; l < 32; l++)
    if ((mask >> l & 1u) && lane[l]->value) ballot |= 1ull << l;
  uint64_t out[32] = {0};
  for (int l = 0; l < 32; l++) {
    if (!(mask >> l & 1u)) continue;
    const Fiber& f = *lane[l];
    int w = f.width, base = l & ~(w - 1), src = l;
    switch (f.op) {
      case WarpOp::kShfl: src = base + (f.arg & (w - 1)); break;
      case WarpOp::kShflUp: src = (l - base) >= f.arg ? l - f.arg : l; break;
      case WarpOp::kShflDown: src = (l - base) + f.arg < w ? l + f.arg : l; break;
      case WarpOp::kShflXor: src = l ^ f.arg; if (src >= base + w) src = l; break;
      default: break;
    }
    if (src < 0 || src > 31 || !(mask >> src & 1u)) {
      err = thread_name(f) + " " + op_name(f) + " at " + where(f) + " reads lane " + std::to_string(src) +
            ", which is not in its mask " + std::to_string(mask);
      return false;
    }
    switch (f.op) {
      case WarpOp::kBallot: out[l] = ballot; break;
      case WarpOp::kAny: out[l] = ballot != 0; break;
      case WarpOp::kAll: out[l] = ballot == mask; break;
      case WarpOp::kSyncwarp: out[l] = 0; break;
      default: out[l] = lane[src]->value; break;
    }
  }
  for (int l = 0; l < 32; l++)
    if (mask >> l & 1u) {
      lane[l]->value = out[l];
      lane[l]->wait = Wait::kRun;
    }
  return true;
}

// Releases the warp collectives of the warp starting at fiber w0 whose lanes have all arrived. Returns how
// many fibers it released; fills err on a misuse.
inline size_t release_warp(Emu& e, int w0, std::string& err) {
  const int n = static_cast<int>(e.fibers.size());
  Fiber* lane[32] = {nullptr};
  unsigned present = 0;
  for (int l = 0; l < 32 && w0 + l < n; l++) lane[l] = &e.fibers[w0 + l], present |= 1u << l;
  unsigned done = 0;
  size_t released = 0;
  for (int l = 0; l < 32; l++) {
    if (!(present >> l & 1u) || lane[l]->wait != Wait::kWarp || (done >> l & 1u)) continue;
    const Fiber& f = *lane[l];
    if (!(f.mask >> l & 1u)) {
      err = thread_name(f) + " calls " + op_name(f) + " at " + where(f) + " with mask " +
            std::to_string(f.mask) + ", which leaves out its own lane";
      return 0;
    }
    if (f.mask & ~present) {
      err = thread_name(f) + " calls " + op_name(f) + " at " + where(f) + " with mask " +
            std::to_string(f.mask) + " but the warp has only lanes " + std::to_string(present);
      return 0;
    }
    bool all = true;
    for (int m = 0; m < 32; m++)
      if (f.mask >> m & 1u) {
        if (lane[m]->wait == Wait::kDone) {
          err = thread_name(f) + " waits in " + op_name(f) + " at " + where(f) + " for " +
                thread_name(*lane[m]) + ", which has exited";
          return 0;
        }
        all = all && lane[m]->wait == Wait::kWarp;
      }
    if (!all) continue;
    done |= f.mask;
    if (!resolve_warp(lane, f.mask, err)) return 0;
    released += __builtin_popcount(f.mask);
  }
  return released;
}

// When no fiber can run: release what can be released (warps, then the block barrier). Returns how many
// fibers it released; fills err on a misuse; 0 and no error means deadlock (the caller reports it).
inline size_t release(Emu& e, std::string& err) {
  const int n = static_cast<int>(e.fibers.size());
  size_t released = 0;
  for (int w0 = 0; w0 < n; w0 += 32) {
    released += release_warp(e, w0, err);
    if (!err.empty()) return 0;
  }
  if (released) return released;
  // the block barrier: every live thread must be at the same one
  const Fiber* first = nullptr;
  const Fiber* exited = nullptr;
  for (auto& f : e.fibers) {
    if (f.wait == Wait::kDone) exited = exited ? exited : &f;
    else if (f.wait != Wait::kBarrier) return 0;
    else if (!first) first = &f;
    else if (f.file != first->file || f.line != first->line || f.bar != first->bar) {
      err = "divergent __syncthreads: " + thread_name(*first) + " waits at " + where(*first) + " but " +
            thread_name(f) + " at " + where(f);
      return 0;
    }
  }
  if (!first) return 0;
  if (exited) {
    err = "__syncthreads at " + where(*first) + " reached by part of the block: " + thread_name(*exited) +
          " has exited while " + thread_name(*first) + " waits";
    return 0;
  }
  uint64_t count = 0, live = 0;
  for (auto& f : e.fibers) count += f.value != 0, live++;
  uint64_t r = first->bar == BarOp::kCount ? count : first->bar == BarOp::kAnd ? count == live : count != 0;
  for (auto& f : e.fibers) f.value = r, f.wait = Wait::kRun;
  return e.fibers.size();
}

inline std::string describe_deadlock(const Emu& e) {
  std::string s = "deadlock: no thread can run;";
  int shown = 0;
  for (auto& f : e.fibers) {
    if (f.wait == Wait::kDone || shown == 4) continue;
    s += " " + thread_name(f) + " waits at " + (f.wait == Wait::kBarrier ? "__syncthreads" : op_name(f)) +
         " (" + where(f) + ");";
    shown++;
  }
  return s;
}

inline bool run_block(Emu& e, Rng& rng) {
  const int n = static_cast<int>(e.block.x * e.block.y * e.block.z);
  e.fibers.assign(static_cast<size_t>(n), Fiber{});
  for (auto& kv : e.shared) std::free(kv.second.first);
  e.shared.clear();
  e.dyn.assign(e.dyn_bytes, 0xFF);
  while (e.stacks.size() < static_cast<size_t>(n)) {
    long page = sysconf(_SC_PAGESIZE);
    size_t total = kStack + static_cast<size_t>(page);
    void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      e.error = "cannot map fiber stacks";
      return false;
    }
    mprotect(m, static_cast<size_t>(page), PROT_NONE);  // guard page below the stack
    e.stacks.push_back({static_cast<char*>(m) + page, kStack});
  }
  for (int i = 0; i < n; i++) {
    Fiber& f = e.fibers[i];
    f.tid = uint3{i % e.block.x, (i / e.block.x) % e.block.y, i / (e.block.x * e.block.y)};
    f.stack_lo = e.stacks[i].first;
    f.stack_size = e.stacks[i].second;
    // NOTE: stagger the stack tops by whole cache lines (up to 32 KiB), else every fiber's hot frames map to
    // the same cache sets and each switch misses (3-10x slower).
    const size_t color = static_cast<size_t>((i * 37) % 512) * 64;
    f.ctx = bctx::make_fcontext(f.stack_lo + f.stack_size - color, f.stack_size - color, fiber_main);
  }
  // The schedule: pick a warp with runnable lanes, weighted by a per-block random speed (so some warps run
  // far ahead of others, as on hardware), run its runnable lanes in random order to their next sync
  // point, and release its warp collective at once if every lane has arrived.
  const int warps = (n + 31) / 32;
  std::vector<uint32_t> speed(static_cast<size_t>(warps));
  for (auto& w : speed) w = 1u + static_cast<uint32_t>(rng.next() % 16) * static_cast<uint32_t>(rng.next() % 16);
  std::vector<int> lanes;
  std::vector<int> live(static_cast<size_t>(warps));  // runnable lanes per warp
  auto recount = [&](int w) {
    int c = 0;
    for (int i = w * 32; i < n && i < w * 32 + 32; i++) c += e.fibers[i].wait == Wait::kRun;
    live[w] = c;
  };
  for (int w = 0; w < warps; w++) recount(w);
  for (;;) {
    uint64_t total = 0;
    for (int w = 0; w < warps; w++) total += live[w] ? speed[w] : 0;
    if (total == 0) {
      bool all_done = true;
      for (auto& f : e.fibers) all_done = all_done && f.wait == Wait::kDone;
      if (all_done) return true;
      std::string err;
      if (release(e, err) == 0) {
        e.error = err.empty() ? describe_deadlock(e) : err;
        return false;
      }
      for (int w = 0; w < warps; w++) recount(w);
      continue;
    }
    uint64_t pick = rng.next() % total;
    int w = 0;
    while (!live[w] || pick >= speed[w]) pick -= live[w] ? speed[w] : 0, w++;
    lanes.clear();
    for (int i = w * 32; i < n && i < w * 32 + 32; i++)
      if (e.fibers[i].wait == Wait::kRun) lanes.push_back(i);
    rng.shuffle(lanes);
    for (int i : lanes) {
      resume(e.fibers[i]);
      if (!e.error.empty()) return false;  // a fault (fault()): the fiber reported a misuse and stopped
    }
    std::string err;
    release_warp(e, w * 32, err);
    if (!err.empty()) {
      e.error = err;
      return false;
    }
    recount(w);
  }
}

// Runs one kernel launch to completion on this OS thread. Returns false with last_error() set on a misuse.
inline bool run(dim3 grid, dim3 block, size_t dyn_bytes, uint64_t seed, const char* name, std::function<void()> body) {
  Emu& e = emu();
  e.grid = grid, e.block = block, e.body = &body, e.dyn_bytes = dyn_bytes, e.error.clear();
  Rng rng{seed};
  const uint64_t blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> order(blocks);
  for (uint64_t b = 0; b < blocks; b++) order[b] = b;
  rng.shuffle(order);
  bool ok = true;
  for (uint64_t b : order) {
    e.block_idx = dim3(static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                       static_cast<unsigned>(b / (static_cast<uint64_t>(grid.x) * grid.y)));
    if (!run_block(e, rng)) {
      last_error() = std::string(name) + " block (" + std::to_string(e.block_idx.x) + "," +
                     std::to_string(e.block_idx.y) + "," + std::to_string(e.block_idx.z) + "): " + e.error;
      ok = false;
      break;
    }
  }
  for (auto& kv : e.shared) std::free(kv.second.first);
  e.shared.clear();
  e.fibers.clear();
  e.body = nullptr;
  return ok;
}

// ---- what kernels call ----

inline uint64_t barrier(BarOp op, int pred, const char* file, int line) {
  Fiber& f = cur();
  f.wait = Wait::kBarrier, f.bar = op, f.value = pred != 0, f.file = file, f.line = line;
  yield();
  return f.value;
}

// A misuse found by the thread itself (a misaligned or non-shared address): fault() records the text, then
// halt() stops the fiber for good and the launch fails. Two calls, so that the caller's temporaries (the
// text) are destroyed before the fiber stops (an abandoned frame never frees them).
inline void fault(const std::string& what, const char* file, int line) {
  Emu& e = emu();
  Fiber& f = cur();
  f.wait = Wait::kFault, f.file = file, f.line = line;
  if (e.error.empty()) e.error = thread_name(f) + " at " + where(f) + ": " + what;
}
inline void halt() { yield(); }

// Does [p, p + n) lie inside this block's shared memory (a GLMK_SHARED variable or the dynamic buffer)?
inline bool in_shared(const void* p, size_t n) {
  Emu& e = emu();
  auto inside = [&](const void* lo, size_t size) {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(lo);
    return a >= b && a - b <= size && n <= size - (a - b);
  };
  if (!e.dyn.empty() && inside(e.dyn.data(), e.dyn.size())) return true;
  for (auto& kv : e.shared)
    if (inside(kv.second.first, kv.second.second)) return true;
  return false;
}

// A warp-collective model: every lane of the warp posts its operands and waits until all 32 have.
inline void warp_model(WarpModel model, const char* name, void* arg, const char* file, int line) {
  Fiber& f = cur();
  f.wait = Wait::kWarp, f.op = WarpOp::kModel, f.mask = 0xFFFFFFFFu, f.model = model, f.model_name = name;
  f.model_arg = arg, f.file = file, f.line = line;
  yield();
}

template <class T>
inline T warp(WarpOp op, unsigned mask, T v, int arg, int width, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "warp collectives take values up to 8 bytes");
  Fiber& f = cur();
  f.model = nullptr;
  f.wait = Wait::kWarp, f.op = op, f.mask = mask, f.arg = arg, f.width = width, f.file = file, f.line = line;
  f.value = 0;
  std::memcpy(&f.value, &v, sizeof(T));
  yield();
  T r;
  std::memcpy(&r, &f.value, sizeof(T));
  return r;
}

// GLMK_SHARED storage: one buffer per variable per block, poisoned with 0xFF.
template <class T>
inline T& shared_var(const void* tag) {
  Emu& e = emu();
  auto it = e.shared.find(tag);
  if (it == e.shared.end()) {
    void* p = std::malloc(sizeof(T));
    std::memset(p, 0xFF, sizeof(T));
    it = e.shared.emplace(tag, std::make_pair(p, sizeof(T))).first;
  }
  return *static_cast<T*>(it->second.first);
}

template <class T>
inline T* dyn_smem() {
  Emu& e = emu();
  return e.dyn.empty() ? nullptr : reinterpret_cast<T*>(e.dyn.data());
}

template <class T>
struct ident {
  using type = T;
};

}  // namespace simt

// ---- the CUDA kernel language, for g++ ----
#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __constant__
#undef __forceinline__
#undef __noinline__
#undef __launch_bounds__
#define __global__ inline
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static_assert(false, "declare shared memory with GLMK_SHARED(type, name) under cuda-sim");

#define threadIdx (::simt::cur().tid)
#define blockIdx (::simt::emu().block_idx)
#define blockDim (::simt::emu().block)
#define gridDim (::simt::emu().grid)
constexpr int warpSize = 32;

#define __syncthreads() ((void)::simt::barrier(::simt::BarOp::kSync, 0, __FILE__, __LINE__))
#define __syncthreads_count(p) (static_cast<int>(::simt::barrier(::simt::BarOp::kCount, (p), __FILE__, __LINE__)))
#define __syncthreads_and(p) (static_cast<int>(::simt::barrier(::simt::BarOp::kAnd, (p), __FILE__, __LINE__)))
#define __syncthreads_or(p) (static_cast<int>(::simt::barrier(::simt::BarOp::kOr, (p), __FILE__, __LINE__)))
#define __syncwarp(...) ((void)::simt::warp<int>(::simt::WarpOp::kSyncwarp, (__VA_ARGS__ + 0) ? (__VA_ARGS__ + 0) : 0xFFFFFFFFu, 0, 0, 32, __FILE__, __LINE__))
#define SIMT_WARP(op, m, v, a, w) ::simt::warp<std::decay_t<decltype(v)>>(::simt::WarpOp::op, (m), (v), (a), (w), __FILE__, __LINE__)
#define __shfl_sync(m, v, src, ...) SIMT_WARP(kShfl, m, v, src, (32 __VA_OPT__(*0 + __VA_ARGS__)))
#define __shfl_up_sync(m, v, d, ...) SIMT_WARP(kShflUp, m, v, d, (32 __VA_OPT__(*0 + __VA_ARGS__)))
#define __shfl_down_sync(m, v, d, ...) SIMT_WARP(kShflDown, m, v, d, (32 __VA_OPT__(*0 + __VA_ARGS__)))
#define __shfl_xor_sync(m, v, x, ...) SIMT_WARP(kShflXor, m, v, x, (32 __VA_OPT__(*0 + __VA_ARGS__)))
#define __ballot_sync(m, p) (static_cast<unsigned>(::simt::warp<int>(::simt::WarpOp::kBallot, (m), (p) != 0, 0, 32, __FILE__, __LINE__)))
#define __any_sync(m, p) (::simt::warp<int>(::simt::WarpOp::kAny, (m), (p) != 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(m, p) (::simt::warp<int>(::simt::WarpOp::kAll, (m), (p) != 0, 0, 32, __FILE__, __LINE__))

inline void __threadfence() {}
inline void __threadfence_block() {}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
inline int __clzll(unsigned long long x) { return x ? __builtin_clzll(x) : 64; }
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }
inline int __ffsll(unsigned long long x) { return __builtin_ffsll(static_cast<long long>(x)); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; i++) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
template <class T>
inline T __ldg(const T* p) { return *p; }

// Integer atomics (fibers never run at the same time, so a plain read-modify-write is atomic). The second
// parameter is not deduced, so atomicAdd(&u, 1) works.
#define SIMT_ATOMIC(name, expr)                                                                   \
  template <class T>                                                                              \
  inline T name(T* p, typename ::simt::ident<T>::type v) {                                        \
    static_assert(std::is_integral<T>::value, #name ": integer types only (no float atomics)"); \
    T old = *p;                                                                                   \
    *p = (expr);                                                                                  \
    return old;                                                                                   \
  }
SIMT_ATOMIC(atomicAdd, old + v)
SIMT_ATOMIC(atomicSub, old - v)
SIMT_ATOMIC(atomicExch, v)
SIMT_ATOMIC(atomicMin, v < old ? v : old)
SIMT_ATOMIC(atomicMax, v > old ? v : old)
SIMT_ATOMIC(atomicAnd, old & v)
SIMT_ATOMIC(atomicOr, old | v)
SIMT_ATOMIC(atomicXor, old ^ v)
#undef SIMT_ATOMIC
template <class T>
inline T atomicCAS(T* p, typename ::simt::ident<T>::type cmp, typename ::simt::ident<T>::type v) {
  static_assert(std::is_integral<T>::value, "atomicCAS: integer types only");
  T old = *p;
  if (old == cmp) *p = v;
  return old;
}
