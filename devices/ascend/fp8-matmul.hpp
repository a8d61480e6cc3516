// fp8.matmul (SPEC 5) on the ascend device, and the host steps that moe.experts shares with it: the
// operands of SPEC 5's products as f32 values, made on the host with the CPU device's row code
// (glmk/host-rows.hpp), so that the NPU only multiplies f32 matrices (aclnnMatmul, aclnnGroupedMatmulV4).
#pragma once

#include <cstdint>
#include <string>

#include "glmk/device.h"

namespace glmk::ascend {

int fp8_matmul(glmk_device* d, const glmk_fp8_matmul_args* a, glmk_status* st);

// x [rows, k] bf16 -> out [rows, k] f32: per row and 128-channel block, s = scaleInv(amax) and
// a8 = e4m3(x / s) exactly as SPEC 5 quantizes activations, then f32(a8) * s (one f32 rounding; NaN as
// 0x7FC00000). The caller sets the FP environment (HostFpEnv).
void fp8_activations_f32(const uint16_t* x, int64_t rows, int64_t k, float* out);

// The same activations as e4m3 codes [rows, k] and their scales [rows, ceil(k / 128)] (SPEC 5's a8 and s_a).
void fp8_activations_codes(const uint16_t* x, int64_t rows, int64_t k, uint8_t* codes, float* scales);

// Activations on the device for the Ascend 950's FP8 cube: e4m3 codes [rows, k] and their scales [rows,
// ceil(k / 128)] (f32), the product taking rows [row, row + m).
struct CubeOperand {
  void* codes;
  void* scales;
  int64_t row;
};

// Entry `index` of a stack of weight codes [*, n, k] with [128, 128] block scales [*, ceil(n / 128), ceil(k / 128)].
struct CubeWeights {
  const uint8_t* codes;
  const float* scale_inv;
  int64_t index;
};

// One aclnnQuantMatmulV5 in its G-B mode (an Ascend 950; d->fp8_cube): y rows [y_off, y_off + m) of an [*, n]
// f32 or bf16 tensor = the activations a (rows [a.row, a.row + m)) times the weights w (CANN:
// sum_j (sum_k a8 w) * (sa[j] * sw[j])). Offsets go to CANN as element offsets of the tensors' own bases.
int fp8_cube_product(glmk_device* d, std::string& msg, const char* op, const CubeOperand& a, int64_t m, int64_t k, const CubeWeights& w,
                     int64_t n, void* y, int64_t y_off, bool y_f32);

// Weight codes [n, k] with their scales [ceil(n / block_n), ceil(k / 128)] -> out [n, k] f32:
// f32(code) * scaleInv, what fp8.dequantize(q, "f32") gives.
void fp8_weights_f32(const uint8_t* codes, const float* scale_inv, int64_t n, int64_t k, int64_t block_n, float* out);

}  // namespace glmk::ascend
