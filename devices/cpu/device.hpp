// The CPU device's ABI table (the addon links it in; plugins are loaded with dlopen instead).
#pragma once
#include "glmk/device.h"

const glmk_device_api* glmk_cpu_device_api();
