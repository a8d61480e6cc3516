// One kernel source for two compilers: nvcc (the cuda plugin) and g++ against our SIMT emulator
// (the cuda-sim plugin, GLMK_SIM defined). Kernels and host code use only these spellings for the
// parts that differ:
//   GLMK_LAUNCH(kernel, grid, block, smem, stream, args...)  instead of kernel<<<...>>>(args...)
//   GLMK_SHARED(type, name);                                  instead of __shared__ type name;
//   glmk_dyn_smem<T>()                                        instead of extern __shared__
//   GLMK_UNROLL                                               instead of #pragma unroll (nothing under g++)
// A kernel name passed to GLMK_LAUNCH must not contain a comma (use an alias for multi-argument templates).
#pragma once

template <class T>
using glmk_t = T;

#if defined(GLMK_SIM)
#include "sim/cuda-sim-runtime.h"
#define GLMK_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::simt::launch((stream), dim3(grid), dim3(block), (smem), #kernel, reinterpret_cast<const void*>(&kernel), \
                 [=] { kernel(__VA_ARGS__); })
#define GLMK_SHARED(T, name)                                                          \
  glmk_t<T>& name = ::simt::shared_var<glmk_t<T>>([] {                                \
    static const char tag = 0;                                                        \
    return static_cast<const void*>(&tag);                                            \
  }())
#define GLMK_UNROLL
template <class T>
inline T* glmk_dyn_smem() {
  return ::simt::dyn_smem<T>();
}
#else
#include <cuda_runtime.h>
#define GLMK_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define GLMK_SHARED(T, name) __shared__ glmk_t<T> name
#define GLMK_UNROLL _Pragma("unroll")
template <class T>
__device__ __forceinline__ T* glmk_dyn_smem() {
  extern __shared__ __align__(16) unsigned char glmk_dyn_smem_bytes[];
  return reinterpret_cast<T*>(glmk_dyn_smem_bytes);
}
#endif
