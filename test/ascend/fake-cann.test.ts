// The ascend plugin without CANN (a clear E_DEVICE, `auto` skips it, `info` says why) and through the CPU
// fake of CANN (test/ascend/fake-cann): what it asks of the runtime, and failures injected into the fake
// becoming GlmKernelsErrors with the process alive. Each case runs in a child process: CANN is loaded once
// per process. The shared suites (topk, int4, matmul, fp8, moe-route, determinism/, ...) run on `ascend`
// through the fake too, with ASCEND_HOME_PATH=build-plugins/fake-cann and ascend in GLM_KERNELS_TEST_DEVICES
// (.ci/run); fake-cann-ops.test.ts covers the int4, fp8, matmul and moe.route paths' CANN calls and failures.
import { existsSync, mkdtempSync, readFileSync, symlinkSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, runCli, runNode } from "../helpers/child.js";

const PLUGIN = join(ROOT, "build-plugins/libglmk-ascend.so");
const FAKE = join(ROOT, "build-plugins/fake-cann");
const NO_CANN = { ASCEND_HOME_PATH: "", ASCEND_TOOLKIT_HOME: "", GLMK_FAKE_CANN_FAIL: "" };
const WITH_FAKE = { ASCEND_HOME_PATH: FAKE, ASCEND_TOOLKIT_HOME: "", GLMK_FAKE_CANN_FAIL: "" };

// A top-k on ascend, then another one: prints what each gave or threw.
const TWO_TOPKS = `
import { openDevice, topk, GlmKernelsError } from "glm-kernels";
const out = [];
const note = (e) => out.push(e instanceof GlmKernelsError ? "GlmKernelsError " + e.code + " " + e.message : "OTHER " + String(e));
let dev;
try { dev = openDevice("ascend"); } catch (e) { note(e); }
for (let i = 0; dev && i < 2; i++) {
  try {
    const s = dev.tensor(new Float32Array([0.5, 3, -1, 2, NaN, -0, 0, 7]), [2, 4]);
    const r = topk(s, 3, { lengths: new Int32Array([4, 2]), rowStarts: new Int32Array([0, 1]) });
    const v = Array.from(new Uint32Array((await r.values.read()).buffer), (b) => b.toString(16));
    out.push(Array.from(await r.indices.read()).join(",") + " " + v.join(","));
  } catch (e) { note(e); }
}
console.log(JSON.stringify(out));
`;
// Row 0: all four scores; row 1: the window [-0, +0] (the NaN and the 7 outside it), padded to k = 3.
const GOOD = "1,3,0,0,1,-1 40400000,40000000,3f000000,80000000,0,ff800000";
const GOOD_PAIR = [GOOD, GOOD];
// What `glm-kernels info` lists for ascend: exactly the ops that pass the shared suites through the fake.
const OPS = "topk,int4\\.quantize,int4\\.dequantize,int4\\.fakeQuant,int4\\.fakeQuantGrad,matmul,int4\\.matmul,fp8\\.quantize,fp8\\.dequantize,fp8\\.matmul,moe\\.route,moe\\.experts";

function twoTopks(env: Record<string, string>) {
  const r = runNode(TWO_TOPKS, env);
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as string[];
}

