// SPEC 6: golden digests, repeated runs, thread counts, ISA paths, each row alone vs in a shuffled batch.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GOLDEN_CASES, makeInput } from "../../dist/esm/verify/cases.js";
import { digestOf, goldenDigests, verifyTopk } from "../../dist/esm/verify/checks.js";
import { TEST_DEVICES, cpuIsaPaths, device } from "../helpers/devices.js";
import { runCli } from "../helpers/child.js";
import { topkRef } from "../reference/topk-ref.js";
import { bf16Rne, bf16ToF32, dequantizeRef, quantizeRef } from "../reference/int4-ref.js";
import { FP8_CASES, FP8_MATMUL_CASES, MATMUL_CASES, QUANT_CASES, seededF32, verifyQuant } from "../../dist/esm/verify/quant-checks.js";
import { f16Rne, fp8DequantizeRef, fp8MatmulRef, fp8QuantizeRef } from "../reference/fp8-ref.js";
import { MOE_EXPERTS_CASES, MOE_ROUTE_CASES, moeExpertsInputs, moeRouteInputs } from "../../dist/esm/verify/moe-checks.js";
import { expertRef, expertsRef, routeRef } from "../reference/moe-ref.js";

function f16Value(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, sg = h & 0x8000 ? -1 : 1;
  return e === 0 ? sg * m * 2 ** -24 : sg * (1 + m / 1024) * 2 ** (e - 15);
}
import { Prng } from "../../dist/esm/verify/prng.js";

const golden = JSON.parse(readFileSync(new URL("./golden.json", import.meta.url), "utf8")).digests as Record<string, string>;

describe("golden digests", () => {
  it("cover every golden case", () => {
    expect(Object.keys(golden).sort()).toEqual(GOLDEN_CASES.map((c) => c.name).sort());
  });
  it.each(GOLDEN_CASES.map((c) => [c.name, c] as const))("equal the TypeScript reference's: %s", (_n, c) => {
    expect(digestOf(topkRef(makeInput(c), c.rows, c.cols, c.k))).toBe(golden[c.name]);
  });
});

