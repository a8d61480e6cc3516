// mma-cuda-check: sim/mma-selftest.cc compiled by nvcc, so that a GPU checks the tensor-core wrappers
// (devices/cuda/mma.cuh) on hardware against the same hand-computed products, plain reads and reference GEMM
// as the cuda-sim models (bench/gpu/acceptance.sh runs it). Building it also has nvcc and ptxas check every
// wrapper's inline PTX for sm_80 and sm_90.
#include "mma-selftest.cc"
