// Garbage through the API in a child process: every call throws GlmKernelsError (never a crash), and the
// results computed afterwards are still right.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, runNode } from "./helpers/child.js";

const FUZZ = `
import { defaultDevice, openDevice, topk, int4, fp8, moe, matmul, GlmKernelsError, Tensor } from "glm-kernels";
const dev = defaultDevice();
const good = dev.tensor(new Float32Array([5, 1, 4, 2, 3, 9, 0, 8]), [2, 4]);
const junk = [undefined, null, 0, -1, 1.5, NaN, Infinity, 2 ** 40, "x", {}, [], [1, -2], () => 1, Symbol("s"),
  new Float64Array(4), new Int8Array(4), new Uint16Array(4), new Int32Array([9, 9]), new Int32Array([-5, 1]), 10n, good];
const codes = new Map();
let calls = 0;
const attempt = (f) => {
  calls++;
  try { f(); } catch (e) {
    if (!(e instanceof GlmKernelsError)) { console.log("NOT GlmKernelsError:", e); process.exit(3); }
    codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
    return;
  }
};
for (const a of junk) {
  attempt(() => openDevice(a));
  attempt(() => dev.tensor(a, [2, 2]));
  attempt(() => dev.tensor(new Float32Array(4), a));
  attempt(() => dev.tensor(new Float32Array(4), [2, 2], a));
  attempt(() => topk(a));
  for (const b of junk) {
    attempt(() => topk(good, a, b));
    attempt(() => topk(good, 2, { lengths: a, rowStarts: b }));
  }
}
attempt(() => openDevice("cuda:0"));
attempt(() => openDevice("ascend"));
attempt(() => int4.matmul(good, good));
const hid = dev.tensor(new Uint16Array(8).fill(0x3f80), [1, 8], "bf16");
const gw = dev.tensor(new Uint16Array(32).fill(0x3f80), [4, 8], "bf16");
const ids1 = dev.tensor(new Int32Array([0]), [1, 1]);
const w1 = dev.tensor(new Float32Array([1]), [1, 1]);
const fw = fp8.quantize(dev.tensor(new Float32Array(64).fill(1), [1, 8, 8]));
for (const a of junk) {
  attempt(() => moe.route(a, gw));
  attempt(() => moe.route(hid, a));
  for (const key of ["bias", "topK", "nGroup", "topkGroup", "routedScalingFactor", "normTopkProb", "x"]) attempt(() => moe.route(hid, gw, { [key]: a }));
  attempt(() => moe.experts(a, { ids: ids1, weights: w1 }, { gateProj: fw, upProj: fw, downProj: fw }));
  attempt(() => moe.experts(hid, a, { gateProj: fw, upProj: fw, downProj: fw }));
  attempt(() => moe.experts(hid, { ids: a, weights: w1 }, { gateProj: fw, upProj: fw, downProj: fw }));
  attempt(() => moe.experts(hid, { ids: ids1, weights: w1 }, a));
  attempt(() => moe.experts(hid, { ids: ids1, weights: w1 }, { gateProj: a, upProj: fw, downProj: fw }));
  attempt(() => moe.experts(hid, { ids: ids1, weights: w1 }, { gateProj: fw, upProj: fw, downProj: fw }, { shared: a }));
}
const w32 = dev.tensor(new Float32Array(64).fill(1), [2, 32]);
for (const a of junk) {
  attempt(() => int4.quantize(a));
  attempt(() => int4.quantize(w32, a));
  attempt(() => int4.quantize(w32, { groupSize: a }));
  attempt(() => int4.quantize(w32, { levels: a }));
  attempt(() => int4.dequantize(a));
  attempt(() => int4.dequantize({ packed: a, scales: a, groupSize: 32, levels: 15, shape: [2, 32] }));
  attempt(() => int4.fakeQuant(a));
  for (const b of junk) {
    attempt(() => int4.fakeQuantGrad(w32, a, b));
    attempt(() => matmul(a, b));
    attempt(() => int4.matmul(a, b));
    attempt(() => fp8.matmul(a, b));
  }
}
const disposed = dev.tensor(new Float32Array(4), [1, 4]); disposed.dispose();
attempt(() => disposed.readSync());
await disposed.read().then(() => process.exit(4), (e) => codes.set(e.code, (codes.get(e.code) ?? 0) + 1));
const r = topk(good, 3);
console.log(JSON.stringify({ calls, codes: Object.fromEntries(codes), indices: Array.from(await r.indices.read()), values: Array.from(r.values.readSync()) }));
`;

