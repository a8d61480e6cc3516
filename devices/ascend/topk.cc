// Deterministic top-k (SPEC 3) on an Ascend NPU, composed of aclnn ops so that no kernel of ours needs the
// toolkit to build. Per block of rows that share one window [start, start + len):
//
//   x    = the window, widened to f32 (aclnnCast; an f32 window is a strided view, no copy)
//   key  = x with both zeros as +0, and NaN as +inf (aclnnEqScalar / aclnnNeTensor masks, aclnnSWhere
//          selects: no arithmetic touches a score, so nothing can be flushed or rounded);
//          bf16 / f16 only: +inf as FLT_MAX first, which lies above every finite bf16 / f16 value
//   perm = aclnnSort(key, stable = true, descending) along the row: equal keys keep ascending index
//   f32 only: NaN and +inf would share the key +inf (f32 has no free value above +inf), so the order is
//          made by two stable sorts, least significant first: a sort on isnan(x) (NaN first), then the
//          sort on key of that permutation (aclnnGather): equal keys keep the NaN-first, index order.
//   indices = perm[:, :kk] cast to i32; values = x gathered at them, every NaN selected as 0x7FC00000.
//
// NOTE: on the host (this thread): the windows. lengths / rowStarts are read back (a stream wait), checked,
// and rows that share a window are launched together; the slots past a short row's length are written
// with -1 / -inf by host-to-device copies. The NPU's own NaN and signed-zero order is never relied on.
#include "topk.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "aclnn-call.hpp"
#include "device.hpp"
#include "glmk/status.hpp"