describe.each(TEST_DEVICES)("determinism on %s", (name) => {
  const dev = device(name);
  it("golden digests, 20 repeated runs, rows alone == rows in a shuffled batch", async () => {
    const checks = await verifyTopk(dev, { repeats: 20 });
    const failed = checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? ""}`);
    expect(failed).toEqual([]);
    expect(checks.length).toBe(3 * GOLDEN_CASES.length);
  });
});

// Child processes: every thread count and every ISA path this CPU can run gives the golden digests.
describe.each(cpuIsaPaths())("cpu, GLM_KERNELS_ISA=%s", (isa) => {
  it.each(["1", "2", "3"])("GLM_KERNELS_THREADS=%s reproduces the golden digests", async (threads) => {
    const r = runCli(["digests", "--device", "cpu"], { GLM_KERNELS_ISA: isa, GLM_KERNELS_THREADS: threads });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(golden);
  });
});

it("GLM_KERNELS_SPIN_US=0 (idle threads sleep at once) reproduces the golden digests", () => {
  const r = runCli(["digests", "--device", "cpu"], { GLM_KERNELS_SPIN_US: "0", GLM_KERNELS_THREADS: "2" });
  expect([r.status, r.stderr]).toEqual([0, ""]);
  expect(JSON.parse(r.stdout)).toEqual(golden);
});

it("the in-process device agrees with the golden digests", async () => {
  expect(await goldenDigests(device("cpu"))).toEqual(golden);
});

describe("the CLI", () => {
  it("`verify` prints one ok line per check with its digest and exits 0", () => {
    const r = runCli(["verify", "--device", "cpu", "--repeats", "3"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    const checks = lines.filter((l) => /^(ok |FAIL)/.test(l));
    // top-k: golden, repeats, batch per case, plus the child; int4: golden and repeats per quantizer case,
    // golden, repeats and batch per matmul and moe case, plus its child
    const quant = 2 * QUANT_CASES.length + 2 * FP8_CASES.length + 3 * (MATMUL_CASES.length + FP8_MATMUL_CASES.length + MOE_ROUTE_CASES.length + MOE_EXPERTS_CASES.length);
    expect(checks.length).toBe(3 * GOLDEN_CASES.length + 1 + quant + 1);
    expect(checks.every((l) => l.startsWith("ok"))).toBe(true);
    for (const c of GOLDEN_CASES) expect(r.stdout).toContain(`${golden[c.name]}`);
    expect(r.stdout).toMatch(/^ok {3}int4\/fp8\/matmul\/moe, scalar path, other threads \(child\) +15\/15 cases identical$/m);
    expect(lines.at(-1)).toBe(`${checks.length} passed, 0 failed`);
  });

  it("refuses an unknown op or device with the error code, exit 1, no stack", () => {
    const a = runCli(["bench", "nope"]);
    expect([a.status, a.stderr.trim()]).toEqual([1, 'glm-kernels: E_ARG: Expected a benchmark (topk, int4, fp8, moe or latency) but received "nope"']);
    const b = runCli(["verify", "--device", "tpu"]);
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/^glm-kernels: E_ARG: Expected a device name/);
  });
});

// The int4 quantizer's and the matmuls' golden digests (lib/verify/quant-checks.ts).
describe("int4 and matmul golden digests", () => {
  const quantGolden = JSON.parse(readFileSync(new URL("./golden.json", import.meta.url), "utf8")).quantDigests as Record<string, string>;
  it("cover every case", () => {
    expect(Object.keys(quantGolden).sort()).toEqual(
      [...QUANT_CASES, ...MATMUL_CASES, ...FP8_CASES, ...FP8_MATMUL_CASES, ...MOE_ROUTE_CASES, ...MOE_EXPERTS_CASES].map((c) => c.name).sort(),
    );
  });
  it.each(QUANT_CASES.map((c) => [c.name, c] as const))("the quantizer's equal the TypeScript reference's: %s", (_n, c) => {
    const v = seededF32(c.n * c.k, new Prng(c.seed));
    const w = c.dtype === "f32" ? v : Float32Array.from(v, (x) => bf16ToF32(bf16Rne(x)));
    const ref = quantizeRef(w, c.n, c.k, c.groupSize, c.levels);
    const deq = dequantizeRef(ref.codes, ref.scales, c.n, c.k, c.groupSize);
    const h = createHash("sha256")
      .update(new Uint8Array(ref.packed.buffer))
      .update(new Uint8Array(ref.scales.buffer))
      .update(new Uint8Array(deq.buffer))
      .digest("hex");
    expect(h).toBe(quantGolden[c.name]);
  });
  it.each(FP8_CASES.map((c) => [c.name, c] as const))("the fp8 quantizer's equal the TypeScript reference's: %s", (_n, c) => {
    const [b, n, k] = c.shape;
    const v = seededF32(b * n * k, new Prng(c.seed));
    const w = c.dtype === "f32" ? v : Float32Array.from(v, (x) => (c.dtype === "bf16" ? bf16ToF32(bf16Rne(x)) : f16Value(f16Rne(x))));
    const ref = fp8QuantizeRef(w, b, n, k, c.block[0], c.block[1]);
    const deq = fp8DequantizeRef(ref, b, n, k, c.block[0], c.block[1]);
    const h = createHash("sha256")
      .update(ref.data)
      .update(new Uint8Array(ref.scaleInv.buffer))
      .update(new Uint8Array(deq.f32Bits.buffer))
      .digest("hex");
    expect(h).toBe(quantGolden[c.name]);
  });
  it.each(FP8_MATMUL_CASES.map((c) => [c.name, c] as const))("fp8.matmul's equal the TypeScript model of the written order: %s", (_n, c) => {
    const p = new Prng(c.seed);
    const x = seededF32(c.m * c.k, p);
    const w = seededF32(c.n * c.k, p);
    const ref = fp8QuantizeRef(w, 1, c.n, c.k, c.block[0], c.block[1]);
    const xBits = Uint16Array.from(x, (v) => bf16Rne(v));
    const y = fp8MatmulRef(xBits, c.m, c.k, ref, c.n, c.block[0]).f32;
    expect(createHash("sha256").update(new Uint8Array(y.buffer)).digest("hex")).toBe(quantGolden[c.name]);
  });
  it.each(MOE_ROUTE_CASES.map((c) => [c.name, c] as const))("moe.route's equal the TypeScript model: %s", (_n, c) => {
    const inp = moeRouteInputs(c);
    const r = routeRef(Float32Array.from(inp.hidden, bf16ToF32), Float32Array.from(inp.gate, bf16ToF32), c.t, c.h, c.e, {
      bias: inp.bias, topK: c.topK, nGroup: c.nGroup, topkGroup: c.topkGroup, scaling: 2.5, norm: true,
    });
    expect(createHash("sha256").update(new Uint8Array(r.ids.buffer)).update(new Uint8Array(r.weights.buffer)).digest("hex")).toBe(quantGolden[c.name]);
  });
  it.each(MOE_EXPERTS_CASES.map((c) => [c.name, c] as const))("moe.experts' equal the TypeScript model: %s", (_n, c) => {
    const inp = moeExpertsInputs(c);
    const q = (v: Float32Array, e: number, n: number, k: number) => fp8QuantizeRef(v, e, n, k, 128, 128);
    const [g, u, d] = [q(inp.gate, c.e, c.i, c.h), q(inp.up, c.e, c.i, c.h), q(inp.down, c.e, c.h, c.i)];
    const shared = { gate: q(inp.sGate, 1, c.sharedI, c.h), up: q(inp.sUp, 1, c.sharedI, c.h), down: q(inp.sDown, 1, c.h, c.sharedI), i: c.sharedI, bn: 128 };
    const expert = (x: number) => ({ gate: expertRef(g, x, c.i, c.h, 128), up: expertRef(u, x, c.i, c.h, 128), down: expertRef(d, x, c.h, c.i, 128), i: c.i, bn: 128 });
    const y = expertsRef(inp.hidden, c.t, c.h, inp.ids, inp.weights, c.topK, expert, shared);
    expect(createHash("sha256").update(new Uint8Array(y.buffer)).digest("hex")).toBe(quantGolden[c.name]);
  });
  it.each(TEST_DEVICES)("verify's int4, fp8, matmul and moe checks pass on %s", async (name) => {
    const checks = await verifyQuant(device(name), { repeats: 3 });
    expect(checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? ""}`)).toEqual([]);
    if (name === "cpu")
      expect(checks.length).toBe(
        2 * QUANT_CASES.length + 2 * FP8_CASES.length + 3 * (MATMUL_CASES.length + FP8_MATMUL_CASES.length + MOE_ROUTE_CASES.length + MOE_EXPERTS_CASES.length),
      );
  });
});
