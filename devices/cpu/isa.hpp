// Instruction-set paths of the CPU device, chosen at run time (GLM_KERNELS_ISA caps them).
#pragma once

namespace glmk::cpu {

// Ordered: each path may use everything below it. avx512 is F/BW/VL/DQ; avx512vbmi adds VBMI (the int4
// GEMM's nibble split) and VBMI2 (the top-k filter's 16-bit compress; every CPU with VBMI but Cannon Lake); avx512bf16 adds AVX512_BF16 to that (the int4 GEMM's VDPBF16PS, for bf16 x).
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, avx512vbmi = 3, avx512bf16 = 4 };

// Highest path this CPU can run.
Isa isa_detect();
// Parses "auto" | "avx512bf16" | "avx512vbmi" | "avx512" | "avx2" | "scalar" (nullptr = auto); false on anything else.
bool isa_parse(const char* text, Isa* out);
const char* isa_name(Isa isa);

}  // namespace glmk::cpu
