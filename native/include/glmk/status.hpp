// Helpers for filling glmk_status from C++ (printf-style), shared by the addon and every device.
#pragma once
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "glmk/device.h"

namespace glmk {

inline int fail(glmk_status* st, int code, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
inline int fail(glmk_status* st, int code, const char* fmt, ...) {
  if (st) {
    st->code = code;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(st->message, sizeof st->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

inline int ok(glmk_status* st) {
  if (st) {
    st->code = GLMK_OK;
    st->message[0] = '\0';
  }
  return GLMK_OK;
}

inline size_t dtype_size(int dtype) {
  switch (dtype) {
    case GLMK_F32: case GLMK_I32: return 4;
    case GLMK_F16: case GLMK_BF16: return 2;
    case GLMK_F8E4M3: case GLMK_U8: return 1;
    default: return 0;
  }
}

}  // namespace glmk
