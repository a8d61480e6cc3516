// fp8.matmul, moe.route and moe.experts of the cuda plugin (under the emulator or on a GPU) against a plain
// C++ model of the CPU device's written order (devices/cpu/gemm.cc, moe.cc), straight through the device ABI;
// small shapes (topk-check.cc calls it, also under ASan). Includes a bad id reported at sync.
// moe.route: bit for bit. moe.experts (grouped products on tensor cores): bit for bit the composition of the
// device's own fp8.matmul calls (per expert its rows; SwiGLU and combine on the host), within tolerance of the
// written order (|out - cpu| <= 2^-5 M + 2^-8 |cpu|, M the sum over slots of |weight| x the down
// projection's sum of |terms|), and bit for bit again and per token alone. fp8.matmul (tensor cores: devices/cuda/fp8-matmul-mma.cuh): within
// the stated tolerance of the written order and of a float64 sum of the same quantized terms t (f32 sums:
// K 2^-22 sum |t|; bf16: 2^-8 max(|y|, |y_ref|) + K 2^-22 sum |t|), NaN (canonical 0x7FC00000) where the
// written order has NaN; and bit for bit on the device: the same call twice, each row alone == in the batch.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "glmk/device.h"
#include "glmk/fp8-arith.h"
#include "glmk/host-rows.hpp"
#include "glmk/moe-arith.h"
#include "check-util.hpp"

