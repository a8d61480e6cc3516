// cuda-sim's model of fma.rn.bf16x2 (devices/cuda/mma.cuh fma_bf16x2), plain C++ with no emulator in it, so
// that the GPU half of the tensor-core self-test (sim/mma-selftest.cc built by nvcc) checks the hardware
// against the very same model.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace glmk::cuda::sim {

inline double bf16_value(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// fma.rn.bf16x2, one half: a * b + c rounded once to bf16, nearest even, subnormals kept, beyond the largest
// finite to infinity; a NaN is 0x7FFF. The product of two bf16 is exact in double (16 significant bits, no
// double subnormals); the sum p + c is rounded to odd (TwoSum's error decides the last bit), which keeps
// every bit the bf16 rounding needs (53 >= 8 + 2): exact for any c, however far below the product.
inline uint16_t bf16_fma_model(uint16_t a, uint16_t b, uint16_t c) {
  const double p = bf16_value(a) * bf16_value(b), cv = bf16_value(c);
  double v = p + cv;
  if (std::isfinite(v)) {
    const double bv = v - p, err = (p - (v - bv)) + (cv - bv);  // TwoSum: p + cv == v + err exactly
    uint64_t u;
    std::memcpy(&u, &v, 8);
    if (err != 0.0 && (u & 1u) == 0) v = std::nextafter(v, err > 0 ? INFINITY : -INFINITY);  // round to odd
  }
  if (v != v) return 0x7FFFu;
  const uint16_t sign = std::signbit(v) ? 0x8000u : 0u;
  const double m = std::fabs(v);
  if (m == 0.0) return sign;
  if (m >= 0x1.FFp127) return sign | 0x7F80u;  // at or past the midpoint above the largest finite (odd): inf
  int e;
  std::frexp(m, &e);                                                           // m in [2^(e-1), 2^e)
  const int q = (e - 1 > -126 ? e - 1 : -126) - 7;                             // the unit of the last place
  const float f = static_cast<float>(std::ldexp(std::nearbyint(std::ldexp(m, -q)), q));  // nearest even; a bf16 value
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(sign | (u >> 16));
}

}  // namespace glmk::cuda::sim
