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

int moe_experts_enqueue(cudaStream_t stream, const glmk_moe_experts_args& a, uint32_t* error, glmk_status* st) {
  if (a.t == 0) return ok(st);
  const char* op = "moe.experts";
  const int64_t slots = a.t * a.top_k, kb_h = (a.h + kFp8KBlock - 1) / kFp8KBlock;
  unsigned grid_up = 0, grid_shared = 0, grid_down = 0;
  if (grid_size(slots * a.i, kMoeThreads, op, &grid_up, st) != GLMK_OK ||
      grid_size(a.t * a.shared_i, kMoeThreads, op, &grid_shared, st) != GLMK_OK ||
      grid_size(a.t * a.h, kMoeThreads, op, &grid_down, st) != GLMK_OK)
    return st->code;
  const int64_t kb_i = (a.i + kFp8KBlock - 1) / kFp8KBlock, kb_s = (a.shared_i + kFp8KBlock - 1) / kFp8KBlock;
  // Section: scratch: hidden quantized; h per slot (bf16, then quantized); the shared expert's h likewise
  Layout l;
  const size_t xa = l.part(static_cast<size_t>(a.t * a.h) * 4), sxa = l.part(static_cast<size_t>(a.t * kb_h) * 4);
  const size_t hb = l.part(static_cast<size_t>(slots * a.i) * 2), ha = l.part(static_cast<size_t>(slots * a.i) * 4);
  const size_t sha = l.part(static_cast<size_t>(slots * kb_i) * 4);
  const size_t hsb = l.part(static_cast<size_t>(a.t * a.shared_i) * 2), hsa = l.part(static_cast<size_t>(a.t * a.shared_i) * 4);
  const size_t shsa = l.part(static_cast<size_t>(a.t * kb_s) * 4);
  StreamScratch s(stream);
  if (s.alloc(l.bytes, op, st) != GLMK_OK) return st->code;
  // Section: bad ids first (the record says which); the kernels below skip them
  cudaGetLastError();
  GLMK_LAUNCH(moe_ids_check_kernel, 1, kMoeCheckThreads, 0, stream, a.ids, slots, a.top_k, a.e, error);
  if (launch_status(op, st) != GLMK_OK) return st->code;
  if (fp8_act_quant_enqueue(stream, a.hidden, a.t, a.h, s.at<float>(xa), s.at<float>(sxa), op, st) != GLMK_OK) return st->code;
  // Section: gate and up, SwiGLU, h quantized (routed slots, then the shared expert)
  const MoeUpArgs up{s.at<float>(xa), s.at<float>(sxa), slots, a.h, a.i, a.e, a.top_k, a.ids, a.gate, a.up, s.at<uint16_t>(hb)};
  GLMK_LAUNCH(moe_up_kernel, grid_up, kMoeThreads, 0, stream, up);
  if (launch_status(op, st) != GLMK_OK) return st->code;
  if (fp8_act_quant_enqueue(stream, s.at<uint16_t>(hb), slots, a.i, s.at<float>(ha), s.at<float>(sha), op, st) != GLMK_OK) return st->code;
  if (a.shared_i > 0) {
    const MoeUpArgs sup{s.at<float>(xa), s.at<float>(sxa), a.t, a.h, a.shared_i, 1, 1, nullptr, a.shared_gate, a.shared_up, s.at<uint16_t>(hsb)};
    GLMK_LAUNCH(moe_up_kernel, grid_shared, kMoeThreads, 0, stream, sup);
    if (launch_status(op, st) != GLMK_OK) return st->code;
    if (fp8_act_quant_enqueue(stream, s.at<uint16_t>(hsb), a.t, a.shared_i, s.at<float>(hsa), s.at<float>(shsa), op, st) != GLMK_OK)
      return st->code;
  }
  // Section: down projections and the combine in slot order
  const MoeDownArgs down{a.t, a.h, a.i, a.e, a.top_k, a.shared_i, a.ids, a.weights, s.at<float>(ha), s.at<float>(sha), a.down,
                         s.at<float>(hsa), s.at<float>(shsa), a.shared_down, a.out};
  GLMK_LAUNCH(moe_down_kernel, grid_down, kMoeThreads, 0, stream, down);
  return launch_status(op, st);
}

}  // namespace glmk::cuda