namespace {

using glmk_check::Ctx;
using glmk_check::mix32;
using glmk_check::same_bits;

float val(uint64_t i, uint64_t seed, float scale) { return (static_cast<float>(mix32(i * 0x9E3779B97F4A7C15ull + seed) % 2001) - 1000.0f) * scale; }
uint16_t bf(float f) { return glmk_bf16_rne(glmk_bits_from_f32(f)); }
float f(uint16_t b) { return glmk_f32_from_bits(glmk_bf16_to_f32_bits(b)); }

float reduce16(const float* p) {
  float q[8], r[4], s[2];
  for (int j = 0; j < 8; j++) q[j] = p[j] + p[j + 8];
  for (int j = 0; j < 4; j++) r[j] = q[j] + q[j + 4];
  for (int j = 0; j < 2; j++) s[j] = r[j] + r[j + 2];
  return s[0] + s[1];
}

// Weights [e, n, k] quantized in blocks [bn, 128] (the model of fp8.quantize).
struct Stack {
  std::vector<uint8_t> data;
  std::vector<float> scale;
  int64_t e, n, k, bn;
};
Stack quantize(int64_t e, int64_t n, int64_t k, int64_t bn, uint64_t seed) {
  Stack s{std::vector<uint8_t>(e * n * k), {}, e, n, k, bn};
  const int64_t rb = (n + bn - 1) / bn, cb = (k + 127) / 128;
  s.scale.resize(e * rb * cb);
  for (int64_t x = 0; x < e; x++)
    for (int64_t r = 0; r < rb; r++)
      for (int64_t c = 0; c < cb; c++) {
        float amax = 0;
        for (int64_t i = r * bn; i < std::min(n, (r + 1) * bn); i++)
          for (int64_t j = c * 128; j < std::min(k, (c + 1) * 128); j++) amax = std::max(amax, std::fabs(val((x * n + i) * k + j, seed, 1e-3f)));
        const float sc = glmk_fp8_scale_inv(amax);
        s.scale[(x * rb + r) * cb + c] = sc;
        for (int64_t i = r * bn; i < std::min(n, (r + 1) * bn); i++)
          for (int64_t j = c * 128; j < std::min(k, (c + 1) * 128); j++)
            s.data[(x * n + i) * k + j] = glmk_e4m3_from_f32_bits(glmk_bits_from_f32(val((x * n + i) * k + j, seed, 1e-3f) / sc));
      }
  return s;
}

// The activations' quantization (per row and 128-column block): xa [m, k] (e4m3 values), sa [m, ceil(k / 128)].
void act_quant(const std::vector<uint16_t>& xs, int64_t m, int64_t k, std::vector<float>& xa, std::vector<float>& sa) {
  const int64_t kb = (k + 127) / 128;
  xa.assign(m * k, 0.0f), sa.assign(m * kb, 0.0f);
  for (int64_t r = 0; r < m; r++)
    for (int64_t j = 0; j < kb; j++) {
      float amax = 0;
      for (int64_t c = j * 128; c < std::min(k, (j + 1) * 128) && amax == amax; c++) {
        const float v = std::fabs(f(xs[r * k + c]));
        amax = v != v ? v : (v > amax ? v : amax);
      }
      sa[r * kb + j] = glmk_fp8_scale_inv(amax);
      for (int64_t c = j * 128; c < std::min(k, (j + 1) * 128); c++)
        xa[r * k + c] = glmk_f32_from_bits(glmk_e4m3_to_f32_bits(glmk_e4m3_from_f32_bits(glmk_bits_from_f32(f(xs[r * k + c]) / sa[r * kb + j]))));
    }
}

// fp8.matmul of bf16 rows x [m, k] with expert x of s: f32 sums [m, n] in the CPU's written order.
std::vector<float> matmul_ref(const std::vector<uint16_t>& xs, int64_t m, const Stack& s, int64_t x) {
  const int64_t k = s.k, n = s.n, kb = (k + 127) / 128, rb = (n + s.bn - 1) / s.bn;
  std::vector<float> xa, sa, y(m * n);
  act_quant(xs, m, k, xa, sa);
  for (int64_t r = 0; r < m; r++)
    for (int64_t o = 0; o < n; o++) {
      float acc = 0;
      for (int64_t j = 0; j < kb; j++) {
        float p[16] = {0};
        for (int64_t c = j * 128; c < std::min(k, (j + 1) * 128); c++)
          p[c % 16] = std::fma(xa[r * k + c], glmk_f32_from_bits(glmk_e4m3_to_f32_bits(s.data[(x * n + o) * k + c])), p[c % 16]);
        acc = acc + (reduce16(p) * sa[r * kb + j]) * s.scale[(x * rb + o / s.bn) * kb + j];
      }
      y[r * n + o] = acc;
    }
  return y;
}

// The same quantized terms t = xa sa w scaleInv summed in float64 (exact: y) and their magnitudes (mag).
void matmul_exact(const std::vector<uint16_t>& xs, int64_t m, const Stack& s, std::vector<double>& y, std::vector<double>& mag) {
  const int64_t k = s.k, n = s.n, kb = (k + 127) / 128, rb = (n + s.bn - 1) / s.bn;
  std::vector<float> xa, sa;
  act_quant(xs, m, k, xa, sa);
  y.assign(m * n, 0.0), mag.assign(m * n, 0.0);
  for (int64_t r = 0; r < m; r++)
    for (int64_t o = 0; o < n; o++)
      for (int64_t c = 0; c < k; c++) {
        const double t = static_cast<double>(xa[r * k + c]) * sa[r * kb + c / 128] * glmk_f32_from_bits(glmk_e4m3_to_f32_bits(s.data[o * k + c])) *
                         s.scale[(o / s.bn) * kb + c / 128];
        y[r * n + o] += t, mag[r * n + o] += std::fabs(t);
      }
}

std::vector<uint16_t> swiglu_ref(const std::vector<uint16_t>& xs, int64_t m, const Stack& g, const Stack& u, const Stack& d, int64_t x) {
  std::vector<float> gy = matmul_ref(xs, m, g, x), uy = matmul_ref(xs, m, u, x);
  std::vector<uint16_t> h(gy.size());
  for (size_t j = 0; j < h.size(); j++) h[j] = bf(glmk_siluf(f(bf(gy[j]))) * f(bf(uy[j])));
  std::vector<float> y = matmul_ref(h, m, d, x);
  std::vector<uint16_t> out(y.size());
  for (size_t j = 0; j < y.size(); j++) out[j] = bf(y[j]);
  return out;
}

// The fp8 weight stack on the device.
glmk_fp8_stack put_stack(Ctx& c, const Stack& s) {
  return {static_cast<const uint8_t*>(c.put(s.data.data(), s.data.size())), static_cast<const float*>(c.put(s.scale.data(), s.scale.size() * 4)), s.bn};
}

void check_matmul(Ctx& c, uint64_t seed, int64_t m, int64_t n, int64_t k, int64_t bn, bool nan = false) {
  Stack w = quantize(1, n, k, bn, seed);
  if (nan) w.data[5] = 0x7F, w.data[k + 3] = 0xFF;  // NaN codes (a checkpoint may hold them)
  std::vector<uint16_t> x(m * k);
  for (int64_t i = 0; i < m * k; i++) x[i] = bf(val(i, seed + 7, 1e-2f));
  const std::vector<float> want = matmul_ref(x, m, w, 0);
  std::vector<double> exact, mag;
  matmul_exact(x, m, w, exact, mag);
  const glmk_fp8_stack ws = put_stack(c, w);
  const void* xd = c.put(x.data(), x.size() * 2);
  void* y = c.put(nullptr, m * n * 4);
  void* yb = c.put(nullptr, m * n * 2);
  auto run = [&](const void* xp, int64_t rows, void* out, int dtype) {
    glmk_fp8_matmul_args a{static_cast<const uint16_t*>(xp), rows, n, k, ws.data, ws.scale_inv, bn, out, dtype, 0};
    return c.api->fp8_matmul(c.d, &a, &c.st) == GLMK_OK && c.api->sync(c.d, &c.st) == GLMK_OK;
  };
  // (a download lands at the next sync)
  auto fetch32 = [&](void* p, int64_t count) {
    std::vector<float> v = c.get<float>(p, count);
    return c.api->sync(c.d, &c.st) == GLMK_OK ? v : std::vector<float>();
  };
  bool launched = run(xd, m, y, GLMK_F32) && run(xd, m, yb, GLMK_BF16);
  const std::vector<float> got = fetch32(y, m * n);
  const std::vector<uint16_t> got_b = c.get<uint16_t>(yb, m * n);
  launched = c.api->sync(c.d, &c.st) == GLMK_OK && launched && static_cast<int64_t>(got.size()) == m * n;
  // Section: within tolerance of the written order and of float64; NaN where the written order has it
  bool within = true;
  for (int64_t i = 0; i < m * n && within && launched; i++) {
    const double bound = static_cast<double>(k) * 0x1p-22 * mag[i] + 1e-30;
    uint32_t gb;
    std::memcpy(&gb, &got[i], 4);
    if (want[i] != want[i]) {
      within = gb == 0x7FC00000u && got_b[i] == 0x7FC0u;
    } else {
      const double a = f(got_b[i]), b = f(bf(want[i]));
      within = std::fabs(got[i] - static_cast<double>(want[i])) <= bound && std::fabs(got[i] - exact[i]) <= bound &&
               std::fabs(a - b) <= 0x1p-8 * std::max(std::fabs(a), std::fabs(b)) + bound;
    }
    if (!within) std::printf("     y[%lld] = %.9g (bf16 %.6g), written order %.9g, float64 %.9g\n", static_cast<long long>(i), got[i], f(got_b[i]), want[i], exact[i]);
  }
  char what[96];
  std::snprintf(what, sizeof what, "fp8.matmul [%lld x %lld x %lld] block %lld%s (tensor cores, within tolerance)", static_cast<long long>(m),
                static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(bn), nan ? " NaN codes" : "");
  c.report(launched && within, what, seed);
  // Section: bit for bit on the device: again, and each row alone
  launched = run(xd, m, y, GLMK_F32);
  bool same = launched && same_bits(fetch32(y, m * n), got);
  for (int64_t r = 0; r < m && same; r++) {
    const std::vector<uint16_t> row(x.begin() + r * k, x.begin() + (r + 1) * k);
    void* y1 = c.put(nullptr, n * 4);
    same = run(c.put(row.data(), k * 2), 1, y1, GLMK_F32) && same_bits(fetch32(y1, n), std::vector<float>(got.begin() + r * n, got.begin() + (r + 1) * n));
  }
  c.report(same, "fp8.matmul: the same bits again and for each row alone (bits)", seed);
}

void check_route(Ctx& c, uint64_t seed, int64_t t, int64_t h, int64_t e, int top_k, int n_group, int topk_group) {
  std::vector<uint16_t> x(t * h), g(e * h);
  std::vector<float> bias(e), logits(t * e), scratch(2 * e), want_w(t * top_k);
  std::vector<int32_t> want_ids(t * top_k);
  std::vector<int> group_ok(n_group);
  for (int64_t i = 0; i < t * h; i++) x[i] = bf(val(i, seed + 1, 1e-2f));
  for (int64_t i = 0; i < e * h; i++) g[i] = bf(val(i, seed + 2, 1e-3f));
  for (int64_t i = 0; i < e; i++) bias[i] = val(i, seed + 3, 1e-4f);
  for (int64_t r = 0; r < t; r++) {
    for (int64_t o = 0; o < e; o++) {
      float p[16] = {0};
      for (int64_t k = 0; k < h; k++) p[k % 16] = std::fma(f(x[r * h + k]), f(g[o * h + k]), p[k % 16]);
      logits[r * e + o] = reduce16(p);
    }
    glmk_moe_select(&logits[r * e], bias.data(), static_cast<int>(e), top_k, n_group, topk_group, 2.5f, 1, scratch.data(), group_ok.data(),
                    &want_ids[r * top_k], &want_w[r * top_k]);
  }
  void* ids = c.put(nullptr, t * top_k * 4);
  void* w = c.put(nullptr, t * top_k * 4);
  glmk_moe_route_args a{c.put(x.data(), x.size() * 2), c.put(g.data(), g.size() * 2), GLMK_BF16, GLMK_BF16,
                        static_cast<const float*>(c.put(bias.data(), e * 4)), t, h, e, top_k, n_group, topk_group, 1, 2.5f, 0,
                        static_cast<int32_t*>(ids), static_cast<float*>(w)};
  const bool launched = c.api->moe_route(c.d, &a, &c.st) == GLMK_OK;
  const auto got_ids = c.get<int32_t>(ids, t * top_k);
  const auto got_w = c.get<float>(w, t * top_k);
  c.report(launched && c.api->sync(c.d, &c.st) == GLMK_OK && same_bits(got_ids, want_ids) && same_bits(got_w, want_w),
           "moe.route ids and weights (bits)", seed);
}

// The terms' magnitudes of the down projection of h rows [m, i] (quantized) with expert x of d: per output.
std::vector<double> down_mag(const std::vector<uint16_t>& hs, int64_t m, const Stack& d, int64_t x) {
  const int64_t k = d.k, n = d.n, kb = (k + 127) / 128, rb = (n + d.bn - 1) / d.bn;
  std::vector<float> xa, sa;
  act_quant(hs, m, k, xa, sa);
  std::vector<double> mag(m * n, 0.0);
  for (int64_t r = 0; r < m; r++)
    for (int64_t o = 0; o < n; o++)
      for (int64_t c = 0; c < k; c++)
        mag[r * n + o] += std::fabs(static_cast<double>(xa[r * k + c]) * sa[r * kb + c / 128] *
                                    glmk_f32_from_bits(glmk_e4m3_to_f32_bits(d.data[(x * n + o) * k + c])) * d.scale[(x * rb + o / d.bn) * kb + c / 128]);
  return mag;
}

// h of the written order (the model's SwiGLU first half), bf16 [m, i].
std::vector<uint16_t> h_ref(const std::vector<uint16_t>& xs, int64_t m, const Stack& g, const Stack& u, int64_t x) {
  std::vector<float> gy = matmul_ref(xs, m, g, x), uy = matmul_ref(xs, m, u, x);
  std::vector<uint16_t> h(gy.size());
  for (size_t j = 0; j < h.size(); j++) h[j] = bf(glmk_siluf(f(bf(gy[j]))) * f(bf(uy[j])));
  return h;
}

void check_experts(Ctx& c, uint64_t seed, int64_t t, int64_t h, int64_t i, int64_t e, int64_t top_k, int64_t si, int64_t bn) {
  const Stack g = quantize(e, i, h, bn, seed + 11), u = quantize(e, i, h, bn, seed + 12), d = quantize(e, h, i, bn, seed + 13);
  const Stack sg = quantize(1, si, h, bn, seed + 14), su = quantize(1, si, h, bn, seed + 15), sd = quantize(1, h, si, bn, seed + 16);
  std::vector<uint16_t> x(t * h);
  std::vector<int32_t> ids(t * top_k);
  std::vector<float> w(t * top_k);
  for (int64_t j = 0; j < t * h; j++) x[j] = bf(val(j, seed + 17, 1e-2f));
  for (int64_t j = 0; j < t * top_k; j++) {
    ids[j] = j == 1 ? -1 : static_cast<int32_t>(mix32(seed * 3 + j) % (e > 2 ? e - 1 : e));  // expert e - 1 idle (e > 2)
    w[j] = val(j, seed + 18, 1e-3f);
  }
  const glmk_fp8_stack gd = put_stack(c, g), ud = put_stack(c, u), dd = put_stack(c, d), sgd = put_stack(c, sg), sud = put_stack(c, su), sdd = put_stack(c, sd);
  void* out = c.put(nullptr, t * h * 2);
  void* ids_d = c.put(ids.data(), ids.size() * 4);
  void* w_d = c.put(w.data(), w.size() * 4);
  auto experts = [&](const void* xp, int64_t rows, const void* idp, const void* wp, void* o) {
    glmk_moe_experts_args a{static_cast<const uint16_t*>(xp), rows, h, i, e, top_k, static_cast<const int32_t*>(idp), static_cast<const float*>(wp),
                            gd, ud, dd, si, sgd, sud, sdd, static_cast<uint16_t*>(o)};
    return c.api->moe_experts(c.d, &a, &c.st) == GLMK_OK;
  };
  auto fetch16 = [&](void* p, int64_t count) {
    std::vector<uint16_t> v = c.get<uint16_t>(p, count);
    return c.api->sync(c.d, &c.st) == GLMK_OK ? v : std::vector<uint16_t>();
  };
  bool launched = experts(c.put(x.data(), x.size() * 2), t, ids_d, w_d, out);
  const std::vector<uint16_t> got = fetch16(out, t * h);
  launched = launched && static_cast<int64_t>(got.size()) == t * h;
  // Section: the composition of the device's own fp8.matmul calls (bf16 g, u; the SwiGLU and the combine on
  // the host, SPEC 5's steps): per expert its rows in (token, slot) order, then the shared expert
  auto matmul = [&](const std::vector<uint16_t>& xs, int64_t m, const glmk_fp8_stack& s, int64_t ex, int64_t n, int64_t k) {
    const int64_t kb = (k + 127) / 128, rb = (n + s.block_n - 1) / s.block_n;
    void* y = c.put(nullptr, m * n * 2);
    glmk_fp8_matmul_args a{static_cast<const uint16_t*>(c.put(xs.data(), xs.size() * 2)), m, n, k, s.data + ex * n * k, s.scale_inv + ex * rb * kb, s.block_n,
                           y, GLMK_BF16, 0};
    launched = launched && c.api->fp8_matmul(c.d, &a, &c.st) == GLMK_OK;
    return fetch16(y, m * n);
  };
  auto swiglu_dev = [&](const std::vector<uint16_t>& xs, int64_t m, const glmk_fp8_stack& gs, const glmk_fp8_stack& us, const glmk_fp8_stack& ds, int64_t ex, int64_t n_i) {
    const std::vector<uint16_t> gy = matmul(xs, m, gs, ex, n_i, h), uy = matmul(xs, m, us, ex, n_i, h);
    std::vector<uint16_t> hh(m * n_i);
    if (static_cast<int64_t>(gy.size()) == m * n_i && static_cast<int64_t>(uy.size()) == m * n_i) glmk::moe_swiglu_bf16(gy.data(), uy.data(), m * n_i, hh.data());
    return matmul(hh, m, ds, ex, h, n_i);
  };
  std::vector<uint16_t> y(t * top_k * h, 0), want(t * h);
  for (int64_t ex = 0; ex < e; ex++) {
    std::vector<int64_t> rows;
    for (int64_t p = 0; p < t * top_k; p++)
      if (ids[p] == ex) rows.push_back(p);
    if (rows.empty()) continue;
    std::vector<uint16_t> xs;
    for (int64_t p : rows) xs.insert(xs.end(), x.begin() + (p / top_k) * h, x.begin() + (p / top_k + 1) * h);
    const std::vector<uint16_t> ys = swiglu_dev(xs, static_cast<int64_t>(rows.size()), gd, ud, dd, ex, i);
    for (size_t r = 0; r < rows.size() && ys.size() == rows.size() * h; r++) std::copy_n(ys.begin() + r * h, h, y.begin() + rows[r] * h);
  }
  const std::vector<uint16_t> shared = swiglu_dev(x, t, sgd, sud, sdd, 0, si);
  const bool composed = launched && static_cast<int64_t>(shared.size()) == t * h;
  for (int64_t r = 0; r < t && composed; r++)
    glmk::moe_combine_token(&ids[r * top_k], &w[r * top_k], top_k, &y[r * top_k * h], &shared[r * h], h, &want[r * h]);
  c.report(composed && same_bits(got, want), "moe.experts == the device's fp8.matmul composed (grouped, tensor cores; bits)", seed);
  // Section: within tolerance of the written order (the CPU device's bits): |out - cpu| <= 2^-5 M + 2^-8 |cpu|,
  // M the sum over slots of |weight| x the down projection's sum of |terms| (+ the shared expert's)
  std::vector<double> mag(t * h, 0.0);
  std::vector<uint16_t> cpu(t * h);
  const std::vector<uint16_t> shs = h_ref(x, t, sg, su, 0), shared_cpu = swiglu_ref(x, t, sg, su, sd, 0);
  const std::vector<double> sm = down_mag(shs, t, sd, 0);
  bool within = launched;
  for (int64_t r = 0; r < t && within; r++) {
    std::vector<float> acc(h, 0.0f);
    const std::vector<uint16_t> row(x.begin() + r * h, x.begin() + (r + 1) * h);
    for (int64_t j = 0; j < top_k; j++) {
      const int32_t ex = ids[r * top_k + j];
      if (ex == -1) continue;
      const std::vector<uint16_t> yr = swiglu_ref(row, 1, g, u, d, ex);
      const std::vector<double> m = down_mag(h_ref(row, 1, g, u, ex), 1, d, ex);
      for (int64_t o = 0; o < h; o++) acc[o] = acc[o] + w[r * top_k + j] * f(yr[o]), mag[r * h + o] += std::fabs(w[r * top_k + j]) * m[o];
    }
    for (int64_t o = 0; o < h && within; o++) {
      const float want_o = f(bf(acc[o] + f(shared_cpu[r * h + o])));
      const double bound = 0x1p-5 * (mag[r * h + o] + sm[r * h + o]) + 0x1p-8 * std::fabs(want_o) + 1e-6;
      within = std::fabs(f(got[r * h + o]) - static_cast<double>(want_o)) <= bound;
      if (!within) std::printf("     out[%lld, %lld] = %.6g, written order %.6g, bound %.3g\n", static_cast<long long>(r), static_cast<long long>(o), f(got[r * h + o]), want_o, bound);
    }
  }
  c.report(within, "moe.experts within tolerance of the written order (the cpu device)", seed);
  // Section: bit for bit on the device: again, and each token alone (its ids and weights only)
  bool same = experts(c.put(x.data(), x.size() * 2), t, ids_d, w_d, out) && same_bits(fetch16(out, t * h), got);
  for (int64_t r = 0; r < t && same; r++) {
    void* o1 = c.put(nullptr, h * 2);
    same = experts(c.put(&x[r * h], h * 2), 1, c.put(&ids[r * top_k], top_k * 4), c.put(&w[r * top_k], top_k * 4), o1) &&
           same_bits(fetch16(o1, h), std::vector<uint16_t>(got.begin() + r * h, got.begin() + (r + 1) * h));
  }
  c.report(same, "moe.experts: the same bits again and for each token alone (bits)", seed);
  // a bad id (token 1, slot 0): E_ARG at the next sync naming [1, 0]; then the device works on
  ids[top_k] = static_cast<int32_t>(e);
  c.api->upload(c.d, ids_d, ids.data(), ids.size() * 4, &c.st);
  experts(c.put(x.data(), x.size() * 2), t, ids_d, w_d, out);
  const int rc = c.api->sync(c.d, &c.st);
  char expect[96];
  std::snprintf(expect, sizeof expect, "but received %lld at [1, 0]", static_cast<long long>(e));
  const bool reported = rc == GLMK_E_ARG && std::strstr(c.st.message, expect) != nullptr;
  c.report(reported, "moe.experts: a bad id is reported at sync", seed);
  c.st = glmk_status{};
  c.ok = c.ok && c.api->sync(c.d, &c.st) == GLMK_OK;
}

}  // namespace

