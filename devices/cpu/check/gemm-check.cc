// cpu-gemm-check: the int4 GEMM kernels of the CPU device against its scalar kernel, on the f32 sums (the
// op rounds them to x's dtype, which would hide a last-bit difference), bit for bit:
//   int4_block_avx2 (AVX2 + FMA), int4_block_avx512 (AVX-512 F/BW), int4_block_vbmi (+VBMI), int4_block_bf16 (+BF16: VDPBF16PS where it
//   is exact, the fma kernel where it is not), each as far as this CPU runs it;
// over every one of the 65536 bf16 scales, x rows of every exponent range (normal, tiny, holding a
// subnormal, huge, inf/NaN), 1, 4 and 5 rows of x, groups 32, 64, 128 and K with a half step at its end.
// And fp8.matmul's tiles (AVX-512; VDPBF16PS) against a scalar model of SPEC 5's order: every code pair, NaN
// codes, partial blocks, both weight block shapes.
// Built by CMakeLists.txt (with AddressSanitizer too: the kernels must not read past a row), run by CI.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include <algorithm>

#include "../gemm.hpp"
#include "../isa.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/gemm-order.h"
#include "glmk/int4-arith.h"

using namespace glmk::cpu;

namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// bf16 x row values (as f32) of one kind.
float x_value(std::mt19937& rng, int kind, int64_t c) {
  const uint32_t sign = (rng() & 1u) << 31, mant = (rng() & 0x7Fu) << 16;
  uint32_t e;
  switch (kind) {
    case 0: e = 120 + rng() % 12; break;            // around 1
    case 1: e = 60 + rng() % 8; break;              // tiny: the VDPBF16PS kernel refuses small scales
    case 2: e = c == 5 ? 0 : 110 + rng() % 20; break;  // one subnormal
    case 3: e = 220 + rng() % 20; break;            // huge: products overflow
    case 5: e = 0; break;                            // all subnormal
    case 6: return from_bits(((120 + rng() % 12) << 23) | mant);  // positive, around 1, never 0
    default: e = c == 7 ? 255 : 100 + rng() % 40; break;  // an inf or NaN
  }
  if (rng() % 16 == 0) return 0.0f;
  return from_bits(sign | (e << 23) | mant);
}

int failures = 0;

// A finite value no kernel computes here: what a sum left unwritten keeps (NaN would pass where the scalar
// kernel gives NaN).
const float kUnwritten = -1.2345678e37f;

void compare(const char* what, const std::vector<float>& want, const std::vector<float>& got, int64_t m, int64_t n) {
  for (int64_t i = 0; i < m * n; i++) {
    const bool nan = std::isnan(want[i]) && std::isnan(got[i]);  // (the op writes every NaN as 0x7FC00000)
    if (!nan && bits_of(want[i]) != bits_of(got[i])) {
      if (failures++ < 10)
        std::printf("MISMATCH %s: y[%ld, %ld] scalar %a (0x%08x), kernel %a (0x%08x)\n", what, long(i / n), long(i % n), want[i],
                    bits_of(want[i]), got[i], bits_of(got[i]));
    }
  }
}

