// moe.route and moe.experts on the ascend device (see moe.hpp). SPEC 5 allows routing on the host; the
// logits are T x E dot products of length H (GLM-5: E = 256), small beside the experts' matmuls.
#include "moe.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "aclnn-call.hpp"
#include "device.hpp"
#include "fp8-matmul.hpp"
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

// Section: moe.experts

const char kExperts[] = "moe.experts";
size_t align64(size_t b) { return (b + 63) / 64 * 64; }
int64_t blocks(int64_t n, int64_t b) { return (n + b - 1) / b; }

// One product of a group set on the NPU: out [rows, n] f32 = x [rows, k] f32 times weights [groups, n, k] f32
// (transposed views), group g taking the next counts[g] rows (aclnnGroupedMatmulV4, groupType 0 = split M,
// groupListType 1 = counts, splitItem 3 = single tensors, no quantization, no activation).
int grouped_product(glmk_device* d, std::string& msg, void* x, int64_t rows, int64_t k, void* w, int64_t groups, int64_t n,
                    void* counts, void* out) {
  const AclApi* acl = d->acl;
  Descs t(acl);
  aclTensorList* X = t.list1(x, kAclFloat, {rows, k}, {k, 1}, rows * k);
  aclTensorList* W = t.list1(w, kAclFloat, {groups, k, n}, {n * k, 1, k}, groups * n * k);  // [g, K, N] views of [g, N, K]
  aclTensorList* Y = t.list1(out, kAclFloat, {rows, n}, {n, 1}, rows * n);
  aclTensor* G = t.vec(counts, kAclInt64, groups);
  if (!t.error().empty()) return (msg = std::string(kExperts) + ": " + t.error()), GLMK_E_DEVICE;
  return aclnn_launch(d, msg, kExperts, "aclnnGroupedMatmulV4", [&](uint64_t* ws, aclOpExecutor** ex) {
    return acl->aclnnGroupedMatmulV4GetWorkspaceSize(X, W, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, G, nullptr, nullptr,
                                                     nullptr, 3, 0, 1, 0, Y, nullptr, nullptr, ws, ex);
  }, acl->aclnnGroupedMatmulV4);
}

// The fp8 weights of `experts` from one stack [E, n, k], dequantized on the host to f32 [experts, n, k].
struct StackPart {
  char* codes;
  char* scales;
  char* f32;
};
int fetch_stack(glmk_device* d, const glmk_fp8_stack& s, const std::vector<int64_t>& experts, int64_t n, int64_t k,
                StackPart* p, std::string& msg) {
  const size_t cb = static_cast<size_t>(n * k), sb = static_cast<size_t>(blocks(n, s.block_n) * blocks(k, 128)) * 4;
  const size_t g = experts.size();
  p->codes = stage(d, kExperts, cb * g, msg);
  p->scales = p->codes ? stage(d, kExperts, sb * g, msg) : nullptr;
  p->f32 = p->scales ? stage(d, kExperts, cb * g * 4, msg) : nullptr;
  if (!p->f32) return GLMK_E_OOM;
  int rc = GLMK_OK;
  for (size_t j = 0; j < g && rc == GLMK_OK; j++) {
    rc = fetch(d, kExperts, p->codes + j * cb, s.data + experts[j] * static_cast<int64_t>(cb), cb, msg);
    if (rc == GLMK_OK) rc = fetch(d, kExperts, p->scales + j * sb, s.scale_inv + experts[j] * static_cast<int64_t>(sb / 4), sb, msg);
  }
  return rc;
}
void dequantize_stack(const glmk_fp8_stack& s, size_t groups, int64_t n, int64_t k, const StackPart& p) {
  const size_t cb = static_cast<size_t>(n * k), sb = static_cast<size_t>(blocks(n, s.block_n) * blocks(k, 128)) * 4;
  for (size_t j = 0; j < groups; j++)
    fp8_weights_f32(reinterpret_cast<const uint8_t*>(p.codes + j * cb), reinterpret_cast<const float*>(p.scales + j * sb), n, k,
                    s.block_n, reinterpret_cast<float*>(p.f32) + j * cb);
}

