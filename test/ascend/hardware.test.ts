// On a real Ascend NPU (CANN installed, `source <CANN>/set_env.sh` done, an NPU listed by npu-smi): top-k
// equals the cpu device bit for bit, and gives the golden digests; the host-computed int4 / fp8 quantizers
// and moe.route give their golden digests; matmul and int4.matmul (aclnnMatmul) keep the int4 == fakeQuant
// identity bit for bit, are batch invariant and repeatable (verify's checks: fp8.matmul and moe.experts
// too), and agree with the cpu device within the f32 accumulation bound (fp8.matmul too); with
// GLM_KERNELS_ASCEND_INT4=wqbmm, int4.matmul on aclnnWeightQuantBatchMatmulV2 within tolerance. Skipped, with the
// reason printed, where
// there is no NPU (our CI: the plugin runs there against the CPU fake of CANN, see fake-cann.test.ts).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fp8, int4, listDevices, matmul, openDevice, type Device } from "glm-kernels";
import { verifyQuant } from "../../dist/esm/verify/quant-checks.js";
import { makeInput, type TopkCase } from "../../dist/esm/verify/cases.js";
import { goldenDigests, runTopk } from "../../dist/esm/verify/checks.js";
import { firstMismatch } from "../reference/topk-ref.js";
import { expectWithinTolerance, runWq, type WqCase } from "./wqbmm-cases.js";

const listing = listDevices().find((l) => l.kind === "ascend")!;
const onFake = listing.available && /fake CANN/.test(openDevice("ascend").info().name);
const npu = listing.available && !onFake;
if (!npu)
  console.log(
    `test/ascend/hardware.test.ts skipped: no Ascend NPU here (${onFake ? "ASCEND_HOME_PATH points at the CPU fake of CANN" : listing.reason})`,
  );

describe.runIf(npu)("ascend on NPU hardware", () => {
  const golden = JSON.parse(readFileSync(new URL("../determinism/golden.json", import.meta.url), "utf8")).digests;

  it("gives the golden top-k digests", async () => {
    expect(await goldenDigests(openDevice("ascend"))).toEqual(golden);
  });

  it.each([
    { name: "f32-special-4x65536-k2048", dtype: "f32", rows: 4, cols: 65536, k: 2048, gen: "special", seed: 1 },
    { name: "bf16-ties-ragged-64x32768-k2048", dtype: "bf16", rows: 64, cols: 32768, k: 2048, gen: "ties", seed: 2, ragged: true },
    { name: "f16-special-8x131072-k1024", dtype: "f16", rows: 8, cols: 131072, k: 1024, gen: "special", seed: 3 },
  ] as TopkCase[])("equals the cpu device bit for bit: $name", async (c) => {
    const input = makeInput(c);
    const npuOut = await runTopk(openDevice("ascend"), c, input);
    const cpuOut = await runTopk(openDevice("cpu"), c, input);
    expect(firstMismatch(npuOut, cpuOut, c.k)).toBeNull();
  });
});

describe.runIf(npu)("ascend's int4, fp8, matmul and moe on NPU hardware", () => {
  it("verify's checks pass: quantizer and moe.route golden digests, repeats, matmul, fp8.matmul and moe.experts rows alone == batch", async () => {
    const checks = await verifyQuant(openDevice("ascend"), { repeats: 3 });
    expect(checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? ""}`)).toEqual([]);
    expect(checks.some((c) => c.name.startsWith("batch-invariant matmul"))).toBe(true);
    expect(checks.some((c) => c.name.startsWith("batch-invariant fp8-matmul"))).toBe(true);
    expect(checks.some((c) => c.name.startsWith("batch-invariant moe-experts"))).toBe(true);
  });

  it("fp8.matmul's f32 sums within twice the f32 accumulation bound, 2 (K + 3) 2^-24 sum|terms|, of the cpu's", async () => {
    const m = 4, n = 64, k = 1024;
    let s = 13;
    const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;
    const xb = Uint16Array.from({ length: m * k }, () => new Uint16Array(new Float32Array([r()]).buffer)[1]);
    const w = Float32Array.from({ length: n * k }, r);
    const run = async (dev: Device) =>
      (await fp8.matmul(dev.tensor(xb, [m, k], "bf16"), fp8.quantize(dev.tensor(w, [n, k])), { dtype: "f32" }).read()) as Float32Array;
    const cpu = openDevice("cpu");
    const wd = (await fp8.dequantize(fp8.quantize(cpu.tensor(w, [n, k])), "f32").read()) as Float32Array;
    const npuOut = await run(openDevice("ascend"));
    const cpuOut = await run(cpu);
    const xv = (i: number) => new Float32Array(new Uint32Array([xb[i] << 16]).buffer)[0];
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let mag = 0;
        for (let kk = 0; kk < k; kk++) mag += Math.abs(xv(i * k + kk) * wd[j * k + kk]) * 1.07; // the e4m3 activations: within 2^-4 of x
        expect(Math.abs(npuOut[i * n + j] - cpuOut[i * n + j]), `y[${i}, ${j}]`).toBeLessThanOrEqual(2 * (k + 3) * 2 ** -24 * mag + 1e-30);
      }
  });

  it("int4.matmul(x, quantize(w)) == matmul(x, fakeQuant(w)) bit for bit; matmul within the f32 bound of the cpu's", async () => {
    const m = 8, n = 96, k = 1024;
    let s = 7;
    const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;
    const x = Float32Array.from({ length: m * k }, r), w = Float32Array.from({ length: n * k }, r);
    const run = async (dev: Device) => {
      const X = dev.tensor(x, [m, k]), W = dev.tensor(w, [n, k]);
      const a = (await int4.matmul(X, int4.quantize(W, { groupSize: 64 })).read()) as Float32Array;
      const b = (await matmul(X, int4.fakeQuant(W, { groupSize: 64 })).read()) as Float32Array;
      return { a, b, y: (await matmul(X, W).read()) as Float32Array };
    };
    const npuOut = await run(openDevice("ascend"));
    const cpuOut = await run(openDevice("cpu"));
    expect(Array.from(new Uint32Array(npuOut.a.buffer))).toEqual(Array.from(new Uint32Array(npuOut.b.buffer)));
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let mag = 0;
        for (let kk = 0; kk < k; kk++) mag += Math.abs(x[i * k + kk] * w[j * k + kk]);
        const bound = 2 * k * 2 ** -24 * mag;
        expect(Math.abs(npuOut.y[i * n + j] - cpuOut.y[i * n + j]), `y[${i}, ${j}]`).toBeLessThanOrEqual(bound);
      }
  });

  it("GLM_KERNELS_ASCEND_INT4=wqbmm: int4.matmul with bf16 x on aclnnWeightQuantBatchMatmulV2 within the stated tolerance of cpu, the same bits again and row alone", () => {
    const cases: WqCase[] = [
      [17, 130, 256, 64, "bf16"],
      [1, 256, 4096, 128, "bf16"],
      [4, 128, 6144, 32, "bf16"],
    ];
    const outs = runWq(cases, { GLM_KERNELS_ASCEND_INT4: "wqbmm" });
    cases.forEach((c, i) => expectWithinTolerance(outs[i], c));
  });
});
