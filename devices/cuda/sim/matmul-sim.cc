// cuda-sim: the CUDA matmul and int4.matmul (kernel and host side) compiled by g++ against the SIMT emulator.
#include "../matmul.cu"
