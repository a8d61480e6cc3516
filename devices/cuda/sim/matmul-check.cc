// matmul and int4.matmul of the cuda plugin (under the emulator or on a GPU) against a plain C++ model of the
// CPU device's written order (devices/cpu/gemm.cc gemm_block_scalar), straight through the device ABI; small
// shapes (topk-check.cc calls it, also under ASan). f16 and f32 x (SIMT kernels, devices/cuda/matmul.cuh):
// the CPU's bits. bf16 x (tensor cores, devices/cuda/matmul-mma.cuh): within the stated tolerance of the CPU's
// order, infinities and NaNs exactly; and bit for bit on the device: int4.matmul(x, quantize(w)) ==
// matmul(x, dequantize(quantize(w))) (as bf16 and as f32 weights), each row alone == inside a batch of 19
// (two m-tiles), and the same bytes under every schedule seed of one process. Also K = 0, and bad arguments
// refused at the call.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check-util.hpp"
#include "glmk/device.h"
#include "glmk/int4-arith.h"

namespace {

using glmk_check::Ctx;
using glmk_check::mix32;
using glmk_check::same_bits;

// A matrix of dtype (f32, f16 or bf16) as its bytes, and its values widened.
struct Mat {
  int dtype;
  std::vector<uint8_t> bytes;
  std::vector<float> v;
};

// rows x cols seeded values: normal numbers of mixed sign and magnitude, a few subnormals (f32 ones round
// to zero in bf16 / f16, theirs stay) and, with special, infinities, NaN and -0.
Mat make(int dtype, int64_t rows, int64_t cols, uint64_t seed, bool special = false) {
  Mat m{dtype, {}, std::vector<float>(rows * cols)};
  const size_t size = dtype == GLMK_F32 ? 4 : 2;
  m.bytes.resize(m.v.size() * size);
  for (size_t i = 0; i < m.v.size(); i++) {
    const uint32_t h = mix32(i * 0x9E3779B97F4A7C15ull + seed), e = mix32(h + seed);
    uint32_t bits = (h & 0x80000000u) | ((112 + e % 24) << 23) | (h & 0x7FFFFFu);
    if (e % 29 == 0) bits &= 0x807FFFFFu;  // an f32 subnormal
    if (dtype == GLMK_F16 && e % 31 == 0) bits = (h & 0x80000000u) | 0x33800000u | (h & 0x3FFFFFu);  // an f16 subnormal
    if (special && e % 37 == 0) {
      const uint32_t s[] = {0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x80000000u};
      bits = s[h % 4];
    }
    if (dtype == GLMK_F32) {
      std::memcpy(&m.bytes[i * 4], &bits, 4);
      m.v[i] = glmk_f32_from_bits(bits);
      continue;
    }
    const uint16_t b = dtype == GLMK_BF16 ? glmk_bf16_rne(bits) : glmk_f16_rne(bits);
    std::memcpy(&m.bytes[i * 2], &b, 2);
    m.v[i] = glmk_f32_from_bits(dtype == GLMK_BF16 ? glmk_bf16_to_f32_bits(b) : glmk_f16_to_f32_bits(b));
  }
  return m;
}

// Random int4 codes and bf16 scales for [n, k] in groups of g, and the weights they decode to.
struct Int4 {
  std::vector<int32_t> packed;
  std::vector<uint16_t> scales;
  std::vector<float> v;
};
Int4 make_int4(int64_t n, int64_t k, int64_t g, uint64_t seed) {
  Int4 q{std::vector<int32_t>(n * k / 8), std::vector<uint16_t>(n * k / g), std::vector<float>(n * k)};
  for (size_t i = 0; i < q.scales.size(); i++) q.scales[i] = glmk_bf16_rne(0x3A000000u + (mix32(i + seed) & 0x03FFFFFFu));
  for (int64_t i = 0; i < n * k; i++) {
    const uint32_t code = mix32(i * 7 + seed) % 16;
    q.packed[i / 8] = static_cast<int32_t>(static_cast<uint32_t>(q.packed[i / 8]) | code << (4 * (i % 8)));
    const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(q.scales[(i / k) * (k / g) + (i % k) / g]));
    q.v[i] = glmk_f32_from_bits(glmk_bf16_to_f32_bits(glmk_int4_dequant(static_cast<int>(code) - 8, s)));
  }
  return q;
}

