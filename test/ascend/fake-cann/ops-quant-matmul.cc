// The fake's aclnnWeightQuantBatchMatmulV2 and aclnnQuantMatmulV5 (in libopapi_nn.so, as ops-nn's). The first:
// y[m, n] = x[m, k] @ ANTIQUANT(weight[k, n]), ANTIQUANT(w) = (w + antiquantOffset) * antiquantScale, with the
// limits CANN documents for Atlas A2 / A3 that a caller can get wrong:
//   x FLOAT16 or BFLOAT16, 2-D, contiguous; weight INT8 or INT4 (two's-complement nibbles, element 2i in the
//   low nibble of byte i), [k, n] contiguous or the transposed view (strides (1, k)), an INT4 weight's inner
//   (contiguous) axis even; antiquantScale of x's dtype: (1) / (1, 1) per tensor, (n) / (1, n) per channel,
//   (ceil(k / G), n) per group with G = antiquantGroupSize a multiple of 32 in [32, k - 1] (0 otherwise),
//   contiguous or transposed; antiquantOffset absent or like antiquantScale; y [m, n] of x's dtype; k and n
//   in [1, 65535]; no empty tensors.
// The fake leaves out what the plugin never passes: output quantization (quantScale / quantOffset), bias,
// FRACTAL_NZ weights, transposed x; it refuses them rather than compute them wrongly.
// Arithmetic, as CANN's golden model has it for the per-group mode: for bf16 x the dequantization in f32,
// (q + offset) * s, here rounded once to bf16 for the cube (RNE; the golden model keeps f32, the hardware's
// cube takes bf16); for f16 x in f16, each step rounded to f16. Then per output one f32 sum over k in
// increasing order of the f32 products, kept in the workspace, rounded once to y's dtype.
#include <algorithm>

#include "ops-common.hpp"

namespace {

std::string dims_text(const aclTensor* t) {
  std::string s = "[";
  for (size_t i = 0; i < t->dims.size(); i++) s += (i ? ", " : "") + std::to_string(t->dims[i]);
  return s + "]";
}

// A 2-D [r, c] view that is contiguous (strides (c, 1)) or the transpose of contiguous [c, r] (strides (1, r)).
bool plain_or_transposed(const aclTensor* t) {
  if (t->dims.size() != 2) return true;  // 1-D scales: checked by shape
  const int64_t r = t->dims[0], c = t->dims[1];
  return (t->strides[0] == c && t->strides[1] == 1) || (t->strides[0] == 1 && t->strides[1] == r) || r == 1 || c == 1;
}

// The value that x's dtype holds for f (bf16: RNE; f16: RNE, subnormals kept).
float to_dtype(int dt, float f) {
  if (dt == kBf16) {
    const uint32_t b = static_cast<uint32_t>(fake::bf16_bits(f)) << 16;
    float v;
    std::memcpy(&v, &b, 4);
    return v;
  }
  return static_cast<float>(fake::f16_value(fake::f16_bits(f)));
}

}  // namespace

