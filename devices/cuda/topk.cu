// Deterministic top-k on CUDA: the host side (which schedule, workspace, launches). Kernels: topk.cuh.
// Compiled by nvcc for the cuda plugin and, through sim/topk-sim.cc, by g++ for cuda-sim.
#include "topk.hpp"

#include <algorithm>

#include "glmk/status.hpp"
#include "topk.cuh"

namespace glmk::cuda {

namespace {

constexpr size_t kWorkspaceBudget = size_t{256} << 20;  // rows are launched in groups that fit

template <int DT>
int launch_rows(const TopkParams& p, int64_t rows_in_launch, bool split, cudaStream_t s) {
  const size_t sort_smem = kSortCap * sizeof(uint64_t);
  // Over 48 KiB of dynamic shared memory needs the kernel's opt-in (cuda-sim checks it too).
  cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(&row_kernel<DT>),
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(sort_smem));
  if (e != cudaSuccess) return e;
  if (split) {
    GLMK_LAUNCH(row_sample_kernel<DT>, static_cast<unsigned>(rows_in_launch), kThreads, kSamples * sizeof(uint32_t), s, p);
    dim3 grid(static_cast<unsigned>(p.segs), static_cast<unsigned>(rows_in_launch));
    GLMK_LAUNCH(seg_filter_kernel<DT>, grid, kThreads, 0, s, p);
  }
  GLMK_LAUNCH(row_kernel<DT>, static_cast<unsigned>(rows_in_launch), kThreads, sort_smem, s, p, split);
  return cudaSuccess;
}

int grow(Workspace& ws, size_t bytes, cudaStream_t s, glmk_status* st) {
  if (ws.bytes >= bytes) return ok(st);
  if (ws.ptr) cudaFreeAsync(ws.ptr, s);
  ws.ptr = nullptr;
  ws.bytes = 0;
  cudaError_t e = cudaMallocAsync(&ws.ptr, bytes, s);
  if (e != cudaSuccess)
    return fail(st, GLMK_E_OOM, "topk: cannot allocate %zu bytes of workspace: %s: %s", bytes, cudaGetErrorName(e),
                cudaGetErrorString(e));
  ws.bytes = bytes;
  return ok(st);
}

}  // namespace

int topk_enqueue(const TopkContext& ctx, const glmk_topk_args& a, glmk_status* st) {
  if (a.rows == 0) return ok(st);
  TopkParams p{};
  p.scores = a.scores;
  p.rows = a.rows, p.cols = a.cols, p.k = a.k;
  p.lengths = a.lengths, p.row_starts = a.row_starts;
  p.indices = a.indices, p.values = a.values;
  p.error = ctx.error;
  cudaGetLastError();  // clear a stale launch error so that the check below is ours
  if (a.lengths || a.row_starts) GLMK_LAUNCH(check_rows_kernel, 1, kThreads, 0, ctx.stream, p);

  // Schedule: few long rows are cut into segments (one block each); otherwise one block per row.
  const int64_t segs = (a.cols + kSegment - 1) / kSegment;
  const bool split = a.rows < ctx.multiprocessors && segs >= 4;
  const bool big = a.k > kSortCap;
  size_t per_row = 0;
  if (split) per_row += 4 + static_cast<size_t>(segs) * 4 + static_cast<size_t>(a.cols) * 8;
  if (big) per_row += static_cast<size_t>(a.k) * 16;
  int64_t group = a.rows;
  if (per_row) group = std::max<int64_t>(1, std::min<int64_t>(a.rows, static_cast<int64_t>(kWorkspaceBudget / per_row)));
  if (per_row && grow(*ctx.workspace, per_row * static_cast<size_t>(group) + 16, ctx.stream, st) != GLMK_OK) return st->code;

  char* w = static_cast<char*>(ctx.workspace->ptr);
  p.segs = static_cast<int32_t>(segs);
  p.seg_len = kSegment;
  if (split) {  // the 8-byte pairs first, so that they stay aligned
    p.cand = reinterpret_cast<uint64_t*>(w);
    p.row_t = reinterpret_cast<uint32_t*>(p.cand + a.cols * group);
    p.seg_count = p.row_t + group;
    w = reinterpret_cast<char*>(p.seg_count + segs * group);
    w += (8 - reinterpret_cast<uintptr_t>(w) % 8) % 8;
  }
  if (big) p.runs = reinterpret_cast<uint64_t*>(w);

  cudaError_t le = cudaSuccess;
  for (int64_t r0 = 0; r0 < a.rows && le == cudaSuccess; r0 += group) {
    p.row0 = r0;
    const int64_t n = std::min<int64_t>(group, a.rows - r0);
    switch (a.dtype) {
      case GLMK_F32: le = static_cast<cudaError_t>(launch_rows<GLMK_F32>(p, n, split, ctx.stream)); break;
      case GLMK_BF16: le = static_cast<cudaError_t>(launch_rows<GLMK_BF16>(p, n, split, ctx.stream)); break;
      default: le = static_cast<cudaError_t>(launch_rows<GLMK_F16>(p, n, split, ctx.stream)); break;
    }
  }
  if (le != cudaSuccess)
    return fail(st, GLMK_E_DEVICE, "topk: cudaFuncSetAttribute failed: %s: %s", cudaGetErrorName(le), cudaGetErrorString(le));
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return fail(st, GLMK_E_DEVICE, "topk: kernel launch failed: %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
  return ok(st);
}

}  // namespace glmk::cuda
