// Self-tests of cuda-sim's tensor-core models (devices/cuda/mma.cuh, sim/mma-model.h): fragment layouts
// against hand-computed products, ldmatrix against plain reads, cp.async groups and poison, misuse reports,
// and a tile GEMM (cp.async + ldmatrix + mma) against a plain reference. Built as simt-mma-selftest (and
// -asan); test/cuda-sim.test.ts runs it. Prints one line per check, exits 1 on any failure.
// nvcc also builds it (sim/mma-cuda-check.cu -> mma-cuda-check, bench/gpu/acceptance.sh), so that a GPU checks
// the same layouts, ldmatrix reads, landed copies and tile GEMM on hardware; the emulator-only checks (poison,
// misuse reports, the model's decoders) are compiled only under GLMK_SIM.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../mma.cuh"
#include "bf16-fma-model.h"
#include "glmk/fp8-arith.h"

using namespace glmk::cuda;

namespace {

int g_failed = 0;
void check(bool ok, const std::string& what, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  if (!ok) g_failed++;
}

// Section: kernels (one warp unless said)

// D = A B + C with fragments built by hand from the PTX ISA's tables (not from the model's code). A [16][K]
// and Bt [8][K] (B column-major) hold element codes (16-bit, or e4m3 bytes), C and D [16][8] f32.
template <int Kind>  // 0 bf16, 1 f16, 2 e4m3
__global__ void mma_layout_kernel(const uint16_t* A, const uint16_t* Bt, const float* C, float* D) {
  const int l = threadIdx.x, g = l >> 2, t = l & 3;
  constexpr int K = Kind == 2 ? 32 : 16;
  uint32_t a[4] = {}, b[2] = {};
  float c[4], d[4];
  if (Kind == 2) {
    for (int j = 0; j < 4; j++) {  // byte j: a0 (g, 4t+j), a1 (g+8, 4t+j), a2 (g, 16+4t+j), a3 (g+8, 16+4t+j)
      a[0] |= uint32_t(A[g * K + 4 * t + j]) << 8 * j;
      a[1] |= uint32_t(A[(g + 8) * K + 4 * t + j]) << 8 * j;
      a[2] |= uint32_t(A[g * K + 16 + 4 * t + j]) << 8 * j;
      a[3] |= uint32_t(A[(g + 8) * K + 16 + 4 * t + j]) << 8 * j;
      b[0] |= uint32_t(Bt[g * K + 4 * t + j]) << 8 * j;  // b0 (k 4t+j, n g), b1 (k 16+4t+j, n g)
      b[1] |= uint32_t(Bt[g * K + 16 + 4 * t + j]) << 8 * j;
    }
  } else {
    for (int j = 0; j < 2; j++) {  // half j: a0 (g, 2t+j), a1 (g+8, 2t+j), a2 (g, 2t+8+j), a3 (g+8, 2t+8+j)
      a[0] |= uint32_t(A[g * K + 2 * t + j]) << 16 * j;
      a[1] |= uint32_t(A[(g + 8) * K + 2 * t + j]) << 16 * j;
      a[2] |= uint32_t(A[g * K + 2 * t + 8 + j]) << 16 * j;
      a[3] |= uint32_t(A[(g + 8) * K + 2 * t + 8 + j]) << 16 * j;
      b[0] |= uint32_t(Bt[g * K + 2 * t + j]) << 16 * j;  // b0 (k 2t+j, n g), b1 (k 2t+8+j, n g)
      b[1] |= uint32_t(Bt[g * K + 2 * t + 8 + j]) << 16 * j;
    }
  }
  for (int i = 0; i < 4; i++) c[i] = C[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];  // (g, 2t), (g, 2t+1), (g+8, ..)
  if (Kind == 0) mma_m16n8k16_bf16(d, a, b, c);
  if (Kind == 1) mma_m16n8k16_f16(d, a, b, c);
  if (Kind == 2) mma_m16n8k32_e4m3(d, a, b, c);
  for (int i = 0; i < 4; i++) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = d[i];
}

// ldmatrix .xN (.trans) of four 8x8 matrices laid out in shared memory with a row stride of 48 bytes and the
// matrices in reverse order; out[lane * 4 + i] = register i.
template <int N, bool Trans>
__global__ void ldmatrix_kernel(uint32_t* out) {
  GLMK_SHARED(uint4[4 * 8 * 3], s);  // matrix i row r at uint4 index ((3 - i) * 8 + r) * 3
  const int l = threadIdx.x;
  for (int e = l; e < 4 * 64; e += 32) {  // element (i, r, c) = i * 64 + r * 8 + c
    const int i = e / 64, r = e / 8 % 8, c = e % 8;
    reinterpret_cast<uint16_t*>(&s[((3 - i) * 8 + r) * 3])[c] = static_cast<uint16_t>(e + 1000);
  }
  __syncthreads();
  uint32_t r[N];
  const void* row = &s[((3 - (l / 8) % N) * 8 + l % 8) * 3];  // lanes past 8N repeat valid rows (ignored)
  if (Trans) ldmatrix_trans<N>(r, row);
  else ldmatrix<N>(r, row);
  for (int i = 0; i < 4; i++) out[l * 4 + i] = i < N ? r[i] : 0;
}

// cp.async: each lane copies 16 bytes (cg) of group 0 and 4 + 8 + 16 bytes (ca; the 8 with src-size 4, the 16
// with src-size 0) of group 1 into shared memory, then waits for `wait` groups to be left pending (-1: no wait), then a barrier (unless
// `barrier` is false), then lane l reads lane (l + 1)'s bytes.
__global__ void cp_async_kernel(const uint32_t* in, uint32_t* out, int wait, bool barrier) {
  GLMK_SHARED(uint4[32], s16);
  GLMK_SHARED(uint4[32], s12);
  GLMK_SHARED(uint4[32], s0);
  const int l = threadIdx.x;
  cp_async_cg16(&s16[l], in + 4 * l);
  cp_async_commit();
  cp_async_ca<4>(&s12[l], in + 128 + l);
  cp_async_ca<8>(reinterpret_cast<uint32_t*>(&s12[l]) + 2, in + 160 + 2 * l, 4);
  cp_async_ca<16>(&s0[l], in, 0);
  cp_async_commit();
  if (wait == 0) cp_async_wait<0>();
  if (wait == 1) cp_async_wait<1>();
  if (barrier) __syncthreads();
  const uint32_t* a = reinterpret_cast<const uint32_t*>(&s16[(l + 1) % 32]);
  const uint32_t* b = reinterpret_cast<const uint32_t*>(&s12[(l + 1) % 32]);
  for (int i = 0; i < 4; i++) out[8 * l + i] = a[i];
  out[8 * l + 4] = b[0], out[8 * l + 5] = b[2], out[8 * l + 6] = b[3];
  out[8 * l + 7] = reinterpret_cast<const uint32_t*>(&s0[(l + 1) % 32])[3];
}

// cvt_bf16x2 of the pairs (in[2i], in[2i + 1]) into out[i].
__global__ void cvt_kernel(const float* in, uint32_t* out, int pairs) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < pairs) out[i] = cvt_bf16x2(in[2 * i], in[2 * i + 1]);
}