// The written order: 16 fma chains over k mod 16, the fixed tree, one rounding to x's dtype; y's bytes.
std::vector<uint8_t> matmul_ref(const std::vector<float>& x, int x_dtype, const std::vector<float>& w, int64_t m, int64_t n, int64_t k) {
  const size_t size = x_dtype == GLMK_F32 ? 4 : 2;
  std::vector<uint8_t> y(m * n * size);
  for (int64_t r = 0; r < m; r++)
    for (int64_t o = 0; o < n; o++) {
      float p[16] = {0}, q[8], s[4];
      for (int64_t c = 0; c < k; c++) p[c % 16] = std::fma(x[r * k + c], w[o * k + c], p[c % 16]);
      for (int j = 0; j < 8; j++) q[j] = p[j] + p[j + 8];
      for (int j = 0; j < 4; j++) s[j] = q[j] + q[j + 4];
      const float sum = (s[0] + s[2]) + (s[1] + s[3]);
      const uint32_t bits = glmk_bits_from_f32(sum);
      const uint16_t h = x_dtype == GLMK_BF16 ? glmk_bf16_rne(bits) : glmk_f16_rne(bits);
      std::memcpy(&y[(r * n + o) * size], size == 4 ? static_cast<const void*>(&bits) : &h, size);
    }
  return y;
}

const char* dtype_name(int t) { return t == GLMK_F32 ? "f32" : t == GLMK_BF16 ? "bf16" : t == GLMK_F16 ? "f16" : "int4"; }

// sum_k |x w| per output (the scale of the accumulation error), in double.
std::vector<double> magnitudes(const std::vector<float>& x, const std::vector<float>& w, int64_t m, int64_t n, int64_t k) {
  std::vector<double> mag(m * n);
  for (int64_t r = 0; r < m; r++)
    for (int64_t o = 0; o < n; o++)
      for (int64_t c = 0; c < k; c++) mag[r * n + o] += std::fabs(static_cast<double>(x[r * k + c]) * w[o * k + c]);
  return mag;
}

// The tensor-core kernel's tolerance (bf16 y; README "matmul"), against want (the written order's bf16 bits):
// |got - want| <= 2^-8 max(|got|, |want|) + K 2^-22 sum |x w| where sum |x w| < 2^127; the same bits where a
// product is not finite (mag inf or NaN); no promise where the finite sum reaches 2^127 (a partial sum may
// overflow in one order and not in the other). Returns the first output out of it, or -1.
int64_t first_off(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want, const std::vector<double>& mag, int64_t k) {
  for (size_t i = 0; i < mag.size(); i++) {
    uint16_t g, h;
    std::memcpy(&g, &got[2 * i], 2), std::memcpy(&h, &want[2 * i], 2);
    const double a = glmk_f32_from_bits(glmk_bf16_to_f32_bits(g)), b = glmk_f32_from_bits(glmk_bf16_to_f32_bits(h));
    if (std::isfinite(mag[i]) && mag[i] >= std::ldexp(1.0, 127)) continue;
    if (!std::isfinite(mag[i]) || !std::isfinite(a) || !std::isfinite(b)) {
      if (g != h) return static_cast<int64_t>(i);
      continue;
    }
    if (std::fabs(a - b) > std::ldexp(std::fmax(std::fabs(a), std::fabs(b)), -8) + std::ldexp(static_cast<double>(k) * mag[i], -22))
      return static_cast<int64_t>(i);
  }
  return -1;
}

