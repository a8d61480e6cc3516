// The CPU device's one GEMM core (SPEC 4): y[m, n] = sum_k x[m, k] * w[n, k] for dense (f32, f16, bf16)
// and int4 weights; each format only contributes "decode 16 weights of row n into f32 lanes".
//
// The written-down order (the same on every ISA path, for every M, thread count and batch):
//   p[j] (j = 0..15) = fma chain over k = j, j + 16, j + 32, ... (increasing k) of x[m, k] * w[n, k],
//                      starting from +0; K is a multiple of 16 here or the tail lanes take nothing;
//   y = ((((p0+p8) + (p4+p12)) + ((p2+p10) + (p6+p14))) + (((p1+p9) + (p5+p13)) + ((p3+p11) + (p7+p15))))
//       i.e. halves folded: q[j] = p[j] + p[j+8], r[j] = q[j] + q[j+4], s[j] = r[j] + r[j+2], y = s0 + s1;
//   then rounded once to x's dtype (round to nearest even); every NaN out is the canonical 0x7FC00000 (f32
//   too: which of two NaNs a sum carries differs between the fma of libm and of the SIMD paths).
// x (bf16/f16 widened, exact) and w decode to f32 exactly: dense weights widen; an int4 weight is
// bf16(q * s), what int4.dequantize gives, so int4.matmul(x, quantize(w)) == matmul(x, fakeQuant(w)).
// Runs under the default FP environment (no DAZ/FTZ) whatever the host's.
#pragma once
#include <cstdint>

#include "glmk/device.h"
#include "glmk/gemm-order.h"
#include "isa.hpp"
#include "stream.hpp"

namespace glmk::cpu {

// One kernel call: rows [n0, n1) of w against all m rows of x (already f32, [m, k]); writes f32 sums.
struct GemmBlock {
  const float* x;  // [m, k] f32
  int64_t m, k;
  int32_t w_dtype;  // GLMK_F32 | GLMK_F16 | GLMK_BF16 | GLMK_W_INT4
  const void* w;
  const int32_t* packed;
  const uint16_t* scales;
  int64_t group_size;
  int64_t n0, n1, n;  // n: the row stride of y
  float* y;           // [m, n] f32 sums
  bool x_bf16 = false;  // every x value is a bf16 (x was bf16): lets int4 take VDPBF16PS (gemm-int4-bf16.cc)
  // Filled by gemm_f32 for int4_block_bf16: x as bf16 in that kernel's pair order, and per row of x the
  // smallest biased exponent of its nonzero values (-1: the row holds a subnormal, inf or NaN).
  const uint16_t* x_pairs = nullptr;
  const int32_t* x_emin = nullptr;
};

void gemm_block_scalar(const GemmBlock& b);
void gemm_block_avx512(const GemmBlock& b);
void gemm_block_avx2(const GemmBlock& b);
void int4_block_avx2(const GemmBlock& b);    // int4 weights only, AVX2 + FMA (gemm-int4-avx2.cc)
void int4_block_avx512(const GemmBlock& b);  // int4 weights only (gemm-int4-avx512.cc)
void int4_block_vbmi(const GemmBlock& b);    // int4 weights only, AVX-512 VBMI (gemm-int4-vbmi.cc)
void int4_block_bf16(const GemmBlock& b);    // int4 weights only, AVX-512 VBMI + BF16 (gemm-int4-bf16.cc)
// How many of `lanes` random order-sensitive VDPBF16PS lanes differ from fma(a0, b0, fma(a1, b1, acc))
// (*order_sensitive: how many lanes the two orders of the pair round differently). int4_block_bf16 takes
// VDPBF16PS only where this is 0 on 4096 lanes; cpu-gemm-check runs it on millions.
uint64_t int4_bf16_dp_mismatches(uint64_t lanes, uint64_t* order_sensitive);
// Whether this CPU's VDPBF16PS showed that order on 4096 lanes (checked once per process, on first use; only
// call where the ISA level is avx512bf16). The int4 and fp8 VDPBF16PS kernels run only where it did.
bool vdpbf16ps_exact();
// x [m, k] f32 holding bf16 values -> pairs [m, k] and emin [m] for int4_block_bf16.
void int4_bf16_prepare(const float* x, int64_t m, int64_t k, uint16_t* pairs, int32_t* emin);

// All rows of w (base.n0, base.n1 ignored) against base.x, split over the pool: f32 sums in base.y.
void gemm_f32(Pool& pool, Isa isa, const GemmBlock& base);

// The whole op: converts x, splits rows of w over the pool, rounds y to x's dtype.
int matmul_execute(Pool& pool, Isa isa, const glmk_matmul_args& a, glmk_status* st);

// fp8.matmul (SPEC 5, glmk_fp8_matmul_args): per 128-K block the same 16-chain order on the e4m3 values of
// the row's activations (quantized here, per row and block) and of the weights, then scaled and added.
int fp8_matmul_execute(Pool& pool, Isa isa, const glmk_fp8_matmul_args& a, glmk_status* st);
// One tile of weight rows [n0, n0 + rows) (rows <= 16) against m quantized rows xa [m, k] (their scales sa
// [m, ceil(k / 128)]): acc[i * 16 + r] = the f32 sum for row i and weight row n0 + r (fp8-matmul-avx512.cc).
// next_rows: rows of the tile that follows (0: none), prefetched while this one ends.
void fp8_tile_avx512(const float* xa, const float* sa, int64_t m, int64_t k, const uint8_t* data, const float* scale_inv,
                     int64_t block_n, int64_t n0, int64_t rows, int64_t next_rows, float* acc);
// The same tile with VDPBF16PS (fp8-matmul-bf16.cc; AVX-512 VBMI + BF16, where vdpbf16ps_exact()), the rows' a8
// values given as bf16 pairs made by fp8_bf16_prepare: [m, ceil(k / 128), 64] dwords, dword 16 t + d of a block
// holding the bf16 of k = 32 t + d in its high half and of k + 16 in its low half (0 past k).
void fp8_bf16_prepare(const float* xa, int64_t m, int64_t k, uint32_t* pairs);
void fp8_tile_bf16(const uint32_t* xpairs, const float* sa, int64_t m, int64_t k, const uint8_t* data, const float* scale_inv,
                   int64_t block_n, int64_t n0, int64_t rows, int64_t next_rows, float* acc);

}  // namespace glmk::cpu
