// The pipelined kernels (matmul-pipe.cuh, fp8-matmul-pipe.cuh) against the simple ones (matmul-mma.cuh,
// fp8-matmul-mma.cuh), bit for bit: the same inputs on two devices of one plugin, one opened with
// GLM_KERNELS_CUDA_PIPE=0; and int4's two decodes (fma.rn.bf16x2 and f32 + cvt: a third device opened with
// GLM_KERNELS_CUDA_INT4_DECODE=f32). Shapes the pipelined kernels take (K in whole stages), with ragged M and N, NaN and
// infinities, every int4 group and both fp8 scale blockings; under GLM_KERNELS_CUDA_FP8_MMA=bf16 the same on
// the bf16 mma. topk-check.cc runs it once per schedule seed (also under ASan and, built by nvcc, on a GPU).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "check-util.hpp"
#include "glmk/device.h"
#include "glmk/int4-arith.h"

namespace {

using glmk_check::Ctx;
using glmk_check::mix32;

// n seeded 16-bit values: bf16 of mixed sign and magnitude, a few infinities and NaN when special.
std::vector<uint16_t> bf16s(size_t n, uint64_t seed, bool special) {
  std::vector<uint16_t> v(n);
  for (size_t i = 0; i < n; i++) {
    const uint32_t h = mix32(i * 0x9E3779B97F4A7C15ull + seed), e = mix32(h + seed);
    v[i] = static_cast<uint16_t>(((h >> 16) & 0x8000u) | ((112 + e % 24) << 7) | (h & 0x7Fu));
    if (special && e % 41 == 0) v[i] = h % 2 ? 0x7F80u : 0x7FC1u;
  }
  return v;
}

// The op's output on one device: the same host inputs uploaded there, run, y downloaded.
struct Run {
  const glmk_device_api* api;
  uint64_t seed;
  std::string err;
  // a device opened with the variable var set to value (nullptr: as the environment has it)
  glmk_device* open(const char* var, const char* value) {
    glmk_device* d = nullptr;
    glmk_status st{};
    const char* old = var ? std::getenv(var) : nullptr;
    const std::string keep = old ? old : "";
    if (var) setenv(var, value, 1);
    glmk_open_options o{0, 1, seed, "auto"};
    const int rc = api->open(&o, &d, &st);
    if (var && old) setenv(var, keep.c_str(), 1);
    else if (var) unsetenv(var);
    if (rc != GLMK_OK) err = st.message;
    return rc == GLMK_OK ? d : nullptr;
  }
  std::string isa(glmk_device* d) {
    glmk_device_info i{};
    glmk_status st{};
    return d && api->info(d, &i, &st) == GLMK_OK ? i.isa : "?";
  }
};

template <class Launch>
std::vector<uint8_t> on(Ctx& c, size_t y_bytes, Launch launch) {
  void* y = c.put(nullptr, y_bytes);
  if (!y || !launch(y)) return {};
  std::vector<uint8_t> out = c.get<uint8_t>(y, y_bytes);
  return c.api->sync(c.d, &c.st) == GLMK_OK ? out : std::vector<uint8_t>();
}

// matmul x bf16 with w bf16 (wt GLMK_BF16) or int4 (group g) on device d.
std::vector<uint8_t> matmul_y(Ctx& c, int wt, int64_t m, int64_t n, int64_t k, int64_t g, uint64_t seed) {
  const std::vector<uint16_t> x = bf16s(m * k, seed, true), w = bf16s(n * k, seed + 1, true);
  std::vector<int32_t> packed(n * k / 8);
  std::vector<uint16_t> scales(g ? n * k / g : 0);
  for (size_t i = 0; i < packed.size(); i++) packed[i] = static_cast<int32_t>(mix32(i + seed * 7));
  for (size_t i = 0; i < scales.size(); i++) scales[i] = glmk_bf16_rne(0x3A000000u + (mix32(i + seed) & 0x03FFFFFFu));
  if (!scales.empty()) scales[0] = 0x7FC0u, scales[scales.size() / 2] = 0;  // a NaN and a zero scale
  return on(c, m * n * 2, [&](void* y) {
    glmk_matmul_args a{c.put(x.data(), x.size() * 2), GLMK_BF16, wt, m, n, k, wt == GLMK_BF16 ? c.put(w.data(), w.size() * 2) : nullptr,
                       wt == GLMK_W_INT4 ? static_cast<const int32_t*>(c.put(packed.data(), packed.size() * 4)) : nullptr,
                       wt == GLMK_W_INT4 ? static_cast<const uint16_t*>(c.put(scales.data(), scales.size() * 2)) : nullptr, g, y};
    return c.api->matmul(c.d, &a, &c.st) == GLMK_OK;
  });
}

// fp8.matmul x bf16 [m, k], w e4m3 [n, k] (NaN codes at two places) with scaleInv per [bn, 128], y of dtype yt.
std::vector<uint8_t> fp8_y(Ctx& c, int64_t m, int64_t n, int64_t k, int64_t bn, int yt, uint64_t seed) {
  const std::vector<uint16_t> x = bf16s(m * k, seed + 2, false);
  std::vector<uint8_t> w(n * k);
  for (size_t i = 0; i < w.size(); i++) w[i] = static_cast<uint8_t>(mix32(i + seed * 13) & 0xF7u);  // no NaN codes but
  w[3] = 0x7F, w[k + 5] = 0xFF;                                                                     // these two
  std::vector<float> s(((n + bn - 1) / bn) * (k / 128));
  for (size_t i = 0; i < s.size(); i++) s[i] = static_cast<float>(1 + mix32(i + seed) % 7) * 0.0078125f;
  return on(c, m * n * (yt == GLMK_F32 ? 4 : 2), [&](void* y) {
    glmk_fp8_matmul_args a{static_cast<const uint16_t*>(c.put(x.data(), x.size() * 2)), m, n, k, static_cast<const uint8_t*>(c.put(w.data(), w.size())),
                           static_cast<const float*>(c.put(s.data(), s.size() * 4)), bn, y, yt, 0};
    return c.api->fp8_matmul(c.d, &a, &c.st) == GLMK_OK;
  });
}

}  // namespace

