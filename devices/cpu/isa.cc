#include "isa.hpp"

#include <cstring>

namespace glmk::cpu {

Isa isa_detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return !__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512vbmi2") ? Isa::avx512
           : __builtin_cpu_supports("avx512bf16") ? Isa::avx512bf16 : Isa::avx512vbmi;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
      __builtin_cpu_supports("bmi2"))
    return Isa::avx2;
#endif
  return Isa::scalar;
}

bool isa_parse(const char* text, Isa* out) {
  if (!text || !*text || !std::strcmp(text, "auto")) *out = Isa::avx512bf16;
  else if (!std::strcmp(text, "avx512bf16")) *out = Isa::avx512bf16;
  else if (!std::strcmp(text, "avx512vbmi")) *out = Isa::avx512vbmi;
  else if (!std::strcmp(text, "avx512")) *out = Isa::avx512;
  else if (!std::strcmp(text, "avx2")) *out = Isa::avx2;
  else if (!std::strcmp(text, "scalar")) *out = Isa::scalar;
  else return false;
  return true;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512bf16: return "avx512bf16";
    case Isa::avx512vbmi: return "avx512vbmi";
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace glmk::cpu
