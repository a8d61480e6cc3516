// MoE on the CPU device. Grouping tokens per expert changes no bit (fp8.matmul rows are independent); it
// only lets one pass over an expert's weights serve all of its tokens.
#include "moe.hpp"

#include <algorithm>
#include <vector>

#include "fp-env.hpp"
#include "gemm.hpp"
#include "widen.hpp"
#include "glmk/host-rows.hpp"
#include "glmk/int4-arith.h"
#include "glmk/moe-arith.h"
#include "glmk/status.hpp"

namespace glmk::cpu {

int moe_route_execute(Pool& pool, Isa isa, const glmk_moe_route_args& a, glmk_status* st) {
  DefaultFpEnv env;
  std::vector<float> x(static_cast<size_t>(a.t * a.h)), logits(static_cast<size_t>(a.t * a.e));
  widen_all(a.hidden, a.hidden_dtype, a.t * a.h, x.data());
  gemm_f32(pool, isa, GemmBlock{x.data(), a.t, a.h, a.gate_dtype, a.gate, nullptr, nullptr, 0, 0, 0, a.e, logits.data()});
  pool.parallel_for(a.t, [&](int64_t t, int) {
    DefaultFpEnv item_env;
    std::vector<float> scratch(static_cast<size_t>(2 * a.e));
    std::vector<int> group_ok(static_cast<size_t>(a.n_group));
    glmk_moe_select(logits.data() + t * a.e, a.bias, static_cast<int>(a.e), a.top_k, a.n_group, a.topk_group,
                    a.routed_scaling_factor, a.norm_topk_prob, scratch.data(), group_ok.data(), a.ids + t * a.top_k,
                    a.weights + t * a.top_k);
  });
  return ok(st);
}

namespace {

// One expert's SwiGLU over its rows x [m, h] bf16: y [m, h] bf16 (the three fp8.matmul of SPEC 5).
void swiglu(Pool& pool, Isa isa, const uint16_t* x, int64_t m, int64_t h, int64_t i, int64_t expert,
            const glmk_fp8_stack& gate, const glmk_fp8_stack& up, const glmk_fp8_stack& down, uint16_t* y) {
  const int64_t kb_h = (h + 127) / 128, kb_i = (i + 127) / 128;
  auto at = [](const glmk_fp8_stack& s, int64_t e, int64_t n, int64_t k, int64_t kb) {
    return std::make_pair(s.data + e * n * k, s.scale_inv + e * ((n + s.block_n - 1) / s.block_n) * kb);
  };
  std::vector<uint16_t> g(static_cast<size_t>(m * i)), u(static_cast<size_t>(m * i));
  glmk_status ignored{};
  auto product = [&](const uint16_t* xs, int64_t k, int64_t kb, const glmk_fp8_stack& s, int64_t n, uint16_t* out) {
    const auto w = at(s, expert, n, k, kb);
    const glmk_fp8_matmul_args a{xs, m, n, k, w.first, w.second, s.block_n, out, GLMK_BF16, 0};
    fp8_matmul_execute(pool, isa, a, &ignored);
  };
  product(x, h, kb_h, gate, i, g.data());
  product(x, h, kb_h, up, i, u.data());
  moe_swiglu_bf16(g.data(), u.data(), m * i, g.data());
  product(g.data(), i, kb_i, down, h, y);
}

// Tokens per pass: bounds the per-(token, slot) outputs to kChunk * topK * H bf16 (48 MiB at GLM-5's
// H = 6144, top-8); the weights are streamed once per pass. Results do not depend on it (batch invariance).
constexpr int64_t kChunk = 512;

int moe_experts_chunk(Pool& pool, Isa isa, const glmk_moe_experts_args& a, int64_t t0, int64_t t1, glmk_status* st) {
  const int64_t nt = t1 - t0, slots = nt * a.top_k;
  const int32_t* ids = a.ids + t0 * a.top_k;
  const float* weights = a.weights + t0 * a.top_k;
  const uint16_t* hidden = a.hidden + t0 * a.h;
  // Section: the (token, slot) pairs of each expert, in increasing (token, slot): a stable counting sort
  std::vector<int64_t> start(static_cast<size_t>(a.e + 1), 0);
  for (int64_t p = 0; p < slots; p++) {
    const int32_t id = ids[p];
    if (id == -1) continue;
    if (id < 0 || id >= a.e)
      return fail(st, GLMK_E_ARG, "moe.experts: Expected route.ids in [0, %lld) or -1 (an unused slot) but received %d at [%lld, %lld]",
                  static_cast<long long>(a.e), id, static_cast<long long>(t0 + p / a.top_k), static_cast<long long>(p % a.top_k));
    start[id + 1]++;
  }
  for (int64_t e = 0; e < a.e; e++) start[e + 1] += start[e];
  std::vector<int64_t> order(static_cast<size_t>(start[a.e])), fill(start.begin(), start.end() - 1);
  for (int64_t p = 0; p < slots; p++)
    if (ids[p] != -1) order[fill[ids[p]]++] = p;
  // Section: each expert's SwiGLU on its rows; y per (token, slot)
  std::vector<uint16_t> y(static_cast<size_t>(slots * a.h)), xs, ys;
  for (int64_t e = 0; e < a.e; e++) {
    const int64_t m = start[e + 1] - start[e];
    if (m == 0) continue;
    xs.resize(static_cast<size_t>(m * a.h));
    ys.resize(static_cast<size_t>(m * a.h));
    for (int64_t r = 0; r < m; r++)
      std::copy_n(hidden + (order[start[e] + r] / a.top_k) * a.h, a.h, xs.data() + r * a.h);
    swiglu(pool, isa, xs.data(), m, a.h, a.i, e, a.gate, a.up, a.down, ys.data());
    for (int64_t r = 0; r < m; r++) std::copy_n(ys.data() + r * a.h, a.h, y.data() + order[start[e] + r] * a.h);
  }
  std::vector<uint16_t> shared;
  if (a.shared_i > 0) {
    shared.resize(static_cast<size_t>(nt * a.h));
    swiglu(pool, isa, hidden, nt, a.h, a.shared_i, 0, a.shared_gate, a.shared_up, a.shared_down, shared.data());
  }
  // Section: combine in slot order, f32, one rounding to bf16
  pool.parallel_for(nt, [&](int64_t t, int) {
    DefaultFpEnv item_env;
    moe_combine_token(ids + t * a.top_k, weights + t * a.top_k, a.top_k, y.data() + t * a.top_k * a.h,
                      shared.empty() ? nullptr : shared.data() + t * a.h, a.h, a.out + (t0 + t) * a.h);
  });
  return ok(st);
}

}  // namespace

int moe_experts_execute(Pool& pool, Isa isa, const glmk_moe_experts_args& a, glmk_status* st) {
  DefaultFpEnv env;
  for (int64_t t0 = 0; t0 < a.t; t0 += kChunk)
    if (moe_experts_chunk(pool, isa, a, t0, std::min(a.t, t0 + kChunk), st) != GLMK_OK) return st->code;
  return ok(st);
}

}  // namespace glmk::cpu