// Runs a on the device (x, w and y already there) and compares y with want: bit for bit, or for bf16 x
// (mag given) within the tensor-core kernel's tolerance.
void run(Ctx& c, glmk_matmul_args a, const std::vector<uint8_t>& want, const char* what, uint64_t seed,
         const std::vector<double>* mag = nullptr) {
  const bool launched = c.api->matmul(c.d, &a, &c.st) == GLMK_OK;
  const std::vector<uint8_t> got = c.get<uint8_t>(a.y, want.size());
  const bool synced = launched && c.api->sync(c.d, &c.st) == GLMK_OK;
  const int64_t off = mag ? first_off(got, want, *mag, a.k) : -1;
  if (off >= 0) std::printf("     y[%lld] out of tolerance\n", static_cast<long long>(off));
  c.report(synced && (mag ? off < 0 : same_bits(got, want)), what, seed);
}

void check_dense(Ctx& c, uint64_t seed, int xt, int wt, int64_t m, int64_t n, int64_t k, bool special = false, bool special_x = false) {
  const Mat x = make(xt, m, k, seed, special_x), w = make(wt, n, k, seed + 1, special);
  const std::vector<uint8_t> want = matmul_ref(x.v, xt, w.v, m, n, k);
  glmk_matmul_args a{c.put(x.bytes.data(), x.bytes.size()), xt, wt, m, n, k, c.put(w.bytes.data(), w.bytes.size()), nullptr, nullptr, 0,
                     c.put(nullptr, want.size())};
  const bool mma = xt == GLMK_BF16;
  const std::vector<double> mag = mma ? magnitudes(x.v, w.v, m, n, k) : std::vector<double>();
  char what[160];
  std::snprintf(what, sizeof what, "matmul x %s w %s [%lld x %lld x %lld]%s%s (%s)", dtype_name(xt), dtype_name(wt), static_cast<long long>(m),
                static_cast<long long>(n), static_cast<long long>(k), special ? " with inf, NaN, -0" : "", special_x ? " x with inf, NaN, -0" : "",
                mma ? "tensor cores, within tolerance" : "bits");
  run(c, a, want, what, seed, mma ? &mag : nullptr);
}

void check_int4(Ctx& c, uint64_t seed, int xt, int64_t m, int64_t n, int64_t k, int64_t g) {
  const Mat x = make(xt, m, k, seed + 2);
  const Int4 q = make_int4(n, k, g, seed + 3);
  const std::vector<uint8_t> want = matmul_ref(x.v, xt, q.v, m, n, k);
  glmk_matmul_args a{c.put(x.bytes.data(), x.bytes.size()), xt, GLMK_W_INT4, m, n, k, nullptr,
                     static_cast<const int32_t*>(c.put(q.packed.data(), q.packed.size() * 4)),
                     static_cast<const uint16_t*>(c.put(q.scales.data(), q.scales.size() * 2)), g, c.put(nullptr, want.size())};
  const bool mma = xt == GLMK_BF16;
  const std::vector<double> mag = mma ? magnitudes(x.v, q.v, m, n, k) : std::vector<double>();
  char what[160];
  std::snprintf(what, sizeof what, "int4.matmul x %s [%lld x %lld x %lld] group %lld (%s)", dtype_name(xt), static_cast<long long>(m),
                static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(g), mma ? "tensor cores, within tolerance" : "bits");
  run(c, a, want, what, seed, mma ? &mag : nullptr);
}