// Runs the parity checks for one schedule seed; prints one line each; true when all passed.
bool pipe_parity_check(const glmk_device_api* api, uint64_t seed) {
  Run r{api, seed, ""};
  glmk_device* dp = r.open(nullptr, nullptr);
  glmk_device* ds = r.open("GLM_KERNELS_CUDA_PIPE", "0");
  glmk_device* df = r.open("GLM_KERNELS_CUDA_INT4_DECODE", "f32");
  bool all = dp && ds && df;
  if (!all) std::printf("FAIL pipelined == simple kernels: cannot open the devices: %s\n", r.err.c_str());
  // the paths each device chose at open (info's isa: fp8 mma / int4 decode)
  std::printf("paths: default %s, GLM_KERNELS_CUDA_PIPE=0 %s, GLM_KERNELS_CUDA_INT4_DECODE=f32 %s\n", r.isa(dp).c_str(), r.isa(ds).c_str(),
              r.isa(df).c_str());
  if (all) {
    Ctx p{api, dp}, s{api, ds}, f{api, df};
    auto same = [&](const char* what, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
      const bool good = !a.empty() && a == b;
      std::printf("%s pipelined == simple kernel, %s (bits) seed %llu\n", good ? "ok  " : "FAIL", what, static_cast<unsigned long long>(seed));
      all = all && good;
    };
    const struct {
      int wt;
      int64_t m, n, k, g;
      const char* what;
    } mm[] = {{GLMK_BF16, 1, 40, 192, 0, "matmul w bf16 [1 x 40 x 192], inf and NaN"},
              {GLMK_BF16, 37, 21, 256, 0, "matmul w bf16 [37 x 21 x 256], inf and NaN"},
              {GLMK_W_INT4, 1, 48, 512, 32, "int4.matmul [1 x 48 x 512] group 32, a NaN and a zero scale"},
              {GLMK_W_INT4, 20, 33, 768, 64, "int4.matmul [20 x 33 x 768] group 64, a NaN and a zero scale"},
              {GLMK_W_INT4, 17, 16, 1024, 128, "int4.matmul [17 x 16 x 1024] group 128, a NaN and a zero scale"}};
    for (const auto& t : mm) {
      const std::vector<uint8_t> y = matmul_y(p, t.wt, t.m, t.n, t.k, t.g, seed);
      same(t.what, y, matmul_y(s, t.wt, t.m, t.n, t.k, t.g, seed));
      if (t.wt != GLMK_W_INT4) continue;
      const bool good = !y.empty() && y == matmul_y(f, t.wt, t.m, t.n, t.k, t.g, seed);
      std::printf("%s int4 decoded by fma.rn.bf16x2 == by f32 and cvt, %s (bits) seed %llu\n", good ? "ok  " : "FAIL", t.what,
                  static_cast<unsigned long long>(seed));
      all = all && good;
    }
    const struct {
      int64_t m, n, k, bn;
      int yt;
      const char* what;
    } f8[] = {{1, 40, 512, 128, GLMK_BF16, "fp8.matmul [1 x 40 x 512] block 128, NaN codes, y bf16"},
              {19, 70, 256, 128, GLMK_F32, "fp8.matmul [19 x 70 x 256] block 128, NaN codes, y f32"},
              {33, 23, 384, 1, GLMK_F32, "fp8.matmul [33 x 23 x 384] block 1, NaN codes, y f32"}};
    for (const auto& t : f8) same(t.what, fp8_y(p, t.m, t.n, t.k, t.bn, t.yt, seed), fp8_y(s, t.m, t.n, t.k, t.bn, t.yt, seed));
  }
  for (glmk_device* d : {dp, ds, df})
    if (d) api->close(d);
  return all;
}
