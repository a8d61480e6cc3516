// cuda-sim: the CUDA int4 quantizer (kernels and host side) compiled by g++ against the SIMT emulator.
#include "../int4.cu"