// On the device: int4.matmul(x, quantize(w)) == matmul(x, dequantize(quantize(w)) as wq: bf16 or f32), bit for
// bit (x with infinities and NaN when special).
void check_identity(Ctx& c, uint64_t seed, int xt, int64_t m, int64_t n, int64_t k, int64_t g, int levels, int wq = GLMK_BF16,
                    bool special = false) {
  const Mat x = make(xt, m, k, seed + 4, special), w = make(GLMK_F32, n, k, seed + 5);
  const size_t ysize = m * n * (xt == GLMK_F32 ? 4 : 2);
  glmk_int4_args qa{c.put(w.bytes.data(), w.bytes.size()), GLMK_F32, levels, n, k, g, static_cast<int32_t*>(c.put(nullptr, n * k / 2)),
                    static_cast<uint16_t*>(c.put(nullptr, n * k / g * 2)), c.put(nullptr, n * k * (wq == GLMK_F32 ? 4 : 2)), wq, 0, nullptr};
  const void* xd = c.put(x.bytes.data(), x.bytes.size());
  glmk_matmul_args q4{xd, xt, GLMK_W_INT4, m, n, k, nullptr, qa.packed, qa.scales, g, c.put(nullptr, ysize)};
  glmk_matmul_args fq{xd, xt, wq, m, n, k, qa.out, nullptr, nullptr, 0, c.put(nullptr, ysize)};
  const bool launched = c.api->int4_quantize(c.d, &qa, &c.st) == GLMK_OK && c.api->int4_dequantize(c.d, &qa, &c.st) == GLMK_OK &&
                        c.api->matmul(c.d, &q4, &c.st) == GLMK_OK && c.api->matmul(c.d, &fq, &c.st) == GLMK_OK;
  const auto a = c.get<uint8_t>(q4.y, ysize), b = c.get<uint8_t>(fq.y, ysize);
  char what[192];
  std::snprintf(what, sizeof what, "int4.matmul(x %s, quantize(w)) == matmul(x, fakeQuant(w)) [%lld x %lld x %lld], group %lld, %d levels%s%s",
                dtype_name(xt), static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(g), levels, wq == GLMK_F32 ? ", f32 fakeQuant" : "", special ? ", x with inf and NaN" : "");
  c.report(launched && c.api->sync(c.d, &c.st) == GLMK_OK && same_bits(a, b), what, seed);
}

// bf16 w through the pipelined kernel (K a multiple of 64) == the same values as f32 w through the simple
// kernel (matmul-mma.cuh: mid = lo = 0), bit for bit, x with infinities and NaN.
void check_pipe_bf16(Ctx& c, uint64_t seed, int64_t m, int64_t n, int64_t k) {
  const Mat x = make(GLMK_BF16, m, k, seed + 9, true), w = make(GLMK_BF16, n, k, seed + 10, true);
  std::vector<uint32_t> wf(n * k);
  for (size_t i = 0; i < wf.size(); i++) wf[i] = glmk_bits_from_f32(w.v[i]);
  const void* xd = c.put(x.bytes.data(), x.bytes.size());
  glmk_matmul_args p{xd, GLMK_BF16, GLMK_BF16, m, n, k, c.put(w.bytes.data(), w.bytes.size()), nullptr, nullptr, 0, c.put(nullptr, m * n * 2)};
  glmk_matmul_args s = p;
  s.w_dtype = GLMK_F32, s.w = c.put(wf.data(), wf.size() * 4), s.y = c.put(nullptr, m * n * 2);
  const bool launched = c.api->matmul(c.d, &p, &c.st) == GLMK_OK && c.api->matmul(c.d, &s, &c.st) == GLMK_OK;
  const auto a = c.get<uint8_t>(p.y, m * n * 2), b = c.get<uint8_t>(s.y, m * n * 2);
  char what[160];
  std::snprintf(what, sizeof what, "matmul x bf16 [%lld x %lld x %lld]: w bf16 (pipelined) == the same w as f32 (simple kernel), with inf and NaN (bits)",
                static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k));
  c.report(launched && c.api->sync(c.d, &c.st) == GLMK_OK && same_bits(a, b), what, seed);
}

