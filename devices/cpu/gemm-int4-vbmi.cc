// The int4 GEMM kernel (gemm-int4.hpp) for AVX-512 with VBMI (Zen 4, Ice Lake and later): one byte permute
// and four shifts turn 32 bytes into the table indices of 64 weights.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,f16c,fma")
#define GLMK_INT4_VBMI 1
#include "gemm-int4.hpp"

namespace glmk::cpu {
void int4_block_vbmi(const GemmBlock& b) { int4_block<Int4Vbmi>(b); }

}  // namespace glmk::cpu
