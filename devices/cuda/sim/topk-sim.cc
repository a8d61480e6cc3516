// cuda-sim: the CUDA top-k (kernels and host side) compiled by g++ against the SIMT emulator.
#include "../topk.cu"
