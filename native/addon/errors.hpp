// Turning glmk_status into GlmKernelsError (the JS class is handed to the addon at load time).
#pragma once
#include <napi.h>

#include <string>

#include "glmk/device.h"

namespace glmk::addon {

struct AddonData {
  Napi::FunctionReference error_class;
};

const char* code_name(int code);
// A GlmKernelsError(code, message) value; a plain Error if the class was not set.
Napi::Value make_error(Napi::Env env, int code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, int code, const std::string& message);
inline void check(Napi::Env env, int rc, const glmk_status& st) {
  if (rc != GLMK_OK) throw_error(env, rc, st.message);
}

}  // namespace glmk::addon
