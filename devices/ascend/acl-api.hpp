// The part of CANN's C API that the ascend plugin calls, declared here (no CANN headers at build time) and
// resolved at run time with dlopen/dlsym from libascendcl.so, libnnopbase.so and the op libraries
// (libopapi.so on older CANN, split libopapi_*.so on newer: a symbol is looked up across all of them).
//
// Values below are from CANN's public headers (acl_base.h, acl_rt.h, aclnn/acl_meta.h, aclnnop/*.h;
// see also ../../shared/ASCEND.md): only the ones this plugin passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace glmk::ascend {

using aclError = int;        // 0: success
using aclnnStatus = int32_t; // 0: success
using aclrtStream = void*;
struct aclTensor;
struct aclScalar;
struct aclTensorList;
struct aclOpExecutor;

constexpr aclError kAclSuccess = 0;
constexpr aclError kAclRepeatInitialize = 100002;  // aclInit a second time in one process

// aclDataType
constexpr int kAclFloat = 0, kAclFloat16 = 1, kAclInt32 = 3, kAclInt64 = 9, kAclBool = 12, kAclBf16 = 27, kAclInt4 = 29,
              kAclFloat8E4m3fn = 36;
// aclFormat
constexpr int kAclFormatNd = 2;
// aclrtMemcpyKind
constexpr int kHostToDevice = 1, kDeviceToHost = 2, kDeviceToDevice = 3;
// aclrtMemMallocPolicy: ACL_MEM_MALLOC_HUGE_FIRST
constexpr int kMallocHugeFirst = 0;
// aclSysParamOpt: ACL_OPT_DETERMINISTIC
constexpr int kOptDeterministic = 0;

using WsFn1 = aclnnStatus (*)(const aclTensor*, aclTensor*, uint64_t*, aclOpExecutor**);
using RunFn = aclnnStatus (*)(void* workspace, uint64_t workspace_size, aclOpExecutor* executor, aclrtStream stream);

// The resolved entry points. Required ones are non-null once load() succeeded; optional ones may be null.
struct AclApi {
  // libascendcl
  aclError (*aclInit)(const char* config);
  aclError (*aclrtSetDevice)(int32_t device);
  aclError (*aclrtResetDevice)(int32_t device);
  aclError (*aclrtGetDeviceCount)(uint32_t* count);
  aclError (*aclrtCreateStream)(aclrtStream* stream);
  aclError (*aclrtDestroyStream)(aclrtStream stream);
  aclError (*aclrtSynchronizeStream)(aclrtStream stream);
  aclError (*aclrtMalloc)(void** ptr, size_t size, int policy);
  aclError (*aclrtFree)(void* ptr);
  aclError (*aclrtMemcpy)(void* dst, size_t dst_max, const void* src, size_t count, int kind);
  aclError (*aclrtMemcpyAsync)(void* dst, size_t dst_max, const void* src, size_t count, int kind, aclrtStream stream);
  const char* (*aclGetRecentErrMsg)();
  aclError (*aclrtCtxSetSysParamOpt)(int opt, int64_t value);
  aclError (*aclrtSetSysParamOpt)(int opt, int64_t value);            // optional (newer CANN)
  const char* (*aclrtGetSocName)();                                    // optional
  aclError (*aclrtGetMemInfo)(int attr, size_t* free, size_t* total);  // optional

  // libnnopbase
  aclTensor* (*aclCreateTensor)(const int64_t* view_dims, uint64_t view_dims_num, int data_type, const int64_t* stride,
                                int64_t offset, int format, const int64_t* storage_dims, uint64_t storage_dims_num,
                                void* data);
  aclnnStatus (*aclDestroyTensor)(const aclTensor* tensor);
  aclScalar* (*aclCreateScalar)(void* value, int data_type);
  aclnnStatus (*aclDestroyScalar)(const aclScalar* scalar);
  aclnnStatus (*aclDestroyAclOpExecutor)(aclOpExecutor* executor);  // optional: only on a path that skips phase two
  // A list owns its tensors: aclDestroyTensorList destroys them (CANN: "no need to release them again").
  aclTensorList* (*aclCreateTensorList)(const aclTensor* const* value, uint64_t size);
  aclnnStatus (*aclDestroyTensorList)(const aclTensorList* list);