// The host's step between the products: g and u (f32 [n] each, one after the other in gu, back from the NPU)
// rounded to bf16, then h = bf16(silu(g) * u) (moe_swiglu_bf16, the CPU device's code). Under HostFpEnv.
std::vector<uint16_t> swiglu_h(const char* gu, int64_t n) {
  std::vector<uint16_t> g16(static_cast<size_t>(n)), u16(g16.size());
  const auto* gf = reinterpret_cast<const uint32_t*>(gu);
  for (size_t j = 0; j < g16.size(); j++) g16[j] = glmk_bf16_rne(gf[j]), u16[j] = glmk_bf16_rne(gf[g16.size() + j]);
  moe_swiglu_bf16(g16.data(), u16.data(), n, g16.data());
  return g16;
}

// g and u (device f32 [n] each) read back into one staged host buffer *gu, g then u (after a stream wait).
int fetch_gu(glmk_device* d, std::string& msg, const void* g, const void* u, int64_t n, char** gu) {
  const size_t bytes = static_cast<size_t>(n) * 4;
  *gu = stage(d, kExperts, 2 * bytes, msg);
  if (!*gu) return GLMK_E_OOM;
  int rc = fetch(d, kExperts, *gu, g, bytes, msg);
  if (rc == GLMK_OK) rc = fetch(d, kExperts, *gu + bytes, u, bytes, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  return rc;
}

// The end of a set (rc: the status so far, returned as it is unless GLMK_OK): the down product's f32 sums
// (device dy [n]) read back and rounded once to bf16 into y; the stream is then idle, so the set's staging
// can go.
int finish_y(glmk_device* d, std::string& msg, int rc, const void* dy, int64_t n, uint16_t* y) {
  const size_t bytes = static_cast<size_t>(n) * 4;
  char* yf = rc == GLMK_OK ? stage(d, kExperts, bytes, msg) : nullptr;
  if (rc == GLMK_OK && !yf) rc = GLMK_E_OOM;
  if (rc == GLMK_OK) rc = fetch(d, kExperts, yf, dy, bytes, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  const auto* yb = reinterpret_cast<const uint32_t*>(yf);
  for (int64_t j = 0; j < n; j++) y[j] = glmk_bf16_rne(yb[j]);
  return drain_if_heavy(d, msg);
}

// SPEC 5's SwiGLU for a set of experts on their rows: x [rows, h] f32 (the activations as fp8_activations_f32
// gives them), expert experts[g] taking the next counts[g] rows; y [rows, h] bf16 out. On the NPU: the gate,
// up and down products (grouped_product); on the host: the bf16 roundings, h = bf16(silu(g) * u) and h's
// activation quantization (glmk/host-rows.hpp, the CPU device's code).
int swiglu_groups(glmk_device* d, std::string& msg, const float* x, int64_t rows, int64_t h, int64_t i,
                  const std::vector<int64_t>& experts, const std::vector<int64_t>& counts, const glmk_fp8_stack& gate,
                  const glmk_fp8_stack& up, const glmk_fp8_stack& down, uint16_t* y) {
  const int64_t g = static_cast<int64_t>(experts.size());
  StackPart pg, pu, pd;
  int rc = fetch_stack(d, gate, experts, i, h, &pg, msg);
  if (rc == GLMK_OK) rc = fetch_stack(d, up, experts, i, h, &pu, msg);
  if (rc == GLMK_OK) rc = fetch_stack(d, down, experts, h, i, &pd, msg);
  char* xs = rc == GLMK_OK ? stage(d, kExperts, static_cast<size_t>(rows * h) * 4, msg) : nullptr;
  char* cs = xs ? stage(d, kExperts, static_cast<size_t>(g) * 8, msg) : nullptr;
  if (rc == GLMK_OK && !cs) rc = GLMK_E_OOM;
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  {
    HostFpEnv env;
    dequantize_stack(gate, experts.size(), i, h, pg);
    dequantize_stack(up, experts.size(), i, h, pu);
    dequantize_stack(down, experts.size(), h, i, pd);
  }
  std::copy_n(x, rows * h, reinterpret_cast<float*>(xs));
  std::copy(counts.begin(), counts.end(), reinterpret_cast<int64_t*>(cs));
  // Section: device scratch: X, Wg, Wu, Wd, the group counts, G, U, H, Y
  const size_t wb = align64(static_cast<size_t>(g * i * h) * 4), xb = align64(static_cast<size_t>(rows * h) * 4);
  const size_t ib = align64(static_cast<size_t>(rows * i) * 4), cb = align64(static_cast<size_t>(g) * 8);
  if (reserve(d, &d->scratch, &d->scratch_bytes, 3 * wb + 2 * xb + 3 * ib + cb, msg) != GLMK_OK)
    return (msg = std::string(kExperts) + ": " + msg), GLMK_E_OOM;
  char* s = static_cast<char*>(d->scratch);
  char *dx = s, *dwg = dx + xb, *dwu = dwg + wb, *dwd = dwu + wb, *dc = dwd + wb, *dg = dc + cb, *du = dg + ib, *dh = du + ib,
       *dy = dh + ib;
  const size_t wbytes = static_cast<size_t>(g * i * h) * 4;
  if (rc == GLMK_OK) rc = put(d, kExperts, dx, xs, static_cast<size_t>(rows * h) * 4, msg);
  if (rc == GLMK_OK) rc = put(d, kExperts, dwg, pg.f32, wbytes, msg);
  if (rc == GLMK_OK) rc = put(d, kExperts, dwu, pu.f32, wbytes, msg);
  if (rc == GLMK_OK) rc = put(d, kExperts, dwd, pd.f32, wbytes, msg);
  if (rc == GLMK_OK) rc = put(d, kExperts, dc, cs, static_cast<size_t>(g) * 8, msg);
  // Section: gate and up on the NPU, then h on the host
  if (rc == GLMK_OK) rc = grouped_product(d, msg, dx, rows, h, dwg, g, i, dc, dg);
  if (rc == GLMK_OK) rc = grouped_product(d, msg, dx, rows, h, dwu, g, i, dc, du);
  const size_t rib = static_cast<size_t>(rows * i) * 4;
  char* hq = rc == GLMK_OK ? stage(d, kExperts, rib, msg) : nullptr;
  if (rc == GLMK_OK && !hq) rc = GLMK_E_OOM;
  char* gu = nullptr;
  if (rc == GLMK_OK) rc = fetch_gu(d, msg, dg, du, rows * i, &gu);
  if (rc != GLMK_OK) return rc;
  {
    HostFpEnv env;
    fp8_activations_f32(swiglu_h(gu, rows * i).data(), rows, i, reinterpret_cast<float*>(hq));
  }
  // Section: down on the NPU, y rounded to bf16 on the host
  rc = put(d, kExperts, dh, hq, rib, msg);
  if (rc == GLMK_OK) rc = grouped_product(d, msg, dh, rows, i, dwd, g, h, dc, dy);
  return finish_y(d, msg, rc, dy, rows * h, y);
}

// The same on an Ascend 950 (d->fp8_cube) with [128, 128] weight blocks: each expert's three products are
// aclnnQuantMatmulV5 calls on the codes (fp8-matmul.cc, fp8_cube_product): the rows' activation codes and
// scales (SPEC 5's, made on the host: codes [rows, h], scales [rows, ceil(h / 128)]) go up, the weights are
// read where they are; g and u come back as f32 for the host's bf16 roundings, SwiGLU and h's quantization,
// as above; y comes back as f32 and is rounded to bf16 on the host.
int swiglu_cube(glmk_device* d, std::string& msg, const uint8_t* codes, const float* scales, int64_t rows, int64_t h, int64_t i,
                const std::vector<int64_t>& experts, const std::vector<int64_t>& counts, const glmk_fp8_stack& gate,
                const glmk_fp8_stack& up, const glmk_fp8_stack& down, uint16_t* y) {
  const int64_t kbh = blocks(h, 128), kbi = blocks(i, 128);
  const size_t cb = align64(static_cast<size_t>(rows * h)), sb = align64(static_cast<size_t>(rows * kbh) * 4);
  const size_t ib = align64(static_cast<size_t>(rows * i) * 4), hcb = align64(static_cast<size_t>(rows * i));
  const size_t hsb = align64(static_cast<size_t>(rows * kbi) * 4), yb = align64(static_cast<size_t>(rows * h) * 4);
  if (reserve(d, &d->scratch, &d->scratch_bytes, cb + sb + 2 * ib + hcb + hsb + yb, msg) != GLMK_OK)
    return (msg = std::string(kExperts) + ": " + msg), GLMK_E_OOM;
  char* s = static_cast<char*>(d->scratch);
  char *dc = s, *ds = dc + cb, *dg = ds + sb, *du = dg + ib, *dhc = du + ib, *dhs = dhc + hcb, *dy = dhs + hsb;
  char* xc = stage(d, kExperts, static_cast<size_t>(rows * h), msg);
  char* xs = xc ? stage(d, kExperts, static_cast<size_t>(rows * kbh) * 4, msg) : nullptr;
  if (!xs) return GLMK_E_OOM;
  std::copy_n(codes, rows * h, xc);
  std::copy_n(scales, rows * kbh, reinterpret_cast<float*>(xs));
  int rc = put(d, kExperts, dc, xc, static_cast<size_t>(rows * h), msg);
  if (rc == GLMK_OK) rc = put(d, kExperts, ds, xs, static_cast<size_t>(rows * kbh) * 4, msg);
  // Section: gate and up per expert on the FP8 cube, then h on the host
  auto each = [&](auto product) {
    int64_t row = 0;
    for (size_t g = 0; g < experts.size() && rc == GLMK_OK; g++) {
      rc = product(experts[g], row, counts[g]);
      row += counts[g];
    }
  };
  each([&](int64_t e, int64_t row, int64_t m) {
    const CubeOperand x{dc, ds, row};
    int r = fp8_cube_product(d, msg, kExperts, x, m, h, CubeWeights{gate.data, gate.scale_inv, e}, i, dg, row, true);
    if (r == GLMK_OK) r = fp8_cube_product(d, msg, kExperts, x, m, h, CubeWeights{up.data, up.scale_inv, e}, i, du, row, true);
    return r;
  });
  char* hc = rc == GLMK_OK ? stage(d, kExperts, static_cast<size_t>(rows * i), msg) : nullptr;
  char* hs = hc ? stage(d, kExperts, static_cast<size_t>(rows * kbi) * 4, msg) : nullptr;
  if (rc == GLMK_OK && !hs) rc = GLMK_E_OOM;
  char* gu = nullptr;
  if (rc == GLMK_OK) rc = fetch_gu(d, msg, dg, du, rows * i, &gu);
  if (rc != GLMK_OK) return rc;
  {
    HostFpEnv env;
    fp8_activations_codes(swiglu_h(gu, rows * i).data(), rows, i, reinterpret_cast<uint8_t*>(hc), reinterpret_cast<float*>(hs));
  }
  // Section: down per expert on the FP8 cube, y rounded to bf16 on the host
  rc = put(d, kExperts, dhc, hc, static_cast<size_t>(rows * i), msg);
  if (rc == GLMK_OK) rc = put(d, kExperts, dhs, hs, static_cast<size_t>(rows * kbi) * 4, msg);
  each([&](int64_t e, int64_t row, int64_t m) {
    return fp8_cube_product(d, msg, kExperts, CubeOperand{dhc, dhs, row}, m, i, CubeWeights{down.data, down.scale_inv, e}, h, dy, row, true);
  });
  return finish_y(d, msg, rc, dy, rows * h, y);
}

bool cube_stacks(const glmk_device* d, const glmk_fp8_stack& g, const glmk_fp8_stack& u, const glmk_fp8_stack& w) {
  return d->fp8_cube && g.block_n == 128 && u.block_n == 128 && w.block_n == 128;
}

// f32 weights of one expert's three products; group sets are bounded by kSetBytes of them (at least one
// expert), and by aclnnGroupedMatmulV4's 1024 groups.
constexpr size_t kSetBytes = size_t{1} << 30;

int experts_run(glmk_device* d, const glmk_moe_experts_args a, std::string& msg) {
  const int64_t slots = a.t * a.top_k;
  // Section: hidden, ids and weights read back
  char* hs = stage(d, kExperts, static_cast<size_t>(a.t * a.h) * 2, msg);
  char* is = hs ? stage(d, kExperts, static_cast<size_t>(slots) * 4, msg) : nullptr;
  char* ws = is ? stage(d, kExperts, static_cast<size_t>(slots) * 4, msg) : nullptr;
  if (!ws) return GLMK_E_OOM;
  int rc = fetch(d, kExperts, hs, a.hidden, static_cast<size_t>(a.t * a.h) * 2, msg);
  if (rc == GLMK_OK) rc = fetch(d, kExperts, is, a.ids, static_cast<size_t>(slots) * 4, msg);
  if (rc == GLMK_OK) rc = fetch(d, kExperts, ws, a.weights, static_cast<size_t>(slots) * 4, msg);
  if (rc == GLMK_OK) rc = wait_inputs(d, msg);
  if (rc != GLMK_OK) return rc;
  // NOTE: copied out of the staging, which a drain between group sets releases.
  const std::vector<int32_t> ids(reinterpret_cast<const int32_t*>(is), reinterpret_cast<const int32_t*>(is) + slots);
  const std::vector<float> weights(reinterpret_cast<const float*>(ws), reinterpret_cast<const float*>(ws) + slots);
  // Section: the (token, slot) pairs of each expert, in increasing (token, slot): the CPU device's stable
  // counting sort
  std::vector<int64_t> start(static_cast<size_t>(a.e + 1), 0);
  for (int64_t p = 0; p < slots; p++) {
    const int32_t id = ids[p];
    if (id == -1) continue;
    if (id < 0 || id >= a.e) {
      char buf[200];
      std::snprintf(buf, sizeof buf, "moe.experts: Expected route.ids in [0, %lld) or -1 (an unused slot) but received %d at [%lld, %lld]",
                    static_cast<long long>(a.e), id, static_cast<long long>(p / a.top_k), static_cast<long long>(p % a.top_k));
      msg = buf;
      return GLMK_E_ARG;
    }
    start[id + 1]++;
  }
  for (int64_t e = 0; e < a.e; e++) start[e + 1] += start[e];
  std::vector<int64_t> order(static_cast<size_t>(start[a.e])), fill(start.begin(), start.end() - 1);
  for (int64_t p = 0; p < slots; p++)
    if (ids[p] != -1) order[fill[ids[p]]++] = p;
  // Section: the activations (each token's once), gathered in that order: f32 values, or on an Ascend 950's
  // FP8 cube their codes and scales
  const bool cube = cube_stacks(d, a.gate, a.up, a.down);
  const bool cube_shared = a.shared_i > 0 && cube_stacks(d, a.shared_gate, a.shared_up, a.shared_down);
  const int64_t kbh = blocks(a.h, 128);
  std::vector<float> xa, xg, sa, sg;
  std::vector<uint8_t> ca, cg;
  {
    HostFpEnv env;
    if (!cube || (a.shared_i > 0 && !cube_shared)) {
      xa.resize(static_cast<size_t>(a.t * a.h));
      fp8_activations_f32(reinterpret_cast<const uint16_t*>(hs), a.t, a.h, xa.data());
    }
    if (cube || cube_shared) {
      ca.resize(static_cast<size_t>(a.t * a.h));
      sa.resize(static_cast<size_t>(a.t * kbh));
      fp8_activations_codes(reinterpret_cast<const uint16_t*>(hs), a.t, a.h, ca.data(), sa.data());
    }
  }
  if (cube) {
    cg.resize(order.size() * static_cast<size_t>(a.h));
    sg.resize(order.size() * static_cast<size_t>(kbh));
    for (size_t r = 0; r < order.size(); r++) {
      std::copy_n(ca.data() + (order[r] / a.top_k) * a.h, a.h, cg.data() + r * a.h);
      std::copy_n(sa.data() + (order[r] / a.top_k) * kbh, kbh, sg.data() + r * kbh);
    }
  } else {
    xg.resize(order.size() * static_cast<size_t>(a.h));
    for (size_t r = 0; r < order.size(); r++) std::copy_n(xa.data() + (order[r] / a.top_k) * a.h, a.h, xg.data() + r * a.h);
  }
  // Section: the experts in use, in sets; y per (token, slot)
  std::vector<uint16_t> y(static_cast<size_t>(slots * a.h)), ys;
  const size_t per_expert = static_cast<size_t>(3 * a.i * a.h) * 4;
  for (int64_t e0 = 0; e0 < a.e;) {
    std::vector<int64_t> experts, counts;
    size_t bytes = 0;
    int64_t e = e0;
    for (; e < a.e && experts.size() < 1024 && (experts.empty() || bytes + per_expert <= kSetBytes); e++)
      if (start[e + 1] > start[e]) experts.push_back(e), counts.push_back(start[e + 1] - start[e]), bytes += per_expert;
    const int64_t r0 = start[e0], rows = start[e] - r0;
    e0 = e;
    if (experts.empty()) continue;
    ys.resize(static_cast<size_t>(rows * a.h));
    rc = cube ? swiglu_cube(d, msg, cg.data() + r0 * a.h, sg.data() + r0 * kbh, rows, a.h, a.i, experts, counts, a.gate, a.up, a.down, ys.data())
              : swiglu_groups(d, msg, xg.data() + r0 * a.h, rows, a.h, a.i, experts, counts, a.gate, a.up, a.down, ys.data());
    if (rc != GLMK_OK) return rc;
    for (int64_t r = 0; r < rows; r++) std::copy_n(ys.data() + r * a.h, a.h, y.data() + order[r0 + r] * a.h);
  }
  std::vector<uint16_t> shared;
  if (a.shared_i > 0) {
    shared.resize(static_cast<size_t>(a.t * a.h));
    rc = cube_shared ? swiglu_cube(d, msg, ca.data(), sa.data(), a.t, a.h, a.shared_i, {0}, {a.t}, a.shared_gate, a.shared_up,
                                   a.shared_down, shared.data())
                     : swiglu_groups(d, msg, xa.data(), a.t, a.h, a.shared_i, {0}, {a.t}, a.shared_gate, a.shared_up, a.shared_down,
                                     shared.data());
    if (rc != GLMK_OK) return rc;
  }
  // Section: combine in slot order on the host (the CPU device's code), one rounding to bf16
  char* out = stage(d, kExperts, static_cast<size_t>(a.t * a.h) * 2, msg);
  if (!out) return GLMK_E_OOM;
  {
    HostFpEnv env;
    for (int64_t t = 0; t < a.t; t++)
      moe_combine_token(ids.data() + t * a.top_k, weights.data() + t * a.top_k, a.top_k, y.data() + t * a.top_k * a.h,
                        shared.empty() ? nullptr : shared.data() + t * a.h, a.h, reinterpret_cast<uint16_t*>(out) + t * a.h);
  }
  if ((rc = put(d, kExperts, a.out, out, static_cast<size_t>(a.t * a.h) * 2, msg)) != GLMK_OK) return rc;
  return drain_if_heavy(d, msg);
}

}  // namespace

int moe_experts(glmk_device* d, const glmk_moe_experts_args* a, glmk_status* st) {
  if (moe_experts_check(a, st) != GLMK_OK) return st->code;
  const int64_t limit = 65536;  // aclnnGroupedMatmulV4: the last dim of x and of each (transposed) weight
  if (a->h >= limit || a->i >= limit || a->shared_i >= limit)
    return fail(st, GLMK_E_SHAPE, "moe.experts: Expected H, I and the shared expert's I below 65536 on ascend (aclnnGroupedMatmulV4's limit) but received %lld, %lld, %lld",
                static_cast<long long>(a->h), static_cast<long long>(a->i), static_cast<long long>(a->shared_i));
  if (a->t == 0) return ok(st);
  const glmk_moe_experts_args args = *a;
  d->queue->push([d, args](std::string& msg) { return experts_run(d, args, msg); });
  return ok(st);
}

int moe_route(glmk_device* d, const glmk_moe_route_args* a, glmk_status* st) {
  if (moe_route_check(a, st) != GLMK_OK) return st->code;
  if (a->t == 0) return ok(st);
  const glmk_moe_route_args args = *a;
  d->queue->push([d, args](std::string& msg) { return route_run(d, args, msg); });
  return ok(st);
}

}  // namespace glmk::ascend
