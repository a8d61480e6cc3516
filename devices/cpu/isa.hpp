// Instruction-set paths of the CPU device, chosen at run time (GLM_KERNELS_ISA caps them).
#pragma once

namespace glmk::cpu {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

// Highest path this CPU can run.
Isa isa_detect();
// Parses "auto" | "avx512" | "avx2" | "scalar" (nullptr = auto); false on anything else.
bool isa_parse(const char* text, Isa* out);
const char* isa_name(Isa isa);

}  // namespace glmk::cpu
