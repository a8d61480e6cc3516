// MoE kernels (SPEC 5) in the CPU device's written order (devices/cpu/moe.cc):
//   route: logits[t, e] = 16 fma chains over k mod 16 across the whole H, then the fixed tree (the GEMM
//     core's order), one thread per (t, e); then glmk_moe_select (glmk/moe-arith.h: the package's own expf),
//     one thread per token.
//   experts: per (token, slot) g and u = fp8.matmul rows (bf16), h = bf16(silu(f32(g)) * f32(u)) in one
//     thread per (slot row, i); h quantized per 128-block; then one thread per (t, c) computes, slot by slot
//     in order, y = bf16(down row dot) and acc = acc + w * f32(y) (from +0; id -1 skipped), then
//     + f32(shared y), one bf16 rounding. fp8.matmul rows are independent, so grouping per expert (the CPU
//     does, for weight reuse) changes no bit; nothing is split across threads, no float atomics.
//   Bad ids (outside [0, E), not -1): one block finds the first in (t, slot) order (an integer atomicMin,
//     order-free) and writes the device's error record, which sync() turns into E_ARG.
//
// NOTE: correctness-first SIMT kernels, not tuned; the grouped tensor-core GEMM is to come.
// Performance model (GLM-5: H 6144, I 2048, top-8, T tokens): bytes ~ 3 I H per distinct expert used (37.7 MB
// each) + small activations; FLOPs 6 T topK I H. Each slot's thread re-reads its expert's rows without
// sharing them across tokens or warps (uncoalesced, no tensor cores), so decode is bound by uncoalesced weight
// loads and prefill by scalar f32 FMA: a small fraction of the H200's 4.8 TB/s and of its fp8 peak until the
// tensor-core version (nothing here has run on a GPU yet). Route: T E H FMAs (GLM-5: 1.6 M per token), tiny.
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "fp8-dot.cuh"
#include "glmk/device.h"
#include "glmk/moe-arith.h"

namespace glmk::cuda {

constexpr int kMoeThreads = 128;
constexpr int kMoeCheckThreads = 256;
constexpr uint32_t kMoeErrorBadId = 3;  // the error record's kind (1, 2: top-k's)

// Section: route

__device__ __forceinline__ float moe_widen(const void* p, int dtype, int64_t i) {
  if (dtype == GLMK_BF16) return glmk_f32_from_bits(glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  if (dtype == GLMK_F16) return glmk_f32_from_bits(glmk_f16_to_f32_bits(static_cast<const uint16_t*>(p)[i]));
  return static_cast<const float*>(p)[i];
}

__global__ void moe_logits_kernel(glmk_moe_route_args a, float* logits) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.t * a.e) return;
  const int64_t t = i / a.e, e = i % a.e;
  float p[16];
  for (int l = 0; l < 16; l++) p[l] = 0.0f;
  for (int64_t c = 0; c < a.h; c += 16)
    for (int l = 0; l < 16; l++)
      if (c + l < a.h)
        p[l] = fmaf(moe_widen(a.hidden, a.hidden_dtype, t * a.h + c + l), moe_widen(a.gate, a.gate_dtype, e * a.h + c + l), p[l]);
  logits[i] = glmk_reduce16(p);
}

// scratch: [t, 2e] floats, group_ok: [t, n_group] ints
__global__ void moe_select_kernel(glmk_moe_route_args a, const float* logits, float* scratch, int* group_ok) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.t) return;
  glmk_moe_select(logits + t * a.e, a.bias, static_cast<int>(a.e), a.top_k, a.n_group, a.topk_group, a.routed_scaling_factor,
                  a.norm_topk_prob, scratch + t * 2 * a.e, group_ok + t * a.n_group, a.ids + t * a.top_k, a.weights + t * a.top_k);
  // NOTE: a NaN weight comes from glmk_expf's canonical NaN, which x86 passes on unchanged (the CPU device's
  // 0x7FC00000) but a GPU rewrites as 0x7FFFFFFF: write it as the CPU does
  for (int j = 0; j < a.top_k; j++)
    if (a.weights[t * a.top_k + j] != a.weights[t * a.top_k + j]) a.weights[t * a.top_k + j] = glmk_f32_from_bits(0x7FC00000u);
}

// Section: experts

// Expert x's rows of a stack [e, n, k] and their scales.
__device__ __forceinline__ const uint8_t* moe_stack_row(const glmk_fp8_stack& s, int64_t x, int64_t n, int64_t k, int64_t row) {
  return s.data + (x * n + row) * k;
}
__device__ __forceinline__ const float* moe_stack_scales(const glmk_fp8_stack& s, int64_t x, int64_t n, int64_t k, int64_t row) {
  const int64_t kb = (k + kFp8KBlock - 1) / kFp8KBlock;
  return s.scale_inv + (x * ((n + s.block_n - 1) / s.block_n) + row / s.block_n) * kb;
}