extern "C" {

int aclnnWeightQuantBatchMatmulV2GetWorkspaceSize(const aclTensor* x, const aclTensor* weight, const aclTensor* antiquant_scale,
                                                  const aclTensor* antiquant_offset, const aclTensor* quant_scale,
                                                  const aclTensor* quant_offset, const aclTensor* bias, int group_size, const aclTensor* y,
                                                  uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnWeightQuantBatchMatmulV2";
  fakecann_trace("aclnnWeightQuantBatchMatmulV2GetWorkspaceSize x %d weight %d scale %d groupSize %d", x ? x->dtype : -1,
                 weight ? weight->dtype : -1, antiquant_scale ? antiquant_scale->dtype : -1, group_size);
  if (fakecann_inject("aclnnWeightQuantBatchMatmulV2GetWorkspaceSize"))
    return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnWeightQuantBatchMatmulV2GetWorkspaceSize");
  if (int rc = fake::need(op, {{"x", x}, {"antiquantScale", antiquant_scale}, {"y", y}})) return rc;
  if (!weight) return fakecann_error(kAclnnErrNullptr, "%s: weight is NULL", op);
  if (!fakecann_tensor_alive(weight)) return fakecann_error(kAclnnErrParamInvalid, "%s: weight is not a live tensor", op);
  if (antiquant_offset && !fakecann_tensor_alive(antiquant_offset))
    return fakecann_error(kAclnnErrParamInvalid, "%s: antiquantOffsetOptional is not a live tensor", op);
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  if (quant_scale || quant_offset || bias)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements no output quantization and no bias (pass NULL)", op);

  // Section: shapes and dtypes
  if (x->dims.size() != 2 || weight->dims.size() != 2 || y->dims.size() != 2)
    return fakecann_error(kAclnnErrParamInvalid, "%s: x, weight and y must be 2-D, got x %s, weight %s, y %s", op, dims_text(x).c_str(),
                          dims_text(weight).c_str(), dims_text(y).c_str());
  const int64_t m = x->dims[0], k = x->dims[1], n = weight->dims[1];
  if (x->dtype != kF16 && x->dtype != kBf16) return fakecann_error(kAclnnErrParamInvalid, "%s: x dtype %d is not FLOAT16 or BFLOAT16", op, x->dtype);
  if (weight->dtype != kInt4 && weight->dtype != kI8)
    return fakecann_error(kAclnnErrParamInvalid, "%s: weight dtype %d is not INT8 or INT4 (the fake takes no INT32 pack)", op, weight->dtype);
  if (weight->dims[0] != k)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the reduce dims differ: x %s, weight %s", op, dims_text(x).c_str(), dims_text(weight).c_str());
  if (m < 1 || k < 1 || k > 65535 || n < 1 || n > 65535)
    return fakecann_error(kAclnnErrParamInvalid, "%s: m %lld must be >= 1, k %lld and n %lld in [1, 65535]", op, static_cast<long long>(m),
                          static_cast<long long>(k), static_cast<long long>(n));
  if (y->dtype != x->dtype || y->dims[0] != m || y->dims[1] != n)
    return fakecann_error(kAclnnErrParamInvalid, "%s: y must be [%lld, %lld] of x's dtype, got %s dtype %d", op, static_cast<long long>(m),
                          static_cast<long long>(n), dims_text(y).c_str(), y->dtype);
  if (antiquant_scale->dtype != x->dtype)
    return fakecann_error(kAclnnErrParamInvalid, "%s: antiquantScale dtype %d must be x's (%d)", op, antiquant_scale->dtype, x->dtype);
  if (antiquant_offset && (antiquant_offset->dtype != x->dtype || antiquant_offset->dims != antiquant_scale->dims))
    return fakecann_error(kAclnnErrParamInvalid, "%s: antiquantOffsetOptional must have antiquantScale's shape and x's dtype", op);

  // Section: layouts (non-contiguous only as a transpose; an INT4 weight's inner axis even)
  if (x->strides[0] != k || x->strides[1] != 1) return fakecann_error(kAclnnErrParamInvalid, "%s: the fake takes a contiguous x only", op);
  if (y->strides[0] != n || y->strides[1] != 1) return fakecann_error(kAclnnErrParamInvalid, "%s: y must be contiguous", op);
  const bool w_t = weight->strides[0] == 1 && weight->strides[1] == k;
  if (!w_t && !(weight->strides[0] == n && weight->strides[1] == 1))
    return fakecann_error(kAclnnErrParamInvalid, "%s: weight %s with strides (%lld, %lld) is neither contiguous nor the transposed view (1, %lld)",
                          op, dims_text(weight).c_str(), static_cast<long long>(weight->strides[0]),
                          static_cast<long long>(weight->strides[1]), static_cast<long long>(k));
  if (weight->dtype == kInt4 && ((w_t ? k : n) % 2 != 0 || weight->offset % 2 != 0))
    return fakecann_error(kAclnnErrParamInvalid, "%s: an INT4 weight's inner axis must be even (and start on a byte)", op);
  for (const aclTensor* t : {antiquant_scale, antiquant_offset})
    if (t && !plain_or_transposed(t)) return fakecann_error(kAclnnErrParamInvalid, "%s: antiquant tensors must be contiguous or transposed", op);

  // Section: the antiquantization mode, from antiquantScale's shape and antiquantGroupSize
  const std::vector<int64_t>& sd = antiquant_scale->dims;
  const int64_t sn = fake_numel(antiquant_scale);
  int64_t groups = 1;  // rows of scales along k
  if (group_size != 0) {
    if (group_size < 32 || group_size % 32 != 0 || group_size > k - 1)
      return fakecann_error(kAclnnErrParamInvalid, "%s: antiquantGroupSize %d must be a multiple of 32 in [32, k - 1 = %lld]", op, group_size,
                            static_cast<long long>(k - 1));
    groups = (k + group_size - 1) / group_size;
    if (sd.size() != 2 || sd[0] != groups || sd[1] != n)
      return fakecann_error(kAclnnErrParamInvalid, "%s: per-group antiquantScale must be [%lld, %lld], got %s", op, static_cast<long long>(groups),
                            static_cast<long long>(n), dims_text(antiquant_scale).c_str());
  } else if (!(sn == 1 || (sn == n && sd.back() == n)))
    return fakecann_error(kAclnnErrParamInvalid, "%s: antiquantScale %s is neither per tensor (1) nor per channel (%lld)", op,
                          dims_text(antiquant_scale).c_str(), static_cast<long long>(n));

  aclOpExecutor* e = fake::executor(op, {x, antiquant_scale, y});
  e->uses.push_back(weight);
  e->touches.push_back(fakecann_device_range(weight->data, 1, nullptr));
  if (antiquant_offset) {
    e->uses.push_back(antiquant_offset);
    e->touches.push_back(fakecann_device_range(antiquant_offset->data, 1, nullptr));
  }
  e->workspace = static_cast<uint64_t>(m * n) * 4 + 64;
  const aclTensor a = *x, w = *weight, s = *antiquant_scale, o = *y;
  const bool has_off = antiquant_offset != nullptr;
  const aclTensor off = has_off ? *antiquant_offset : aclTensor{};
  const int64_t g = group_size;
  e->run = [a, w, s, o, off, has_off, m, n, k, g, sn](char* wsp, std::string&) {
    const int dt = a.dtype;
    // the scale / offset of weight element (kk, j): per group row kk / g, per channel j, or the one value
    auto param = [&](const aclTensor& t, int64_t kk, int64_t j) {
      const int64_t lin = g ? (kk / g) * n + j : (sn == 1 ? 0 : j);
      return static_cast<float>(fake::read(t, fake::at(t, lin)));
    };
    std::vector<float> wv(static_cast<size_t>(k * n));
    for (int64_t kk = 0; kk < k; kk++)
      for (int64_t j = 0; j < n; j++) {
        const int64_t lin = kk * n + j;
        const float q = w.dtype == kInt4 ? static_cast<float>(fake::int4_at(w, lin)) : static_cast<float>(static_cast<int8_t>(*fake::at(w, lin)));
        float v = q;
        if (dt == kF16) {
          if (has_off) v = to_dtype(dt, v + param(off, kk, j));
          v = to_dtype(dt, v * param(s, kk, j));
        } else {
          if (has_off) v = v + param(off, kk, j);
          v = to_dtype(dt, v * param(s, kk, j));  // f32 dequantization, one rounding to bf16 for the cube
        }
        wv[static_cast<size_t>(lin)] = v;
      }
    auto* acc = reinterpret_cast<float*>(wsp);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        float sum = 0.0f;
        for (int64_t kk = 0; kk < k; kk++) sum = sum + static_cast<float>(fake::read(a, fake::at(a, i * k + kk))) * wv[static_cast<size_t>(kk * n + j)];
        acc[i * n + j] = sum;
      }
    for (int64_t i = 0; i < m * n; i++) fake::write(o, fake::at(o, i), acc[i]);
    return 0;
  };
  *ws = e->workspace;
  *ex = e;
  return 0;
}
int aclnnWeightQuantBatchMatmulV2(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) {
  return fakecann_launch(ws, size, ex, stream, "aclnnWeightQuantBatchMatmulV2");
}

}  // extern "C"

