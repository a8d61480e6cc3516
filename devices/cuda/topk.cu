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
void launch_rows(const TopkParams& base, int64_t rows_in_launch, bool split, cudaStream_t s) {
  TopkParams p = base;
  if (split) {
    dim3 grid(static_cast<unsigned>(p.segs), static_cast<unsigned>(rows_in_launch));
    GLMK_LAUNCH(seg_kth_kernel<DT>, grid, kThreads, 0, s, p);
    GLMK_LAUNCH(seg_count_kernel<DT>, grid, kThreads, 0, s, p);
    GLMK_LAUNCH(seg_compact_kernel<DT>, grid, kThreads, 0, s, p);
  }
  GLMK_LAUNCH(row_kernel<DT>, static_cast<unsigned>(rows_in_launch), kThreads, 0, s, p, split);
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
  const int64_t seg_len = std::max<int64_t>(4096, 2 * a.k);
  const int64_t segs = (a.cols + seg_len - 1) / seg_len;
  const bool split = a.rows < ctx.multiprocessors && segs >= 4;
  const bool big = a.k > kSortCap;
  size_t per_row = 0;
  if (split) per_row += static_cast<size_t>(segs) * 8 + static_cast<size_t>(a.cols) * 8;
  if (big) per_row += static_cast<size_t>(a.k) * 16;
  int64_t group = a.rows;
  if (per_row) group = std::max<int64_t>(1, std::min<int64_t>(a.rows, static_cast<int64_t>(kWorkspaceBudget / per_row)));
  if (per_row && grow(*ctx.workspace, per_row * static_cast<size_t>(group), ctx.stream, st) != GLMK_OK) return st->code;

  char* w = static_cast<char*>(ctx.workspace->ptr);
  p.segs = static_cast<int32_t>(segs);
  p.seg_len = seg_len;
  if (split) {
    p.seg_kth = reinterpret_cast<uint32_t*>(w);
    p.seg_count = p.seg_kth + segs * group;
    p.cand = reinterpret_cast<uint64_t*>(p.seg_count + segs * group);
    w = reinterpret_cast<char*>(p.cand + a.cols * group);
  }
  if (big) p.runs = reinterpret_cast<uint64_t*>(w);

  for (int64_t r0 = 0; r0 < a.rows; r0 += group) {
    p.row0 = r0;
    const int64_t n = std::min<int64_t>(group, a.rows - r0);
    switch (a.dtype) {
      case GLMK_F32: launch_rows<GLMK_F32>(p, n, split, ctx.stream); break;
      case GLMK_BF16: launch_rows<GLMK_BF16>(p, n, split, ctx.stream); break;
      default: launch_rows<GLMK_F16>(p, n, split, ctx.stream); break;
    }
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return fail(st, GLMK_E_DEVICE, "topk: kernel launch failed: %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
  return ok(st);
}

}  // namespace glmk::cuda
