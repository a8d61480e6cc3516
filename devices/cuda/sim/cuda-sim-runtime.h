// The subset of the CUDA runtime that our host code calls, for the cuda-sim device: declared by CUDA's own
// cuda_runtime.h and defined in cuda-sim-runtime.cc on host memory. Streams are in-order queues run by one
// worker thread each (every kernel's fibers run on that thread); device memory is host memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "simt.h"

namespace simt {

// Enqueues a kernel launch on stream s (nullptr: the default stream). The launch configuration is checked
// here (cudaGetLastError reports it, as after <<<>>>); execution failures surface at the next
// cudaStreamSynchronize.
// More than 48 KiB of dynamic shared memory needs cudaFuncSetAttribute(kernel,
// cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) first, as on a GPU (else cudaErrorInvalidValue).
void launch(cudaStream_t s, dim3 grid, dim3 block, size_t dyn_smem, const char* name, const void* kernel,
            std::function<void()> body);

// The schedule seed of a stream: launch i runs with a seed mixed from (seed, i), so a run replays exactly.
void set_stream_seed(cudaStream_t s, uint64_t seed);

// The text of the last execution failure reported by cudaStreamSynchronize on s (the emulator's words:
// which kernel, block and threads, and where).
std::string stream_error_detail(cudaStream_t s);

}  // namespace simt