// fma_bf16x2 of (a[i], b[i], c[i]) into out[i].
__global__ void fma_kernel(const uint32_t* a, const uint32_t* b, const uint32_t* c, uint32_t* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = fma_bf16x2(a[i], b[i], c[i]);
}

#if defined(GLMK_SIM)
// Misuse: which = 0 a lane skips the mma, 1 one lane calls the f16 mma, 2 ldmatrix from global memory,
// 3 a misaligned cp.async, 4 the mma in a partial warp (launched with 48 threads), 5 cp.async into global memory.
__global__ void misuse_kernel(int which, uint32_t* global) {
  GLMK_SHARED(uint4[32], s);
  const unsigned l = threadIdx.x;
  uint32_t a[4] = {}, b[2] = {}, r[4];
  float c[4] = {}, d[4];
  if (which == 0 || which == 4) {
    if (l != 3 || which == 4) mma_m16n8k16_bf16(d, a, b, c);  // kSkipLine
    __syncwarp();
  } else if (which == 1) {
    // NOTE: one line, so only the instruction tells the lanes apart
    l == 0 ? mma_m16n8k16_f16(d, a, b, c) : mma_m16n8k16_bf16(d, a, b, c);  // kF16Line
  } else if (which == 2) {
    ldmatrix<4>(r, l == 9 ? static_cast<const void*>(global) : &s[l]);  // kLdLine
    global[l] = r[0];
  } else {
    cp_async_cg16(which == 3 ? reinterpret_cast<char*>(&s[l]) + 4 * (l == 5) : reinterpret_cast<char*>(global + 64),  // kCpLine
                  global + 4 * l);
    cp_async_wait<0>();
  }
}
constexpr int kSkipLine = __LINE__ - 14, kF16Line = __LINE__ - 10, kLdLine = __LINE__ - 8, kCpLine = __LINE__ - 5;
#endif

