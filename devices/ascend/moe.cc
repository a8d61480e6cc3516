// moe.route on the ascend device: host-computed (see moe.hpp). SPEC 5 allows routing on the host; the
// logits are T x E dot products of length H (GLM-5: E = 256), small beside the experts' matmuls.
#include "moe.hpp"

#include <cmath>
#include <vector>

#include "device.hpp"
#include "host-step.hpp"
#include "glmk/gemm-order.h"
#include "glmk/moe-arith.h"
#include "glmk/moe-check.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {
namespace {

int route_run(glmk_device* d, const glmk_moe_route_args a, std::string& msg) {
  const char* op = "moe.route";
  const size_t xb = static_cast<size_t>(a.t * a.h) * dtype_size(a.hidden_dtype);
  const size_t gb = static_cast<size_t>(a.e * a.h) * dtype_size(a.gate_dtype);
  const size_t bb = a.bias ? static_cast<size_t>(a.e) * 4 : 0, ob = static_cast<size_t>(a.t * a.top_k) * 4;
  char* x = stage(d, op, xb, msg);
  char* g = x ? stage(d, op, gb, msg) : nullptr;
  char* bias = g ? stage(d, op, bb, msg) : nullptr;
  char* ids = bias ? stage(d, op, ob, msg) : nullptr;
  char* weights = ids ? stage(d, op, ob, msg) : nullptr;
  if (!weights) return GLMK_E_OOM;
  int rc = fetch(d, op, x, a.hidden, xb, msg);
  if (rc == GLMK_OK) rc = fetch(d, op, g, a.gate, gb, msg);
  if (rc == GLMK_OK && a.bias) rc = fetch(d, op, bias, a.bias, bb, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  {
    HostFpEnv env;
    std::vector<float> xr(static_cast<size_t>(a.h)), logits(static_cast<size_t>(a.e)), scratch(static_cast<size_t>(2 * a.e));
    std::vector<int> group_ok(static_cast<size_t>(a.n_group));
    for (int64_t t = 0; t < a.t; t++) {
      for (int64_t c = 0; c < a.h; c++) xr[c] = widen(x, a.hidden_dtype, t * a.h + c);
      for (int64_t e = 0; e < a.e; e++) {
        float p[16] = {0};
        for (int64_t c = 0; c < a.h; c++) p[c % 16] = std::fma(xr[c], widen(g, a.gate_dtype, e * a.h + c), p[c % 16]);
        logits[e] = glmk_reduce16(p);
      }
      glmk_moe_select(logits.data(), a.bias ? reinterpret_cast<const float*>(bias) : nullptr, static_cast<int>(a.e), a.top_k,
                      a.n_group, a.topk_group, a.routed_scaling_factor, a.norm_topk_prob, scratch.data(), group_ok.data(),
                      reinterpret_cast<int32_t*>(ids) + t * a.top_k, reinterpret_cast<float*>(weights) + t * a.top_k);
    }
  }
  if ((rc = put(d, op, a.ids, ids, ob, msg)) != GLMK_OK) return rc;
  if ((rc = put(d, op, a.weights, weights, ob, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

int moe_route(glmk_device* d, const glmk_moe_route_args* a, glmk_status* st) {
  if (moe_route_check(a, st) != GLMK_OK) return st->code;
  if (a->t == 0) return ok(st);
  const glmk_moe_route_args args = *a;
  d->queue->push([d, args](std::string& msg) { return route_run(d, args, msg); });
  return ok(st);
}

}  // namespace glmk::ascend
