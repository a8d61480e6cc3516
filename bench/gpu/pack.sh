#!/usr/bin/env bash
# Prepares the GPU acceptance run (bench/gpu/acceptance.sh) on this machine: the GPU machine has no Node.js,
# no compiler for our addon and no npm registry, so everything it needs travels in .device/ (under 64 MiB):
#   .device/node.xz, node-env.sh       node (../shared/device/pack-node.sh)
#   .device/gpu/pkg/                    the package as installed: dist, bin, prebuilds (addon + libglmk-cuda.so)
#   .device/gpu/topk-cuda-check         the C++ reference check, built by nvcc
#   .device/gpu/upload-check            deferred uploads and the idle pool trim through the ABI (g++, dlopen)
#   .device/gpu/mma-cuda-check          the tensor-core wrappers (devices/cuda/mma.cuh) on hardware, built by nvcc
# Then, with the device tool: run(command="bash bench/gpu/acceptance.sh", carry=[".device"]).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
bash ../shared/device/pack-node.sh
npm run build:plugins >/dev/null
npm run build:ts >/dev/null
GLMK_REQUIRE_PLUGINS=1 npm run prebuild >/dev/null
rm -rf .device/gpu && mkdir -p .device/gpu/pkg/node_modules .device/gpu/pkg/test/determinism
cp -r package.json bin dist prebuilds .device/gpu/pkg/
cp test/determinism/golden.json .device/gpu/pkg/test/determinism/
for m in node-gyp-build tinybench; do cp -r "node_modules/$m" .device/gpu/pkg/node_modules/; done
cp build-plugins/topk-cuda-check build-plugins/upload-check build-plugins/mma-cuda-check .device/gpu/
du -sh .device
