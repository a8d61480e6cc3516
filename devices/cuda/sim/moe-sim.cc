// cuda-sim: the CUDA MoE router and experts (kernels and host side) compiled by g++ against the SIMT emulator.
#include "../moe.cu"