namespace glmk::ascend {

namespace {

constexpr size_t kScratchBudget = size_t{1} << 30;  // rows of a block are launched in chunks that fit

struct Block {
  int64_t r0, n, start, len;
};

size_t align64(size_t b) { return (b + 63) / 64 * 64; }

// Scratch bytes of a chunk of n rows of width w with kk outputs each.
size_t chunk_bytes(int64_t n, int64_t w, int64_t kk, bool f32) {
  const size_t nw = static_cast<size_t>(n) * static_cast<size_t>(w), nk = static_cast<size_t>(n) * static_cast<size_t>(kk);
  size_t b = align64(nw * 4) * 3 + align64(nw) + align64(nw * 8) + align64(nk * 4) + align64(nk) + 1024;  // x, key x2, mask, perm, vals, vmask
  if (f32) b += align64(nw * 4) * 2 + align64(nw * 8) + align64(nk * 8);  // flag, key1, perm1, idx
  return b;
}

// Launches rows [b.r0, b.r0 + b.n) of one window (b.len >= 1).
int launch_block(glmk_device* d, const glmk_topk_args& a, const Block& b, std::string& msg) {
  const AclApi* acl = d->acl;
  const bool f32 = a.dtype == GLMK_F32;
  const int64_t n = b.n, w = b.len, kk = std::min<int64_t>(a.k, b.len), nw = n * w;
  if (reserve(d, &d->scratch, &d->scratch_bytes, chunk_bytes(n, w, kk, f32), msg) != GLMK_OK) {
    msg = "topk: " + msg;
    return GLMK_E_OOM;
  }
  char* s = static_cast<char*>(d->scratch);
  auto take = [&s](size_t bytes) {
    char* p = s;
    s += align64(bytes);
    return p;
  };
  Descs t(acl);
  const int in_dtype = f32 ? kAclFloat : a.dtype == GLMK_BF16 ? kAclBf16 : kAclFloat16;
  void* scores = const_cast<void*>(a.scores);
  aclTensor* X = t.view(scores, in_dtype, n, w, a.cols, b.r0 * a.cols + b.start, a.rows * a.cols);
  void* xw_data = f32 ? nullptr : take(nw * 4);
  aclTensor* XW = f32 ? X : t.view(xw_data, kAclFloat, n, w, w, 0, nw);
  void* key0 = take(nw * 4);
  void* key1 = take(nw * 4);
  void* mask = take(nw);
  void* perm = take(nw * 8);
  void* vals = take(n * kk * 4);
  void* vmask = take(n * kk);
  aclTensor* K0 = t.view(key0, kAclFloat, n, w, w, 0, nw);
  aclTensor* K1 = t.view(key1, kAclFloat, n, w, w, 0, nw);
  aclTensor* M = t.view(mask, kAclBool, n, w, w, 0, nw);
  aclTensor* P = t.view(perm, kAclInt64, n, w, w, 0, nw);
  aclTensor* ZERO = t.constant(d->constants, 0);
  aclTensor* PINF = t.constant(d->constants, 1);
  aclTensor* FMAX = t.constant(d->constants, 2);
  aclTensor* QNAN = t.constant(d->constants, 3);
  aclScalar* zero = t.scalar(0.0f);
  aclScalar* inf = t.scalar(std::numeric_limits<float>::infinity());
  aclTensor* V = t.view(vals, kAclFloat, n, kk, kk, 0, n * kk);
  aclTensor* VM = t.view(vmask, kAclBool, n, kk, kk, 0, n * kk);
  aclTensor* OUT_I = t.view(a.indices, kAclInt32, n, kk, a.k, b.r0 * a.k, a.rows * a.k);
  aclTensor* OUT_V = t.view(a.values, kAclFloat, n, kk, a.k, b.r0 * a.k, a.rows * a.k);
  if (!t.error().empty()) return (msg = "topk: " + t.error()), GLMK_E_DEVICE;

  int rc = GLMK_OK;
  auto op = [&](const char* name, auto phase1, RunFn run) {
    if (rc == GLMK_OK) rc = aclnn_launch(d, msg, "topk", name, phase1, run);
  };
  // Section: the key (selects only)
  if (!f32) op("aclnnCast", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(X, kAclFloat, XW, ws, ex); }, acl->aclnnCast);
  op("aclnnEqScalar", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnEqScalarGetWorkspaceSize(XW, zero, M, ws, ex); }, acl->aclnnEqScalar);
  op("aclnnSWhere", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSWhereGetWorkspaceSize(M, ZERO, XW, K0, ws, ex); }, acl->aclnnSWhere);
  aclTensor* key = K0;
  if (!f32) {  // +inf below every NaN: FLT_MAX, above every finite bf16 / f16
    op("aclnnEqScalar", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnEqScalarGetWorkspaceSize(XW, inf, M, ws, ex); }, acl->aclnnEqScalar);
    op("aclnnSWhere", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSWhereGetWorkspaceSize(M, FMAX, K0, K1, ws, ex); }, acl->aclnnSWhere);
    key = K1;
  }
  aclTensor* key_out = key == K0 ? K1 : K0;
  op("aclnnNeTensor", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnNeTensorGetWorkspaceSize(XW, XW, M, ws, ex); }, acl->aclnnNeTensor);
  op("aclnnSWhere", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSWhereGetWorkspaceSize(M, PINF, key, key_out, ws, ex); }, acl->aclnnSWhere);
  key = key_out;

  // Section: the stable sorts
  aclTensor* sorted_scratch = t.view(key == K0 ? key1 : key0, kAclFloat, n, w, w, 0, nw);  // values out, unused
  aclTensor* IDX = nullptr;  // i64 [n, kk]: each output's column in the window
  if (!f32) {
    op("aclnnSort", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSortGetWorkspaceSize(key, true, 1, true, sorted_scratch, P, ws, ex); }, acl->aclnnSort);
    IDX = t.view(perm, kAclInt64, n, kk, w, 0, nw);
  } else {
    void* flag = take(nw * 4);
    void* keyp = take(nw * 4);
    void* perm1 = take(nw * 8);
    void* idx = take(n * kk * 8);
    aclTensor* F = t.view(flag, kAclFloat, n, w, w, 0, nw);
    aclTensor* KP = t.view(keyp, kAclFloat, n, w, w, 0, nw);
    aclTensor* P1 = t.view(perm1, kAclInt64, n, w, w, 0, nw);
    aclTensor* PK = t.view(perm, kAclInt64, n, kk, w, 0, nw);
    IDX = t.view(idx, kAclInt64, n, kk, kk, 0, n * kk);
    if (!t.error().empty()) return (msg = "topk: " + t.error()), GLMK_E_DEVICE;
    op("aclnnCast", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(M, kAclFloat, F, ws, ex); }, acl->aclnnCast);
    op("aclnnSort", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSortGetWorkspaceSize(F, true, 1, true, sorted_scratch, P1, ws, ex); }, acl->aclnnSort);
    op("aclnnGather", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnGatherGetWorkspaceSize(key, 1, P1, KP, ws, ex); }, acl->aclnnGather);
    op("aclnnSort", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSortGetWorkspaceSize(KP, true, 1, true, sorted_scratch, P, ws, ex); }, acl->aclnnSort);
    op("aclnnGather", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnGatherGetWorkspaceSize(P1, 1, PK, IDX, ws, ex); }, acl->aclnnGather);
  }
  if (!t.error().empty()) return (msg = "topk: " + t.error()), GLMK_E_DEVICE;

  // Section: the outputs
  op("aclnnCast", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnCastGetWorkspaceSize(IDX, kAclInt32, OUT_I, ws, ex); }, acl->aclnnCast);
  op("aclnnGather", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnGatherGetWorkspaceSize(XW, 1, IDX, V, ws, ex); }, acl->aclnnGather);
  op("aclnnNeTensor", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnNeTensorGetWorkspaceSize(V, V, VM, ws, ex); }, acl->aclnnNeTensor);
  op("aclnnSWhere", [&](uint64_t* ws, aclOpExecutor** ex) { return acl->aclnnSWhereGetWorkspaceSize(VM, QNAN, V, OUT_V, ws, ex); }, acl->aclnnSWhere);
  return rc;
}

