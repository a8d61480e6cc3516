// The ascend plugin's int4, fp8, matmul and moe paths through the CPU fake of CANN: which CANN calls they
// make (aclnnMatmul in f32 with cubeMathType 0 for matmul, int4.matmul and fp8.matmul alike;
// aclnnGroupedMatmulV4 on f32 single tensors for moe.experts; on an Ascend 950 aclnnQuantMatmulV5 for both),
// and failures injected into the fake (an op's GetWorkspaceSize, its launch or its execution failing, a read-back of a
// host-computed op's input failing) becoming GlmKernelsErrors with the process alive and the next call
// right. The shared suites (int4, matmul, fp8, fp8-matmul, moe-route, moe-experts, determinism) run on ascend
// through the fake too.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, runNode } from "../helpers/child.js";

const FAKE = join(ROOT, "build-plugins/fake-cann");
const WITH_FAKE = { ASCEND_HOME_PATH: FAKE, ASCEND_TOOLKIT_HOME: "", GLMK_FAKE_CANN_FAIL: "" };

// Runs OP (an async function of a device returning a string) twice on ascend, then once on cpu; prints
// what each gave or threw, and whether the second ascend run equals the cpu's.
const script = (op: string) => `
import { openDevice, matmul, int4, fp8, moe, GlmKernelsError } from "glm-kernels";
const OP = ${op};
const out = [];
const run = async (dev) => { try { return await OP(dev); } catch (e) { return e instanceof GlmKernelsError ? "GlmKernelsError " + e.code + " " + e.message : "OTHER " + String(e); } };
const dev = openDevice("ascend");
out.push(await run(dev));
out.push(await run(dev));
out.push(await run(openDevice("cpu")));
console.log(JSON.stringify(out));
`;

const hex = "(a) => Array.from(a, (v) => (v >>> 0).toString(16)).join(',')";
// bf16 x [1, 2] = [1, 2] times w [2, 2] = [[3, 4], [1, 1]]^T: y = [11, 3] (0x4130, 0x4040), exact on any order.
const MATMUL = `async (d) => (${hex})(await matmul(d.tensor(new Uint16Array([0x3f80, 0x4000]), [1, 2], "bf16"), d.tensor(new Uint16Array([0x4040, 0x4080, 0x3f80, 0x3f80]), [2, 2], "bf16")).read())`;
const W32 = "Float32Array.from({ length: 64 }, (_, i) => (i % 17) - 8.25)";
const INT4_MATMUL = `async (d) => (${hex})(await int4.matmul(d.tensor(new Float32Array(32).fill(1), [1, 32]), int4.quantize(d.tensor(${W32}, [2, 32]))).read())`;
const INT4_QUANTIZE = `async (d) => { const q = int4.quantize(d.tensor(${W32}, [2, 32]), { groupSize: 32 }); return (${hex})(await q.packed.read()) + " " + (${hex})(await q.scales.read()); }`;
const FP8_QUANTIZE = `async (d) => { const q = fp8.quantize(d.tensor(${W32}, [2, 32])); return (${hex})(await q.data.read()) + " " + (${hex})(new Uint32Array((await q.scaleInv.read()).buffer)); }`;
const XB = "Uint16Array.from({ length: 128 }, (_, i) => 0x3f00 + (i % 13) * 8)"; // bf16 in [0.5, 1)
const FP8_MATMUL = `async (d) => (${hex})(new Uint32Array((await fp8.matmul(d.tensor(${XB}, [1, 128], "bf16"), fp8.quantize(d.tensor(Float32Array.from({ length: 256 }, (_, i) => (i % 29) - 14), [2, 128])), { dtype: "f32" }).read()).buffer))`;
// one token, two experts of [32, 128] / [128, 32], both slots used
const EXPERTS = `async (d) => { const q = (n, k) => fp8.quantize(d.tensor(Float32Array.from({ length: 2 * n * k }, (_, i) => ((i * 7) % 23 - 11) / 16), [2, n, k]));
  const y = moe.experts(d.tensor(${XB}, [1, 128], "bf16"), { ids: d.tensor(new Int32Array([1, 0]), [1, 2]), weights: d.tensor(new Float32Array([0.5, 0.25]), [1, 2]) },
    { gateProj: q(32, 128), upProj: q(32, 128), downProj: q(128, 32) });
  return (${hex})(await y.read()); }`;
