// The GEMM core's driver and its scalar kernel (the reference order every SIMD kernel reproduces).
#include "gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "fp-env.hpp"
#include "widen.hpp"
#include "glmk/fp8-arith.h"
#include "glmk/int4-arith.h"
#include "glmk/status.hpp"

namespace glmk::cpu {
namespace {

// Weight (n, kk) as f32: dense widened, or int4's bf16(q * s).
float weight(const GemmBlock& b, int64_t n, int64_t kk) {
  if (b.w_dtype != GLMK_W_INT4) return widen(b.w, b.w_dtype, n * b.k + kk);
  const int64_t i = n * b.k + kk;
  const int q = static_cast<int>((static_cast<uint32_t>(b.packed[i / 8]) >> (4 * (i % 8))) & 0xFu) - 8;
  const float s = glmk_f32_from_bits(glmk_bf16_to_f32_bits(b.scales[n * (b.k / b.group_size) + kk / b.group_size]));
  return glmk_f32_from_bits(glmk_bf16_to_f32_bits(glmk_int4_dequant(q, s)));
}

constexpr int64_t kRowsPerItem = 16;  // rows of w per work item

// A per-thread buffer reused from call to call: a decode call's buffers are a few pages, and fresh pages
// cost microseconds each here (a virtual machine); one that grew past kKeepBytes (256 KiB: x of 4 rows of
// 16K, sums of 4 x 16K) is handed back after the call, so a thread keeps at most about 1 MiB. (With fresh
// buffers and scalar loops for x and its pairs, 1 x 6144 by 6144 x 6144 int4 spent 20-30 us of its 530
// around the kernel.)
template <class T>
class Scratch {
 public:
  Scratch(std::vector<T>& keep, size_t n) : keep_(keep) {
    if (keep_.size() < n) keep_.resize(n);
  }
  ~Scratch() {
    if (keep_.capacity() * sizeof(T) > kKeepBytes) std::vector<T>().swap(keep_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() const { return keep_.data(); }

 private:
  static constexpr size_t kKeepBytes = size_t{256} << 10;
  std::vector<T>& keep_;
};

}  // namespace

void gemm_block_scalar(const GemmBlock& b) {
  std::vector<float> wrow(static_cast<size_t>(b.k));
  for (int64_t n = b.n0; n < b.n1; n++) {
    for (int64_t kk = 0; kk < b.k; kk++) wrow[kk] = weight(b, n, kk);
    for (int64_t m = 0; m < b.m; m++) {
      float p[16] = {0};
      const float* x = b.x + m * b.k;
      for (int64_t kk = 0; kk < b.k; kk++) p[kk % 16] = std::fma(x[kk], wrow[kk], p[kk % 16]);
      b.y[m * b.n + n] = glmk_reduce16(p);
    }
  }
}

void gemm_f32(Pool& pool, Isa isa, const GemmBlock& base) {
  void (*kernel)(const GemmBlock&) = gemm_block_scalar;
  thread_local std::vector<uint16_t> pairs_keep;
  thread_local std::vector<int32_t> emin_keep;
  const bool dp = isa >= Isa::avx512bf16 && base.w_dtype == GLMK_W_INT4 && base.x_bf16;
  Scratch<uint16_t> pairs(pairs_keep, dp ? static_cast<size_t>(base.m * base.k) : 0);
  Scratch<int32_t> emin(emin_keep, dp ? static_cast<size_t>(base.m) : 0);
  GemmBlock first = base;
  if (dp) {
    int4_bf16_prepare(base.x, base.m, base.k, pairs.data(), emin.data());
    first.x_pairs = pairs.data();
    first.x_emin = emin.data();
    kernel = int4_block_bf16;
  } else if (isa >= Isa::avx512 && base.w_dtype == GLMK_W_INT4) {
    kernel = isa >= Isa::avx512vbmi ? int4_block_vbmi : int4_block_avx512;
  } else if (isa >= Isa::avx512) {
    kernel = gemm_block_avx512;
  } else if (isa == Isa::avx2) {
    kernel = base.w_dtype == GLMK_W_INT4 ? int4_block_avx2 : gemm_block_avx2;
  }
  // int4 at few rows of x streams its weights: each item starts with a DRAM round trip per row (what its
  // prefetch fetched past its end went to the cache of the thread that ran it). About 4 items per thread
  // (at least 64 rows each): long runs of rows, still enough items to even out a thread that lost its core
  // (6144 rows on 2 threads: 8 items of 768 rows; the harness measured 598 us with 64-row items, 540 with
  // these, 535 with one run per thread).
  int64_t per_item = kRowsPerItem;
  if (base.w_dtype == GLMK_W_INT4 && base.m <= 4) {
    const int64_t quarter = (base.n + 4 * pool.size() - 1) / (4 * pool.size());
    per_item = std::max<int64_t>(4 * kRowsPerItem, (quarter + kRowsPerItem - 1) / kRowsPerItem * kRowsPerItem);
  }
  const int64_t items = (base.n + per_item - 1) / per_item;
  pool.parallel_for(items, [&](int64_t item, int) {
    DefaultFpEnv item_env;
    GemmBlock b = first;
    b.n0 = item * per_item;
    b.n1 = std::min(base.n, b.n0 + per_item);
    kernel(b);
  });
}

int matmul_execute(Pool& pool, Isa isa, const glmk_matmul_args& a, glmk_status* st) {
  DefaultFpEnv env;  // (this thread; each work item sets its own)
  // Section: x to f32 (exact), y as f32 sums (every one written by the kernels)
  thread_local std::vector<float> x_keep, y_keep;
  Scratch<float> x(x_keep, static_cast<size_t>(a.m * a.k)), y(y_keep, static_cast<size_t>(a.m * a.n));
  widen_all(a.x, a.x_dtype, a.m * a.k, x.data());
  GemmBlock block{x.data(), a.m, a.k, a.w_dtype, a.w, a.packed, a.scales, a.group_size, 0, 0, a.n, y.data()};
  block.x_bf16 = a.x_dtype == GLMK_BF16;
  gemm_f32(pool, isa, block);
  // Section: round once to x's dtype
  const float* sums = y.data();
  const int64_t count = a.m * a.n;
  if (a.x_dtype == GLMK_F32) {
    float* out = static_cast<float*>(a.y);
    for (int64_t i = 0; i < count; i++) out[i] = sums[i] == sums[i] ? sums[i] : glmk_f32_from_bits(0x7FC00000u);  // (which NaN a sum met differs between paths)
  } else if (a.x_dtype == GLMK_BF16) {
    uint16_t* out = static_cast<uint16_t*>(a.y);
    for (int64_t i = 0; i < count; i++) out[i] = glmk_bf16_rne(glmk_bits_from_f32(sums[i]));
  } else {
    uint16_t* out = static_cast<uint16_t*>(a.y);
    for (int64_t i = 0; i < count; i++) out[i] = glmk_f16_rne(glmk_bits_from_f32(sums[i]));
  }
  return ok(st);
}

int fp8_matmul_execute(Pool& pool, Isa isa, const glmk_fp8_matmul_args& a, glmk_status* st) {
  DefaultFpEnv env;
  constexpr int64_t kB = 128;
  const int64_t blocks = (a.k + kB - 1) / kB;
  // Section: activations, per row and 128-channel block: sa = scaleInv(amax), a8 = e4m3(x / sa), as f32
  std::vector<float> xa(static_cast<size_t>(a.m * a.k)), sa(static_cast<size_t>(a.m * blocks));
  pool.parallel_for(a.m, [&](int64_t m, int) {
    DefaultFpEnv item_env;
    for (int64_t j = 0; j < blocks; j++) {
      const int64_t c0 = j * kB, c1 = std::min(a.k, c0 + kB);
      float amax = 0.0f;
      for (int64_t c = c0; c < c1 && amax == amax; c++) {
        const float v = std::fabs(widen(a.x, GLMK_BF16, m * a.k + c));
        amax = v != v ? v : (v > amax ? v : amax);
      }
      const float s = glmk_fp8_scale_inv(amax);
      sa[m * blocks + j] = s;
      for (int64_t c = c0; c < c1; c++)
        xa[m * a.k + c] = glmk_f32_from_bits(glmk_e4m3_to_f32_bits(
            glmk_e4m3_from_f32_bits(glmk_bits_from_f32(widen(a.x, GLMK_BF16, m * a.k + c) / s))));
    }
  });
  // Section: rows of w in work items (AVX-512: 4 tiles of 16 rows each, in turn); per output, blocks in
  // increasing order
  // VDPBF16PS where the CPU has it and showed its order (fp8-matmul-bf16.cc): x's a8 values as bf16 pairs
  const bool dp = isa >= Isa::avx512bf16 && vdpbf16ps_exact();
  std::vector<uint32_t> xpairs(dp ? static_cast<size_t>(a.m * blocks * 64) : 0);
  if (dp) fp8_bf16_prepare(xa.data(), a.m, a.k, xpairs.data());
  const int64_t per_item = isa >= Isa::avx512 ? 4 * kRowsPerItem : kRowsPerItem;
  const int64_t items = (a.n + per_item - 1) / per_item;
  auto store = [&](int64_t m, int64_t n, float acc) {
    if (a.y_dtype == GLMK_F32) static_cast<float*>(a.y)[m * a.n + n] = acc == acc ? acc : glmk_f32_from_bits(0x7FC00000u);
    else static_cast<uint16_t*>(a.y)[m * a.n + n] = glmk_bf16_rne(glmk_bits_from_f32(acc));
  };
  pool.parallel_for(items, [&](int64_t item, int) {
    DefaultFpEnv item_env;
    const int64_t n0 = item * per_item, n1 = std::min(a.n, n0 + per_item);
    if (isa >= Isa::avx512) {
      std::vector<float> tile(static_cast<size_t>(a.m * 16));
      for (int64_t t0 = n0; t0 < n1; t0 += 16) {
        const int64_t rows = std::min<int64_t>(16, n1 - t0), next = std::min<int64_t>(16, std::max<int64_t>(0, n1 - t0 - 16));
        if (dp) fp8_tile_bf16(xpairs.data(), sa.data(), a.m, a.k, a.data, a.scale_inv, a.block_n, t0, rows, next, tile.data());
        else fp8_tile_avx512(xa.data(), sa.data(), a.m, a.k, a.data, a.scale_inv, a.block_n, t0, rows, next, tile.data());
        for (int64_t m = 0; m < a.m; m++)
          for (int64_t n = t0; n < t0 + rows; n++) store(m, n, tile[m * 16 + (n - t0)]);
      }
      return;
    }
    std::vector<float> wrow(static_cast<size_t>(a.k));
    for (int64_t n = n0; n < n1; n++) {
      const float* ws = a.scale_inv + (n / a.block_n) * blocks;
      for (int64_t c = 0; c < a.k; c++) wrow[c] = glmk_f32_from_bits(glmk_e4m3_to_f32_bits(a.data[n * a.k + c]));
      for (int64_t m = 0; m < a.m; m++) {
        float acc = 0.0f;
        for (int64_t j = 0; j < blocks; j++) {
          float p[16] = {0};
          for (int64_t c = j * kB; c < std::min(a.k, (j + 1) * kB); c++)
            p[c % 16] = std::fma(xa[m * a.k + c], wrow[c], p[c % 16]);
          acc = acc + (glmk_reduce16(p) * sa[m * blocks + j]) * ws[j];
        }
        store(m, n, acc);
      }
    }
  });
  return ok(st);
}

}  // namespace glmk::cpu