// Tile GEMM D [32][16] = A [32][32] B [32][16], 16-bit elements, A row-major, B as Bt [16][32] (col) or,
// with Trans, B [32][16] row-major read by ldmatrix.trans. A block per 16 rows, a warp per 8 columns: A and
// B go to shared memory by cp.async, fragments by ldmatrix, two m16n8k16 steps over K.
template <bool F16, bool Trans>
__global__ void tile_gemm_kernel(const uint16_t* A, const uint16_t* B, float* D) {
  GLMK_SHARED(uint4[16 * 5], As);  // 16 rows of 32 elements, row stride 80 bytes (padded)
  GLMK_SHARED(uint4[32 * 4], Bs);  // Bt: 16 rows x 5 uint4 (padded); B: 32 rows x 2 uint4 (k-major)
  const int tid = threadIdx.x, l = tid & 31, w = tid >> 5, m0 = blockIdx.x * 16;
  // Section: global -> shared, one 16-byte chunk of A and one of B per thread
  cp_async_cg16(&As[(tid / 4) * 5 + tid % 4], A + (m0 + tid / 4) * 32 + 8 * (tid % 4));
  if (Trans) cp_async_cg16(&Bs[(tid / 2) * 2 + tid % 2], B + (tid / 2) * 16 + 8 * (tid % 2));
  else cp_async_cg16(&Bs[(tid / 4) * 5 + tid % 4], B + (tid / 4) * 32 + 8 * (tid % 4));
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  // Section: two k steps of 16
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int kk = 0; kk < 32; kk += 16) {
    uint32_t a[4], b[2];
    ldmatrix<4>(a, reinterpret_cast<const uint16_t*>(&As[(l % 16) * 5]) + kk + 8 * (l / 16));
    if (Trans)  // matrix j = rows k kk+8j.., columns n 8w..: lanes 8j..8j+7 give k = kk + 8j + (lane % 8)
      ldmatrix_trans<2>(b, reinterpret_cast<const uint16_t*>(&Bs[(kk + 8 * ((l / 8) % 2) + l % 8) * 2]) + 8 * w);
    else  // matrix j = rows n 8w.., columns k kk+8j..
      ldmatrix<2>(b, reinterpret_cast<const uint16_t*>(&Bs[(8 * w + l % 8) * 5]) + kk + 8 * ((l / 8) % 2));
    if (F16) mma_m16n8k16_f16(acc, a, b, acc);
    else mma_m16n8k16_bf16(acc, a, b, acc);
  }
  const int g = l >> 2, t = l & 3;
  for (int i = 0; i < 4; i++) D[(m0 + g + 8 * (i >> 1)) * 16 + 8 * w + 2 * t + (i & 1)] = acc[i];
}

// Section: host helpers

struct Dev {
  cudaStream_t s;
  std::vector<void*> owned;
  explicit Dev(uint64_t seed = 1) {
    cudaStreamCreate(&s);
#if defined(GLMK_SIM)
    simt::set_stream_seed(s, seed);
#else
    (void)seed;
#endif
  }
  ~Dev() {
    cudaStreamDestroy(s);
    for (void* p : owned) cudaFree(p);
  }
  template <class T>
  T* put(const std::vector<T>& v) {
    void* p = nullptr;
    cudaMalloc(&p, v.size() * sizeof(T));
    owned.push_back(p);
    cudaMemcpyAsync(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, s);
    return static_cast<T*>(p);
  }
  template <class T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> v(n);
    cudaMemcpyAsync(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost, s);
    cudaStreamSynchronize(s);
    return v;
  }
  std::string finish() {
    const cudaError_t e = cudaStreamSynchronize(s);
#if defined(GLMK_SIM)
    return e == cudaSuccess ? "" : simt::stream_error_detail(s);
#else
    return e == cudaSuccess ? "" : cudaGetErrorString(e);
#endif
  }
};

