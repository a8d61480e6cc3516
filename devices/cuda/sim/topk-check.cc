// The CUDA top-k under the emulator, checked against a plain C++ reference, straight through the device ABI
// (no Node), fp8.matmul / moe.route / moe.experts against theirs (fp8-moe-check.cc) and matmul /
// int4.matmul against theirs (matmul-check.cc). Built as
// topk-sim-check and, with AddressSanitizer, topk-sim-check-asan: CI runs both.
// Usage: topk-sim-check [seeds=3] [quick]   (quick: only the cases of at most 200K scores, for sanitizers)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "glmk/device.h"
#include "glmk/score-key.h"

extern "C" const glmk_device_api* glmk_plugin_entry(uint32_t);
bool fp8_moe_check(const glmk_device_api* api, glmk_device* d, uint64_t seed);  // fp8-moe-check.cc
bool matmul_ref_check(const glmk_device_api* api, glmk_device* d, uint64_t seed);  // matmul-check.cc
bool pipe_parity_check(const glmk_device_api* api, uint64_t seed);                 // pipe-check.cc

namespace {

struct Case {
  const char* name;
  int dtype;
  int64_t rows, cols, k;
  int gen;  // 0 uniform, 1 ties, 2 special values, 3 constant
  bool ragged;
};

uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return static_cast<uint32_t>(x ^ (x >> 33));
}

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Raw f32 bits for element i of case c.
uint32_t gen_bits(const Case& c, uint64_t i, uint64_t seed) {
  uint32_t r = mix(i * 0x9E3779B97F4A7C15ull + seed);
  switch (c.gen) {
    case 1: return f32_bits(static_cast<float>(r % 37) - 18.0f);
    case 2: {
      static const uint32_t special[] = {0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x80000000u, 0u, 0x7F800000u,
                                         0xFF800000u, 1u, 0x80000001u, 0x3F800000u};
      return r % 4 == 0 ? special[(r >> 8) % 10] : f32_bits(static_cast<float>(r % 1000) / 7.0f - 70.0f);
    }
    case 3: return f32_bits(0.5f);
    default: return f32_bits(static_cast<float>(r) / 4294967296.0f * 2.0f - 1.0f);
  }
}