__device__ __forceinline__ float moe_bf16_f32(uint16_t b) { return glmk_f32_from_bits(glmk_bf16_to_f32_bits(b)); }
__device__ __forceinline__ uint16_t moe_f32_bf16(float f) { return glmk_bf16_rne(glmk_bits_from_f32(f)); }

// One SwiGLU's first half for `rows` rows: row r reads activation row (ids ? r / top_k : r) of xa [., h] and
// expert (ids ? ids[r] : 0) of gate / up [., i, h]; hb [rows, i] = bf16(silu(f32(g)) * f32(u)). A row whose
// id is -1 or out of range is skipped (written +0; the check kernel reports a bad id).
struct MoeUpArgs {
  const float* xa;
  const float* sa;
  int64_t rows, h, i, e, top_k;
  const int32_t* ids;  // nullptr: the shared expert
  glmk_fp8_stack gate, up;
  uint16_t* hb;
};

__global__ void moe_up_kernel(MoeUpArgs a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.rows * a.i) return;
  const int64_t r = idx / a.i, n = idx % a.i, kb = (a.h + kFp8KBlock - 1) / kFp8KBlock;
  const int64_t x = a.ids ? a.ids[r] : 0, tok = a.ids ? r / a.top_k : r;
  if (x < 0 || x >= a.e) {
    a.hb[idx] = 0;
    return;
  }
  const float* xr = a.xa + tok * a.h;
  const float* sr = a.sa + tok * kb;
  const float g = moe_bf16_f32(moe_f32_bf16(fp8_row_dot(xr, sr, moe_stack_row(a.gate, x, a.i, a.h, n), moe_stack_scales(a.gate, x, a.i, a.h, n), a.h)));
  const float u = moe_bf16_f32(moe_f32_bf16(fp8_row_dot(xr, sr, moe_stack_row(a.up, x, a.i, a.h, n), moe_stack_scales(a.up, x, a.i, a.h, n), a.h)));
  a.hb[idx] = moe_f32_bf16(glmk_siluf(g) * u);
}

// The down projections and the combine: one thread per (t, c).
struct MoeDownArgs {
  int64_t t, h, i, e, top_k, shared_i;
  const int32_t* ids;
  const float* weights;
  const float* ha;  // [t * top_k, i]
  const float* sha;
  glmk_fp8_stack down;
  const float* hs;  // [t, shared_i] (shared_i > 0)
  const float* shs;
  glmk_fp8_stack shared_down;
  uint16_t* out;
};

__global__ void moe_down_kernel(MoeDownArgs a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.t * a.h) return;
  const int64_t t = idx / a.h, c = idx % a.h, kb = (a.i + kFp8KBlock - 1) / kFp8KBlock;
  float acc = 0.0f;
  for (int64_t j = 0; j < a.top_k; j++) {
    const int64_t p = t * a.top_k + j, x = a.ids[p];
    if (x < 0 || x >= a.e) continue;  // -1: unused; others: reported by the check kernel
    const float y = fp8_row_dot(a.ha + p * a.i, a.sha + p * kb, moe_stack_row(a.down, x, a.h, a.i, c),
                                moe_stack_scales(a.down, x, a.h, a.i, c), a.i);
    acc = acc + a.weights[p] * moe_bf16_f32(moe_f32_bf16(y));
  }
  if (a.shared_i > 0) {
    const int64_t skb = (a.shared_i + kFp8KBlock - 1) / kFp8KBlock;
    const float y = fp8_row_dot(a.hs + t * a.shared_i, a.shs + t * skb, moe_stack_row(a.shared_down, 0, a.h, a.shared_i, c),
                                moe_stack_scales(a.shared_down, 0, a.h, a.shared_i, c), a.shared_i);
    acc = acc + moe_bf16_f32(moe_f32_bf16(y));
  }
  a.out[idx] = moe_f32_bf16(acc);
}

// One block: the first (t, slot) whose id is neither -1 nor in [0, e), into error [8] = {3, t, id, e, slot}
// unless an earlier error is pending there.
__global__ void moe_ids_check_kernel(const int32_t* ids, int64_t slots, int64_t top_k, int64_t e, uint32_t* error) {
  GLMK_SHARED(unsigned long long, first);
  if (threadIdx.x == 0) first = ~0ull;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < slots; p += blockDim.x)
    if (ids[p] != -1 && (ids[p] < 0 || ids[p] >= e)) {
      atomicMin(&first, static_cast<unsigned long long>(p));
      break;  // this thread's later slots come after p
    }
  __syncthreads();
  if (threadIdx.x == 0 && first != ~0ull && error[0] == 0) {
    const int64_t p = static_cast<int64_t>(first);
    error[1] = static_cast<uint32_t>(p / top_k);
    error[2] = static_cast<uint32_t>(ids[p]);
    error[3] = static_cast<uint32_t>(e);
    error[4] = static_cast<uint32_t>(p % top_k);
    error[0] = kMoeErrorBadId;
  }
}

}  // namespace glmk::cuda
