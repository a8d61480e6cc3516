// The fake libopapi_transformer.so: aclnnGroupedMatmulV4 (ops-transformer gmm/grouped_matmul), its
// non-quantized case with single tensors as docs/aclnnGroupedMatmulV4.md describes it for Atlas A2 / A3:
// x [M, K] (not transposed), weight [g, K, N] (any strides: the transposed view (K N, 1, K) of [g, N, K]
// rows included), out [M, N], one dtype for all three (FLOAT, FLOAT16 or BFLOAT16; FLOAT only with single
// tensors, as here), groupType 0 (split M), groupList INT64 [g] (g <= 1024; groupListType 0 cumulative,
// 1 counts; its rows must add up to M), splitItem 2 or 3, actType 0, the last dims below 65536. Every bias,
// quantization and activation argument must be NULL (the fake implements none of them). Its own order:
// per output, one f32 sum over k in increasing order (as its aclnnMatmul), kept in the workspace.
#include "ops-common.hpp"

extern "C" {

int aclnnGroupedMatmulV4GetWorkspaceSize(const aclTensorList* x, const aclTensorList* weight, const aclTensorList* bias,
                                         const aclTensorList* scale, const aclTensorList* offset, const aclTensorList* antiquant_scale,
                                         const aclTensorList* antiquant_offset, const aclTensorList* per_token_scale,
                                         const aclTensor* group_list, const aclTensorList* activation_input,
                                         const aclTensorList* activation_quant_scale, const aclTensorList* activation_quant_offset,
                                         int64_t split_item, int64_t group_type, int64_t group_list_type, int64_t act_type,
                                         aclTensorList* out, aclTensorList* activation_feature_out, aclTensorList* dyn_quant_scale_out,
                                         uint64_t* ws, aclOpExecutor** ex) {
  const char* op = "aclnnGroupedMatmulV4";
  fakecann_trace("aclnnGroupedMatmulV4GetWorkspaceSize splitItem %lld groupType %lld groupListType %lld actType %lld dtype %d",
                 static_cast<long long>(split_item), static_cast<long long>(group_type), static_cast<long long>(group_list_type),
                 static_cast<long long>(act_type), x && fakecann_tensor_list_alive(x) && !x->tensors.empty() ? x->tensors[0]->dtype : -1);
  if (fakecann_inject("aclnnGroupedMatmulV4GetWorkspaceSize"))
    return fakecann_error(kAclnnErrInner, "fake CANN: injected failure in aclnnGroupedMatmulV4GetWorkspaceSize");
  if (!x || !weight || !out) return fakecann_error(kAclnnErrNullptr, "%s: x, weight or out is NULL", op);
  if (!ws || !ex) return fakecann_error(kAclnnErrNullptr, "%s: workspaceSize or executor is NULL", op);
  for (const aclTensorList* l : {x, weight, static_cast<const aclTensorList*>(out)})
    if (!fakecann_tensor_list_alive(l)) return fakecann_error(kAclnnErrParamInvalid, "%s: x, weight or out is not a live tensor list", op);
  if (bias || scale || offset || antiquant_scale || antiquant_offset || per_token_scale || activation_input || activation_quant_scale ||
      activation_quant_offset || activation_feature_out || dyn_quant_scale_out)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements the non-quantized case without bias or activation only", op);
  if (group_type != 0) return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements groupType 0 (split M) only, got %lld", op, static_cast<long long>(group_type));
  if (split_item != 2 && split_item != 3)
    return fakecann_error(kAclnnErrParamInvalid, "%s: groupType 0 with single tensors needs splitItem 2 or 3, got %lld", op, static_cast<long long>(split_item));
  if (group_list_type != 0 && group_list_type != 1)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements groupListType 0 and 1 only, got %lld", op, static_cast<long long>(group_list_type));
  if (act_type != 0) return fakecann_error(kAclnnErrParamInvalid, "%s: actType %lld: no activation in the non-quantized case", op, static_cast<long long>(act_type));
  if (x->tensors.size() != 1 || weight->tensors.size() != 1 || out->tensors.size() != 1)
    return fakecann_error(kAclnnErrParamInvalid, "%s: the fake implements single tensors only (lists of one)", op);
  const aclTensor *a = x->tensors[0], *b = weight->tensors[0], *o = out->tensors[0];
  if (int rc = fake::need(op, {{"x", a}, {"weight", b}, {"out", o}, {"groupListOptional", group_list}})) return rc;
  if (a->dims.size() != 2 || b->dims.size() != 3 || o->dims.size() != 2 || group_list->dims.size() != 1)
    return fakecann_error(kAclnnErrParamInvalid, "%s: x and out must be 2-D, weight 3-D and groupListOptional 1-D", op);
  const int64_t m = a->dims[0], k = a->dims[1], g = b->dims[0], n = b->dims[2];
  if (b->dims[1] != k || o->dims[0] != m || o->dims[1] != n || group_list->dims[0] != g)
    return fakecann_error(kAclnnErrParamInvalid, "%s: x [%lld, %lld], weight [%lld, %lld, %lld], out [%lld, %lld] and groupList [%lld] do not match", op,
                          static_cast<long long>(m), static_cast<long long>(k), static_cast<long long>(g), static_cast<long long>(b->dims[1]),
                          static_cast<long long>(n), static_cast<long long>(o->dims[0]), static_cast<long long>(o->dims[1]),
                          static_cast<long long>(group_list->dims[0]));
  if (g < 1 || g > 1024) return fakecann_error(kAclnnErrParamInvalid, "%s: %lld groups: groupType 0 allows 1 to 1024", op, static_cast<long long>(g));
  if (a->strides[1] != 1) return fakecann_error(kAclnnErrParamInvalid, "%s: x must not be transposed", op);
  if (k >= 65536 || (b->strides[2] == 1 && n >= 65536))
    return fakecann_error(kAclnnErrParamInvalid, "%s: the last dims of x and weight must be below 65536", op);
  if (a->dtype != kF32 && a->dtype != kF16 && a->dtype != kBf16)
    return fakecann_error(kAclnnErrParamInvalid, "%s: x dtype %d is not FLOAT, FLOAT16 or BFLOAT16", op, a->dtype);
  if (b->dtype != a->dtype || o->dtype != a->dtype)
    return fakecann_error(kAclnnErrParamInvalid, "%s: x, weight and out dtypes %d, %d, %d differ (non-quantized: one dtype)", op, a->dtype, b->dtype, o->dtype);
  if (group_list->dtype != kI64) return fakecann_error(kAclnnErrParamInvalid, "%s: groupListOptional must be INT64, got %d", op, group_list->dtype);
  aclOpExecutor* e = fake::executor(op, {a, b, o, group_list});
  e->workspace = static_cast<uint64_t>(m * n) * 4 + 64;
  const aclTensor xa = *a, wb = *b, oc = *o, gl = *group_list;
  const bool cumulative = group_list_type == 0;
  e->run = [xa, wb, oc, gl, m, n, k, g, cumulative](char* wsp, std::string& msg) {
    // Section: the groups' rows, read from the device (as the kernel does)
    std::vector<int64_t> end(static_cast<size_t>(g));
    int64_t at = 0;
    for (int64_t i = 0; i < g; i++) {
      const auto v = static_cast<int64_t>(fake::read(gl, fake::at(gl, i)));
      end[i] = cumulative ? v : at + v;
      if (v < 0 || end[i] < at) {
        msg = "aclnnGroupedMatmulV4: groupList[" + std::to_string(i) + "] = " + std::to_string(v) + " is negative or decreasing (AI Core exception)";
        return kAclErrRtAicoreException;
      }
      at = end[i];
    }
    if (at != m) {
      msg = "aclnnGroupedMatmulV4: the groups hold " + std::to_string(at) + " rows but x has " + std::to_string(m) + " (AI Core exception)";
      return kAclErrRtAicoreException;
    }
    // Section: per group, out rows = x rows @ weight[group]
    auto* acc = reinterpret_cast<float*>(wsp);
    int64_t r = 0;
    for (int64_t grp = 0; grp < g; grp++)
      for (; r < end[grp]; r++)
        for (int64_t j = 0; j < n; j++) {
          float s = 0.0f;
          for (int64_t kk = 0; kk < k; kk++) {
            const float p = static_cast<float>(fake::read(xa, fake::at(xa, r * k + kk))) *
                            static_cast<float>(fake::read(wb, fake::at(wb, (grp * k + kk) * n + j)));
            s = s + p;
          }
          acc[r * n + j] = s;
        }
    for (int64_t i = 0; i < m * n; i++) fake::write(oc, fake::at(oc, i), acc[i]);
    return 0;
  };
  *ws = e->workspace;
  *ex = e;
  return 0;
}
int aclnnGroupedMatmulV4(void* ws, uint64_t size, aclOpExecutor* ex, void* stream) {
  return fakecann_launch(ws, size, ex, stream, "aclnnGroupedMatmulV4");
}

}  // extern "C"
