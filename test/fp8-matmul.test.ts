// fp8.matmul (SPEC 5): on the cpu device bit for bit against the TypeScript model of the written order; on
// cuda / cuda-sim (tensor cores: devices/cuda/fp8-matmul-mma.cuh) within the stated tolerance of the cpu
// device and the same bits run to run; everywhere within a stated bound of a float64 product of the same
// quantized values, batch invariant; one digest over ISA paths and threads (cpu).
import { describe, expect, it } from "vitest";
import { fp8 } from "../dist/esm/index.js";
import { CPU_SETTINGS, outputsUnder } from "./helpers/child.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { firstOutOfTolerance } from "./helpers/tolerance.js";
import { bf16Rne, bf16ToF32 } from "./reference/int4-ref.js";
import { addF32, e4m3Encode, e4m3Value, fp8MatmulRef, fp8QuantizeRef } from "./reference/fp8-ref.js";

const DEVICES = TEST_DEVICES.filter((d) => device(d).info().capabilities.includes("fp8.matmul"));

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
}

describe("the reference's f32 addition", () => {
  it("rounds like one IEEE addition where a double sum would round twice", () => {
    // 1 + 2^-24 + 2^-60: the double sum is 1 + 2^-24 (a midpoint of f32), the exact one is above it
    expect(addF32(1 + 2 ** -24, 2 ** -60)).toBe(1 + 2 ** -23);
    expect(addF32(1 + 2 ** -24, -(2 ** -60))).toBe(1);
    expect(addF32(1.5, 2.25)).toBe(3.75);
  });
});

describe.each(DEVICES)("fp8.matmul on %s", (name) => {
  const dev = device(name);
  // cpu follows SPEC 5's written order bit for bit. cuda and cuda-sim sum each 128-K block on tensor cores
  // (devices/cuda/fp8-matmul-mma.cuh; the scaling is SPEC 5's f32 formula): within the stated tolerance of
  // the cpu device (helpers/tolerance.ts with terms t = xa sa w scaleInv: bf16 |y - y_cpu| <= 2^-8 max(|y|,
  // |y_cpu|) + K 2^-22 sum|t|; f32 sums |y - y_cpu| <= K 2^-22 sum|t|: both sides' f32 accumulations), and
  // the same bits run to run. ascend applies the scales to the operands and sums them in f32 in one
  // aclnnMatmul (README, "ascend (CANN)"): its f32 sums are held to the f32 accumulation bound instead,
  // |y - exact| <= (K + 3) 2^-24 sum|terms|, and to twice that of the written order's sums.
  const kind = dev.info().kind;
  const writtenOrder = kind === "cpu";
  const tensorCore = kind === "cuda" || kind === "cuda-sim";

  it.each([
    [3, 40, 256, [128, 128]],
    [5, 33, 300, [1, 128]],
    [1, 130, 129, [128, 128]],
  ] as const)(`[%i x %i x %i] blocks %j: ${writtenOrder ? "every bit as the written order" : tensorCore ? "within tolerance of cpu, the same bits run to run" : "within the f32 accumulation bound of the written order"}; within the bound of float64`, async (m, n, k, block) => {
    const r = lcg(m * n + k);
    const wv = Float32Array.from({ length: n * k }, (_, i) => r() * 2 ** ((i % 11) - 5));
    const xBits = Uint16Array.from({ length: m * k }, (_, i) => bf16Rne(r() * 2 ** ((i % 7) - 3)));
    const q = fp8.quantize(dev.tensor(wv, [n, k]), { block: [...block] as [number, number] });
    const ref = fp8QuantizeRef(wv, 1, n, k, block[0], block[1]);
    const x = dev.tensor(xBits, [m, k], "bf16");
    const y = (await fp8.matmul(x, q).read()) as Uint16Array;
    const want = fp8MatmulRef(xBits, m, k, ref, n, block[0]);
    // the f32 sums before the bf16 rounding (which would hide a different order in the low bits)
    const y32 = (await fp8.matmul(x, q, { dtype: "f32" }).read()) as Float32Array;
    // every device: the bf16 output is its f32 sums rounded once
    expect(Array.from(y)).toEqual(Array.from(y32, (v) => bf16Rne(v)));
    if (writtenOrder) {
      expect(Array.from(y)).toEqual(Array.from(want.bf16));
      expect(Array.from(new Uint32Array(y32.buffer))).toEqual(Array.from(new Uint32Array(want.f32.buffer)));
    }
    let cpuY: Uint16Array | undefined, cpuY32: Float32Array | undefined;
    if (tensorCore) {
      const again = (await fp8.matmul(x, q, { dtype: "f32" }).read()) as Float32Array;
      expect(Array.from(new Uint32Array(again.buffer))).toEqual(Array.from(new Uint32Array(y32.buffer)));
      const cpu = device("cpu");
      const qc = fp8.quantize(cpu.tensor(wv, [n, k]), { block: [...block] as [number, number] });
      const xc = cpu.tensor(xBits, [m, k], "bf16");
      cpuY = (await fp8.matmul(xc, qc).read()) as Uint16Array;
      cpuY32 = (await fp8.matmul(xc, qc, { dtype: "f32" }).read()) as Float32Array;
    }
    const mags = new Float64Array(m * n);
    // float64 of the same quantized operands: |y - exact| <= K 2^-24 sum|terms| + half a bf16 ulp
    const blocks = Math.ceil(k / 128);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let exact = 0, mag = 0;
        for (let b = 0; b < blocks; b++) {
          let amax = 0;
          for (let c = b * 128; c < Math.min(k, (b + 1) * 128); c++) amax = Math.max(amax, Math.abs(bf16ToF32(xBits[i * k + c])));
          const sa = Math.fround(Math.max(amax, Math.fround(1e-4)) / 448);
          for (let c = b * 128; c < Math.min(k, (b + 1) * 128); c++) {
            const t = e4m3Value(e4m3Encode(Math.fround(bf16ToF32(xBits[i * k + c]) / sa))) * sa * e4m3Value(ref.data[j * k + c]) * ref.scaleInv[Math.floor(j / block[0]) * blocks + b];
            exact += t;
            mag += Math.abs(t);
          }
        }
        mags[i * n + j] = mag;
        if (cpuY32) {
          const at = `y[${i}, ${j}] = ${y32[i * n + j]}, cpu ${cpuY32[i * n + j]}, float64 ${exact}`;
          expect(Math.abs(y32[i * n + j] - cpuY32[i * n + j]), at).toBeLessThanOrEqual(k * 2 ** -22 * mag + 1e-30);
        }
        expect(Math.abs(bf16ToF32(y[i * n + j]) - exact)).toBeLessThanOrEqual(k * 2 ** -22 * mag + 2 ** -8 * Math.abs(exact) + 1e-30);
        if (!writtenOrder && !tensorCore) {
          const bound = (k + 3) * 2 ** -24 * mag + 1e-30, at = `y[${i}, ${j}] = ${y32[i * n + j]}, written order ${want.f32[i * n + j]}, float64 ${exact}`;
          expect(Math.abs(y32[i * n + j] - exact), at).toBeLessThanOrEqual(bound);
          expect(Math.abs(y32[i * n + j] - want.f32[i * n + j]), at).toBeLessThanOrEqual(2 * bound);
        }
      }
    if (cpuY) {
      const at = firstOutOfTolerance(y, cpuY, mags, k);
      expect(at, at < 0 ? "" : `y[${at}]: ${name} ${bf16ToF32(y[at])}, cpu ${bf16ToF32(cpuY[at])}`).toBe(-1);
    }
  });

  it("a token alone == the same token inside the batch", async () => {
    const m = 19, n = 70, k = 384; // two 16-row m-tiles and two 64-column blocks of the tensor-core kernel
    const r = lcg(77);
    const q = fp8.quantize(dev.tensor(Float32Array.from({ length: n * k }, r), [n, k]));
    const xBits = Uint16Array.from({ length: m * k }, () => bf16Rne(r() * 4));
    const all = (await fp8.matmul(dev.tensor(xBits, [m, k], "bf16"), q).read()) as Uint16Array;
    for (const t of [0, 4, 8, 15, 16, 18]) {
      const one = (await fp8.matmul(dev.tensor(xBits.slice(t * k, (t + 1) * k), [1, k], "bf16"), q).read()) as Uint16Array;
      expect(Array.from(one)).toEqual(Array.from(all.slice(t * n, (t + 1) * n)));
    }
  });

  it("checks its arguments", () => {
    using x = dev.tensor(new Uint16Array(256), [2, 128], "bf16");
    using xf = dev.tensor(new Float32Array(256), [2, 128]);
    const q = fp8.quantize(dev.tensor(new Float32Array(3 * 128), [3, 128]));
    expect(fp8.matmul(x, q).shape).toEqual([2, 3]);
    expect(() => fp8.matmul(xf, q)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    expect(() => fp8.matmul(x, q, { dtype: "f16" } as never)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    const q64 = fp8.quantize(dev.tensor(new Float32Array(3 * 128), [3, 128]), { block: [1, 64] });
    expect(() => fp8.matmul(x, q64)).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/wq.block/) }));
    const q3 = fp8.quantize(dev.tensor(new Float32Array(2 * 3 * 128), [2, 3, 128]));
    expect(() => fp8.matmul(x, q3)).toThrow(expect.objectContaining({ code: "E_SHAPE" }));
  });
});