// The fake's aclnnQuantMatmulV5 (libopapi_nn.so), the one mode the plugin uses: G-B on an Ascend 950 (the docs'
// "G-B && B-B" constraints): x1 FLOAT8_E4M3FN [m, k] (transposeX1 false), x2 FLOAT8_E4M3FN [n, k] with
// transposeX2 true ([k, n] with false), x1Scale FLOAT32 [m, ceil(k/128)], x2Scale FLOAT32 [ceil(n/128),
// ceil(k/128)] (transposed like x2: [ceil(k/128), ceil(n/128)] with false), groupSize 128 | 128 << 16 | 1 << 32
// (or 0, inferred from those shapes), no yScale, offsets or bias, out [m, n] FLOAT16 / BFLOAT16 / FLOAT32,
// all contiguous. Other chips refuse FP8 inputs (A2 / A3 have no FP8 cube); other modes are refused.
// Arithmetic, the docs' formula: out = sum_j (sum_k x1 x2) * (x1Scale[m, j] * x2Scale[j, n/128]), the inner
// sum an f32 sum of the (exact) products in increasing k, blocks added in increasing j, one rounding to out.
// Weak: the runtime variant of an older CANN (libascendcl-old.so) has no aclrtGetSocName, and then no chip is a 950.
extern "C" const char* aclrtGetSocName() __attribute__((weak));

