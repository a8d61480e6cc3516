#include "plugin-loader.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <map>
#include <mutex>

#include "glmk/status.hpp"

namespace glmk::addon {

namespace {

std::string addon_dir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&plugin_dirs), &info) && info.dli_fname) {
    std::string p = info.dli_fname;
    auto slash = p.rfind('/');
    if (slash != std::string::npos) return p.substr(0, slash);
  }
  return ".";
}

bool is_file(const std::string& p) {
  struct stat s;
  return stat(p.c_str(), &s) == 0 && S_ISREG(s.st_mode);
}

std::mutex g_mu;
std::map<std::string, Plugin> g_loaded;

}  // namespace

std::vector<std::string> plugin_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("GLM_KERNELS_PLUGIN_PATH")) {
    std::string s = env;
    size_t b = 0;
    while (b <= s.size()) {
      size_t e = s.find(':', b);
      if (e == std::string::npos) e = s.size();
      if (e > b) dirs.push_back(s.substr(b, e - b));
      b = e + 1;
    }
  }
  const std::string own = addon_dir();
  dirs.push_back(own);
  // A development checkout: the addon is in build/Release or prebuilds/<platform>, the plugins that
  // `npm run build:plugins` made are in build-plugins/ at the package root.
  char dev[PATH_MAX];
  if (realpath((own + "/../../build-plugins").c_str(), dev)) dirs.push_back(dev);
  return dirs;
}

int plugin_load(const std::string& kind, Plugin* out, glmk_status* st) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_loaded.find(kind);
  if (it != g_loaded.end()) {
    *out = it->second;
    return ok(st);
  }
  const std::string file = "libglmk-" + kind + ".so";
  std::string searched;
  for (const auto& dir : plugin_dirs()) {
    std::string path = dir + "/" + file;
    searched += (searched.empty() ? "" : ", ") + dir;
    if (!is_file(path)) continue;
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      return fail(st, GLMK_E_PLUGIN, "cannot load the %s plugin %s: %s", kind.c_str(), path.c_str(), e ? e : "dlopen failed");
    }
    auto entry = reinterpret_cast<glmk_plugin_entry_fn>(dlsym(h, GLMK_PLUGIN_ENTRY));
    if (!entry) {
      dlclose(h);
      return fail(st, GLMK_E_PLUGIN, "%s does not export %s: not a glm-kernels plugin", path.c_str(), GLMK_PLUGIN_ENTRY);
    }
    const glmk_device_api* api = entry(GLMK_ABI_VERSION);
    if (!api || api->abi_version != GLMK_ABI_VERSION || api->struct_size < sizeof(glmk_device_api)) {
      unsigned got = api ? api->abi_version : 0;
      unsigned size = api ? api->struct_size : 0;
      dlclose(h);
      return fail(st, GLMK_E_PLUGIN,
                  "%s speaks device ABI %u (a %u-byte table) but this addon needs ABI %u (%u bytes): rebuild the "
                  "plugins with the addon (npm run build:plugins) or reinstall glm-kernels",
                  path.c_str(), got, size, GLMK_ABI_VERSION, static_cast<unsigned>(sizeof(glmk_device_api)));
    }
    // NOTE: never dlclose a loaded plugin: its threads and CUDA contexts may outlive any one device.
    Plugin p{api, path};
    g_loaded[kind] = p;
    *out = p;
    return ok(st);
  }
  return fail(st, GLMK_E_PLUGIN,
              "the %s plugin %s was not found in %s; build it with `npm run build:plugins` (needs %s) or point "
              "GLM_KERNELS_PLUGIN_PATH at the folder that holds it",
              kind.c_str(), file.c_str(), searched.c_str(),
              kind == "cuda-sim" ? "CMake, g++, the CUDA headers and libboost-context-dev"
              : kind == "ascend" ? "CMake and g++; CANN is not needed to build it"
                                 : "CMake and nvcc");
}

}  // namespace glmk::addon