// Slots [from, k) of rows [r0, r0 + n) get index -1 and value -inf (host-to-device copies from buffers
// kept alive until the stream has run them).
int pad_rows(glmk_device* d, const glmk_topk_args& a, int64_t r0, int64_t n, int64_t from, std::string& msg) {
  const int64_t m = a.k - from;
  if (m <= 0) return GLMK_OK;
  std::unique_ptr<char[]> buf(new char[static_cast<size_t>(m) * 8]);
  auto* idx = reinterpret_cast<int32_t*>(buf.get());
  auto* val = reinterpret_cast<float*>(buf.get() + m * 4);
  std::fill(idx, idx + m, -1);
  std::fill(val, val + m, -std::numeric_limits<float>::infinity());
  for (int64_t r = r0; r < r0 + n; r++) {
    const size_t off = static_cast<size_t>(r * a.k + from), bytes = static_cast<size_t>(m) * 4;
    int e = d->acl->aclrtMemcpyAsync(a.indices + off, bytes, idx, bytes, kHostToDevice, d->stream);
    if (e == kAclSuccess) e = d->acl->aclrtMemcpyAsync(a.values + off, bytes, val, bytes, kHostToDevice, d->stream);
    if (e != kAclSuccess) return acl_error(d, msg, GLMK_E_DEVICE, "topk: padding a short row (aclrtMemcpyAsync)", e);
  }
  d->keep_alive.push_back(std::move(buf));
  return GLMK_OK;
}

