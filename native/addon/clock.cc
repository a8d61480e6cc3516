// The core clock while a thread runs, for the benchmarks' peak estimates (bench/): /proc/cpuinfo's "cpu MHz"
// is often the nominal clock of a virtual machine (2596 MHz here, where cores run near 3.7 GHz), which put
// a measured GFLOP/s above its "peak".
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace glmk::addon {

// measureClockGHz() -> GHz, or NaN off x86-64: the best of 5 timings of 3.2 million dependent integer
// additions of a register (one cycle each on every x86-64 core; an immediate could be folded at rename on
// some newer cores), about 1 ms each.
Napi::Value MeasureClockGHz(const Napi::CallbackInfo& info) {
#if defined(__x86_64__)
  double best = 0;
  for (int r = 0; r < 5; r++) {
    uint64_t x = static_cast<uint64_t>(r), one = 1;
    asm volatile("" : "+r"(one));  // (opaque: not a constant)
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100000; i++)
      asm volatile(
          ".rept 32\n\t"
          "add %1, %0\n\t"
          ".endr"
          : "+r"(x)
          : "r"(one));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 3.2e6 / s / 1e9);
  }
  return Napi::Number::New(info.Env(), best);
#else
  return Napi::Number::New(info.Env(), std::nan(""));
#endif
}

}  // namespace glmk::addon