describe("fp8.matmul determinism across processes (cpu)", () => {
  it("GLM_KERNELS_ISA and 1 vs 2 threads give one digest", () => {
    const code = `
      import { openDevice, fp8 } from "./dist/esm/index.js";
      import { createHash } from "node:crypto";
      const dev = openDevice("cpu");
      let s = 5;
      const r = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
      const bf = () => new Uint16Array(new Float32Array([r()]).buffer)[1];
      const hash = createHash("sha256");
      // tiles of 16 rows and items of 4 tiles with partial ends, partial K blocks, M = 1 and more, blocks
      // [1, 128], and weights holding NaN codes (0x7F, 0xFF: never from quantize, possible in a checkpoint)
      for (const [m, n, k, bn, nan] of [[6, 70, 300, 128, 0], [1, 130, 300, 128, 1], [3, 33, 129, 1, 1], [1, 17, 1000, 1, 0], [20, 80, 256, 128, 1]]) {
        const q = fp8.quantize(dev.tensor(Float32Array.from({ length: n * k }, r), [n, k]), { block: [bn, 128] });
        if (nan) {
          const codes = await q.data.read();
          codes[5] = 0x7f, codes[k + 130] = 0xff, codes[n * k - 1] = 0x7f;
          q.data = dev.tensor(codes, [n, k], "f8e4m3");
        }
        const x = dev.tensor(Uint16Array.from({ length: m * k }, bf), [m, k], "bf16");
        hash.update(new Uint8Array((await fp8.matmul(x, q).read()).buffer));
        hash.update(new Uint8Array((await fp8.matmul(x, q, { dtype: "f32" }).read()).buffer));
      }
      console.log(hash.digest("hex"));`;
    expect(new Set(outputsUnder(code, CPU_SETTINGS)).size).toBe(1);
  });
});