// The tensor-core kernel (bf16 x), bit for bit on the device: rows 0, 7, 16 and 18 of a batch of 19 (two
// m-tiles, different places in them) each alone, and row 16 inside a batch of 17; wt: the weight format.
// k: int4 256 and bf16 64 or 128 take the pipelined kernel (matmul-pipe.cuh), int4 128 and 80 the simple one.
void check_batch(Ctx& c, uint64_t seed, int wt, int64_t k) {
  const int64_t m = 19, n = 70;  // n: two column blocks of the simple kernel (five of the pipelined one), the last partial
  const Mat x = make(GLMK_BF16, m, k, seed + 6);
  const Mat w = make(wt == GLMK_W_INT4 ? GLMK_BF16 : wt, n, k, seed + 7);
  const Int4 q = make_int4(n, k, 32, seed + 8);
  glmk_matmul_args a{c.put(x.bytes.data(), x.bytes.size()), GLMK_BF16, wt, m, n, k, wt == GLMK_W_INT4 ? nullptr : c.put(w.bytes.data(), w.bytes.size()),
                     wt == GLMK_W_INT4 ? static_cast<const int32_t*>(c.put(q.packed.data(), q.packed.size() * 4)) : nullptr,
                     wt == GLMK_W_INT4 ? static_cast<const uint16_t*>(c.put(q.scales.data(), q.scales.size() * 2)) : nullptr,
                     wt == GLMK_W_INT4 ? 32 : 0, c.put(nullptr, m * n * 2)};
  bool good = c.api->matmul(c.d, &a, &c.st) == GLMK_OK;
  const std::vector<uint8_t> full = c.get<uint8_t>(a.y, m * n * 2);
  const int64_t rows[][2] = {{0, 1}, {7, 1}, {16, 1}, {18, 1}, {0, 17}};  // (first row, rows) of a sub-batch
  std::vector<std::vector<uint8_t>> parts;
  for (const auto& r : rows) {
    glmk_matmul_args b = a;
    b.x = static_cast<const uint8_t*>(a.x) + r[0] * k * 2, b.m = r[1], b.y = c.put(nullptr, r[1] * n * 2);
    good = c.api->matmul(c.d, &b, &c.st) == GLMK_OK && good;
    parts.push_back(c.get<uint8_t>(b.y, r[1] * n * 2));
  }
  good = good && c.api->sync(c.d, &c.st) == GLMK_OK;  // the downloads have landed
  for (size_t i = 0; i < parts.size(); i++)
    good = good && std::memcmp(parts[i].data(), full.data() + rows[i][0] * n * 2, parts[i].size()) == 0;
  char what[128];
  std::snprintf(what, sizeof what, "%s x bf16 w %s, K %lld: rows alone and in a batch of 17 == inside a batch of 19 (bits)",
                wt == GLMK_W_INT4 ? "int4.matmul" : "matmul", dtype_name(wt), static_cast<long long>(k));
  c.report(good && c.api->sync(c.d, &c.st) == GLMK_OK, what, seed);
}

// The tensor-core kernel's output for fixed inputs, the same bytes for every call of this process (each with
// another schedule seed: topk-check.cc opens the device once per seed).
void check_across_seeds(Ctx& c, uint64_t seed) {
  static std::vector<uint8_t> first;
  static uint64_t first_seed = 0;
  const int64_t m = 5, n = 40, k = 256;
  const Mat x = make(GLMK_BF16, m, k, 91), w = make(GLMK_F32, n, k, 92);
  const Int4 q = make_int4(n, k, 64, 93);
  std::vector<std::vector<uint8_t>> ys;
  bool good = true;
  for (int wt : {GLMK_W_INT4, static_cast<int>(GLMK_F32)}) {
    glmk_matmul_args a{c.put(x.bytes.data(), x.bytes.size()), GLMK_BF16, wt, m, n, k, c.put(w.bytes.data(), w.bytes.size()),
                       static_cast<const int32_t*>(c.put(q.packed.data(), q.packed.size() * 4)),
                       static_cast<const uint16_t*>(c.put(q.scales.data(), q.scales.size() * 2)), 64, c.put(nullptr, m * n * 2)};
    good = c.api->matmul(c.d, &a, &c.st) == GLMK_OK && good;
    ys.push_back(c.get<uint8_t>(a.y, m * n * 2));
  }
  good = good && c.api->sync(c.d, &c.st) == GLMK_OK;  // the downloads have landed
  std::vector<uint8_t> out;
  for (const auto& y : ys) out.insert(out.end(), y.begin(), y.end());
  if (first.empty()) first = out, first_seed = seed;
  char what[128];
  std::snprintf(what, sizeof what, "int4.matmul and matmul (f32 w) x bf16 [5 x 40 x 256]: the bytes of schedule seed %llu (bits)",
                static_cast<unsigned long long>(first_seed));
  c.report(good && same_bits(out, first), what, seed);
}