  // op libraries (two-phase: ...GetWorkspaceSize, then the op on a stream)
  aclnnStatus (*aclnnCastGetWorkspaceSize)(const aclTensor* self, int dtype, aclTensor* out, uint64_t*, aclOpExecutor**);
  RunFn aclnnCast;
  aclnnStatus (*aclnnEqScalarGetWorkspaceSize)(const aclTensor* self, const aclScalar* other, aclTensor* out, uint64_t*,
                                               aclOpExecutor**);
  RunFn aclnnEqScalar;
  aclnnStatus (*aclnnNeTensorGetWorkspaceSize)(const aclTensor* self, const aclTensor* other, aclTensor* out, uint64_t*,
                                               aclOpExecutor**);
  RunFn aclnnNeTensor;
  aclnnStatus (*aclnnSWhereGetWorkspaceSize)(const aclTensor* condition, const aclTensor* self, const aclTensor* other,
                                             aclTensor* out, uint64_t*, aclOpExecutor**);
  RunFn aclnnSWhere;
  aclnnStatus (*aclnnSortGetWorkspaceSize)(const aclTensor* self, bool stable, int64_t dim, bool descending,
                                           aclTensor* values_out, aclTensor* indices_out, uint64_t*, aclOpExecutor**);
  RunFn aclnnSort;
  aclnnStatus (*aclnnGatherGetWorkspaceSize)(const aclTensor* self, int64_t dim, const aclTensor* index, aclTensor* out,
                                             uint64_t*, aclOpExecutor**);
  RunFn aclnnGather;
  // aclnnMatmul (ops-nn mat_mul_v3): out = self @ mat2; cubeMathType 0 = KEEP_DTYPE (f32 stays f32).
  aclnnStatus (*aclnnMatmulGetWorkspaceSize)(const aclTensor* self, const aclTensor* mat2, aclTensor* out, int8_t cube_math_type,
                                             uint64_t*, aclOpExecutor**);
  RunFn aclnnMatmul;
  // aclnnGroupedMatmulV4 (ops-transformer gmm/grouped_matmul, docs/aclnnGroupedMatmulV4.md): out_i = x_i @ weight_i
  // per group. Used non-quantized (every quantization argument NULL) with single tensors: x [M, K], weight
  // [g, K, N] (a transposed view (K N, 1, K) of [g, N, K] rows is allowed), out [M, N], groupType 0 (split M),
  // groupList INT64 [g] (groupListType 1: counts), splitItem 3, actType 0.
  aclnnStatus (*aclnnGroupedMatmulV4GetWorkspaceSize)(
      const aclTensorList* x, const aclTensorList* weight, const aclTensorList* bias, const aclTensorList* scale,
      const aclTensorList* offset, const aclTensorList* antiquant_scale, const aclTensorList* antiquant_offset,
      const aclTensorList* per_token_scale, const aclTensor* group_list, const aclTensorList* activation_input,
      const aclTensorList* activation_quant_scale, const aclTensorList* activation_quant_offset, int64_t split_item,
      int64_t group_type, int64_t group_list_type, int64_t act_type, aclTensorList* out,
      aclTensorList* activation_feature_out, aclTensorList* dyn_quant_scale_out, uint64_t*, aclOpExecutor**);
  RunFn aclnnGroupedMatmulV4;

  // Optional: only the GLM_KERNELS_ASCEND_INT4=wqbmm path of int4.matmul needs them (matmul.cc).
  // aclnnBitwiseXorTensor (ops-math): out = self ^ other, integer dtypes, other broadcast.
  aclnnStatus (*aclnnBitwiseXorTensorGetWorkspaceSize)(const aclTensor* self, const aclTensor* other, aclTensor* out, uint64_t*,
                                                       aclOpExecutor**);
  RunFn aclnnBitwiseXorTensor;
  // aclnnWeightQuantBatchMatmulV2 (ops-nn): y = x @ ANTIQUANT(weight), ANTIQUANT(w) = (w + offset) * scale; x [m, k]
  // FLOAT16 / BFLOAT16, weight INT4 [k, n] (the transposed view (1, k) of [n, k] rows allowed), per-group
  // antiquantScale [ceil(k / G), n] of x's dtype, G a multiple of 32 in [32, k - 1], k and n in [1, 65535].
  aclnnStatus (*aclnnWeightQuantBatchMatmulV2GetWorkspaceSize)(const aclTensor* x, const aclTensor* weight, const aclTensor* antiquant_scale,
                                                               const aclTensor* antiquant_offset, const aclTensor* quant_scale,
                                                               const aclTensor* quant_offset, const aclTensor* bias, int antiquant_group_size,
                                                               const aclTensor* y, uint64_t*, aclOpExecutor**);
  RunFn aclnnWeightQuantBatchMatmulV2;
  // Optional: fp8.matmul on an Ascend 950 (fp8-matmul.cc). aclnnQuantMatmulV5 (ops-nn quant_batch_matmul_v4) in its
  // G-B mode: x1 FLOAT8_E4M3FN [m, k] with x1Scale FLOAT32 [m, ceil(k/128)], x2 FLOAT8_E4M3FN [n, k] with
  // transposeX2 = true and x2Scale FLOAT32 [ceil(n/128), ceil(k/128)], groupSize = 128 | 128 << 16 | 1 << 32,
  // out[m, n] = sum_j (sum_k x1 x2) * (x1Scale[m, j] * x2Scale[n/128, j]), FLOAT16 / BFLOAT16 / FLOAT32.
  aclnnStatus (*aclnnQuantMatmulV5GetWorkspaceSize)(const aclTensor* x1, const aclTensor* x2, const aclTensor* x1_scale,
                                                    const aclTensor* x2_scale, const aclTensor* y_scale, const aclTensor* x1_offset,
                                                    const aclTensor* x2_offset, const aclTensor* y_offset, const aclTensor* bias,
                                                    bool transpose_x1, bool transpose_x2, int64_t group_size, aclTensor* out, uint64_t*,
                                                    aclOpExecutor**);
  RunFn aclnnQuantMatmulV5;
};

// Loads CANN once per process (later calls return the first outcome). On failure, *why says which library
// or symbol is missing, where it was looked for, and how to make CANN visible.
const AclApi* acl_load(std::string* why);

// The folders searched for CANN's libraries, in order (for messages and `glm-kernels info`).
std::string acl_search_text();

}  // namespace glmk::ascend