// Dense weights (f32, f16, bf16) of m x rows of x kinds 0 (ordinary) and 2 (a subnormal): the AVX2 and
// AVX-512 kernels against the scalar kernel, every sum written.
void run_dense(Isa isa, std::mt19937& rng, int64_t m, int64_t n, int64_t k, int32_t dtype) {
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; i++)
    for (int64_t c = 0; c < k; c++) x[i * k + c] = x_value(rng, i % 2 ? 2 : 0, c);
  std::vector<float> w32(static_cast<size_t>(n * k));
  std::vector<uint16_t> w16(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n * k; i++) {
    const float v = x_value(rng, 0, i % k);
    w32[i] = v;
    w16[i] = dtype == GLMK_F16 ? glmk_f16_rne(bits_of(v)) : static_cast<uint16_t>(bits_of(v) >> 16);  // (bf16: exact)
  }
  GemmBlock b{x.data(), m, k, dtype, dtype == GLMK_F32 ? static_cast<const void*>(w32.data()) : w16.data(), nullptr, nullptr, 0, 0, n, n, nullptr};
  std::vector<float> want(static_cast<size_t>(m * n)), got(static_cast<size_t>(m * n));
  b.y = want.data();
  gemm_block_scalar(b);
  char what[96];
  for (int level = 0; level < 2; level++) {
    if (level == 0 ? isa < Isa::avx2 : isa < Isa::avx512) continue;
    std::fill(got.begin(), got.end(), kUnwritten);  // every sum must be written (the op reuses its buffers)
    b.y = got.data();
    if (level == 0) gemm_block_avx2(b);
    else gemm_block_avx512(b);
    std::snprintf(what, sizeof what, "dense dtype %d, %ld x %ld x %ld, %s", int(dtype), long(m), long(n), long(k), level ? "avx512" : "avx2");
    compare(what, want, got, m, n);
  }
}

// The pool when an item throws (as a kernel's scratch allocation may): parallel_for rethrows the first
// exception once no worker is inside (under ASan: nothing touches the caller's frame after it), whether the
// calling thread or a worker threw, and the pool runs the next job whole.
void pool_checks() {
  Pool pool(2, 200);
  int threw = 0, by_worker = 0;
  for (int round = 0; round < 400; round++) {
    std::vector<int> seen(64, 0);
    try {
      pool.parallel_for(64, [&](int64_t i, int worker) {
        seen[i]++;
        if (round % 2 ? worker == 1 && i >= round % 64 : i == round % 64) throw std::runtime_error(worker ? "worker" : "caller");
      });
    } catch (const std::runtime_error& e) {
      threw++;
      by_worker += std::strcmp(e.what(), "worker") == 0;
    }
    for (int v : seen)
      if (v > 1) failures++;
    std::vector<int> all(64, 0);
    pool.parallel_for(64, [&](int64_t i, int) { all[i]++; });
    for (int v : all)
      if (v != 1) failures++;
  }
  // every even round throws; an odd one only if the worker got an item at or past round % 64
  std::printf("pool: %d of 400 jobs threw (%d in a worker), each rethrown by parallel_for; the next job ran whole\n", threw, by_worker);
  if (threw < 200) failures++;
}

// positive: every code q >= 0 (with x of kind 6, an overflowing weight then gives +inf, not NaN)
void run_case(Isa isa, std::mt19937& rng, int64_t n, int64_t k, int64_t gs, const std::vector<uint16_t>& scales,
              const std::vector<int>& kinds, const char* name, bool positive = false) {
  const int64_t m = static_cast<int64_t>(kinds.size());
  std::vector<int32_t> packed(static_cast<size_t>(n * k / 8));
  for (auto& v : packed) v = static_cast<int32_t>(rng() | (positive ? 0x88888888u : 0u));
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; i++)
    for (int64_t c = 0; c < k; c++) x[i * k + c] = x_value(rng, kinds[i], c);
  GemmBlock b{x.data(), m, k, GLMK_W_INT4, nullptr, packed.data(), scales.data(), gs, 0, n, n, nullptr};
  std::vector<float> want(static_cast<size_t>(m * n)), got(static_cast<size_t>(m * n));
  b.y = want.data();
  gemm_block_scalar(b);
  char what[160];
  if (isa >= Isa::avx2) {
    std::fill(got.begin(), got.end(), kUnwritten);  // every sum must be written (the op reuses its buffers)
    b.y = got.data();
    int4_block_avx2(b);
    std::snprintf(what, sizeof what, "%s avx2", name);
    compare(what, want, got, m, n);
  }
  if (isa >= Isa::avx512) {
    std::fill(got.begin(), got.end(), kUnwritten);  // every sum must be written (the op reuses its buffers)
    b.y = got.data();
    int4_block_avx512(b);
    std::snprintf(what, sizeof what, "%s avx512", name);
    compare(what, want, got, m, n);
  }
  if (isa >= Isa::avx512vbmi) {
    std::fill(got.begin(), got.end(), kUnwritten);  // every sum must be written (the op reuses its buffers)
    b.y = got.data();
    int4_block_vbmi(b);
    std::snprintf(what, sizeof what, "%s avx512vbmi", name);
    compare(what, want, got, m, n);
  }
  if (isa >= Isa::avx512bf16) {
    std::vector<uint16_t> pairs(static_cast<size_t>(m * k));
    std::vector<int32_t> emin(static_cast<size_t>(m));
    int4_bf16_prepare(x.data(), m, k, pairs.data(), emin.data());
    b.x_bf16 = true;
    b.x_pairs = pairs.data();
    b.x_emin = emin.data();
    std::fill(got.begin(), got.end(), kUnwritten);  // every sum must be written (the op reuses its buffers)
    b.y = got.data();
    int4_block_bf16(b);
    std::snprintf(what, sizeof what, "%s avx512bf16", name);
    compare(what, want, got, m, n);
  }
}

}  // namespace