uint16_t bf16_of(float f) { return static_cast<uint16_t>(glmk_bits_from_f32(f) >> 16); }  // truncates: use value_of(code)
uint16_t f16_of(float f) { return __half_as_ushort(__float2half_rn(f)); }
uint8_t e4m3_of(float f) {  // the CPU reference's decoder picks the code
  for (int c = 0; c < 256; c++)
    if (glmk_f32_from_bits(glmk_e4m3_to_f32_bits(static_cast<uint8_t>(c))) == f) return static_cast<uint8_t>(c);
  return 0x7F;
}
float value_of(int kind, uint16_t code) {
  if (kind == 0) return glmk_f32_from_bits(uint32_t(code) << 16);
  if (kind == 1) return __half2float(__ushort_as_half(code));
  return glmk_f32_from_bits(glmk_e4m3_to_f32_bits(static_cast<uint8_t>(code)));
}

template <int Kind>
void test_mma_layout() {
  constexpr int K = Kind == 2 ? 32 : 16;
  const char* name = Kind == 0 ? "bf16 m16n8k16" : Kind == 1 ? "f16 m16n8k16" : "e4m3 m16n8k32";
  // distinct small integers (and halves): every product and sum exact, so a misplaced element shows
  auto av = [](int m, int k) { return static_cast<float>((m * 5 + k * 3) % 11 - 5) + ((m + k) % 4 == 0 ? 0.5f : 0.0f); };
  auto bv = [](int k, int n) { return static_cast<float>((k * 7 + n * 5) % 13 - 6); };
  std::vector<uint16_t> A(16 * K), Bt(8 * K);
  std::vector<float> C(16 * 8);
  auto code = [](float f) -> uint16_t { return Kind == 0 ? bf16_of(f) : Kind == 1 ? f16_of(f) : e4m3_of(f); };
  for (int m = 0; m < 16; m++)
    for (int k = 0; k < K; k++) A[m * K + k] = code(av(m, k));
  for (int n = 0; n < 8; n++)
    for (int k = 0; k < K; k++) Bt[n * K + k] = code(bv(k, n));
  for (int i = 0; i < 128; i++) C[i] = 1000.0f * static_cast<float>(i);
  Dev d;
  float* D = d.put(std::vector<float>(128, 0.0f));
  const uint16_t *dA = d.put(A), *dB = d.put(Bt);
  const float* dC = d.put(C);
  GLMK_LAUNCH(mma_layout_kernel<Kind>, 1, 32, 0, d.s, dA, dB, dC, D);
  auto got = d.get(D, 128);
  std::string err = d.finish(), bad;
  for (int m = 0; m < 16 && bad.empty(); m++)
    for (int n = 0; n < 8 && bad.empty(); n++) {
      double want = C[m * 8 + n];
      for (int k = 0; k < K; k++) want += static_cast<double>(value_of(Kind, A[m * K + k])) * value_of(Kind, Bt[n * K + k]);
      if (got[m * 8 + n] != static_cast<float>(want))
        bad = "D[" + std::to_string(m) + "][" + std::to_string(n) + "] = " + std::to_string(got[m * 8 + n]) + ", want " +
              std::to_string(want);
    }
  check(err.empty() && bad.empty(), std::string(name) + " fragments (PTX layouts) give the hand-computed product",
        err.empty() ? bad : err);
}

template <int N, bool Trans>
void test_ldmatrix() {
  Dev d(5 + N);
  uint32_t* out = d.put(std::vector<uint32_t>(128, 0));
  constexpr auto kernel = ldmatrix_kernel<N, Trans>;  // (GLMK_LAUNCH: no comma in the name)
  GLMK_LAUNCH(kernel, 1, 32, 0, d.s, out);
  auto got = d.get(out, 128);
  std::string err = d.finish(), bad;
  for (int l = 0; l < 32 && bad.empty(); l++)
    for (int i = 0; i < N && bad.empty(); i++) {  // plain read of element (i, r, c) = 1000 + i * 64 + r * 8 + c
      auto at = [&](int r, int c) { return 1000u + unsigned(i * 64 + (Trans ? c * 8 + r : r * 8 + c)); };
      const uint32_t want = at(l / 4, 2 * (l % 4)) | at(l / 4, 2 * (l % 4) + 1) << 16;
      if (got[l * 4 + i] != want)
        bad = "lane " + std::to_string(l) + " register " + std::to_string(i) + ": " + std::to_string(got[l * 4 + i]) +
              ", want " + std::to_string(want);
    }
  check(err.empty() && bad.empty(), "ldmatrix .x" + std::to_string(N) + (Trans ? ".trans" : "") + " matches plain shared-memory reads",
        err.empty() ? bad : err);
}

