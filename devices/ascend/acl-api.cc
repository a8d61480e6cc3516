// Finding CANN at run time: libascendcl.so, libnnopbase.so and the op libraries, opened by absolute path
// (LD_LIBRARY_PATH set inside a running process is not seen by the loader), then every entry point by dlsym.
#include "acl-api.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace glmk::ascend {

namespace {

bool is_file(const std::string& p) {
  struct stat s;
  return stat(p.c_str(), &s) == 0 && S_ISREG(s.st_mode);
}

// Where CANN's lib64 may be, in order: the variables that `source <CANN>/set_env.sh` exports, then the
// default install roots (newer CANN, then the older toolkit layout).
std::vector<std::string> lib_dirs() {
  std::vector<std::string> dirs;
  for (const char* var : {"ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"}) {
    const char* v = std::getenv(var);
    if (v && *v) dirs.push_back(std::string(v) + "/lib64");
  }
  dirs.push_back("/usr/local/Ascend/cann/lib64");
  dirs.push_back("/usr/local/Ascend/ascend-toolkit/latest/lib64");
  return dirs;
}

// The op libraries of one lib64 folder: the split libopapi_*.so (sorted, so the lookup order is fixed),
// then libopapi.so.
std::vector<std::string> op_libraries(const std::string& dir) {
  std::vector<std::string> split;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("libopapi_", 0) == 0 && n.size() > 12 && n.compare(n.size() - 3, 3, ".so") == 0) split.push_back(dir + "/" + n);
    }
    closedir(d);
  }
  std::sort(split.begin(), split.end());
  if (is_file(dir + "/libopapi.so")) split.push_back(dir + "/libopapi.so");
  return split;
}

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

// NOTE: glmk_status holds 508 characters: the fix goes before the (long) list of folders.
const char kFix[] =
    "run `source <CANN>/set_env.sh` (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh) before starting Node, or set "
    "ASCEND_HOME_PATH to the CANN folder with lib64/libascendcl.so";

struct Loaded {
  AclApi api{};
  std::string error;  // empty: loaded
};

// Resolves `name` into *slot from the first handle that has it.
template <typename F>
bool bind(F* slot, const char* name, const std::vector<void*>& handles) {
  for (void* h : handles) {
    if (void* p = dlsym(h, name)) {
      *slot = reinterpret_cast<F>(p);
      return true;
    }
  }
  *slot = nullptr;
  return false;
}

