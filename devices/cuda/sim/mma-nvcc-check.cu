// nvcc's check of devices/cuda/mma.cuh: instantiates every wrapper in a kernel so that nvcc compiles (and
// ptxas assembles) each inline asm for sm_80 and sm_90. Built as an object library (glmk-mma-nvcc-check),
// linked into nothing: the shipped plugin does not change. The behaviour is checked on cuda-sim
// (sim/mma-selftest.cc) and, on a GPU, by the kernels that will use these wrappers.
#include "../mma.cuh"

namespace glmk::cuda {

__global__ void mma_wrappers_kernel(const uint16_t* g16, const uint32_t* g32, float* out) {
  GLMK_SHARED(uint4[64], s);
  const int l = threadIdx.x;
  cp_async_cg16(&s[l], g16 + 8 * l);
  cp_async_ca<4>(reinterpret_cast<uint32_t*>(&s[32 + l]), g32 + l);
  cp_async_ca<8>(reinterpret_cast<uint32_t*>(&s[32 + l]) + 2, g32 + 64 + 2 * l, 4);
  cp_async_ca<16>(&s[32 + (l + 1) % 32], g32 + 4 * l, 0);
  cp_async_commit();
  cp_async_wait<1>();
  cp_async_wait<0>();
  __syncthreads();
  uint32_t a[4], b[2], x1[1], t1[1], t2[2], t4[4];
  ldmatrix<4>(a, &s[l]);
  ldmatrix<2>(b, &s[l % 16]);
  ldmatrix<1>(x1, &s[l % 8]);
  ldmatrix_trans<1>(t1, &s[l % 8]);
  ldmatrix_trans<2>(t2, &s[l % 16]);
  ldmatrix_trans<4>(t4, &s[l]);
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  mma_m16n8k16_bf16(acc, a, b, acc);
  mma_m16n8k16_f16(acc, t4, t2, acc);
  const uint32_t b8[2] = {x1[0], t1[0]};
  mma_m16n8k32_e4m3(acc, a, b8, acc);  // traps on sm_80
  for (int i = 0; i < 4; i++) out[4 * l + i] = acc[i];
}

}  // namespace glmk::cuda