// fp8.matmul's tile kernels (fp8-matmul-avx512.cc, and fp8-matmul-bf16.cc where VDPBF16PS is exact) against a
// scalar model of the written order (gemm.hpp: per 128-K block 16 fma chains over k mod 16 from +0, the fixed
// tree, then acc = acc + (p * sa) * ws), on the f32 sums, bit for bit (NaN: any NaN).
float e4m3_value(uint8_t c) { return from_bits(glmk_e4m3_to_f32_bits(c)); }

void fp8_case(Isa isa, int64_t m, int64_t n, int64_t k, int64_t block_n, const std::vector<uint8_t>& xcodes, const std::vector<uint8_t>& data,
              std::mt19937& rng, const char* name) {
  const int64_t blocks = (k + 127) / 128, nb = (n + block_n - 1) / block_n;
  std::vector<float> xa(static_cast<size_t>(m * k)), sa(static_cast<size_t>(m * blocks)), ws(static_cast<size_t>(nb * blocks));
  for (int64_t i = 0; i < m * k; i++) xa[i] = e4m3_value(xcodes[i]);
  for (auto& v : sa) v = from_bits(((100 + rng() % 40) << 23) | (rng() & 0x7FFFFF));
  for (auto& v : ws) v = from_bits(((100 + rng() % 40) << 23) | (rng() & 0x7FFFFF));
  std::vector<float> want(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; i++)
    for (int64_t r = 0; r < n; r++) {
      float acc = 0.0f;
      for (int64_t j = 0; j < blocks; j++) {
        float p[16] = {0};
        for (int64_t c = j * 128; c < std::min(k, (j + 1) * 128); c++) p[c % 16] = std::fma(xa[i * k + c], e4m3_value(data[r * k + c]), p[c % 16]);
        acc = acc + (glmk_reduce16(p) * sa[i * blocks + j]) * ws[(r / block_n) * blocks + j];
      }
      want[i * n + r] = acc;
    }
  std::vector<uint32_t> pairs(static_cast<size_t>(m * blocks * 64));
  for (int kernel = 0; kernel < 2; kernel++) {
    if (kernel == 0 && isa < Isa::avx512) continue;
    if (kernel == 1 && (isa < Isa::avx512bf16 || !vdpbf16ps_exact())) continue;
    if (kernel == 1) fp8_bf16_prepare(xa.data(), m, k, pairs.data());  // (AVX-512 code: only where it runs)
    std::vector<float> got(static_cast<size_t>(m * n)), tile(static_cast<size_t>(m * 16));
    for (int64_t t0 = 0; t0 < n; t0 += 16) {
      const int64_t rows = std::min<int64_t>(16, n - t0), next = std::min<int64_t>(16, std::max<int64_t>(0, n - t0 - 16));
      if (kernel == 0) fp8_tile_avx512(xa.data(), sa.data(), m, k, data.data(), ws.data(), block_n, t0, rows, next, tile.data());
      else fp8_tile_bf16(pairs.data(), sa.data(), m, k, data.data(), ws.data(), block_n, t0, rows, next, tile.data());
      for (int64_t i = 0; i < m; i++)
        for (int64_t r = 0; r < rows; r++) got[i * n + t0 + r] = tile[i * 16 + r];
    }
    char what[160];
    std::snprintf(what, sizeof what, "fp8 %s, %s", kernel ? "VDPBF16PS tile" : "AVX-512 tile", name);
    compare(what, want, got, m, n);
  }
}

