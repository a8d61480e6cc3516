// Finds, opens (dlopen) and ABI-checks accelerator plugins: libglmk-<kind>.so.
#pragma once
#include <string>
#include <vector>

#include "glmk/device.h"

namespace glmk::addon {

struct Plugin {
  const glmk_device_api* api = nullptr;
  std::string path;
};

// The folders searched, in order: GLM_KERNELS_PLUGIN_PATH (':'-separated), then the addon's own folder.
std::vector<std::string> plugin_dirs();
// Loads the plugin of `kind` once per process (later calls return the same table). On failure fills
// status with E_PLUGIN and a message that names the file, the reason (dlerror) and the fix.
int plugin_load(const std::string& kind, Plugin* out, glmk_status* st);

}  // namespace glmk::addon