describe("bad input never crashes the process", () => {
  it("survives garbage and still computes right answers", () => {
    const r = runNode(FUZZ);
    expect(r.stderr).toBe("");
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.indices).toEqual([0, 2, 3, 1, 3, 0]);
    expect(out.values).toEqual([5, 4, 2, 9, 8, 3]);
    for (const code of ["E_ARG", "E_DTYPE", "E_SHAPE", "E_DISPOSED"]) expect(out.codes[code], code).toBeGreaterThan(0);
    // cuda:0 and ascend: E_PLUGIN where their plugins were not built, E_DEVICE where no driver / CANN is found
    expect((out.codes.E_PLUGIN ?? 0) + (out.codes.E_DEVICE ?? 0), "E_PLUGIN + E_DEVICE").toBeGreaterThanOrEqual(2);
    expect(Object.values(out.codes).reduce((a, b) => (a as number) + (b as number), 0)).toBeGreaterThan(out.calls * 0.9);
  });

  it.each([
    ["GLM_KERNELS_THREADS", "0", /GLM_KERNELS_THREADS/],
    ["GLM_KERNELS_THREADS", "two", /GLM_KERNELS_THREADS/],
    ["GLM_KERNELS_ISA", "avx9", /GLM_KERNELS_ISA/],
    ["GLM_KERNELS_SPIN_US", "-1", /between 0 and 1000000 for GLM_KERNELS_SPIN_US but received "-1"/],
    ["GLM_KERNELS_SPIN_US", "2000000", /GLM_KERNELS_SPIN_US/],
    ["GLM_KERNELS_DEVICE", "tpu", /device/],
    ["GLM_KERNELS_DEVICE", "cuda", /cuda plugin|CUDA driver/],
    ["GLM_KERNELS_DEVICE", "ascend", /CANN's libascendcl\.so was not found: run `source <CANN>\/set_env\.sh`|ascend plugin libglmk-ascend\.so was not found/],
  ])("%s=%s is a GlmKernelsError that names it", (name, value, pattern) => {
    const r = runNode(
      `import { defaultDevice, GlmKernelsError } from "glm-kernels";
       try { defaultDevice(); console.log("opened"); } catch (e) { console.log(e instanceof GlmKernelsError, e.code, e.message); }`,
      { [name]: value, GLM_KERNELS_PLUGIN_PATH: "/nonexistent", ASCEND_HOME_PATH: "", ASCEND_TOOLKIT_HOME: "" },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^true E_(ARG|PLUGIN|DEVICE) /);
    expect(r.stdout).toMatch(pattern);
  });

  it("auto falls back to cpu when no accelerator plugin loads", () => {
    const r = runNode(`import { openDevice } from "glm-kernels"; console.log(openDevice("auto").name);`, { GLM_KERNELS_PLUGIN_PATH: "/nonexistent" });
    expect(r.stdout.trim()).toBe("cpu");
  });

  it("a plugin with another ABI version, or without the entry symbol, is refused with E_PLUGIN", () => {
    const dir = mkdtempSync(join(tmpdir(), "glmk-plugin-"));
    const src = join(dir, "p.c");
    writeFileSync(src, `#include "glmk/device.h"
      static glmk_device_api api = { 99u, sizeof(glmk_device_api), "ascend" };
      GLMK_EXPORT const glmk_device_api* glmk_plugin_entry(uint32_t v) { (void)v; return &api; }`);
    execFileSync("cc", ["-shared", "-fPIC", "-I", join(ROOT, "native/include"), "-o", join(dir, "libglmk-ascend.so"), src]);
    writeFileSync(join(dir, "e.c"), "int nothing_here(void) { return 0; }");
    execFileSync("cc", ["-shared", "-fPIC", "-o", join(dir, "libglmk-cuda.so"), join(dir, "e.c")]);
    const r = runNode(
      `import { openDevice } from "glm-kernels";
       for (const d of ["ascend", "cuda", "auto"]) { try { console.log(d, openDevice(d).name); } catch (e) { console.log(d, e.code, e.message); } }`,
      { GLM_KERNELS_PLUGIN_PATH: dir },
    );
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ascend E_PLUGIN .*speaks device ABI 99 .*but this addon needs ABI 3/);
    expect(lines[1]).toMatch(/^cuda E_PLUGIN .*does not export glmk_plugin_entry/);
    expect(lines[2]).toBe("auto cpu");
  });
});