void fp8_checks(Isa isa, std::mt19937& rng) {
  std::printf("fp8 tiles checked against the scalar model: AVX-512 %s, VDPBF16PS %s\n", isa >= Isa::avx512 ? "yes" : "no (not on this CPU)",
              isa < Isa::avx512bf16 ? "no (not on this CPU)" : vdpbf16ps_exact() ? "yes" : "no (this CPU's VDPBF16PS order differs)");
  // every (activation code, weight code) pair at every k of a block: x row i holds code (i + c) mod 256 at c,
  // weight row r code (7 r + 3 c) mod 256; without the NaN codes (0x7F, 0xFF -> 0), then with them
  for (bool nan : {false, true}) {
    const int64_t m = 256, n = 256, k = 256;
    std::vector<uint8_t> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < m; i++)
      for (int64_t c = 0; c < k; c++) x[i * k + c] = static_cast<uint8_t>((i + c) & 255);
    for (int64_t r = 0; r < n; r++)
      for (int64_t c = 0; c < k; c++) w[r * k + c] = static_cast<uint8_t>((7 * r + 3 * c) & 255);
    if (!nan)
      for (auto* v : {&x, &w})
        for (auto& b : *v)
          if ((b & 0x7F) == 0x7F) b = 0;
    fp8_case(isa, m, n, k, 128, x, w, rng, nan ? "every code pair, NaN codes too" : "every code pair");
  }
  // random codes (a few NaN) at one and several rows, K with a partial last block, weight blocks [1, 128] too
  for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{17}})
    for (int64_t k : {int64_t{100}, int64_t{129}, int64_t{300}, int64_t{1024}})
      for (int64_t block_n : {int64_t{1}, int64_t{128}}) {
        const int64_t n = 37;
        std::vector<uint8_t> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k));
        for (auto* v : {&x, &w})
          for (auto& b : *v) {
            b = static_cast<uint8_t>(rng() & 255);
            if ((b & 0x7F) == 0x7F && rng() % 16) b ^= 1;  // NaN codes: one in 2048
          }
        char name[96];
        std::snprintf(name, sizeof name, "random codes, m %ld, K %ld, block_n %ld", long(m), long(k), long(block_n));
        fp8_case(isa, m, n, k, block_n, x, w, rng, name);
      }
}