namespace {
const char* soc_name() { return aclrtGetSocName ? aclrtGetSocName() : "(an older CANN: no aclrtGetSocName)"; }
}  // namespace

extern "C" {

int aclnnQuantMatmulV5GetWorkspaceSize(const aclTensor* x1, const aclTensor* x2, const aclTensor* x1_scale, const aclTensor* x2_scale,
                                       const aclTensor* y_scale, const aclTensor* x1_offset, const aclTensor* x2_offset,
                                       const aclTensor* y_offset, const aclTensor* bias, bool transpose_x1, bool transpose_x2,
                                       int64_t group_size, aclTensor* out, uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnQuantMatmulV5";
  fakecann_trace("aclnnQuantMatmulV5GetWorkspaceSize x1 %d x2 %d transposeX2 %d groupSize %lld out %d", x1 ? x1->dtype : -1,
                 x2 ? x2->dtype : -1, transpose_x2 ? 1 : 0, static_cast<long long>(group_size), out ? out->dtype : -1);
  if (fakecann_inject("aclnnQuantMatmulV5GetWorkspaceSize")) return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnQuantMatmulV5GetWorkspaceSize");
  if (int rc = fake::need(op, {{"x1", x1}, {"x2", x2}, {"x1Scale", x1_scale}, {"x2Scale", x2_scale}, {"out", out}})) return rc;
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  if (x1->dtype != kF8E4m3 || x2->dtype != kF8E4m3)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements FLOAT8_E4M3FN x1 and x2 only, got %d and %d", op, x1->dtype, x2->dtype);
  if (std::strncmp(soc_name(), "Ascend950", 9) != 0)
    return fakecann_error(kAclnnErrParamInvalid, "%s: FLOAT8_E4M3FN inputs need an Ascend 950 (this is %s)", op, soc_name());
  if (y_scale || x1_offset || x2_offset || y_offset || bias)
    return fakecann_error(kAclnnErrParamInvalid, "%s: G-B with FP8 inputs takes no yScale, offsets or bias", op);
  if (transpose_x1) return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements transposeX1 = false only", op);
  if (x1->dims.size() != 2 || x2->dims.size() != 2 || out->dims.size() != 2 || x1_scale->dims.size() != 2 || x2_scale->dims.size() != 2)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements 2-D x1, x2, scales and out only", op);
  const int64_t m = x1->dims[0], k = x1->dims[1];
  const int64_t n = transpose_x2 ? x2->dims[0] : x2->dims[1], k2 = transpose_x2 ? x2->dims[1] : x2->dims[0];
  const int64_t kb = (k + 127) / 128, nb = (n + 127) / 128;
  if (k2 != k) return fakecann_error(kAclnnErrParamInvalid, "%s: x1 %s and x2 %s differ in k", op, dims_text(x1).c_str(), dims_text(x2).c_str());
  const std::vector<int64_t> want_s1{m, kb}, want_s2 = transpose_x2 ? std::vector<int64_t>{nb, kb} : std::vector<int64_t>{kb, nb};
  if (x1_scale->dtype != kF32 || x2_scale->dtype != kF32 || x1_scale->dims != want_s1 || x2_scale->dims != want_s2)
    return fakecann_error(kAclnnErrParamInvalid, "%s: G-B wants FLOAT32 x1Scale [%lld, %lld] and x2Scale %s, got %s and %s", op,
                          static_cast<long long>(m), static_cast<long long>(kb), transpose_x2 ? "[ceil(n/128), ceil(k/128)]" : "[ceil(k/128), ceil(n/128)]",
                          dims_text(x1_scale).c_str(), dims_text(x2_scale).c_str());
  constexpr int64_t kGB = 128 | int64_t{128} << 16 | int64_t{1} << 32;
  if ((group_size & 0xFFFFFFFFFFFFll) != kGB && group_size != 0)
    return fakecann_error(kAclnnErrParamInvalid, "%s: groupSize %lld is not G-B's [1, 128, 128] (%lld)", op, static_cast<long long>(group_size),
                          static_cast<long long>(kGB));
  if (out->dims != std::vector<int64_t>{m, n} || (out->dtype != kF32 && out->dtype != kBf16 && out->dtype != kF16))
    return fakecann_error(kAclnnErrParamInvalid, "%s: out must be [%lld, %lld] FLOAT16, BFLOAT16 or FLOAT32, got %s dtype %d", op,
                          static_cast<long long>(m), static_cast<long long>(n), dims_text(out).c_str(), out->dtype);
  for (const aclTensor* t : {x1, x2, x1_scale, x2_scale, static_cast<const aclTensor*>(out)})
    if (t->strides[0] != t->dims[1] || t->strides[1] != 1) return fakecann_error(kAclnnErrParamInvalid, "%s: the fake takes contiguous tensors only", op);
  aclOpExecutor* e = fake::executor(op, {x1, x2, x1_scale, x2_scale, out});
  e->workspace = static_cast<uint64_t>(m * n) * 4 + 64;
  const aclTensor a = *x1, w = *x2, sa = *x1_scale, sw = *x2_scale, o = *out;
  const bool tw = transpose_x2;
  e->run = [a, w, sa, sw, o, m, n, k, kb, tw](char* wsp, std::string&) {
    auto v = [](const aclTensor& t, int64_t lin) { return static_cast<float>(fake::read(t, fake::at(t, lin))); };
    auto* acc = reinterpret_cast<float*>(wsp);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        float y = 0.0f;
        for (int64_t b = 0; b < kb; b++) {
          float p = 0.0f;
          for (int64_t kk = b * 128; kk < std::min(k, (b + 1) * 128); kk++) p = p + v(a, i * k + kk) * v(w, tw ? j * k + kk : kk * n + j);
          const float s = v(sa, i * kb + b) * v(sw, tw ? (j / 128) * kb + b : b * ((n + 127) / 128) + j / 128);
          y = y + p * s;
        }
        acc[i * n + j] = y;
      }
    for (int64_t i = 0; i < m * n; i++) fake::write(o, fake::at(o, i), acc[i]);
    return 0;
  };
  *ws = e->workspace;
  *ex = e;
  return 0;
}
int aclnnQuantMatmulV5(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) { return fakecann_launch(ws, size, ex, stream, "aclnnQuantMatmulV5"); }

}  // extern "C"