uint16_t to_half_bits(uint32_t b, int dtype) {
  if (dtype == GLMK_BF16) return static_cast<uint16_t>(b >> 16);  // truncation keeps NaN payloads' sign
  float f;
  std::memcpy(&f, &b, 4);
  if (f != f) return static_cast<uint16_t>(((b >> 16) & 0x8000u) | 0x7E00u);
  if (f == __builtin_inff() || f == -__builtin_inff()) return static_cast<uint16_t>(((b >> 16) & 0x8000u) | 0x7C00u);
  _Float16 h = static_cast<_Float16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

uint32_t bits_at(const std::vector<unsigned char>& data, int dtype, int64_t i) {
  if (dtype == GLMK_F32) {
    uint32_t u;
    std::memcpy(&u, &data[i * 4], 4);
    return u;
  }
  uint16_t h;
  std::memcpy(&h, &data[i * 2], 2);
  return dtype == GLMK_BF16 ? glmk_bf16_to_f32_bits(h) : glmk_f16_to_f32_bits(h);
}

struct Dev {
  const glmk_device_api* api;
  glmk_device* d = nullptr;
  glmk_status st{};
  void must(int rc, const char* what) {
    if (rc != GLMK_OK) {
      std::fprintf(stderr, "%s: %s\n", what, st.message);
      std::exit(2);
    }
  }
  void* put(const void* src, size_t bytes) {
    void* p = nullptr;
    must(api->alloc(d, bytes, &p, &st), "alloc");
    if (src) must(api->upload(d, p, src, bytes, &st), "upload");
    return p;
  }
};

bool run_case(Dev& dev, const Case& c, uint64_t seed) {
  const size_t es = c.dtype == GLMK_F32 ? 4 : 2;
  std::vector<unsigned char> data(static_cast<size_t>(c.rows * c.cols) * es);
  for (int64_t i = 0; i < c.rows * c.cols; i++) {
    uint32_t b = gen_bits(c, static_cast<uint64_t>(i), seed);
    if (es == 4) std::memcpy(&data[i * 4], &b, 4);
    else {
      uint16_t h = to_half_bits(b, c.dtype);
      std::memcpy(&data[i * 2], &h, 2);
    }
  }
  std::vector<int32_t> starts(c.rows, 0), lengths(c.rows, static_cast<int32_t>(c.cols));
  if (c.ragged)
    for (int64_t r = 0; r < c.rows; r++) {
      starts[r] = static_cast<int32_t>(mix(seed * 31 + r) % (c.cols / 3 + 1));
      lengths[r] = static_cast<int32_t>(mix(seed * 37 + r) % (c.cols - starts[r] + 1));
      if (r == 0) lengths[r] = 0;
    }
  void* s = dev.put(data.data(), data.size());
  void* ls = c.ragged ? dev.put(lengths.data(), c.rows * 4) : nullptr;
  void* rs = c.ragged ? dev.put(starts.data(), c.rows * 4) : nullptr;
  void* oi = dev.put(nullptr, c.rows * c.k * 4);
  void* ov = dev.put(nullptr, c.rows * c.k * 4);
  glmk_topk_args a{s, c.dtype, 0, c.rows, c.cols, c.k, static_cast<const int32_t*>(ls), static_cast<const int32_t*>(rs),
                   static_cast<int32_t*>(oi), static_cast<float*>(ov)};
  auto t0 = std::chrono::steady_clock::now();
  dev.must(dev.api->topk(dev.d, &a, &dev.st), "topk");
  std::vector<int32_t> gi(c.rows * c.k);
  std::vector<uint32_t> gv(c.rows * c.k);
  dev.must(dev.api->download(dev.d, gi.data(), oi, gi.size() * 4, &dev.st), "download");
  dev.must(dev.api->download(dev.d, gv.data(), ov, gv.size() * 4, &dev.st), "download");
  dev.must(dev.api->sync(dev.d, &dev.st), "sync");
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (void* p : {s, ls, rs, oi, ov})
    if (p) dev.api->free(dev.d, p, &dev.st);
  // reference: stable sort of the window by key, descending
  for (int64_t r = 0; r < c.rows; r++) {
    std::vector<std::pair<uint32_t, int32_t>> w;
    for (int32_t i = 0; i < lengths[r]; i++)
      w.push_back({glmk_key_from_f32_bits(bits_at(data, c.dtype, r * c.cols + starts[r] + i)), i});
    std::stable_sort(w.begin(), w.end(), [](auto& x, auto& y) { return x.first > y.first; });
    for (int64_t j = 0; j < c.k; j++) {
      int32_t wi = j < static_cast<int64_t>(w.size()) ? w[j].second : -1;
      uint32_t wv = wi < 0 ? GLMK_F32_NEG_INF_BITS : glmk_output_bits(bits_at(data, c.dtype, r * c.cols + starts[r] + wi));
      if (gi[r * c.k + j] != wi || gv[r * c.k + j] != wv) {
        std::printf("FAIL %s seed %llu: row %lld slot %lld: got (%d, %08x) want (%d, %08x)\n", c.name,
                    static_cast<unsigned long long>(seed), static_cast<long long>(r), static_cast<long long>(j),
                    gi[r * c.k + j], gv[r * c.k + j], wi, wv);
        return false;
      }
    }
  }
  std::printf("ok   %s seed %llu (%.1f ms)\n", c.name, static_cast<unsigned long long>(seed), ms);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 3;
  const bool quick = argc > 2 && std::strcmp(argv[2], "quick") == 0;
  const Case cases[] = {
      {"f32 uniform 3x5000 k100 (block per row)", GLMK_F32, 3, 5000, 100, 0, false},
      {"f32 ties 4x40000 k2048 (segments)", GLMK_F32, 4, 40000, 2048, 1, false},
      {"bf16 special 5x20000 k512 ragged (segments)", GLMK_BF16, 5, 20000, 512, 2, true},
      {"f16 uniform 2x30000 k5000 (sampled, large k)", GLMK_F16, 2, 30000, 5000, 0, false},
      {"f32 uniform 1x60000 k5000 (segments, large k)", GLMK_F32, 1, 60000, 5000, 0, false},
      {"f32 uniform 2x20000 k9000 (exact path, sort in global memory)", GLMK_F32, 2, 20000, 9000, 0, false},
      {"bf16 ties 1x100000 k9000 (segments, exact path, global sort)", GLMK_BF16, 1, 100000, 9000, 1, false},
      {"f32 constant 2x50000 k2048 (every key tied: exact path)", GLMK_F32, 2, 50000, 2048, 3, false},
      {"f32 constant 140x9000 k1000 (every key tied, many rows: exact path)", GLMK_F32, 140, 9000, 1000, 3, false},
      {"f32 special 1x1 k1", GLMK_F32, 1, 1, 1, 2, false},
      {"f16 special 200x3000 k2048 ragged (many rows)", GLMK_F16, 200, 3000, 2048, 2, true},
  };
  bool ok = true, moe_ok = true, mm_ok = true;
  for (int sd = 1; sd <= seeds; sd++) {
    Dev dev{glmk_plugin_entry(GLMK_ABI_VERSION)};
    glmk_open_options o{0, 1, static_cast<uint64_t>(sd), "auto"};
    dev.must(dev.api->open(&o, &dev.d, &dev.st), "open");
    for (const Case& c : cases)
      if (!quick || c.rows * c.cols <= 200000) ok = run_case(dev, c, static_cast<uint64_t>(sd)) && ok;
    // a bad length inside the lengths tensor: reported at the next sync, and the device goes on working
    float x[4] = {1, 2, 3, 4};
    int32_t bad[2] = {1, 5};
    void* s = dev.put(x, sizeof x);
    void* l = dev.put(bad, sizeof bad);
    void* out = dev.put(nullptr, 16);
    glmk_topk_args a{s, GLMK_F32, 0, 2, 2, 1, static_cast<const int32_t*>(l), nullptr, static_cast<int32_t*>(out),
                     static_cast<float*>(out) + 2};
    dev.api->topk(dev.d, &a, &dev.st);
    int rc = dev.api->sync(dev.d, &dev.st);
    bool reported = rc == GLMK_E_ARG && std::strstr(dev.st.message, "topk: Expected lengths[1]") != nullptr;
    std::printf("%s a bad lengths value is reported at sync: %s\n", reported ? "ok  " : "FAIL", dev.st.message);
    for (void* p : {s, l, out}) dev.api->free(dev.d, p, &dev.st);
    ok = ok && reported && dev.api->sync(dev.d, &dev.st) == GLMK_OK;
    moe_ok = fp8_moe_check(dev.api, dev.d, static_cast<uint64_t>(sd)) && moe_ok;
    mm_ok = matmul_ref_check(dev.api, dev.d, static_cast<uint64_t>(sd)) && mm_ok;
    dev.api->close(dev.d);
    mm_ok = pipe_parity_check(dev.api, static_cast<uint64_t>(sd)) && mm_ok;
  }
  const char* kind = glmk_plugin_entry(GLMK_ABI_VERSION)->kind;
  std::printf("topk on %s %s\n", kind, ok ? "passed" : "FAILED");
  std::printf("fp8.matmul, moe.route and moe.experts on %s %s\n", kind, moe_ok ? "passed" : "FAILED");
  std::printf("matmul and int4.matmul on %s %s\n", kind, mm_ok ? "passed" : "FAILED");
  return ok && moe_ok && mm_ok ? 0 : 1;
}
