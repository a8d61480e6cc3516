// cuda-sim's models of mma.sync, ldmatrix and cp.async (devices/cuda/mma.cuh holds the wrappers, the fragment
// layouts and what the models cannot reproduce). mma and ldmatrix run as warp collectives
// (simt::warp_model): every lane posts a pointer to its operands, the model gathers the 32 lanes' fragments
// in the PTX ISA's layouts, computes, and scatters every lane's results.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "bf16-fma-model.h"
#include "simt.h"

namespace glmk::cuda::sim {

enum class Elem { kBf16, kF16, kE4m3 };

// One element's exact value.
inline double elem_value(Elem e, uint32_t bits) {
  if (e == Elem::kBf16) {
    float f;
    const uint32_t u = bits << 16;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const bool neg = e == Elem::kF16 ? bits >> 15 : bits >> 7;
  const int mbits = e == Elem::kF16 ? 10 : 3, ebits = e == Elem::kF16 ? 5 : 4, bias = e == Elem::kF16 ? 15 : 7;
  const uint32_t m = bits & ((1u << mbits) - 1), x = (bits >> mbits) & ((1u << ebits) - 1), top = (1u << ebits) - 1;
  double v;
  if (e == Elem::kE4m3 && x == top && m == 7) v = NAN;         // e4m3 (FN): S.1111.111 is NaN, no infinities
  else if (e == Elem::kF16 && x == top) v = m ? NAN : INFINITY;
  else if (x == 0) v = std::ldexp(static_cast<double>(m), 1 - bias - mbits);
  else v = std::ldexp(static_cast<double>(m | (1u << mbits)), static_cast<int>(x) - bias - mbits);
  return neg ? -v : v;
}

struct MmaArgs {
  float* d;
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
};

template <Elem E>
bool mma_model(void* const* arg, std::string&) {
  constexpr int K = E == Elem::kE4m3 ? 32 : 16, per = K / 8, width = 32 / per;  // elements per .b32 register
  double A[16][K], B[K][8];
  float C[16][8];
  // Section: gather every lane's fragments (see mma.cuh for the layouts)
  for (int l = 0; l < 32; l++) {
    const MmaArgs& x = *static_cast<const MmaArgs*>(arg[l]);
    const int g = l >> 2, t = l & 3;
    for (int r = 0; r < 4; r++)
      for (int j = 0; j < per; j++)
        A[g + 8 * (r & 1)][per * t + (K / 2) * (r >> 1) + j] = elem_value(E, (x.a[r] >> (width * j)) & ((1u << width) - 1));
    for (int r = 0; r < 2; r++)
      for (int j = 0; j < per; j++) B[per * t + (K / 2) * r + j][g] = elem_value(E, (x.b[r] >> (width * j)) & ((1u << width) - 1));
    for (int i = 0; i < 4; i++) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = x.c[i];
  }
  // Section: D = A B + C: exact products summed in double in increasing k, + C, one rounding to f32
  float D[16][8];
  for (int m = 0; m < 16; m++)
    for (int n = 0; n < 8; n++) {
      double s = 0.0;
      for (int k = 0; k < K; k++) s += A[m][k] * B[k][n];
      const float v = static_cast<float>(s + static_cast<double>(C[m][n]));
      const uint32_t gpu_nan = 0x7FFFFFFFu;
      if (v != v) std::memcpy(&D[m][n], &gpu_nan, 4);
      else D[m][n] = v;
    }
  // Section: scatter (after every gather: d may alias c)
  for (int l = 0; l < 32; l++) {
    const MmaArgs& x = *static_cast<const MmaArgs*>(arg[l]);
    const int g = l >> 2, t = l & 3;
    for (int i = 0; i < 4; i++) x.d[i] = D[g + 8 * (i >> 1)][2 * t + (i & 1)];
  }
  return true;
}

struct LdmatrixArgs {
  uint32_t* r;
  const void* row;
};

constexpr const char* kLdmatrixName[3][2] = {
    {"ldmatrix.sync.aligned.m8n8.x1.shared.b16", "ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16"},
    {"ldmatrix.sync.aligned.m8n8.x2.shared.b16", "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16"},
    {"ldmatrix.sync.aligned.m8n8.x4.shared.b16", "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"}};

template <int N, bool Trans>
bool ldmatrix_model(void* const* arg, std::string& err) {
  uint16_t M[N][8][8];
  // Section: lanes 8i..8i+7 give matrix i's rows (the other lanes' addresses are ignored)
  for (int i = 0; i < N; i++)
    for (int row = 0; row < 8; row++) {
      const int l = 8 * i + row;
      const void* p = static_cast<const LdmatrixArgs*>(arg[l])->row;
      if (reinterpret_cast<uintptr_t>(p) % 16 != 0 || !simt::in_shared(p, 16)) {
        err = "lane " + std::to_string(l) + "'s row address (matrix " + std::to_string(i) + " row " + std::to_string(row) +
              ") is " + (!simt::in_shared(p, 16) ? "not in this block's shared memory" : "not 16-byte aligned");
        return false;
      }
      std::memcpy(M[i][row], p, 16);
    }
  // Section: lane L, register i: row L/4, columns 2(L%4) and 2(L%4)+1 (transposed with .trans)
  for (int l = 0; l < 32; l++) {
    uint32_t* r = static_cast<const LdmatrixArgs*>(arg[l])->r;
    const int q = l / 4, c = 2 * (l % 4);
    for (int i = 0; i < N; i++) {
      const uint16_t lo = Trans ? M[i][c][q] : M[i][q][c], hi = Trans ? M[i][c + 1][q] : M[i][q][c + 1];
      r[i] = static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
    }
  }
  return true;
}

// cp.async: read the source now, poison the destination, land at the wait that completes the group.
inline void cp_async(void* dst, const void* src, int size, int src_bytes, const char* name, const char* file, int line) {
  const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  if (d % static_cast<unsigned>(size) || s % static_cast<unsigned>(size))
    simt::fault(std::string(name) + " of " + std::to_string(size) + " bytes: the addresses must be " +
                std::to_string(size) + "-byte aligned", file, line);
  else if (!simt::in_shared(dst, static_cast<size_t>(size)))
    simt::fault(std::string(name) + ": the destination is not in this block's shared memory", file, line);
  else if (src_bytes < 0 || src_bytes > size)
    simt::fault(std::string(name) + ": src-size " + std::to_string(src_bytes) + " is not in 0.." + std::to_string(size), file, line);
  if (simt::cur().wait == simt::Wait::kFault) return simt::halt();
  simt::Fiber& f = simt::cur();
  simt::AsyncCopy c{static_cast<unsigned char*>(dst), {}, size, f.open_group};
  std::memcpy(c.bytes, src, static_cast<size_t>(src_bytes));  // the rest stays zero (zero-fill)
  std::memset(dst, 0xFF, static_cast<size_t>(size));
  f.copies.push_back(c);
}

// cp.async.wait_group n: every committed group but the n most recent lands (uncommitted copies stay pending).
inline void cp_async_land(int n) {
  simt::Fiber& f = simt::cur();
  const uint64_t below = f.open_group >= static_cast<uint64_t>(n) ? f.open_group - static_cast<uint64_t>(n) : 0;
  size_t kept = 0;
  for (size_t i = 0; i < f.copies.size(); i++) {
    const simt::AsyncCopy& c = f.copies[i];
    if (c.group < below) std::memcpy(c.dst, c.bytes, static_cast<size_t>(c.size));
    else f.copies[kept++] = c;
  }
  f.copies.resize(kept);
}

}  // namespace glmk::cuda::sim
