// The default floating-point environment for host code whose bits must not depend on the thread's settings
// (the CPU device's kernels, the ascend device's host steps).
#pragma once

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace glmk {

// Round to nearest even, subnormals kept, exceptions masked (MXCSR 0x1F80) for the life of the object,
// whatever the calling thread had: a host may run with DAZ/FTZ set (-ffast-math start-up code does), which
// would flush subnormal inputs and results.
class DefaultFpEnv {
 public:
#if defined(__SSE__)
  DefaultFpEnv() : saved_(_mm_getcsr()) { _mm_setcsr(0x1F80u); }
  ~DefaultFpEnv() { _mm_setcsr(saved_); }
  DefaultFpEnv(const DefaultFpEnv&) = delete;
  DefaultFpEnv& operator=(const DefaultFpEnv&) = delete;

 private:
  unsigned saved_;
#endif
};

}  // namespace glmk