// The row windows, read back from the device and checked (SPEC 3 / the cuda device's messages).
int read_windows(glmk_device* d, const glmk_topk_args& a, std::vector<int32_t>& starts, std::vector<int32_t>& lens,
                 std::string& msg) {
  const size_t bytes = static_cast<size_t>(a.rows) * 4;
  starts.assign(static_cast<size_t>(a.rows), 0);
  lens.assign(static_cast<size_t>(a.rows), 0);
  for (auto [src, dst] : {std::pair<const int32_t*, int32_t*>{a.row_starts, starts.data()}, {a.lengths, lens.data()}}) {
    if (!src) continue;
    const int e = d->acl->aclrtMemcpyAsync(dst, bytes, src, bytes, kDeviceToHost, d->stream);
    if (e != kAclSuccess) return acl_error(d, msg, GLMK_E_DEVICE, "topk: reading lengths / rowStarts (aclrtMemcpyAsync)", e);
  }
  if (stream_wait(d, msg, "execution failed (aclrtSynchronizeStream)") != GLMK_OK) return GLMK_E_DEVICE;
  for (int64_t r = 0; r < a.rows; r++) {
    const long long s = starts[r];
    if (s < 0 || s > a.cols)
      return fail_text(msg, "topk: Expected rowStarts[%lld] between 0 and %lld but received %lld", static_cast<long long>(r),
                       static_cast<long long>(a.cols), s);
    if (!a.lengths) lens[r] = static_cast<int32_t>(a.cols - s);
    const long long l = lens[r];
    if (l < 0 || l > a.cols - s)
      return fail_text(msg, "topk: Expected lengths[%lld] between 0 and cols - rowStarts[%lld] = %lld but received %lld",
                       static_cast<long long>(r), static_cast<long long>(r), static_cast<long long>(a.cols - s), l);
  }
  return GLMK_OK;
}

}  // namespace

int topk_check(const glmk_topk_args& a, glmk_status* st) {
  if (a.dtype != GLMK_F32 && a.dtype != GLMK_BF16 && a.dtype != GLMK_F16)
    return fail(st, GLMK_E_DTYPE, "topk: Expected scores dtype f32, bf16 or f16 but received dtype %d", a.dtype);
  if (a.rows < 0 || a.rows > INT32_MAX || a.cols < 1 || a.cols > INT32_MAX)
    return fail(st, GLMK_E_SHAPE, "topk: Expected scores [rows, cols] with rows and cols below 2^31 but received [%lld, %lld]",
                static_cast<long long>(a.rows), static_cast<long long>(a.cols));
  if (a.k < 1 || a.k > a.cols)
    return fail(st, GLMK_E_ARG, "topk: Expected k between 1 and %lld but received %lld", static_cast<long long>(a.cols),
                static_cast<long long>(a.k));
  return ok(st);
}

int topk_run(glmk_device* d, const glmk_topk_args& a, std::string& msg) {
  // Section: the windows, as blocks of consecutive rows that share one
  std::vector<Block> blocks;
  if (!a.lengths && !a.row_starts) {
    blocks.push_back({0, a.rows, 0, a.cols});
  } else {
    std::vector<int32_t> starts, lens;
    if (int rc = read_windows(d, a, starts, lens, msg)) return rc;
    for (int64_t r = 0; r < a.rows; r++) {
      if (!blocks.empty() && blocks.back().start == starts[r] && blocks.back().len == lens[r]) blocks.back().n++;
      else blocks.push_back({r, 1, starts[r], lens[r]});
    }
  }
  // Section: each block in chunks of rows that fit the scratch budget
  const bool f32 = a.dtype == GLMK_F32;
  for (const Block& b : blocks) {
    const int64_t kk = std::min<int64_t>(a.k, b.len);
    int64_t step = b.n;
    while (step > 1 && chunk_bytes(step, b.len, kk, f32) > kScratchBudget) step = (step + 1) / 2;
    for (int64_t r = b.r0; r < b.r0 + b.n; r += step) {
      const Block c{r, std::min(step, b.r0 + b.n - r), b.start, b.len};
      if (c.len > 0)
        if (int rc = launch_block(d, a, c, msg)) return rc;
      if (int rc = pad_rows(d, a, c.r0, c.n, kk, msg)) return rc;
    }
  }
  return GLMK_OK;
}

}  // namespace glmk::ascend
