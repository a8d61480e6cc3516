// MoE on CUDA: the host side (scratch, grid sizes, launches). Kernels: moe.cuh. Compiled by nvcc for the
// cuda plugin and, through sim/moe-sim.cc, by g++ for cuda-sim.
#include "moe.hpp"

#include "fp8-matmul.hpp"
#include "glmk/status.hpp"
#include "moe.cuh"

namespace glmk::cuda {
namespace {


// Carves consecutive 256-byte aligned parts out of one scratch allocation.
struct Layout {
  size_t bytes = 0;
  size_t part(size_t n) {
    const size_t at = bytes;
    bytes += scratch_round(n);
    return at;
  }
};

}  // namespace

int moe_route_enqueue(cudaStream_t stream, const glmk_moe_route_args& a, glmk_status* st) {
  unsigned grid_logits = 0, grid_select = 0;
  if (a.t == 0) return ok(st);
  if (grid_size(a.t * a.e, kMoeThreads, "moe.route", &grid_logits, st) != GLMK_OK ||
      grid_size(a.t, kMoeThreads, "moe.route", &grid_select, st) != GLMK_OK)
    return st->code;
  Layout l;
  const size_t logits = l.part(static_cast<size_t>(a.t * a.e) * sizeof(float));
  const size_t scratch_f = l.part(static_cast<size_t>(a.t * 2 * a.e) * sizeof(float));
  const size_t group_ok = l.part(static_cast<size_t>(a.t * a.n_group) * sizeof(int));
  StreamScratch s(stream);
  if (s.alloc(l.bytes, "moe.route", st) != GLMK_OK) return st->code;
  // (plain pointers: cuda-sim's launch copies its arguments)
  float* logits_p = s.at<float>(logits);
  float* scratch_p = s.at<float>(scratch_f);
  int* group_ok_p = s.at<int>(group_ok);
  cudaGetLastError();
  GLMK_LAUNCH(moe_logits_kernel, grid_logits, kMoeThreads, 0, stream, a, logits_p);
  if (launch_status("moe.route", st) != GLMK_OK) return st->code;
  GLMK_LAUNCH(moe_select_kernel, grid_select, kMoeThreads, 0, stream, a, logits_p, scratch_p, group_ok_p);
  return launch_status("moe.route", st);
}

namespace {

// One grouped launch of gate + up + SwiGLU, or of down: the e4m3 or bf16 mma, pipelined or not (moe.cuh).
void moe_launch_up(cudaStream_t stream, bool e4m3_mma, bool pipe, unsigned grid, const MoeUpArgs& up) {
  if (pipe && e4m3_mma) GLMK_LAUNCH(moe_up_pipe_kernel<true>, grid, 32, 0, stream, up);
  else if (pipe) GLMK_LAUNCH(moe_up_pipe_kernel<false>, grid, 32, 0, stream, up);
  else if (e4m3_mma) GLMK_LAUNCH(moe_up_mma_kernel<true>, grid, kMmaThreads, 0, stream, up);
  else GLMK_LAUNCH(moe_up_mma_kernel<false>, grid, kMmaThreads, 0, stream, up);
}

void moe_launch_down(cudaStream_t stream, bool e4m3_mma, bool pipe, unsigned grid, const MoeDownArgs& down) {
  if (pipe && e4m3_mma) GLMK_LAUNCH(moe_down_pipe_kernel<true>, grid, 32, 0, stream, down);
  else if (pipe) GLMK_LAUNCH(moe_down_pipe_kernel<false>, grid, 32, 0, stream, down);
  else if (e4m3_mma) GLMK_LAUNCH(moe_down_mma_kernel<true>, grid, kMmaThreads, 0, stream, down);
  else GLMK_LAUNCH(moe_down_mma_kernel<false>, grid, kMmaThreads, 0, stream, down);
}

}  // namespace

// Launches (README, "moe.experts on CUDA"): the id check; the activations' quantization (per token); the
// grouping (one block, a thread per expert); per group (routed, then shared) gate+up+SwiGLU on tensor cores, h's quantization,
// down on tensor cores, each one grouped launch over all experts' m-tiles; the combine. One grouped launch
// rather than one per expert: the rows per expert live on the device (ids come from moe.route), so a launch
// per expert would need a copy to the host and a sync; the grid is sized by an upper bound on the tiles,
// ceil(slots / 16) + min(E, slots), and blocks past the real count return.
int moe_experts_enqueue(cudaStream_t stream, const glmk_moe_experts_args& a, bool e4m3_mma, bool allow_pipe, uint32_t* error, glmk_status* st) {
  if (a.t == 0) return ok(st);
  const char* op = "moe.experts";
  const int64_t slots = a.t * a.top_k, kb_h = (a.h + kFp8KBlock - 1) / kFp8KBlock;
  const int64_t kb_i = (a.i + kFp8KBlock - 1) / kFp8KBlock, kb_s = (a.shared_i + kFp8KBlock - 1) / kFp8KBlock;
  const int64_t max_tiles = (slots + kMmaRows - 1) / kMmaRows + (a.e < slots ? a.e : slots), s_tiles = (a.t + kMmaRows - 1) / kMmaRows;
  // pipelined products (moe.cuh moe_*_pipe_kernel: one warp per tile and 16 columns) when every K is whole
  // 128-blocks and every stack's codes 16-byte aligned; else one block of 4 warps per tile and 64 columns
  auto aligned = [](const glmk_fp8_stack& w) { return reinterpret_cast<uintptr_t>(w.data) % 16 == 0; };
  const bool pipe = allow_pipe && a.h % kFp8KBlock == 0 && a.i % kFp8KBlock == 0 && a.shared_i % kFp8KBlock == 0 && aligned(a.gate) &&
                    aligned(a.up) && aligned(a.down) && (a.shared_i == 0 || (aligned(a.shared_gate) && aligned(a.shared_up) && aligned(a.shared_down)));
  const int64_t cols = pipe ? 16 : kMmaColsBlock, threads = pipe ? 32 : kMmaThreads;
  const int64_t nb_i = (a.i + cols - 1) / cols, nb_h = (a.h + cols - 1) / cols, nb_s = (a.shared_i + cols - 1) / cols;
  unsigned grid_up = 0, grid_down = 0, grid_sup = 0, grid_sdown = 0, grid_comb = 0;
  const int64_t nb_max = nb_i > nb_h ? nb_i : nb_h;
  if (nb_max > 0 && max_tiles > INT64_MAX / threads / nb_max) return fail(st, GLMK_E_SHAPE, "moe.experts: tokens x top_k is too large");
  if (grid_size(max_tiles * nb_i * threads, static_cast<int>(threads), op, &grid_up, st) != GLMK_OK ||
      grid_size(max_tiles * nb_h * threads, static_cast<int>(threads), op, &grid_down, st) != GLMK_OK ||
      grid_size(s_tiles * nb_s * threads, static_cast<int>(threads), op, &grid_sup, st) != GLMK_OK ||
      grid_size(s_tiles * nb_h * threads, static_cast<int>(threads), op, &grid_sdown, st) != GLMK_OK ||
      grid_size(a.t * a.h, kMoeThreads, op, &grid_comb, st) != GLMK_OK)
    return st->code;
  // Section: scratch: hidden quantized; the grouping; h per slot (bf16, then quantized); y per slot (bf16);
  // the shared expert's h and y likewise
  Layout l;
  const size_t xa = l.part(static_cast<size_t>(a.t * a.h) * 4), sxa = l.part(static_cast<size_t>(a.t * kb_h) * 4);
  const size_t cnt = l.part(static_cast<size_t>(a.e + 1) * 8), ord = l.part(static_cast<size_t>(slots) * 8);
  const size_t tfirst = l.part(static_cast<size_t>(max_tiles) * 8), trows = l.part(static_cast<size_t>(max_tiles) * 4);
  const size_t texp = l.part(static_cast<size_t>(max_tiles) * 4), ntiles = l.part(8);
  const size_t hb = l.part(static_cast<size_t>(slots * a.i) * 2), ha = l.part(static_cast<size_t>(slots * a.i) * 4);
  const size_t sha = l.part(static_cast<size_t>(slots * kb_i) * 4), yb = l.part(static_cast<size_t>(slots * a.h) * 2);
  const size_t hsb = l.part(static_cast<size_t>(a.t * a.shared_i) * 2), hsa = l.part(static_cast<size_t>(a.t * a.shared_i) * 4);
  const size_t shsa = l.part(static_cast<size_t>(a.t * kb_s) * 4), ysb = l.part(static_cast<size_t>(a.shared_i > 0 ? a.t * a.h : 0) * 2);
  StreamScratch s(stream);
  if (s.alloc(l.bytes, op, st) != GLMK_OK) return st->code;
  // (plain pointers and structs: cuda-sim's launch copies its arguments)
  const MoeTiles tiles{s.at<int64_t>(ord), s.at<int64_t>(tfirst), s.at<int32_t>(trows), s.at<int32_t>(texp), s.at<int64_t>(ntiles)};
  // Section: bad ids first (the record says which); the kernels below skip them
  cudaGetLastError();
  GLMK_LAUNCH(moe_ids_check_kernel, 1, kMoeCheckThreads, 0, stream, a.ids, slots, a.top_k, a.e, error);
  if (launch_status(op, st) != GLMK_OK) return st->code;
  if (a.h == 0) return ok(st);  // nothing to write (a grid of 0 blocks is not a launch); I == 0 below: y = +0
  int64_t* count = s.at<int64_t>(cnt);
  if (a.e <= kMoeGroupThreads) GLMK_LAUNCH(moe_group_block_kernel, 1, kMoeGroupThreads, 0, stream, a.ids, slots, a.e, tiles);
  else GLMK_LAUNCH(moe_group_kernel, 1, 1, 0, stream, a.ids, slots, a.e, count, tiles);
  if (launch_status(op, st) != GLMK_OK) return st->code;
  // (pipe: the activations as e4m3 codes, in the same scratch)
  auto codes = [&](size_t at) { return pipe ? s.at<uint8_t>(at) : nullptr; };
  if (fp8_act_quant_enqueue(stream, a.hidden, a.t, a.h, s.at<float>(xa), s.at<float>(sxa), op, st, codes(xa)) != GLMK_OK) return st->code;
  // rows of h no expert computes (id -1, bad ids) are quantized too but never read: zero them
  cudaError_t e = cudaMemsetAsync(s.at<uint16_t>(hb), 0, static_cast<size_t>(slots * a.i) * 2, stream);
  if (e != cudaSuccess) return fail(st, GLMK_E_DEVICE, "moe.experts: cudaMemsetAsync: %s", cudaGetErrorString(e));
  // Section: the routed experts: gate, up, SwiGLU; h quantized (the CPU's bits); down
  const MoeGroup routed{tiles, slots};
  const MoeUpArgs up{s.at<float>(xa), s.at<float>(sxa), a.h, a.i, a.top_k, max_tiles, routed, a.gate, a.up, s.at<uint16_t>(hb)};
  if (grid_up > 0) {
    moe_launch_up(stream, e4m3_mma, pipe, grid_up, up);
    if (launch_status(op, st) != GLMK_OK) return st->code;
  }
  if (fp8_act_quant_enqueue(stream, s.at<uint16_t>(hb), slots, a.i, s.at<float>(ha), s.at<float>(sha), op, st, codes(ha)) != GLMK_OK) return st->code;
  const MoeDownArgs down{s.at<float>(ha), s.at<float>(sha), a.h, a.i, max_tiles, routed, a.down, s.at<uint16_t>(yb)};
  moe_launch_down(stream, e4m3_mma, pipe, grid_down, down);
  if (launch_status(op, st) != GLMK_OK) return st->code;
  // Section: the shared expert (every token, expert 0 of its stacks)
  if (a.shared_i > 0) {
    const MoeGroup shared{MoeTiles{nullptr, nullptr, nullptr, nullptr, nullptr}, a.t};
    const MoeUpArgs sup{s.at<float>(xa), s.at<float>(sxa), a.h, a.shared_i, 1, s_tiles, shared, a.shared_gate, a.shared_up, s.at<uint16_t>(hsb)};
    moe_launch_up(stream, e4m3_mma, pipe, grid_sup, sup);
    if (launch_status(op, st) != GLMK_OK) return st->code;
    if (fp8_act_quant_enqueue(stream, s.at<uint16_t>(hsb), a.t, a.shared_i, s.at<float>(hsa), s.at<float>(shsa), op, st, codes(hsa)) != GLMK_OK)
      return st->code;
    const MoeDownArgs sdown{s.at<float>(hsa), s.at<float>(shsa), a.h, a.shared_i, s_tiles, shared, a.shared_down, s.at<uint16_t>(ysb)};
    moe_launch_down(stream, e4m3_mma, pipe, grid_sdown, sdown);
    if (launch_status(op, st) != GLMK_OK) return st->code;
  }
  // Section: the combine in slot order
  const MoeCombineArgs comb{a.t, a.h, a.e, a.top_k, a.ids, a.weights, s.at<uint16_t>(yb), a.shared_i > 0 ? s.at<uint16_t>(ysb) : nullptr, a.out};
  GLMK_LAUNCH(moe_combine_kernel, grid_comb, kMoeThreads, 0, stream, comb);
  return launch_status(op, st);
}

}  // namespace glmk::cuda