// cuda-sim only: bf16 x runs through the mma model, which sums each k16 step exactly where the CPU's order
// loses a term: x w = 2^30 at k 0, 1 at k 8, -2^30 at k 2 gives 1 (the CPU: 2^30 + 1 rounds to 2^30, so 0).
// (A GPU truncates while aligning to 2^30, so it may give either: not checked there.)
void check_model_runs(Ctx& c, uint64_t seed) {
  std::vector<uint16_t> x(16, 0), w(16, 0);
  x[0] = 0x4E80, w[0] = 0x3F80;   // 2^30 x 1
  x[8] = 0x3F80, w[8] = 0x3F80;   // 1 x 1
  x[2] = 0xCE80, w[2] = 0x3F80;   // -2^30 x 1
  glmk_matmul_args a{c.put(x.data(), 32), GLMK_BF16, GLMK_BF16, 1, 1, 16, c.put(w.data(), 32), nullptr, nullptr, 0, c.put(nullptr, 2)};
  const bool launched = c.api->matmul(c.d, &a, &c.st) == GLMK_OK;
  const std::vector<uint16_t> y = c.get<uint16_t>(a.y, 1);
  c.report(launched && c.api->sync(c.d, &c.st) == GLMK_OK && y[0] == 0x3F80,
           "matmul x bf16 runs on the mma model: 2^30 + 1 - 2^30 in one k16 step gives 1 (the CPU's order: 0)", seed);
}

// K = 0 gives +0; bad dtypes and a K that is not a multiple of the group are refused at the call.
void check_edges(Ctx& c, uint64_t seed) {
  void* y = c.put(nullptr, 6 * 2);
  void* x = c.put(nullptr, 16);
  const std::vector<uint16_t> ones(6, 0xFFFF), zeros(6, 0);
  c.api->upload(c.d, y, ones.data(), 12, &c.st);
  glmk_matmul_args a{x, GLMK_BF16, GLMK_F16, 2, 3, 0, x, nullptr, nullptr, 0, y};
  const bool launched = c.api->matmul(c.d, &a, &c.st) == GLMK_OK;
  const std::vector<uint16_t> got = c.get<uint16_t>(y, 6);
  c.report(launched && c.api->sync(c.d, &c.st) == GLMK_OK && same_bits(got, zeros), "matmul K = 0 gives +0", seed);
  glmk_matmul_args bad_x = a, bad_w = a, bad_g = a, bad_gs = a;
  bad_x.x_dtype = GLMK_I32;
  bad_w.w_dtype = GLMK_U8;
  bad_g.w_dtype = GLMK_W_INT4, bad_g.k = 48, bad_g.group_size = 32;
  bad_gs.w_dtype = GLMK_W_INT4, bad_gs.k = 96, bad_gs.group_size = 96;  // (a multiple of 32, not SPEC 4's)
  const bool refused = c.api->matmul(c.d, &bad_x, &c.st) == GLMK_E_DTYPE && c.api->matmul(c.d, &bad_w, &c.st) == GLMK_E_DTYPE &&
                       c.api->matmul(c.d, &bad_gs, &c.st) == GLMK_E_ARG && std::strstr(c.st.message, "group size 32, 64 or 128") != nullptr &&
                       c.api->matmul(c.d, &bad_g, &c.st) == GLMK_E_SHAPE && std::strstr(c.st.message, "int4.matmul: Expected K a multiple") != nullptr;
  c.st = glmk_status{};
  c.report(refused && c.api->sync(c.d, &c.st) == GLMK_OK, "matmul: bad dtypes, group size and K refused at the call", seed);
}

}  // namespace

