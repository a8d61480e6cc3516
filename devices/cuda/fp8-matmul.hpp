// fp8.matmul on CUDA (SPEC 5): what the device's host code and moe.cu call (fp8-matmul.cu).
#pragma once

#include <cstddef>

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

// Temporary device memory for one op: allocated in stream order, freed in stream order (after the kernels
// enqueued before the destructor runs).
class StreamScratch {
 public:
  explicit StreamScratch(cudaStream_t stream) : stream_(stream) {}
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  ~StreamScratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  // Room for `bytes` (>= 1); E_OOM naming `op` when the pool has none.
  int alloc(size_t bytes, const char* op, glmk_status* st);
  template <class T>
  T* at(size_t byte_offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(ptr_) + byte_offset);
  }

 private:
  cudaStream_t stream_;
  void* ptr_ = nullptr;
};

// bytes rounded up to 256 (so that the next part of a scratch stays aligned).
inline size_t scratch_round(size_t bytes) { return (bytes + 255) & ~static_cast<size_t>(255); }

// The grid of `threads` threads in blocks of `block`; E_SHAPE naming `op` beyond CUDA's 2^31 - 1 blocks.
int grid_size(int64_t threads, int block, const char* op, unsigned* grid, glmk_status* st);

// The status of the launch just made: E_DEVICE "<op>: kernel launch failed: ..." or OK.
int launch_status(const char* op, glmk_status* st);

// Quantize bf16 x [rows, k] per row and 128-column block: xa [rows, k] (the e4m3 values as f32) or, with
// xq not null, xq [rows, k] (their codes) instead; sa [rows, ceil(k / 128)].
int fp8_act_quant_enqueue(cudaStream_t stream, const uint16_t* x, int64_t rows, int64_t k, float* xa, float* sa,
                          const char* op, glmk_status* st, uint8_t* xq = nullptr);

// Enqueue on `stream` (arguments already checked): the activations quantized with the CPU device's bits, the
// product on tensor cores (fp8-matmul-mma.cuh: within tolerance of the CPU device, batch invariant): the e4m3
// mma (sm_89+) when e4m3_mma, else the bf16 one on the widened codes; with allow_pipe, K in whole 128-blocks
// takes fp8-matmul-pipe.cuh (the same bits).
int fp8_matmul_enqueue(cudaStream_t stream, const glmk_fp8_matmul_args& a, bool e4m3_mma, bool allow_pipe, glmk_status* st);

}  // namespace glmk::cuda