void test_cp_async() {
  std::vector<uint32_t> in(224);
  for (size_t i = 0; i < in.size(); i++) in[i] = 0x1000u + static_cast<uint32_t>(i);
  auto run = [&](int wait, bool barrier = true, uint64_t seed = 11) {
    Dev d(seed);
    uint32_t* out = d.put(std::vector<uint32_t>(256, 0));
    const uint32_t* din = d.put(in);
    GLMK_LAUNCH(cp_async_kernel, 1, 32, 0, d.s, din, out, wait, barrier);
    auto v = d.get(out, 256);
    check(d.finish().empty(), "cp.async kernel (wait " + std::to_string(wait) + ") runs clean");
    return v;
  };
  auto g0 = [&](const std::vector<uint32_t>& v) {  // group 0: the 16-byte copies
    for (int l = 0; l < 32; l++)
      for (int i = 0; i < 4; i++)
        if (v[8 * l + i] != in[4 * ((l + 1) % 32) + i]) return false;
    return true;
  };
  auto g1 = [&](const std::vector<uint32_t>& v) {  // group 1: 4 bytes, then 8 of which the last 4 zero-filled
    for (int l = 0; l < 32; l++) {
      const int s = (l + 1) % 32;
      if (v[8 * l + 4] != in[128 + s] || v[8 * l + 5] != in[160 + 2 * s] || v[8 * l + 6] != 0 || v[8 * l + 7] != 0) return false;
    }
    return true;
  };
  auto all = run(0);
  check(g0(all) && g1(all), "cp.async cg16 / ca4 / ca8 / ca16 (src-size 4 and 0: zero-filled) land at wait_group 0");
#if defined(GLMK_SIM)
  auto poisoned = [](const std::vector<uint32_t>& v, int from, int to) {
    for (int l = 0; l < 32; l++)
      for (int i = from; i < to; i++)
        if (v[8 * l + i] != 0xFFFFFFFFu) return false;
    return true;
  };
  auto one = run(1), none = run(-1);
  check(g0(one) && poisoned(one, 4, 8), "wait_group 1 lands the older group only; the newer stays poisoned (NaN)");
  check(poisoned(none, 0, 8), "a kernel with no wait_group reads poison (NaN), not the data");
  int caught = 0;  // waited, but no __syncthreads before reading another thread's copy
  for (uint64_t seed = 1; seed <= 3; seed++) caught += !g0(run(0, false, seed));
  check(caught == 3, "a missing __syncthreads after wait_group reads another thread's bytes too early (3 of 3 seeds)",
        std::to_string(caught) + " of 3");
#endif
}

