// cuda-sim: the CUDA fp8.matmul (kernels and host side) compiled by g++ against the SIMT emulator.
#include "../fp8-matmul.cu"
