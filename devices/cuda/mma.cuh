// Tensor-core PTX wrappers: one device function per instruction, inline asm under nvcc and a C++ model
// beside it under cuda-sim (GLMK_SIM, devices/cuda/sim/mma-model.h). Kernels call only these.
//   mma_m16n8k16_bf16 / _f16   mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32     (sm_80+)
//   mma_m16n8k32_e4m3          mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32   (sm_89+; traps on sm_80)
//   ldmatrix<N> / ldmatrix_trans<N>   ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16       (sm_75+)
//   cp_async_cg16, cp_async_ca<4|8|16>, cp_async_commit, cp_async_wait<N>   cp.async.* (sm_80+)
//   cvt_bf16x2, fma_bf16x2     cvt.rn.bf16x2.f32, fma.rn.bf16x2 (sm_80+; per thread, not tensor-core instructions)
//
// Fragments (PTX ISA "Matrix fragments for mma.m16n8k16 / m16n8k32", "ldmatrix"; CUTLASS mma_traits_sm80 /
// sm89): g = lane >> 2, t = lane % 4; in a .b32 register the lower-index element is in the low bits.
//   m16n8k16 (16-bit, 2 per register): A a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8,
//     2t+8..); B b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g).
//   m16n8k32 (e4m3, 4 per register): A a0 = (g, 4t..4t+3), a1 = (g+8, 4t..), a2 = (g, 16+4t..), a3 = (g+8,
//     16+4t..); B b0 = (k 4t..4t+3, n g), b1 = (k 16+4t.., n g).
//   C / D (both): c0 = (g, 2t), c1 = (g, 2t+1), c2 = (g+8, 2t), c3 = (g+8, 2t+1).
//   ldmatrix: lanes 8i..8i+7 give the 16-byte row addresses of matrix i; register i of lane L holds matrix i's
//     (L/4, 2(L%4)..+1), with .trans (2(L%4), L/4) and (2(L%4)+1, L/4).
//
// What the cuda-sim model computes (and what it cannot reproduce):
//   mma: every product exact (in double: at most 8 x 8 significant bits for 16-bit inputs, 4 x 4 for e4m3),
//   summed in double in increasing k from +0, then C added in double, then one rounding to f32 (nearest
//   even); a NaN result is written 0x7FFFFFFF (a GPU's NaN). Sums of small integers are exact, as on the GPU.
//   The hardware's accumulation inside one mma is not IEEE and not documented: it aligns the products to
//   the largest exponent and truncates (on Hopper e4m3 keeps ~13-14 mantissa bits: why DeepGEMM promotes to
//   f32 every 128 K), in an order of its own, and differs between generations. So cuda-sim and a GPU agree on
//   layouts exactly and on matmul values within tolerance, not bitwise; a kernel that must give the same bits
//   on every device cannot take them from mma.
//   cp.async: the source is read at issue, the shared destination is filled with 0xFF (NaN in f32, bf16, f16
//   and e4m3) at issue and gets its bytes only at the wait_group that completes its commit group (groups are
//   per thread, as in PTX), so a read before the wait sees NaNs. Other threads see the bytes once the issuing
//   thread has waited; the emulator does not hide them until the next __syncthreads, but its seeded schedule
//   runs readers before and after the wait, so a missing barrier shows under some seeds.
//   Misuse is reported with the caller's file:line: lanes of a warp at different mma / ldmatrix calls (or one
//   lane elsewhere), a partial warp, a row address or cp.async destination outside shared memory or
//   misaligned, a bad cp.async size.
#pragma once

#include <cstdint>

#include "cuda-compat.h"
#include "glmk/int4-arith.h"

#if defined(GLMK_SIM)
#include "sim/mma-model.h"
// the caller's file:line, for the emulator's reports (nvcc's signatures do not have it)
#define GLMK_CALLSITE , const char *file = __builtin_FILE(), int line = __builtin_LINE()
#else
#define GLMK_CALLSITE
#endif

namespace glmk::cuda {

// The D (accumulator) fragments of kTiles m16n8 tiles side by side from column n0: element i of tile j of
// lane 4 g + t is row g + 8 (i >> 1) of the 16 and column n0 + 8 j + 2 t + (i & 1). Calls f(h, c, j, i)
// for each, h = i >> 1 (row g or g + 8): every kernel stores its outputs through this one layout.
template <int kTiles, class F>
__device__ __forceinline__ void for_each_d(int64_t n0, int t, F&& f) {
  for (int j = 0; j < kTiles; j++)
    for (int i = 0; i < 4; i++) f(i >> 1, n0 + 8 * j + 2 * t + (i & 1), j, i);
}

#if !defined(GLMK_SIM)
__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
#endif

// Section: mma.sync (warp-collective: every lane of the warp calls it with its fragments)
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                  const float (&c)[4] GLMK_CALLSITE) {
#if defined(GLMK_SIM)
  sim::MmaArgs x{d, a, b, c};
  simt::warp_model(&sim::mma_model<sim::Elem::kBf16>, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", &x, file, line);
#elif defined(__CUDA_ARCH__)
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                 const float (&c)[4] GLMK_CALLSITE) {
#if defined(GLMK_SIM)
  sim::MmaArgs x{d, a, b, c};
  simt::warp_model(&sim::mma_model<sim::Elem::kF16>, "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", &x, file, line);
#elif defined(__CUDA_ARCH__)
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// NOTE: sm_89 / sm_90 only (CUDA >= 12.4). Compiled for sm_80 it traps: kernels dispatch on the arch (on sm_80
// fp8 is widened to bf16, which is exact, and goes through mma_m16n8k16_bf16).
__device__ __forceinline__ void mma_m16n8k32_e4m3(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                  const float (&c)[4] GLMK_CALLSITE) {
#if defined(GLMK_SIM)
  sim::MmaArgs x{d, a, b, c};
  simt::warp_model(&sim::mma_model<sim::Elem::kE4m3>, "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32", &x, file, line);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#elif defined(__CUDA_ARCH__)
  (void)d, (void)a, (void)b, (void)c;
  __trap();
#endif
}

// Section: ldmatrix (warp-collective; row addresses in shared memory, 16-byte aligned)
template <int N>
__device__ __forceinline__ void ldmatrix(uint32_t (&r)[N], const void* row GLMK_CALLSITE) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix: .x1, .x2 or .x4");
#if defined(GLMK_SIM)
  sim::LdmatrixArgs x{r, row};
  simt::warp_model(&sim::ldmatrix_model<N, false>, sim::kLdmatrixName[N / 2][0], &x, file, line);
#elif defined(__CUDA_ARCH__)
  if constexpr (N == 1)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(row)));
  else if constexpr (N == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(row)));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(row)));