#if defined(GLMK_SIM)
void test_misuse() {
  auto run = [](int which, int threads) {
    Dev d;
    uint32_t* g = d.put(std::vector<uint32_t>(256, 0));
    GLMK_LAUNCH(misuse_kernel, 1, threads, 0, d.s, which, g);
    return d.finish();
  };
  auto expect = [](const std::string& what, const std::string& err, std::vector<std::string> needles) {
    bool ok = !err.empty();
    for (auto& n : needles) ok = ok && err.find(n) != std::string::npos;
    check(ok, what, err.empty() ? "no error reported" : err);
  };
  const std::string f = "mma-selftest.cc:";
  expect("a lane that skips an mma is reported with file:line", run(0, 32),
         {"disagree", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", f + std::to_string(kSkipLine), "__syncwarp"});
  expect("lanes at different mma instructions on one line are reported with file:line", run(1, 32),
         {"disagree", "f32.f16.f16.f32 (", "f32.bf16.bf16.f32 (", f + std::to_string(kF16Line) + ","});
  expect("ldmatrix from global memory is reported with file:line", run(2, 32),
         {"ldmatrix.sync.aligned.m8n8.x4.shared.b16 at", f + std::to_string(kLdLine), "lane 9", "not in this block's shared memory"});
  expect("a misaligned cp.async is reported with file:line", run(3, 32), {"thread (5,0,0)", f + std::to_string(kCpLine), "aligned"});
  expect("an mma in a partial warp is reported", run(4, 48), {"the warp has only lanes"});
  expect("a cp.async into global memory is reported with file:line", run(5, 32),
         {f + std::to_string(kCpLine), "the destination is not in this block's shared memory"});
}
#endif

template <bool F16, bool Trans>
void test_tile_gemm() {
  std::vector<uint16_t> A(32 * 32), B(32 * 16);
  std::vector<double> a(32 * 32), b(32 * 16);  // b[k * 16 + n]
  uint32_t x = 12345;
  auto rnd = [&] { return (x = x * 1664525u + 1013904223u) >> 8 & 0xFFFF; };
  auto code = [&](double& v) {
    const float f = static_cast<float>(static_cast<int>(rnd()) - 32768) / 8192.0f;
    const uint16_t c = F16 ? f16_of(f) : bf16_of(f);
    v = value_of(F16 ? 1 : 0, c);
    return c;
  };
  for (int i = 0; i < 32 * 32; i++) A[i] = code(a[i]);
  for (int k = 0; k < 32; k++)
    for (int n = 0; n < 16; n++) B[Trans ? k * 16 + n : n * 32 + k] = code(b[k * 16 + n]);
  std::string name = std::string("tile GEMM 32x16x32 ") + (F16 ? "f16" : "bf16") + (Trans ? " (B row-major, ldmatrix.trans)" : " (B col)");
  for (uint64_t seed : {1, 2, 3}) {
    Dev d(seed);
    float* D = d.put(std::vector<float>(32 * 16, 0.0f));
    const uint16_t *dA = d.put(A), *dB = d.put(B);
    constexpr auto kernel = tile_gemm_kernel<F16, Trans>;
    GLMK_LAUNCH(kernel, 2, 64, 0, d.s, dA, dB, D);
    auto got = d.get(D, 32 * 16);
    std::string err = d.finish(), bad;
    for (int m = 0; m < 32 && bad.empty(); m++)
      for (int n = 0; n < 16 && bad.empty(); n++) {
        double want = 0, mag = 0;
        for (int k = 0; k < 32; k++) want += a[m * 32 + k] * b[k * 16 + n], mag += std::fabs(a[m * 32 + k] * b[k * 16 + n]);
        // NOTE: cuda-sim rounds twice (once per k step); a GPU's accumulation is looser but far inside this
        if (!(std::fabs(got[m * 16 + n] - want) <= 1e-5 * mag))
          bad = "D[" + std::to_string(m) + "][" + std::to_string(n) + "] = " + std::to_string(got[m * 16 + n]) + ", want " +
                std::to_string(want);
      }
    check(err.empty() && bad.empty(), name + " (cp.async + ldmatrix + mma) matches a plain reference, seed " + std::to_string(seed),
          err.empty() ? bad : err);
  }
}

// cvt_bf16x2 against glmk_bf16_rne (the CPU's and glmk_int4_dequant's rounding): every bf16 value's f32 with
// the low half 0 (exact), 0x8000 (a tie), 0x7FFF, 0x8001 and a hashed one: subnormals, the overflow edge,
// infinities; a NaN only as a NaN. On a GPU this is the check that int4 decoded by cvt (matmul-pipe.cuh) is
// bf16(q s) bit for bit; under cuda-sim it checks the model.
void test_cvt_bf16x2() {
  std::vector<float> in;
  const uint32_t lows[] = {0x0000u, 0x8000u, 0x7FFFu, 0x8001u};
  for (uint32_t hi = 0; hi < 65536; hi++)
    for (uint32_t lo : lows) in.push_back(glmk_f32_from_bits(hi << 16 | lo));
  for (uint32_t hi = 0; hi < 65536; hi++) in.push_back(glmk_f32_from_bits(hi << 16 | ((hi * 2654435761u) >> 16)));
  const int pairs = static_cast<int>(in.size() / 2);
  Dev d;
  uint32_t* out = d.put(std::vector<uint32_t>(pairs, 0));
  const float* din = d.put(in);
  GLMK_LAUNCH(cvt_kernel, (pairs + 255) / 256, 256, 0, d.s, din, out, pairs);
  const auto got = d.get(out, pairs);
  std::string err = d.finish(), bad;
  for (int i = 0; i < 2 * pairs && bad.empty(); i++) {
    const uint32_t b = glmk_bits_from_f32(in[i]), g = (got[i / 2] >> (16 * (i % 2))) & 0xFFFFu;
    const bool nan = (b & 0x7FFFFFFFu) > 0x7F800000u;
    if (nan ? (g & 0x7FFFu) <= 0x7F80u : g != glmk_bf16_rne(b)) {
      char m[96];
      std::snprintf(m, sizeof m, "f32 0x%08X gave 0x%04X, want 0x%04X", b, g, nan ? 0x7FC0u : glmk_bf16_rne(b));
      bad = m;
    }
  }
  check(err.empty() && bad.empty(), "cvt.rn.bf16x2.f32 rounds like glmk_bf16_rne (327,680 values: ties, subnormals, overflow; NaN stays NaN)",
        err.empty() ? bad : err);
}

// fma_bf16x2 against sim::bf16_fma_model (the exact a b + c rounded once): seeded triples whose exact sum
// double holds (products from subnormal to overflowing, c from -0 to cancelling the product). On a GPU this
// checks that the hardware rounds as the model; under cuda-sim it checks the wrapper. (int4's decode built on
// it is checked at every device open: matmul.cu int4_fma_decode_exact.)
void test_fma_bf16x2() {
#if defined(GLMK_SIM)
  constexpr int kTriples = 1 << 13;
#else
  constexpr int kTriples = 1 << 21;
#endif
  std::vector<uint32_t> a(kTriples), b(kTriples), c(kTriples);
  uint64_t x = 88172645463325252ull;
  auto rnd = [&] { return static_cast<uint32_t>((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33); };
  // one half's (a, b, c): exponents 2^-70..2^70 each (products from subnormal to overflowing), c -0, near
  // the product (a few binades either way, either sign: cancellation) or any finite bf16
  auto half = [&](uint32_t& ha, uint32_t& hb, uint32_t& hc) {
    const uint32_t r = rnd(), ea = 57 + (r >> 8) % 141, eb = 57 + (r >> 16) % 141;
    ha = (r & 0x807Fu) | ea << 7, hb = (rnd() & 0x807Fu) | eb << 7, hc = 0x8000u;
    const double p = sim::bf16_value(static_cast<uint16_t>(ha)) * sim::bf16_value(static_cast<uint16_t>(hb));
    const uint32_t kind = rnd() % 4;
    int e = 0;
    std::frexp(p, &e);
    const int ec = 127 + e - 1 + static_cast<int>(rnd() % 9) - 4;
    if (kind == 1 && ec > 0 && ec < 255) hc = (rnd() & 0x807Fu) | static_cast<uint32_t>(ec) << 7;
    if (kind == 2) {
      hc = rnd() & 0xFFFFu;
      if ((hc & 0x7F80u) == 0x7F80u) hc = 0;  // finite c only
    }
  };
  for (int i = 0; i < kTriples; i++) {
    uint32_t h[2][3];
    half(h[0][0], h[0][1], h[0][2]);
    half(h[1][0], h[1][1], h[1][2]);
    a[i] = h[0][0] | h[1][0] << 16, b[i] = h[0][1] | h[1][1] << 16, c[i] = h[0][2] | h[1][2] << 16;
  }
  Dev d;
  uint32_t* out = d.put(std::vector<uint32_t>(kTriples, 0));
  const uint32_t *da = d.put(a), *db = d.put(b), *dc = d.put(c);
  GLMK_LAUNCH(fma_kernel, (kTriples + 255) / 256, 256, 0, d.s, da, db, dc, out, kTriples);
  const auto got = d.get(out, kTriples);
  std::string err = d.finish(), bad;
  for (int i = 0; i < kTriples && bad.empty(); i++)
    for (int h = 0; h < 2 && bad.empty(); h++) {
      const auto f = [&](uint32_t v) { return static_cast<uint16_t>(v >> (16 * h)); };
      const uint16_t want = sim::bf16_fma_model(f(a[i]), f(b[i]), f(c[i])), g = f(got[i]);
      if ((want & 0x7FFFu) > 0x7F80u ? (g & 0x7FFFu) <= 0x7F80u : g != want) {
        char m[128];
        std::snprintf(m, sizeof m, "fma(0x%04X, 0x%04X, 0x%04X) gave 0x%04X, want 0x%04X", f(a[i]), f(b[i]), f(c[i]), g, want);
        bad = m;
      }
    }
  // the model itself: a product exactly halfway between two bf16 (-393 2^93) and a c 2^-127 small decides
  // the rounding (exact arithmetic: 0xF245; rounding the double sum first would tie to even, 0xF244)
  if (sim::bf16_fma_model(0xE140u, 0x5083u, 0xA19Eu) != 0xF245u || sim::bf16_fma_model(0x6140u, 0x5083u, 0x219Eu) != 0x7245u)
    bad = "the model rounds a tie nudged by a tiny c wrongly";
  // ... and against glmk_bf16_rne of the f32 product, where c is -0 and that product is exact
  for (int i = 0; i < kTriples && bad.empty(); i++)
    for (int h = 0; h < 2 && bad.empty(); h++) {
      const auto f = [&](uint32_t v) { return static_cast<uint16_t>(v >> (16 * h)); };
      const float p = static_cast<float>(sim::bf16_value(f(a[i])) * sim::bf16_value(f(b[i])));
      if (f(c[i]) != 0x8000u || !(std::fabs(p) >= 0x1p-126f) || std::isinf(p)) continue;
      if (sim::bf16_fma_model(f(a[i]), f(b[i]), f(c[i])) != glmk_bf16_rne(glmk_bits_from_f32(p))) bad = "the model differs from glmk_bf16_rne";
    }
  check(err.empty() && bad.empty(), "fma.rn.bf16x2 rounds the exact a b + c once (" + std::to_string(2 * kTriples) + " seeded triples)",
        err.empty() ? bad : err);
}

#if defined(GLMK_SIM)
void test_decoders() {  // the model's element decoders against CUDA's f16 and the CPU device's e4m3
  int bad = 0;
  for (uint32_t c = 0; c < 65536; c++) {
    const float want = __half2float(__ushort_as_half(static_cast<uint16_t>(c)));
    const double got = glmk::cuda::sim::elem_value(glmk::cuda::sim::Elem::kF16, c);
    bad += !(got == static_cast<double>(want) || (got != got && want != want));
  }
  for (uint32_t c = 0; c < 256; c++) {
    const float want = glmk_f32_from_bits(glmk_e4m3_to_f32_bits(static_cast<uint8_t>(c)));
    const double got = glmk::cuda::sim::elem_value(glmk::cuda::sim::Elem::kE4m3, c);
    bad += !(got == static_cast<double>(want) || (got != got && want != want));
  }
  check(bad == 0, "the model decodes every f16 and e4m3 code exactly (subnormals, NaN, inf)", std::to_string(bad) + " wrong");
}
#endif

}  // namespace

int main() {
  bool e4m3 = true;
#if defined(GLMK_SIM)
  test_decoders();
#else
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return std::printf("FAIL no CUDA device\n"), 1;
  std::printf("device: %s, sm_%d%d\n", p.name, p.major, p.minor);
  e4m3 = p.major * 10 + p.minor >= 89;
  if (!e4m3) std::printf("skip e4m3 m16n8k32: needs sm_89 or later\n");
#endif
  test_mma_layout<0>();
  test_mma_layout<1>();
  if (e4m3) test_mma_layout<2>();
  test_ldmatrix<1, false>();
  test_ldmatrix<2, false>();
  test_ldmatrix<4, false>();
  test_ldmatrix<1, true>();
  test_ldmatrix<2, true>();
  test_ldmatrix<4, true>();
  test_cp_async();
#if defined(GLMK_SIM)
  test_misuse();
#endif
  test_tile_gemm<false, false>();
  test_tile_gemm<true, true>();
  test_cvt_bf16x2();
  test_fma_bf16x2();
  std::printf("%s\n", g_failed ? "simt mma self-test FAILED" : "simt mma self-test passed");
  return g_failed ? 1 : 0;
}