const ROUTE = `async (d) => { const r = moe.route(d.tensor(new Float32Array([1, 2]), [1, 2]), d.tensor(${W32}.slice(0, 16), [8, 2]), { topK: 2 }); return (${hex})(await r.ids.read()) + " " + (${hex})(new Uint32Array((await r.weights.read()).buffer)); }`;

function twice(op: string, env: Record<string, string>) {
  const r = runNode(script(op), { ...WITH_FAKE, ...env });
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  const [first, second, cpu] = JSON.parse(r.stdout.trim().split("\n").pop()!) as string[];
  return { first, second, cpu };
}

describe.runIf(existsSync(join(FAKE, "lib64/libascendcl.so")))("ascend ops through the CPU fake of CANN", () => {
  it("matmul and int4.matmul both run one aclnnMatmul on f32 operands with cubeMathType 0 (KEEP_DTYPE)", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
    const { first, second } = twice(`async (d) => (await (${MATMUL})(d)) + " " + (await (${INT4_MATMUL})(d))`, { GLMK_FAKE_CANN_TRACE: trace });
    expect(first).toBe(second);
    expect(first.split(" ")[0]).toBe("4130,4040");
    const lines = readFileSync(trace, "utf8").split("\n");
    const mm = lines.filter((l) => l.startsWith("aclnnMatmulGetWorkspaceSize"));
    expect(mm).toEqual(Array(4).fill("aclnnMatmulGetWorkspaceSize cubeMathType 0 dtype 0"));
    expect(lines.filter((l) => l.startsWith("error"))).toEqual([]);
  });

  it("fp8.matmul runs one aclnnMatmul on f32 operands; moe.experts three aclnnGroupedMatmulV4 on f32 single tensors (counts, split M)", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
    const { first, second, cpu } = twice(`async (d) => (await (${FP8_MATMUL})(d)) + " " + (await (${EXPERTS})(d))`, { GLMK_FAKE_CANN_TRACE: trace });
    expect(first).toBe(second);
    expect(first.split(" ")[1].split(",").length).toBe(128);
    expect(cpu.split(" ").map((v) => v.split(",").length)).toEqual([2, 128]);
    const lines = readFileSync(trace, "utf8").split("\n");
    expect(lines.filter((l) => l.startsWith("aclnnMatmulGetWorkspaceSize"))).toEqual(Array(2).fill("aclnnMatmulGetWorkspaceSize cubeMathType 0 dtype 0"));
    expect(lines.filter((l) => l.startsWith("aclnnGroupedMatmulV4GetWorkspaceSize"))).toEqual(
      Array(6).fill("aclnnGroupedMatmulV4GetWorkspaceSize splitItem 3 groupType 0 groupListType 1 actType 0 dtype 0"),
    );
    expect(lines.filter((l) => l.startsWith("error"))).toEqual([]);
  });

  it("on an Ascend 950 fp8.matmul with [128, 128] blocks runs one aclnnQuantMatmulV5 (G-B) on the codes, reading back x only; [1, 128] blocks keep aclnnMatmul", () => {
    const soc = { GLMK_FAKE_CANN_SOC: "Ascend950PR" };
    const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
    const FP8_MATMUL_ROWS = FP8_MATMUL.replace("fp8.quantize(d.tensor(", "fp8.quantize(d.tensor(").replace(", [2, 128]))", ", [2, 128]), { block: [1, 128] })");
    expect(FP8_MATMUL_ROWS).not.toBe(FP8_MATMUL);
    const { first, second, cpu } = twice(`async (d) => (await (${FP8_MATMUL})(d)) + " " + (await (${FP8_MATMUL_ROWS})(d))`, { ...soc, GLMK_FAKE_CANN_TRACE: trace });
    expect(first).toBe(second);
    // products of e4m3 values summed over one 128-K block: exact in f32 whatever the order, and so the same bits as cpu here
    expect(first).toBe(cpu);
    const lines = readFileSync(trace, "utf8").split("\n");
    expect(lines.filter((l) => l.startsWith("aclnnQuantMatmulV5GetWorkspaceSize"))).toEqual(
      Array(2).fill("aclnnQuantMatmulV5GetWorkspaceSize x1 36 x2 36 transposeX2 1 groupSize 4303356032 out 0"),
    );
    expect(lines.filter((l) => l.startsWith("aclnnMatmulGetWorkspaceSize"))).toEqual(Array(2).fill("aclnnMatmulGetWorkspaceSize cubeMathType 0 dtype 0"));
    expect(lines.filter((l) => l.startsWith("error"))).toEqual([]);
    // device-to-host copies: #1 fp8.quantize's input (host-computed), #2 x; then the f32 path reads the codes (#3)
    // and scales back while the 950 path reads back x only, so its #3 is the result's download
    expect(twice(FP8_MATMUL, { ...soc, GLMK_FAKE_CANN_FAIL: "aclrtMemcpyAsync:d2h#3" }).first).toMatch(/^GlmKernelsError E_DEVICE download \(aclrtMemcpyAsync\)/);
    expect(twice(FP8_MATMUL, { GLMK_FAKE_CANN_FAIL: "aclrtMemcpyAsync:d2h#3" }).first).toMatch(/^GlmKernelsError E_DEVICE fp8\.matmul: reading an input/);
    expect(twice(FP8_MATMUL, { ...soc, GLMK_FAKE_CANN_FAIL: "exec:aclnnQuantMatmulV5#1" }).first).toMatch(
      /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnQuantMatmulV5/,
    );
  });

  it("on an Ascend 950 moe.experts with [128, 128] blocks runs each expert's products as aclnnQuantMatmulV5 on the codes (no aclnnGroupedMatmulV4)", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
    const { first, second, cpu } = twice(EXPERTS, { GLMK_FAKE_CANN_SOC: "Ascend950PR", GLMK_FAKE_CANN_TRACE: trace });
    expect(first).toBe(second);
    expect(first.split(",").length).toBe(128);
    expect(cpu.split(",").length).toBe(128);
    const lines = readFileSync(trace, "utf8").split("\n");
    // per run: two experts x (gate, up, down), f32 out
    expect(lines.filter((l) => l.startsWith("aclnnQuantMatmulV5GetWorkspaceSize"))).toEqual(
      Array(12).fill("aclnnQuantMatmulV5GetWorkspaceSize x1 36 x2 36 transposeX2 1 groupSize 4303356032 out 0"),
    );
    expect(lines.filter((l) => l.startsWith("aclnnGroupedMatmulV4GetWorkspaceSize"))).toEqual([]);
    expect(lines.filter((l) => l.startsWith("error"))).toEqual([]);
  });

  it.each([
    ["matmul", MATMUL, "aclnnMatmulGetWorkspaceSize#1", /^GlmKernelsError E_DEVICE matmul: aclnnMatmulGetWorkspaceSize: ACL error 561000: fake CANN: injected failure in aclnnMatmulGetWorkspaceSize$/],
    ["matmul", MATMUL, "aclnnMatmul#1", /^GlmKernelsError E_DEVICE matmul: aclnnMatmul: ACL error 561000: fake CANN: injected failure in aclnnMatmul \(EZ9999: inner error\)$/],
    ["matmul", MATMUL, "exec:aclnnMatmul#1", /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnMatmul \(EZ9999: AI Core exception\)$/],
    ["matmul", MATMUL, "aclnnCastGetWorkspaceSize#2", /^GlmKernelsError E_DEVICE matmul: aclnnCastGetWorkspaceSize: ACL error 561000: fake CANN: injected failure in aclnnCastGetWorkspaceSize$/],
    ["matmul", MATMUL, "exec:aclnnCast#3", /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnCast/],
    ["int4.matmul", INT4_MATMUL, "exec:aclnnMatmul#1", /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnMatmul/],
    ["int4.matmul", INT4_MATMUL, "aclnnMatmulGetWorkspaceSize#1", /^GlmKernelsError E_DEVICE int4\.matmul: aclnnMatmulGetWorkspaceSize: ACL error 561000: fake CANN: injected failure/],
    ["int4.matmul", INT4_MATMUL, "aclrtMemcpyAsync:d2h#2", /^GlmKernelsError E_DEVICE int4\.matmul: reading an input \(aclrtMemcpyAsync\): ACL error 507000: fake CANN: injected failure in aclrtMemcpyAsync \(device to host\)$/],
    ["int4.quantize", INT4_QUANTIZE, "aclrtMemcpyAsync:d2h#1", /^GlmKernelsError E_DEVICE int4\.quantize: reading an input \(aclrtMemcpyAsync\): ACL error 507000: fake CANN: injected failure in aclrtMemcpyAsync \(device to host\)$/],
    ["fp8.quantize", FP8_QUANTIZE, "aclrtMemcpyAsync:d2h#1", /^GlmKernelsError E_DEVICE fp8\.quantize: reading an input \(aclrtMemcpyAsync\): ACL error 507000: fake CANN: injected failure in aclrtMemcpyAsync \(device to host\)$/],
    ["fp8.matmul", FP8_MATMUL, "exec:aclnnMatmul#1", /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnMatmul/],
    ["fp8.matmul", FP8_MATMUL, "aclrtMemcpyAsync:d2h#2", /^GlmKernelsError E_DEVICE fp8\.matmul: reading an input \(aclrtMemcpyAsync\): ACL error 507000: fake CANN: injected failure in aclrtMemcpyAsync \(device to host\)$/],
    ["moe.experts", EXPERTS, "aclnnGroupedMatmulV4GetWorkspaceSize#1", /^GlmKernelsError E_DEVICE moe\.experts: aclnnGroupedMatmulV4GetWorkspaceSize: ACL error 561000: fake CANN: injected failure in aclnnGroupedMatmulV4GetWorkspaceSize$/],
    ["moe.experts", EXPERTS, "aclnnGroupedMatmulV4#3", /^GlmKernelsError E_DEVICE moe\.experts: aclnnGroupedMatmulV4: ACL error 561000: fake CANN: injected failure in aclnnGroupedMatmulV4 \(EZ9999: inner error\)$/],
    ["moe.experts", EXPERTS, "exec:aclnnGroupedMatmulV4#2", /^GlmKernelsError E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnGroupedMatmulV4 \(EZ9999: AI Core exception\)$/],
    ["moe.experts", EXPERTS, "aclCreateTensorList#2", /^GlmKernelsError E_DEVICE moe\.experts: aclCreateTensorList failed: fake CANN: injected failure in aclCreateTensorList$/],
    ["moe.route", ROUTE, "aclrtMemcpyAsync:d2h#1", /^GlmKernelsError E_DEVICE moe\.route: reading an input \(aclrtMemcpyAsync\): ACL error 507000: fake CANN: injected failure in aclrtMemcpyAsync \(device to host\)$/],
  ])("%s with %s: a GlmKernelsError carrying CANN's message, then the next call is right", (_op, op, fail, pattern) => {
    const { first, second, cpu } = twice(op, { GLMK_FAKE_CANN_FAIL: fail });
    expect(first).toMatch(pattern);
    expect(second).not.toMatch(/GlmKernelsError|OTHER/);
    if (["int4.quantize", "fp8.quantize", "moe.route"].includes(_op)) expect(second).toBe(cpu); // host-computed: the cpu device's bits
    else expect(second).toBe(twice(op, {}).first);
  });
});