// Runs the checks on an open device; prints one line each; true when all passed.
bool fp8_moe_check(const glmk_device_api* api, glmk_device* d, uint64_t seed) {
  Ctx c{api, d};
  if (!api->fp8_matmul || !api->moe_route || !api->moe_experts) {
    std::printf("FAIL the plugin has no fp8_matmul / moe_route / moe_experts\n");
    return false;
  }
  check_matmul(c, seed, 3, 37, 300, 128);
  check_matmul(c, seed, 2, 20, 129, 1);
  check_matmul(c, seed, 19, 70, 256, 128, true);  // two m-tiles, two column blocks, NaN codes
  check_route(c, seed, 3, 100, 64, 6, 8, 4);
  check_route(c, seed, 2, 48, 32, 4, 1, 1);
  check_experts(c, seed, 3, 136, 72, 4, 2, 40, 128);
  check_experts(c, seed, 37, 136, 72, 3, 2, 40, 1);  // > 16 rows per expert (two m-tiles), an idle expert, blocks [1, 128]
  // H, I and the shared I in whole 128-blocks: the pipelined grouped products (moe.cuh moe_*_pipe_kernel)
  check_experts(c, seed, 3, 256, 128, 4, 2, 128, 128);
  check_experts(c, seed, 37, 128, 256, 3, 2, 0, 1);
  check_experts(c, seed, 130, 128, 128, 16, 8, 0, 128);  // 1040 slots: the block grouping's two chunks
  return c.ok;
}