Loaded load_once() {
  Loaded out;
  // Section: libascendcl.so, from the first folder that has it, else from the loader's own path.
  std::string dir;
  for (const auto& d : lib_dirs())
    if (is_file(d + "/libascendcl.so")) {
      dir = d;
      break;
    }
  void* acl = nullptr;
  if (!dir.empty()) {
    acl = dlopen((dir + "/libascendcl.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!acl) {
      out.error = "cannot load " + dir + "/libascendcl.so: " + dl_error() + "; " + kFix;
      return out;
    }
  } else {
    acl = dlopen("libascendcl.so", RTLD_NOW | RTLD_GLOBAL);
    if (!acl) {
      out.error = std::string("CANN's libascendcl.so was not found: ") + kFix + ". Looked in " + acl_search_text() +
                  " and on the loader path (" + dl_error() + ")";
      return out;
    }
    // The folder the loader found it in holds the other libraries too.
    Dl_info info;
    void* sym = dlsym(acl, "aclInit");
    if (sym && dladdr(sym, &info) && info.dli_fname) {
      std::string p = info.dli_fname;
      dir = p.substr(0, p.rfind('/'));
    }
  }

  // Section: libnnopbase.so and the op libraries, from the same folder.
  void* nnop = dlopen(dir.empty() ? "libnnopbase.so" : (dir + "/libnnopbase.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!nnop) {
    out.error = "cannot load CANN's libnnopbase.so from " + (dir.empty() ? std::string("the loader path") : dir) + ": " +
                dl_error() + "; " + kFix;
    return out;
  }
  std::vector<void*> ops;
  std::vector<std::string> op_files = dir.empty() ? std::vector<std::string>{"libopapi.so"} : op_libraries(dir);
  std::string op_errors;
  for (const auto& f : op_files) {
    if (void* h = dlopen(f.c_str(), RTLD_NOW | RTLD_GLOBAL)) ops.push_back(h);
    else op_errors += "; " + dl_error();
  }
  if (ops.empty()) {
    out.error = "no CANN op library (libopapi.so or libopapi_*.so) could be loaded from " + dir + op_errors + "; " + kFix;
    return out;
  }

  // Section: entry points. A missing required one is named; optional ones stay null.
  AclApi& a = out.api;
  const std::vector<void*> H_ACL{acl}, H_NN{nnop};
  std::string missing;
#define GLMK_REQ(field, handles) \
  if (!bind(&a.field, #field, handles)) missing += (missing.empty() ? "" : ", ") + std::string(#field);
#define GLMK_OPT(field, handles) bind(&a.field, #field, handles);
  GLMK_REQ(aclInit, H_ACL)
  GLMK_REQ(aclrtSetDevice, H_ACL)
  GLMK_REQ(aclrtResetDevice, H_ACL)
  GLMK_REQ(aclrtGetDeviceCount, H_ACL)
  GLMK_REQ(aclrtCreateStream, H_ACL)
  GLMK_REQ(aclrtDestroyStream, H_ACL)
  GLMK_REQ(aclrtSynchronizeStream, H_ACL)
  GLMK_REQ(aclrtMalloc, H_ACL)
  GLMK_REQ(aclrtFree, H_ACL)
  GLMK_REQ(aclrtMemcpy, H_ACL)
  GLMK_REQ(aclrtMemcpyAsync, H_ACL)
  GLMK_REQ(aclGetRecentErrMsg, H_ACL)
  GLMK_REQ(aclrtCtxSetSysParamOpt, H_ACL)
  GLMK_OPT(aclrtSetSysParamOpt, H_ACL)
  GLMK_OPT(aclrtGetSocName, H_ACL)
  GLMK_OPT(aclrtGetMemInfo, H_ACL)
  GLMK_REQ(aclCreateTensor, H_NN)
  GLMK_REQ(aclDestroyTensor, H_NN)
  GLMK_REQ(aclCreateScalar, H_NN)
  GLMK_REQ(aclDestroyScalar, H_NN)
  GLMK_OPT(aclDestroyAclOpExecutor, H_NN)
  GLMK_REQ(aclCreateTensorList, H_NN)
  GLMK_REQ(aclDestroyTensorList, H_NN)
  GLMK_REQ(aclnnCastGetWorkspaceSize, ops)
  GLMK_REQ(aclnnCast, ops)
  GLMK_REQ(aclnnEqScalarGetWorkspaceSize, ops)
  GLMK_REQ(aclnnEqScalar, ops)
  GLMK_REQ(aclnnNeTensorGetWorkspaceSize, ops)
  GLMK_REQ(aclnnNeTensor, ops)
  GLMK_REQ(aclnnSWhereGetWorkspaceSize, ops)
  GLMK_REQ(aclnnSWhere, ops)
  GLMK_REQ(aclnnSortGetWorkspaceSize, ops)
  GLMK_REQ(aclnnSort, ops)
  GLMK_REQ(aclnnGatherGetWorkspaceSize, ops)
  GLMK_REQ(aclnnGather, ops)
  GLMK_REQ(aclnnMatmulGetWorkspaceSize, ops)
  GLMK_REQ(aclnnMatmul, ops)
  GLMK_REQ(aclnnGroupedMatmulV4GetWorkspaceSize, ops)
  GLMK_REQ(aclnnGroupedMatmulV4, ops)
  GLMK_OPT(aclnnBitwiseXorTensorGetWorkspaceSize, ops)
  GLMK_OPT(aclnnBitwiseXorTensor, ops)
  GLMK_OPT(aclnnWeightQuantBatchMatmulV2GetWorkspaceSize, ops)
  GLMK_OPT(aclnnWeightQuantBatchMatmulV2, ops)
  GLMK_OPT(aclnnQuantMatmulV5GetWorkspaceSize, ops)
  GLMK_OPT(aclnnQuantMatmulV5, ops)
#undef GLMK_REQ
#undef GLMK_OPT
  if (!missing.empty()) {
    std::string libs;
    for (const auto& f : op_files) libs += ", " + f;
    out.error = "the CANN in " + dir + " lacks entry points this plugin needs: " + missing + " (looked in libascendcl.so, libnnopbase.so" +
                libs + "); CANN 8.0 or newer is needed";
  }
  return out;
}

}  // namespace

std::string acl_search_text() {
  std::string s;
  const auto dirs = lib_dirs();
  for (size_t i = 0; i < dirs.size(); i++) s += (i ? ", " : "") + dirs[i];
  const char* home = std::getenv("ASCEND_HOME_PATH");
  if (!home || !*home) s += " (ASCEND_HOME_PATH is not set)";
  return s;
}

const AclApi* acl_load(std::string* why) {
  static std::once_flag once;
  static Loaded* loaded = nullptr;
  std::call_once(once, [] { loaded = new Loaded(load_once()); });
  if (!loaded->error.empty()) {
    if (why) *why = loaded->error;
    return nullptr;
  }
  return &loaded->api;
}

}  // namespace glmk::ascend