// Runs the checks on an open device; prints one line each; true when all passed.
bool matmul_ref_check(const glmk_device_api* api, glmk_device* d, uint64_t seed) {
  Ctx c{api, d};
  if (!api->matmul) {
    std::printf("FAIL the plugin has no matmul\n");
    return false;
  }
  check_dense(c, seed, GLMK_F32, GLMK_F32, 3, 21, 100);
  check_dense(c, seed, GLMK_BF16, GLMK_BF16, 5, 17, 256);
  check_dense(c, seed, GLMK_F16, GLMK_F32, 2, 9, 37);
  check_dense(c, seed, GLMK_F32, GLMK_F16, 4, 33, 64);
  check_dense(c, seed, GLMK_BF16, GLMK_F32, 1, 40, 7);
  check_dense(c, seed, GLMK_BF16, GLMK_BF16, 3, 8, 48, true);
  check_dense(c, seed, GLMK_BF16, GLMK_F16, 17, 70, 45);
  check_dense(c, seed, GLMK_BF16, GLMK_F32, 18, 65, 100, true, true);
  check_dense(c, seed, GLMK_BF16, GLMK_BF16, 20, 9, 33, false, true);
  check_int4(c, seed, GLMK_BF16, 3, 20, 256, 32);
  check_int4(c, seed, GLMK_BF16, 17, 66, 128, 64);
  check_int4(c, seed, GLMK_BF16, 18, 33, 512, 128);
  check_int4(c, seed, GLMK_BF16, 1, 50, 256, 64);
  check_int4(c, seed, GLMK_F32, 2, 12, 384, 128);
  check_int4(c, seed, GLMK_F16, 4, 7, 128, 64);
  check_identity(c, seed, GLMK_BF16, 3, 24, 256, 32, 15);
  check_identity(c, seed, GLMK_BF16, 18, 70, 128, 128, 16, GLMK_F32);
  check_identity(c, seed, GLMK_BF16, 5, 16, 64, 32, 15, GLMK_BF16, true);
  check_identity(c, seed, GLMK_BF16, 5, 16, 64, 32, 16, GLMK_F32, true);
  check_identity(c, seed, GLMK_F32, 2, 16, 256, 128, 16);
  for (int64_t k : {128, 256}) check_batch(c, seed, GLMK_W_INT4, k);
  for (int64_t k : {80, 128}) check_batch(c, seed, GLMK_BF16, k);
  check_batch(c, seed, GLMK_F32, 80);
  // the pipelined kernel (int4 with K a multiple of 256, bf16 w of 64) against the simple one (f32 w), bits
  check_identity(c, seed, GLMK_BF16, 1, 40, 512, 32, 15, GLMK_F32);
  check_identity(c, seed, GLMK_BF16, 33, 37, 768, 64, 16, GLMK_F32, true);
  check_identity(c, seed, GLMK_BF16, 17, 16, 1024, 128, 15, GLMK_F32);
  check_pipe_bf16(c, seed, 1, 40, 192);
  check_pipe_bf16(c, seed, 35, 23, 320);
  check_across_seeds(c, seed);
  if (std::strcmp(api->kind, "cuda-sim") == 0) check_model_runs(c, seed);
  check_edges(c, seed);
  return c.ok;
}
