// matmul and int4.matmul (SPEC 4): against a float64 reference within a stated bound, the int4 == fakeQuant
// identity bit for bit, batch invariance, and one digest over every ISA path and thread count; on other devices
// than cpu, within the stated tolerance of the CPU device (helpers/tolerance.ts) and the same bits run to run.
import { describe, expect, it } from "vitest";
import { fp8, int4, matmul, topk, type Device, type Tensor } from "../dist/esm/index.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { CPU_SETTINGS, outputsUnder } from "./helpers/child.js";
import { firstOutOfTolerance, magnitudes } from "./helpers/tolerance.js";
import { bf16Rne, bf16ToF32 } from "./reference/int4-ref.js";

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
}

// f16 bits of a value (round to nearest even through f32; the values here are normal and small).
function f16Bits(x: number): number {
  const f = new Float32Array([x]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const a = b & 0x7fffffff;
  const r = a + 0xfff + ((a >>> 13) & 1);
  return sign | ((r - 0x38000000) >>> 13);
}
function f16ToF32(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

type DT = "f32" | "bf16" | "f16";
// A tensor of `dtype` from values, and the values it really holds (rounded to dtype).
function make(dev: Device, values: Float64Array | number[], shape: [number, number], dtype: DT): { t: Tensor; v: Float64Array } {
  const n = values.length;
  if (dtype === "f32") {
    const f = Float32Array.from(values);
    return { t: dev.tensor(f, shape), v: Float64Array.from(f) };
  }
  const bits = Uint16Array.from(values, (x) => (dtype === "bf16" ? bf16Rne(x) : f16Bits(x)));
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = dtype === "bf16" ? bf16ToF32(bits[i]) : f16ToF32(bits[i]);
  return { t: dev.tensor(bits, shape, dtype), v };
}

function asF64(a: ArrayLike<number>, dtype: DT): Float64Array {
  return Float64Array.from(a as ArrayLike<number>, (x) => (dtype === "f32" ? x : dtype === "bf16" ? bf16ToF32(x) : f16ToF32(x)));
}

function rand(n: number, seed: number): Float64Array {
  const r = lcg(seed);
  return Float64Array.from({ length: n }, () => r() * 2);
}

const MM_DEVICES = TEST_DEVICES.filter((d) => device(d).info().capabilities.includes("matmul"));

describe.each(MM_DEVICES)("matmul on %s", (name) => {
  const dev = device(name);

  // Bound: f32 accumulation of K products, |error| <= K * 2^-24 * sum |x w| (loose: 16 chains of K/16 plus a
  // 4-level tree), plus the output rounding: half an ulp of x's dtype (2^-8 bf16, 2^-11 f16, 2^-24 f32).
  it.each([
    ["f32", "f32", 5, 48, 100],
    ["bf16", "bf16", 3, 40, 256],
    ["f16", "f16", 7, 33, 64],
    ["bf16", "f32", 2, 17, 129],
    ["f32", "f16", 9, 20, 31],
    ["f16", "bf16", 1, 64, 512],
  ] as const)("x %s, w %s, [%i x %i] x [%i]: within the f32 accumulation bound of float64", async (xd, wd, m, n, k) => {
    const X = make(dev, rand(m * k, m + n), [m, k], xd);
    const W = make(dev, rand(n * k, k), [n, k], wd);
    const y = matmul(X.t, W.t);
    expect([y.dtype, y.shape]).toEqual([xd, [m, n]]);
    const got = asF64((await y.read()) as ArrayLike<number>, xd);
    const ulp = xd === "f32" ? 2 ** -24 : xd === "bf16" ? 2 ** -8 : 2 ** -11;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let ref = 0, mag = 0;
        for (let kk = 0; kk < k; kk++) {
          ref += X.v[i * k + kk] * W.v[j * k + kk];
          mag += Math.abs(X.v[i * k + kk] * W.v[j * k + kk]);
        }
        const bound = k * 2 ** -24 * mag + ulp * Math.abs(ref) * 1.0001 + 1e-30;
        expect(Math.abs(got[i * n + j] - ref), `y[${i}, ${j}] = ${got[i * n + j]}, float64 ${ref}`).toBeLessThanOrEqual(bound);
      }
  });

  it.each([
    ["bf16", "bf16", 32, 15],
    ["f32", "bf16", 64, 16],
    ["bf16", "f32", 128, 15],
    ["f16", "f32", 32, 16],
  ] as const)("int4.matmul(x %s, quantize(w %s)) == matmul(x, fakeQuant(w)) bit for bit, group %i, %i levels", async (xd, wd, g, levels) => {
    const m = 5, n = 24, k = 256;
    const X = make(dev, rand(m * k, 3), [m, k], xd);
    const W = make(dev, rand(n * k, 4), [n, k], wd);
    const q = int4.quantize(W.t, { groupSize: g, levels });
    const a = int4.matmul(X.t, q);
    const fq = int4.fakeQuant(W.t, { groupSize: g, levels });
    const b = matmul(X.t, fq);
    expect(Array.from((await a.read()) as ArrayLike<number>)).toEqual(Array.from((await b.read()) as ArrayLike<number>));
  });

  it("batch invariant: row i alone == row i inside M = 3, 8, 17 (dense and int4)", async () => {
    const n = 40, k = 320;
    const W = make(dev, rand(n * k, 11), [n, k], "bf16");
    const q = int4.quantize(W.t, { groupSize: 64 });
    const xs = rand(17 * k, 12);
    const full = make(dev, xs, [17, k], "bf16");
    const yd = (await matmul(full.t, W.t).read()) as Uint16Array;
    const yq = (await int4.matmul(full.t, q).read()) as Uint16Array;
    for (const mm of [3, 8, 17])
      for (const r of [0, mm - 1]) {
        const part = make(dev, xs.slice(0, mm * k), [mm, k], "bf16");
        const alone = make(dev, xs.slice(r * k, (r + 1) * k), [1, k], "bf16");
        expect(Array.from((await matmul(alone.t, W.t).read()) as Uint16Array)).toEqual(Array.from(yd.slice(r * n, (r + 1) * n)));
        expect(Array.from(((await matmul(part.t, W.t).read()) as Uint16Array).slice(r * n, (r + 1) * n))).toEqual(Array.from(yd.slice(r * n, (r + 1) * n)));
        expect(Array.from((await int4.matmul(alone.t, q).read()) as Uint16Array)).toEqual(Array.from(yq.slice(r * n, (r + 1) * n)));
      }
  });

  it("checks its arguments at the call", () => {
    using x = dev.tensor(new Float32Array(8), [2, 4]);
    using w = dev.tensor(new Float32Array(12), [3, 4]);
    using w5 = dev.tensor(new Float32Array(15), [3, 5]);
    using i = dev.tensor(new Int32Array(12), [3, 4]);
    expect(matmul(x, w).shape).toEqual([2, 3]);
    expect(() => matmul(x, w5)).toThrow(expect.objectContaining({ code: "E_SHAPE", message: expect.stringMatching(/Expected \[M, 5\]/) }));
    expect(() => matmul(x, i)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    expect(() => matmul(i, w)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    expect(() => int4.matmul(x, w as never)).toThrow(expect.objectContaining({ code: "E_ARG" }));
  });
});

// A decode matmul (at most 4 rows of x, weights streamed in well under a millisecond) runs on the calling
// thread when the CPU stream is idle (devices/cpu/device.cc, inline_matmul_bytes), else on the stream: the
// same bits either way, for dense, int4 and fp8 weights; queued behind a top-k it waits for it, in order.
// Both are also held to calls that never run inline: int4 to the dense matmul of fakeQuant(w) (SPEC 4's
// identity; n = 300 spans several int4 work items and a ragged last one), and rows of M <= 4 to the same
// rows inside an M = 5 call.
describe.runIf(TEST_DEVICES.includes("cpu"))("decode matmul on cpu", () => {
  const dev = device("cpu");
  it("gives the same bits on the calling thread (stream idle) as queued behind other work, and as M = 5", async () => {
    const n = 300, k = 2048;
    const wv = rand(n * k, 21);
    const W = make(dev, wv, [n, k], "bf16");
    const q = int4.quantize(W.t, { groupSize: 32 });
    using fq = int4.fakeQuant(W.t, { groupSize: 32 });
    using w32 = dev.tensor(Float32Array.from(wv), [n, k]);
    const q8 = fp8.quantize(w32);
    using busy = dev.tensor(Float32Array.from({ length: 256 * 32768 }, (_, i) => Math.sin(i)), [256, 32768]);
    const x5 = make(dev, rand(5 * k, 22), [5, k], "bf16");
    const calls = [(x: Tensor) => matmul(x, W.t), (x: Tensor) => int4.matmul(x, q), (x: Tensor) => fp8.matmul(x, q8), (x: Tensor) => matmul(x, fq)];
    const five: Uint16Array[] = [];
    for (const call of calls) {
      using y = call(x5.t);
      five.push((await y.read()) as Uint16Array);
    }
    expect(Array.from(five[1])).toEqual(Array.from(five[3]));  // int4.matmul == matmul(fakeQuant) at M = 5
    await dev.sync();
    for (const m of [1, 4]) {
      using x = dev.tensor((await x5.t.read()).slice(0, m * k), [m, k], "bf16");
      await dev.sync();
      const idle: Uint16Array[] = [];
      for (const call of calls) {
        using y = call(x);
        idle.push((await y.read()) as Uint16Array);
      }
      for (const [i, call] of calls.entries()) {
        expect(Array.from(idle[i]), `call ${i}, M = ${m}, idle vs M = 5`).toEqual(Array.from(five[i].slice(0, m * n)));
        const r = topk(busy, 2048);
        using y = call(x);
        const [values, got] = await Promise.all([r.values.read(), y.read()]);
        expect(values.length).toBe(256 * 2048);
        expect(Array.from(got as Uint16Array), `call ${i}, M = ${m}, queued`).toEqual(Array.from(idle[i]));
        r.values.dispose();
        r.indices.dispose();
      }
    }
    for (const t of [W.t, x5.t, q.packed, q.scales, q8.data, q8.scaleInv]) t.dispose();
  });
});

// SPEC 4: across devices, matmul agrees within tolerance only. With bf16 x the cuda device runs tensor cores
// (devices/cuda/matmul-mma.cuh), whose sums are not the CPU's order; f16 and f32 x keep the CPU's order there
// (test/cuda-sim.test.ts checks those bits). Shapes span several 16-row m-tiles and 64-column blocks, K not a
// multiple of 16 (dense), and x with an infinity and a NaN (their outputs compared bit for bit).
describe.each(MM_DEVICES.filter((d) => d !== "cpu"))("matmul with bf16 x on %s against the cpu device", (name) => {
  const dev = device(name), cpu = device("cpu");
  it.each([
    ["bf16", 1, 70, 200],
    ["f32", 19, 65, 100],
    ["f16", 33, 9, 45],
    ["int4", 17, 130, 256],
  ] as const)("w %s [%i x %i x %i]: within the stated tolerance of cpu, and the same bits run to run", async (wd, m, n, k) => {
    const xs = rand(m * k, 31 + m), ws = rand(n * k, 32 + n);
    if (m > 2) (xs[k + 3] = Infinity), (xs[2 * k + 5] = NaN);
    const out = async (d: Device) => {
      const X = make(d, xs, [m, k], "bf16");
      const W = make(d, ws, [n, k], wd === "int4" ? "bf16" : wd);
      if (wd !== "int4") return { y: [matmul(X.t, W.t), matmul(X.t, W.t)], x: X.v, w: W.v };
      const q = int4.quantize(W.t, { groupSize: 64 });
      const w = asF64((await int4.fakeQuant(W.t, { groupSize: 64 }).read()) as Uint16Array, "bf16");
      return { y: [int4.matmul(X.t, q), int4.matmul(X.t, q)], x: X.v, w };
    };
    const [c, g] = [await out(cpu), await out(dev)];
    const want = (await c.y[0].read()) as Uint16Array;
    const [got, again] = [(await g.y[0].read()) as Uint16Array, (await g.y[1].read()) as Uint16Array];
    expect(Array.from(again)).toEqual(Array.from(got));
    const mag = magnitudes(c.x, c.w, m, n, k);
    const i = firstOutOfTolerance(got, want, mag, k);
    expect(i, i < 0 ? "" : `y[${i}]: ${name} ${bf16ToF32(got[i])}, cpu ${bf16ToF32(want[i])}`).toBe(-1);
  });
});

describe.each(TEST_DEVICES.filter((d) => !MM_DEVICES.includes(d)))("matmul on %s", (name) => {
  it("is reported as unsupported, naming the device", () => {
    using x = device(name).tensor(new Float32Array(8), [2, 4]);
    expect(() => matmul(x, x)).toThrow(expect.objectContaining({ code: "E_UNSUPPORTED", message: expect.stringMatching(new RegExp(`matmul is not implemented on device ${name}`)) }));
  });
});

// One digest over every ISA path (the written-down order is not set by the SIMD width), 1 and 2 threads,
// and a DAZ/FTZ-free default environment: subnormal and tail-of-K cases included.
describe("matmul determinism across processes (cpu)", () => {
  const code = `
    import { openDevice, int4, matmul } from "./dist/esm/index.js";
    import { createHash } from "node:crypto";
    const dev = openDevice("cpu");
    let s = 9;
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    const f32 = (n, sub) => new Float32Array(new Uint32Array(n).map(() => ((next() & 0x80000000) | ((sub && next() % 4 === 0 ? 0 : 100 + (next() >>> 8) % 50) << 23) | (next() >>> 9)) >>> 0).buffer);
    const h = createHash("sha256");
    for (const [m, n, k] of [[1, 33, 4096], [5, 16, 100], [17, 24, 256], [64, 8, 37]]) {
      const x = dev.tensor(f32(m * k, true), [m, k]);
      const w = dev.tensor(f32(n * k, true), [n, k]);
      h.update(new Uint8Array((await matmul(x, w).read()).buffer));
      if (k % 32 === 0) {
        const q = int4.quantize(w, { groupSize: 32 });
        h.update(new Uint8Array((await int4.matmul(x, q).read()).buffer));
        // bf16 x (the VDPBF16PS kernel where nothing can be subnormal): the values' top halves, and
        // the same scaled down by 2^-100 (the fma kernel then)
        const xb = new Uint16Array(new Uint32Array((await x.read()).buffer).map((b) => b >>> 16));
        h.update(new Uint8Array((await int4.matmul(dev.tensor(xb, [m, k], "bf16"), q).read()).buffer));
        const tiny = xb.map((b) => ((b & 0x7f80) >= 0x3300 ? b - 0x3200 : b));
        h.update(new Uint8Array((await int4.matmul(dev.tensor(tiny, [m, k], "bf16"), q).read()).buffer));
      }
    }
    console.log(h.digest("hex"));`;
  it("every GLM_KERNELS_ISA path and 1 vs 2 threads give one digest", () => {
    expect(new Set(outputsUnder(code, [...CPU_SETTINGS, { GLM_KERNELS_THREADS: "2" }])).size).toBe(1);
  });
});

describe("NaN in an f32 matmul (cpu)", () => {
  it("a sum that meets two different NaNs gives the canonical NaN on every ISA path", () => {
    // x holds the NaN 0xFFC00123 at [0, 1], w a default NaN at [4, 40]: libm's fma (the scalar path) and the
    // SIMD paths carry different ones; the output is 0x7FC00000 whichever
    const code = `
      import { openDevice, matmul, fp8 } from "./dist/esm/index.js";
      const dev = openDevice("cpu");
      const x = new Float32Array(3 * 64).fill(1); new Uint32Array(x.buffer)[1] = 0xffc00123;
      const w = new Float32Array(5 * 64).fill(1); w[4 * 64 + 40] = NaN;
      const y = new Uint32Array((await matmul(dev.tensor(x, [3, 64]), dev.tensor(w, [5, 64])).read()).buffer);
      const xb = new Uint16Array(128).fill(0x3f80); xb[3] = 0xffc1;
      const q = fp8.quantize(dev.tensor(Float32Array.from({ length: 2 * 128 }, (_, i) => i), [2, 128]));
      const z = new Uint32Array((await fp8.matmul(dev.tensor(xb, [1, 128], "bf16"), q, { dtype: "f32" }).read()).buffer);
      console.log([y[4], y[0], z[0], z[1]].map((v) => v.toString(16)).join(" "));`;
    const outs = outputsUnder(code, CPU_SETTINGS);
    expect(new Set(outs).size).toBe(1);
    expect(outs[0]).toBe("7fc00000 7fc00000 7fc00000 7fc00000");
  });
});
