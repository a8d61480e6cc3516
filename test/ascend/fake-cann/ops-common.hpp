// Helpers of the fake op libraries: strided element access, broadcasting, values as double, phase one.
#pragma once

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fake.hpp"

namespace fake {

// Element `lin` (row-major over the view) of t: its offset in elements from t.data.
inline int64_t element(const aclTensor& t, int64_t lin) {
  int64_t off = t.offset;
  for (size_t i = t.dims.size(); i-- > 0;) {
    const int64_t d = t.dims[i];
    off += (lin % d) * t.strides[i];
    lin /= d;
  }
  return off;
}

// Element `lin` (row-major over the view) of t: its address (not for INT4: int4_at).
inline char* at(const aclTensor& t, int64_t lin) { return t.data + element(t, lin) * static_cast<int64_t>(fake_dtype_size(t.dtype)); }

// Element `lin` of an INT4 tensor: two's-complement nibbles, element 2i in the low nibble of byte i (CANN).
inline int int4_at(const aclTensor& t, int64_t lin) {
  const int64_t e = element(t, lin);
  const int byte = static_cast<uint8_t>(t.data[e >> 1]);
  const int nib = (e & 1) ? byte >> 4 : byte & 15;
  return nib >= 8 ? nib - 16 : nib;
}

// The address in `t` (broadcast to out_dims, aligned on the right) of out element `lin`.
inline char* at_bcast(const aclTensor& t, const std::vector<int64_t>& out_dims, int64_t lin) {
  int64_t off = t.offset;
  const size_t shift = out_dims.size() - t.dims.size();
  for (size_t i = out_dims.size(); i-- > 0;) {
    const int64_t idx = lin % out_dims[i];
    lin /= out_dims[i];
    if (i < shift) continue;
    const size_t j = i - shift;
    if (t.dims[j] != 1) off += idx * t.strides[j];
  }
  return t.data + off * static_cast<int64_t>(fake_dtype_size(t.dtype));
}

inline bool broadcastable(const aclTensor& t, const std::vector<int64_t>& out) {
  if (t.dims.size() > out.size()) return false;
  const size_t shift = out.size() - t.dims.size();
  for (size_t j = 0; j < t.dims.size(); j++)
    if (t.dims[j] != 1 && t.dims[j] != out[j + shift]) return false;
  return true;
}

inline double f16_value(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double s = (h & 0x8000) ? -1 : 1;
  if (e == 31) return m ? std::copysign(NAN, s) : s * INFINITY;
  return e ? s * std::ldexp(1.0 + m / 1024.0, e - 15) : s * std::ldexp(m, -24);
}

inline double read(const aclTensor& t, const char* p) {
  switch (t.dtype) {
    case kF32: { float v; std::memcpy(&v, p, 4); return v; }
    case kF16: { uint16_t h; std::memcpy(&h, p, 2); return f16_value(h); }
    case kBf16: { uint16_t h; std::memcpy(&h, p, 2); uint32_t b = static_cast<uint32_t>(h) << 16; float v; std::memcpy(&v, &b, 4); return v; }
    case kI32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case kI64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case kBool: case kU8: return static_cast<uint8_t>(*p);
    case kF8E4m3: {  // FLOAT8_E4M3FN: bias 7, no infinities, S.1111.111 NaN
      const uint8_t b = static_cast<uint8_t>(*p);
      const int e = (b >> 3) & 15, m = b & 7;
      const double s = (b & 0x80) ? -1 : 1;
      if (e == 15 && m == 7) return NAN;
      return e ? s * std::ldexp(1.0 + m / 8.0, e - 7) : s * std::ldexp(m, -9);
    }
    case kI8: return static_cast<int8_t>(*p);
    default: return 0;
  }
}

// f32 -> bf16 / f16 bits, round to nearest even (CANN's Cast default, RINT), overflow to inf; NaN -> the
// quiet NaN 0x7FC0 / 0x7E00 (CANN documents no NaN payload).
inline uint16_t bf16_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0u;
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}
inline uint16_t f16_bits(float f) {
  if (f != f) return 0x7E00u;
  const _Float16 h = static_cast<_Float16>(f);  // GCC: round to nearest even, subnormals kept
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}

// Writes v as t's dtype (f32, f16, bf16 through f32, i32, i64, bool; phase one refuses the others as outputs).
inline void write(const aclTensor& t, char* p, double v) {
  switch (t.dtype) {
    case kF32: { float f = static_cast<float>(v); std::memcpy(p, &f, 4); break; }
    case kBf16: { const uint16_t h = bf16_bits(static_cast<float>(v)); std::memcpy(p, &h, 2); break; }
    case kF16: { const uint16_t h = f16_bits(static_cast<float>(v)); std::memcpy(p, &h, 2); break; }
    case kI32: { int32_t i = static_cast<int32_t>(v); std::memcpy(p, &i, 4); break; }
    case kI64: { int64_t i = static_cast<int64_t>(v); std::memcpy(p, &i, 8); break; }
    case kBool: *p = v != 0; break;
    default: break;
  }
}

inline bool writable(int dt) { return dt == kF32 || dt == kF16 || dt == kBf16 || dt == kI32 || dt == kI64 || dt == kBool; }

// Phase one's common checks: every tensor given and alive. Returns 0 or the error.
inline int need(const char* op, std::initializer_list<std::pair<const char*, const aclTensor*>> ts) {
  for (auto& [name, t] : ts) {
    if (!t) return fakecann_error(kAclnnErrNullptr, "%s: %s is NULL", op, name);
    if (!fakecann_tensor_alive(t)) return fakecann_error(kAclnnErrParamInvalid, "%s: %s is not a live tensor", op, name);
    if (t->dtype == kInt4) return fakecann_error(kAclnnErrParamInvalid, "%s: %s is INT4, which this op does not take", op, name);
  }
  return 0;
}

// A new executor for `op` that uses tensors `ts` (their allocations are what its task touches).
inline aclOpExecutor* executor(const char* op, std::initializer_list<const aclTensor*> ts) {
  aclOpExecutor* e = fakecann_new_executor(op);
  for (const aclTensor* t : ts) {
    e->uses.push_back(t);
    if (fake_numel(t) > 0) e->touches.push_back(fakecann_device_range(t->data, 1, nullptr));
  }
  return e;
}

}  // namespace fake
