// The cuda plugin on a machine without an NVIDIA driver (our CI): a clear E_DEVICE, and `auto` falls back.
// On a machine with a GPU, the shared suites run on cuda instead (TEST_DEVICES) and test/gpu/ has more.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runNode, ROOT } from "./helpers/child.js";
import { TEST_DEVICES } from "./helpers/devices.js";

const built = existsSync(join(ROOT, "build-plugins/libglmk-cuda.so")) || existsSync(join(ROOT, "prebuilds/linux-x64/libglmk-cuda.so"));

describe.runIf(built && !TEST_DEVICES.includes("cuda"))("cuda without a driver", () => {
  it("opening cuda fails with E_DEVICE in the CUDA runtime's words; auto falls back to cpu", () => {
    const r = runNode(`
      import { openDevice, listDevices, GlmKernelsError } from "glm-kernels";
      let err = null;
      try { openDevice("cuda:0"); } catch (e) { err = { code: e.code, message: e.message, cls: e instanceof GlmKernelsError }; }
      const cuda = listDevices().find((l) => l.kind === "cuda");
      console.log(JSON.stringify({ err, auto: openDevice("auto").name, cuda }));
    `);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.err.cls).toBe(true);
    expect(out.err.code).toBe("E_DEVICE");
    expect(out.err.message).toMatch(/no usable CUDA driver: cudaGetDeviceCount failed with cudaError\w+: .+ Install the NVIDIA driver/);
    expect(out.auto).toBe("cpu");
    expect(out.cuda.available).toBe(false);
    expect(out.cuda.reason).toMatch(/no usable CUDA driver/);
  });
});