int main() {
  const Isa isa = isa_detect();
  std::printf("cpu-gemm-check: this CPU runs %s\n", isa_name(isa));
  std::mt19937 rng(7);
  const std::vector<std::vector<int>> xs = {{0}, {1}, {2}, {3}, {4}, {5}, {0, 1, 2, 3}, {0, 0, 0, 0}, {1, 0, 5, 0, 1}};
  // Every bf16 scale, in 40 groups of 32 (32 for the vector scale check, 8 for its scalar tail): row r has
  // scale r in group 0, scale 7919 r (mod 2^16: every scale once too) in group 35 and r's exponent with
  // other mantissas in the rest (so that with tiny x every product of a row may be subnormal).
  {
    const int64_t n = 65536, gs = 32, groups = 40, k = gs * groups;
    std::vector<uint16_t> scales(static_cast<size_t>(n * groups));
    for (int64_t r = 0; r < n; r++)
      for (int64_t g = 0; g < groups; g++)
        scales[r * groups + g] = static_cast<uint16_t>(g == 0 ? r : g == 35 ? (r * 7919) & 0xFFFF : (r & 0xFF80) | (rng() & 0x7F));
    for (size_t i = 0; i < xs.size(); i++) {
      char name[64];
      std::snprintf(name, sizeof name, "all scales, x kinds #%zu", i);
      run_case(isa, rng, n, k, gs, scales, xs[i], name);
    }
  }
  // The same with 33 groups, the last one an ordinary scale: the vector scale check alone decides rows
  // whose scales are huge or subnormal.
  {
    const int64_t n = 65536, gs = 32, groups = 33, k = gs * groups;
    std::vector<uint16_t> scales(static_cast<size_t>(n * groups));
    for (int64_t r = 0; r < n; r++)
      for (int64_t g = 0; g < groups; g++)
        scales[r * groups + g] = static_cast<uint16_t>(g == 0 ? r : g == 32 ? 0x3C00 + rng() % 0x200 : (r & 0xFF80) | (rng() & 0x7F));
    for (const std::vector<int>& kinds : {std::vector<int>{0}, std::vector<int>{0, 1, 2, 3}})
      run_case(isa, rng, n, k, gs, scales, kinds, "all scales, one ordinary group");
  }
  // Huge scales (biased exponent 240..255) in group 0 only, codes >= 0 and positive x: weights that
  // overflow must give +inf, as bf16(q * s) does, not a NaN.
  {
    const int64_t n = 2048, gs = 32, groups = 33, k = gs * groups;
    std::vector<uint16_t> scales(static_cast<size_t>(n * groups));
    for (int64_t r = 0; r < n; r++)
      for (int64_t g = 0; g < groups; g++) scales[r * groups + g] = static_cast<uint16_t>(g == 0 ? 0x7800 + r : 0x3C00 + rng() % 0x200);
    run_case(isa, rng, n, k, gs, scales, {6}, "huge scales", true);
  }
  // Realistic scales (1e-4 .. 1e-1, and some zero), every group size, K with and without a half step.
  for (int64_t gs : {int64_t{32}, int64_t{64}, int64_t{128}})
    for (int64_t k : {gs, 2 * gs, 3 * gs, int64_t{384}, int64_t{4096}}) {
      if (k % gs) continue;
      const int64_t n = 37;
      std::vector<uint16_t> scales(static_cast<size_t>(n * (k / gs)));
      for (auto& s : scales) s = rng() % 50 == 0 ? 0 : static_cast<uint16_t>(0x38D1 + rng() % (0x3DCD - 0x38D1));
      for (size_t i = 0; i < xs.size(); i++) {
        char name[96];
        std::snprintf(name, sizeof name, "group %ld, K %ld, x kinds #%zu", long(gs), long(k), i);
        run_case(isa, rng, n, k, gs, scales, xs[i], name);
      }
    }
  for (int32_t dtype : {GLMK_F32, GLMK_F16, GLMK_BF16})
    for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{5}})
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{37}})
        for (int64_t k : {int64_t{16}, int64_t{40}, int64_t{384}}) run_dense(isa, rng, m, n, k, dtype);
  fp8_checks(isa, rng);
  pool_checks();
  if (isa >= Isa::avx512bf16) {  // the instruction itself, on many more lanes than the kernel's first-use check
    uint64_t sensitive = 0;
    const uint64_t lanes = uint64_t{1} << 24, bad = int4_bf16_dp_mismatches(lanes, &sensitive);
    std::printf("VDPBF16PS == fma(a0, b0, fma(a1, b1, acc)): %llu of %llu lanes differ (%llu order-sensitive lanes)\n",
                static_cast<unsigned long long>(bad), static_cast<unsigned long long>(lanes), static_cast<unsigned long long>(sensitive));
    if (bad) failures++;
    if (sensitive < lanes / 8) {
      std::printf("MISMATCH: too few order-sensitive lanes for the check to mean anything\n");
      failures++;
    }
  }
  if (failures) {
    std::printf("cpu-gemm-check: %d mismatches\n", failures);
    return 1;
  }
  std::printf("cpu-gemm-check: ok\n");
  return 0;
}
