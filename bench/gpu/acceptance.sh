#!/usr/bin/env bash
# GPU acceptance for the cuda device (issue 8), one command on the GPU machine, from the repository root,
# after bench/gpu/pack.sh here:   run(command="bash bench/gpu/acceptance.sh", carry=[".device"])
#   1. conformance: the C++ reference check through the device ABI (3 seeds of the top-k cases, and
#      fp8.matmul, moe.route, moe.experts, matmul and int4.matmul against their C++ models, bit for bit)
#   2. compute-sanitizer memcheck, racecheck and synccheck on that check's smaller top-k cases (its fp8.matmul,
#      moe and matmul cases run whole: small shapes, partial tiles); the tensor-core
#      wrappers (mma.cuh: mma.sync, ldmatrix, cp.async) against the checks cuda-sim's models pass, + racecheck
#   3. determinism: `glm-kernels verify --device cuda --repeats 100` (golden digests == the CPU's)
#   4. torch: bit equality with torch.topk(sorted=True), 100 repeats, and timings side by side
#   5. memory: dev.memory() / emptyCache() on the pool, its idle trim, a loop that leaves tensors to the GC,
#      and deferred uploads (a 256 MiB dev.tensor() returns at once; upload-check: bytes, order, release)
#   6. int4 and fp8 quantizers, fp8.matmul, moe.route, moe.experts, matmul, int4.matmul: cuda against the cpu
#      device bit for bit (random, adversarial, real shapes)
#   7. the matmuls beside torch (issue 21 item 4): bench/gpu/matmul_peer.py's torch-free ABI self-test on cuda
#      (every op the script calls against numpy models, K = 6144 and partial tiles), the same under
#      compute-sanitizer memcheck and racecheck, then int4.matmul vs torch._weight_int4pack_mm and bf16,
#      fp8.matmul vs torch._scaled_mm (block-wise), moe.experts vs torch._scaled_grouped_mm at GLM-5 shapes:
#      timings, same-product checks, the targets as PASS / MISS (a MISS does not fail the step); then the
#      same timings with GLM_KERNELS_CUDA_PIPE=0 (the simple kernels), the pipelined kernels' A / B
set -uo pipefail
source .device/node-env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
# Parts: `bash bench/gpu/acceptance.sh 1 2 3` runs only those (numbered as above; default: all), so that a
# device session can split the run across commands of at most 10 minutes each.
want=" ${*:-1 2 3 4 5 6 7} "
fails=0 part=0
step() {
  case "$want" in *" $part "*) ;; *) return 0 ;; esac
  echo "== [$part] $1"; shift; "$@" || { echo "FAILED: $*"; fails=$((fails + 1)); }
}
part=1
step "C++ reference check on cuda" .device/gpu/topk-cuda-check 3
part=2
for tool in memcheck racecheck synccheck; do
  step "compute-sanitizer $tool (top-k: the cases of at most 200K scores; the fp8.matmul, moe and matmul checks whole)" \
    compute-sanitizer --tool "$tool" --error-exitcode 9 .device/gpu/topk-cuda-check 1 quick
done
step "tensor-core wrappers (mma.cuh) on hardware: the layouts, ldmatrix, cp.async and tile GEMM cuda-sim's models pass" \
  .device/gpu/mma-cuda-check
step "compute-sanitizer racecheck on the tensor-core check" \
  compute-sanitizer --tool racecheck --error-exitcode 9 .device/gpu/mma-cuda-check
part=3
step "verify --device cuda (100 repeats; digests must equal the CPU's golden file)" \
  node .device/gpu/pkg/bin/glm-kernels.js verify --device cuda --repeats 100
part=4
step "torch.topk: bit equality, repeats, timings" \
  env PYTHONUNBUFFERED=1 python3 bench/gpu/torch_peer.py .device/gpu/pkg/prebuilds/linux-x64/libglmk-cuda.so
part=5
step "memory: the pool in dev.memory(), emptyCache(), tensors left to the garbage collector" \
  node bench/gpu/memory-check.mjs .device/gpu/pkg
step "deferred uploads and the idle pool trim through the device ABI" \
  .device/gpu/upload-check .device/gpu/pkg/prebuilds/linux-x64/libglmk-cuda.so
part=6
step "int4 and fp8 quantizers, fp8.matmul, moe.route, moe.experts, matmul, int4.matmul: cuda == cpu bit for bit (bf16 x matmuls: within tolerance, identity bit for bit)" node bench/gpu/quant-check.mjs .device/gpu/pkg
lib=.device/gpu/pkg/prebuilds/linux-x64/libglmk-cuda.so
part=7
step "ABI self-test of bench/gpu/glmk_abi.py on cuda (no torch): every op matmul_peer.py calls, against numpy models" \
  python3 bench/gpu/matmul_peer.py --selftest "$lib" --size large
for tool in memcheck racecheck; do
  step "compute-sanitizer $tool on matmul, int4.matmul, fp8.matmul, moe.experts (the ABI self-test's small shapes)" \
    compute-sanitizer --tool "$tool" --error-exitcode 9 python3 bench/gpu/matmul_peer.py --selftest "$lib"
done
step "int4.matmul, fp8.matmul, moe.experts beside torch: timings, same-product checks, issue 21's targets" \
  env PYTHONUNBUFFERED=1 python3 bench/gpu/matmul_peer.py "$lib"
step "the same with GLM_KERNELS_CUDA_PIPE=0: the simple kernels' timings beside the pipelined ones' above (same bits)" \
  env PYTHONUNBUFFERED=1 GLM_KERNELS_CUDA_PIPE=0 python3 bench/gpu/matmul_peer.py "$lib"
echo "== acceptance (parts$want): $fails step(s) failed"
exit $((fails > 0))