describe.runIf(existsSync(PLUGIN))("ascend without CANN", () => {
  it("GLM_KERNELS_DEVICE=ascend is E_DEVICE naming libascendcl.so, where it looked and set_env.sh", () => {
    const r = runNode(
      `import { defaultDevice, GlmKernelsError } from "glm-kernels";
       try { defaultDevice(); console.log("opened"); } catch (e) { console.log(e instanceof GlmKernelsError, e.code, e.message); }`,
      { ...NO_CANN, GLM_KERNELS_DEVICE: "ascend" },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^true E_DEVICE ascend is not available: CANN's libascendcl\.so was not found: run `source <CANN>\/set_env\.sh` /);
    expect(r.stdout).toMatch(
      /Looked in \/usr\/local\/Ascend\/cann\/lib64, \/usr\/local\/Ascend\/ascend-toolkit\/latest\/lib64 \(ASCEND_HOME_PATH is not set\) and on the loader path \(libascendcl\.so: cannot open shared object file/,
    );
  });

  it("`auto` skips ascend, and `glm-kernels info` gives the same reason", () => {
    const r = runNode(`import { openDevice } from "glm-kernels"; console.log(openDevice("auto").name);`, NO_CANN);
    expect(r.stdout.trim()).not.toMatch(/ascend/);
    const info = runCli(["info"], NO_CANN);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/ {2}ascend: not available: ascend is not available: CANN's libascendcl\.so was not found: run `source <CANN>\/set_env\.sh` .* and on the loader path \(.*\)\n/);
  });
});

describe.runIf(existsSync(join(FAKE, "lib64/libascendcl.so")))("ascend through the CPU fake of CANN", () => {
  it("opens, computes top-k like the cpu device, and is what `auto` picks first", () => {
    expect(twoTopks(WITH_FAKE)).toEqual(GOOD_PAIR);
    const r = runNode(`import { openDevice } from "glm-kernels"; console.log(openDevice("auto").name);`, WITH_FAKE);
    expect(r.stdout.trim()).toBe("ascend:0");
    const info = runCli(["info"], WITH_FAKE);
    expect(info.stdout).toMatch(new RegExp(` {2}ascend: 1 x Ascend910B4 \\(fake CANN on the CPU\\) \\(0 threads; 64\\.0 GiB; ops ${OPS}; g\\+\\+ [\\d.]+, CANN resolved at run time \\(dlopen\\)\\)`));
  });

  it("sets deterministic computation for the context and the process, and sorts stable, descending, on f32 keys", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
    twoTopks({ ...WITH_FAKE, GLMK_FAKE_CANN_TRACE: trace });
    const lines = readFileSync(trace, "utf8").split("\n");
    expect(lines).toContain("aclrtCtxSetSysParamOpt 0 1 device 0");
    expect(lines).toContain("aclrtSetSysParamOpt 0 1");
    const sorts = lines.filter((l) => l.startsWith("aclnnSortGetWorkspaceSize"));
    expect(sorts.length).toBeGreaterThan(0);
    for (const s of sorts) expect(s).toBe("aclnnSortGetWorkspaceSize stable 1 dim 1 descending 1 dtype 0");
    expect(lines.filter((l) => l.startsWith("error"))).toEqual([]);
  });

  it("tolerates aclInit's 'already initialized' (another library initialized ACL first)", () => {
    expect(twoTopks({ ...WITH_FAKE, GLMK_FAKE_CANN_PREINIT: "1" })).toEqual(GOOD_PAIR);
  });

  it("frees in stream order, early once 256 MiB of frees are pending, with the stream still busy", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
    const r = runNode(
      `import { openDevice, topk } from "glm-kernels";
       const dev = openDevice("ascend");
       const s = dev.tensor(new Float32Array([0.5, 3, -1, 2]), [1, 4]);
       const outs = [];
       for (let i = 0; i < 6; i++) {
         const big = dev.tensor(new Float32Array(16 << 20).fill(i), [16 << 20]);
         outs.push(topk(s, 2));
         big.dispose();
       }
       const got = [];
       for (const o of outs) got.push(Array.from(await o.indices.read()).join(","));
       console.log(got.join(" "));`,
      { ...WITH_FAKE, GLMK_FAKE_CANN_TRACE: trace },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(Array(6).fill("1,3").join(" "));
    expect(readFileSync(trace, "utf8").split("\n").filter((l) => l.startsWith("error"))).toEqual([]);
  });

  it("reports no NPU as zero devices, and a missing ordinal by name", () => {
    const r = runNode(
      `import { listDevices, openDevice } from "glm-kernels";
       console.log(JSON.stringify(listDevices().find((l) => l.kind === "ascend")));
       try { openDevice("ascend:1"); } catch (e) { console.log(e.code, e.message); }`,
      { ...WITH_FAKE, GLMK_FAKE_CANN_DEVICES: "0" },
    );
    const lines = r.stdout.trim().split("\n");
    expect(JSON.parse(lines[0])).toMatchObject({ kind: "ascend", count: 0, available: false, reason: expect.stringMatching(/there is no ascend:0: this machine has 0 Ascend NPU\(s\)/) });
    expect(lines[1]).toBe("E_DEVICE there is no ascend:1: this machine has 0 Ascend NPU(s)");
  });

  it.each([
    ["aclrtMalloc#2", /^GlmKernelsError E_OOM cannot allocate 32 bytes on ascend:0 \(aclrtMalloc\): ACL error 207001: fake CANN: injected failure in aclrtMalloc/],
    ["aclnnSort#1", /^GlmKernelsError E_DEVICE topk: aclnnSort: ACL error 561000: fake CANN: injected failure in aclnnSort \(EZ9999: inner error\)/],
    ["aclnnGatherGetWorkspaceSize#1", /^GlmKernelsError E_DEVICE topk: aclnnGatherGetWorkspaceSize: ACL error 561000: fake CANN: injected failure in aclnnGatherGetWorkspaceSize/],
    ["exec:aclnnSWhere#1", /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnSWhere \(EZ9999: AI Core exception\)/],
    ["aclrtMemcpyAsync#3", /^GlmKernelsError E_DEVICE upload \(aclrtMemcpyAsync\): ACL error 507000: fake CANN: injected failure in aclrtMemcpyAsync/],
    ["aclCreateTensor#4", /^GlmKernelsError E_DEVICE topk: aclCreateTensor failed: fake CANN: injected failure in aclCreateTensor/],
  ])("%s: a GlmKernelsError carrying CANN's message, then the next top-k is right", (fail, pattern) => {
    const out = twoTopks({ ...WITH_FAKE, GLMK_FAKE_CANN_FAIL: fail });
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(pattern);
    expect(out[1]).toBe(GOOD_PAIR[1]);
  });

  it("a NULL aclGetRecentErrMsg() still gives a clear error", () => {
    const out = twoTopks({ ...WITH_FAKE, GLMK_FAKE_CANN_FAIL: "aclnnSort#1", GLMK_FAKE_CANN_NO_MSG: "1" });
    expect(out[0]).toBe("GlmKernelsError E_DEVICE topk: aclnnSort: ACL error 561000: (CANN gave no message)");
    expect(out[1]).toBe(GOOD_PAIR[1]);
  });

  it("a driver that cannot count its NPUs: E_DEVICE with CANN's words and the fix", () => {
    const out = twoTopks({ ...WITH_FAKE, GLMK_FAKE_CANN_FAIL: "aclrtGetDeviceCount" });
    expect(out).toEqual([
      "GlmKernelsError E_DEVICE no usable Ascend driver: aclrtGetDeviceCount failed: ACL error 507000: fake CANN: injected failure in " +
        "aclrtGetDeviceCount (drvGetDevNum failed). Install the Ascend driver (npu-smi info lists the NPUs) or choose another device",
    ]);
  });

  it("every allocation failing makes opening fail with E_DEVICE naming aclrtMalloc", () => {
    const out = twoTopks({ ...WITH_FAKE, GLMK_FAKE_CANN_FAIL: "aclrtMalloc" });
    expect(out).toEqual([expect.stringMatching(/^GlmKernelsError E_DEVICE cannot open ascend:0: aclrtMalloc: ACL error 207001: fake CANN: injected failure in aclrtMalloc/)]);
  });

  it("finds CANN through ASCEND_TOOLKIT_HOME too, and the ops in an older CANN's single libopapi.so", () => {
    expect(twoTopks({ ...WITH_FAKE, ASCEND_HOME_PATH: "", ASCEND_TOOLKIT_HOME: FAKE })).toEqual(GOOD_PAIR);
    const dir = mkdtempSync(join(tmpdir(), "glmk-cann-single-"));
    mkdirSync(join(dir, "lib64"));
    for (const f of ["libascendcl.so", "libnnopbase.so"]) symlinkSync(join(FAKE, "lib64", f), join(dir, "lib64", f));
    symlinkSync(join(ROOT, "build-plugins/fake-cann-variants/libopapi.so"), join(dir, "lib64/libopapi.so"));
    expect(twoTopks({ ...WITH_FAKE, ASCEND_HOME_PATH: dir })).toEqual(GOOD_PAIR);
  });

  it("an older CANN without the newer-only entry points (aclrtSetSysParamOpt, ...) still works", () => {
    const dir = mkdtempSync(join(tmpdir(), "glmk-cann-old-"));
    mkdirSync(join(dir, "lib64"));
    for (const f of ["libnnopbase.so", "libopapi_math.so", "libopapi_nn.so", "libopapi_transformer.so"]) symlinkSync(join(FAKE, "lib64", f), join(dir, "lib64", f));
    symlinkSync(join(ROOT, "build-plugins/fake-cann-variants/libascendcl-old.so"), join(dir, "lib64/libascendcl.so"));
    const trace = join(dir, "calls.txt");
    expect(twoTopks({ ...WITH_FAKE, ASCEND_HOME_PATH: dir, GLMK_FAKE_CANN_TRACE: trace })).toEqual(GOOD_PAIR);
    const lines = readFileSync(trace, "utf8").split("\n");
    expect(lines).toContain("aclrtCtxSetSysParamOpt 0 1 device 0");
    expect(lines.filter((l) => l.startsWith("aclrtSetSysParamOpt"))).toEqual([]);
    const info = runCli(["info"], { ...WITH_FAKE, ASCEND_HOME_PATH: dir });
    expect(info.stdout).toMatch(new RegExp(` {2}ascend: 1 x Ascend NPU \\(0 threads; 0\\.0 GiB; ops ${OPS};`));
  });

  it("a CANN without an entry point the plugin needs is E_DEVICE naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "glmk-cann-"));
    mkdirSync(join(dir, "lib64"));
    for (const f of ["libascendcl.so", "libnnopbase.so", "libopapi_nn.so", "libopapi_transformer.so"]) symlinkSync(join(FAKE, "lib64", f), join(dir, "lib64", f));
    symlinkSync(join(ROOT, "build-plugins/fake-cann-variants/libopapi_math-nosort.so"), join(dir, "lib64/libopapi_math.so"));
    const out = twoTopks({ ...WITH_FAKE, ASCEND_HOME_PATH: dir });
    expect(out).toEqual([
      expect.stringMatching(/^GlmKernelsError E_DEVICE ascend is not available: the CANN in .*glmk-cann-.*\/lib64 lacks entry points this plugin needs: aclnnSortGetWorkspaceSize, aclnnSort \(looked in libascendcl\.so, libnnopbase\.so, .*libopapi_math\.so, .*libopapi_nn\.so, .*libopapi_transformer\.so\)/),
    ]);
  });
});