#endif
}

template <int N>
__device__ __forceinline__ void ldmatrix_trans(uint32_t (&r)[N], const void* row GLMK_CALLSITE) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix: .x1, .x2 or .x4");
#if defined(GLMK_SIM)
  sim::LdmatrixArgs x{r, row};
  simt::warp_model(&sim::ldmatrix_model<N, true>, sim::kLdmatrixName[N / 2][1], &x, file, line);
#elif defined(__CUDA_ARCH__)
  if constexpr (N == 1)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(row)));
  else if constexpr (N == 2)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(row)));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(row)));
#endif
}

// Section: cp.async (per thread; src_bytes < the copy size zero-fills the rest, 0 reads nothing)
__device__ __forceinline__ void cp_async_cg16(void* smem, const void* gmem, int src_bytes = 16 GLMK_CALLSITE) {
#if defined(GLMK_SIM)
  sim::cp_async(smem, gmem, 16, src_bytes, "cp.async.cg.shared.global", file, line);
#elif defined(__CUDA_ARCH__)
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_bytes));
#endif
}

template <int Bytes>
__device__ __forceinline__ void cp_async_ca(void* smem, const void* gmem, int src_bytes = Bytes GLMK_CALLSITE) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
#if defined(GLMK_SIM)
  sim::cp_async(smem, gmem, Bytes, src_bytes, "cp.async.ca.shared.global", file, line);
#elif defined(__CUDA_ARCH__)
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(smem_addr(smem)), "l"(gmem), "n"(Bytes), "r"(src_bytes));
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(GLMK_SIM)
  simt::cur().open_group++;
#elif defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most the N most recent committed groups of this thread are pending. Other threads see the
// bytes only after a __syncthreads() that follows this wait.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(GLMK_SIM)
  sim::cp_async_land(N);
#elif defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// Section: cvt.rn.bf16x2.f32 (per thread): two f32 to bf16 bits, nearest even, subnormals kept (no .ftz), lo in
// the low half (PTX: "the value converted from input a is stored in the upper half"). Its model: glmk_bf16_rne,
// but a NaN becomes 0x7FFF (a NaN; which one a GPU writes is not promised: only NaN-ness is checked on one).
__device__ __forceinline__ uint32_t cvt_bf16x2(float lo, float hi) {
#if defined(GLMK_SIM) || !defined(__CUDA_ARCH__)
  const uint32_t l = glmk_bits_from_f32(lo), h = glmk_bits_from_f32(hi);
  const uint32_t bl = (l & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FFFu : glmk_bf16_rne(l), bh = (h & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FFFu : glmk_bf16_rne(h);
  return bl | bh << 16;
#else
  uint32_t d;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
#endif
}

// Section: fma.rn.bf16x2 (per thread; sm_80+): d = a * b + c per 16-bit half, one rounding to bf16 (nearest
// even, subnormals kept: bf16 has no .ftz here). Its model: sim::bf16_fma_model (the exact value rounded
// once; a NaN becomes 0x7FFF).
__device__ __forceinline__ uint32_t fma_bf16x2(uint32_t a, uint32_t b, uint32_t c) {
#if defined(GLMK_SIM)
  return sim::bf16_fma_model(a & 0xFFFFu, b & 0xFFFFu, c & 0xFFFFu) | static_cast<uint32_t>(sim::bf16_fma_model(a >> 16, b >> 16, c >> 16)) << 16;
#elif defined(__CUDA_ARCH__)
  uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
#else
  (void)a, (void)b, (void)c;  // nvcc's host pass: never called
  return 0u;
#endif
}

// int4's bf16(q * s) for a pair of codes by two fma.rn.bf16x2 (matmul-pipe.cuh's fast decode): byte holds
// codes k (low nibble) and k + 1; s2 the bf16 scale in both halves. 128 + code is exact in bf16 (0x4300 |
// code), minus 136 gives q = code - 8 exactly, then q * s + (-0) is the product rounded once: bf16(q * s), as
// glmk_int4_dequant, where the hardware rounds as the PTX ISA says (int4_fma_check_kernel checks it on every
// device before it is used; a NaN may come out with another payload).
__device__ __forceinline__ uint32_t int4_pair_fma(uint32_t byte, uint32_t s2) {
  const uint32_t m = ((byte * 0x1001u) & 0x000F000Fu) | 0x43004300u;  // 128 + low nibble, 128 + high nibble
  return fma_bf16x2(fma_bf16x2(m, 0x3F803F80u, 0xC308C308u), s2, 0x80008000u);
}

}  // namespace glmk::cuda

#undef GLMK_CALLSITE
