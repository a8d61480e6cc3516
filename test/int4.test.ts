// int4.quantize / dequantize / fakeQuant / fakeQuantGrad (SPEC 4) against the plain TypeScript reference,
// bit for bit: random, adversarial and real-shaped weights, both grids, every group size, bf16 and f32.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { int4, type Device } from "../dist/esm/index.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { CPU_SETTINGS, ROOT, outputsUnder } from "./helpers/child.js";
import { dazLibrary } from "./helpers/daz.js";
import { bf16Rne, bf16ToF32, bitsToF32, dequantizeRef, quantizeRef } from "./reference/int4-ref.js";

// A fixed LCG, so that a failure reproduces.
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

// Weights as f32 values, plus their tensor in `dtype` (bf16 weights: the values are bf16-rounded first).
function weights(dev: Device, values: Float32Array, n: number, k: number, dtype: "bf16" | "f32") {
  if (dtype === "f32") return { t: dev.tensor(values, [n, k]), w: values };
  const bits = new Uint16Array(values.length);
  const w = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    bits[i] = bf16Rne(values[i]);
    w[i] = bf16ToF32(bits[i]);
  }
  return { t: dev.tensor(bits, [n, k], "bf16"), w };
}

function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const r = lcg(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Mostly normal-ish values, with group-level scale changes and a few outliers.
    const u = r() + r() + r() - 1.5;
    v[i] = u * scale * (i % 97 === 0 ? 9 : 1) * 2 ** Math.floor(((i >> 5) % 7) - 3);
  }
  return v;
}

function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): string | null {
  if (a.length !== b.length) return `lengths ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `at ${i}: ${a[i]} != ${b[i]}`;
  return null;
}

async function checkAgainstRef(dev: Device, values: Float32Array, n: number, k: number, dtype: "bf16" | "f32", groupSize: number, levels: 15 | 16) {
  const { t, w } = weights(dev, values, n, k, dtype);
  const ref = quantizeRef(w, n, k, groupSize, levels);
  const q = int4.quantize(t, { groupSize, levels });
  expect(q.shape).toEqual([n, k]);
  expect([q.groupSize, q.levels]).toEqual([groupSize, levels]);
  expect(firstMismatch((await q.scales.read()) as Uint16Array, ref.scales)).toBeNull();
  expect(firstMismatch((await q.packed.read()) as Int32Array, ref.packed)).toBeNull();
  const deq = int4.dequantize(q);
  const refDeq = dequantizeRef(ref.codes, ref.scales, n, k, groupSize);
  expect(deq.dtype).toBe("bf16");
  expect(firstMismatch((await deq.read()) as Uint16Array, refDeq)).toBeNull();
  const fq = int4.fakeQuant(t, { groupSize, levels });
  expect(fq.dtype).toBe(dtype);
  const fqBits = await fq.read();
  if (dtype === "bf16") expect(firstMismatch(fqBits as Uint16Array, refDeq)).toBeNull();
  else expect(firstMismatch(new Uint32Array((fqBits as Float32Array).buffer), Uint32Array.from(refDeq, (h) => h << 16))).toBeNull();
  for (const x of [t, q.packed, q.scales, deq, fq]) x.dispose();
  return ref;
}

const QUANT_DEVICES = TEST_DEVICES.filter((d) => device(d).info().capabilities.includes("int4.quantize"));

describe.each(QUANT_DEVICES)("int4 quantizer on %s", (name) => {
  const dev = device(name);

  it.each([
    ["bf16", 32, 15],
    ["bf16", 64, 16],
    ["bf16", 128, 15],
    ["f32", 32, 16],
    ["f32", 64, 15],
    ["f32", 128, 16],
  ] as const)("random %s weights, group %i, %i levels: every bit as the reference", async (dtype, groupSize, levels) => {
    await checkAgainstRef(dev, randomValues(37 * 256, groupSize + levels), 37, 256, dtype, groupSize, levels);
  });

  it("real-shaped 6144 x 2048 bf16, group 32 and 128, both grids", async () => {
    const values = randomValues(6144 * 2048, 7, 0.02);
    for (const [g, l] of [[32, 15], [128, 16]] as const) await checkAgainstRef(dev, values, 6144, 2048, "bf16", g, l);
  });

  it("adversarial groups: zeros, exact .5 quotients, amax on a bf16 tie, subnormals, huge, NaN and inf", async () => {
    const G = 32;
    const groups: number[][] = [];
    const fill = (xs: number[]) => groups.push([...xs, ...Array(G - xs.length).fill(0)].slice(0, G));
    fill([]); // all zeros: s = 0, every code 0, dequantized +0
    fill([-0, -0, -0]); // negative zeros: amax 0
    fill([7, 0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 6.5, -6.5]); // s = 1 exactly: ties to even
    fill([7.5, -7.5, 0.5, 6.5, -6.5, 3.5, -7]); // levels 16: s = 1; 7.5 -> 8 clamped to 7, -7.5 -> -8 kept
    fill([-7.5, 7.25, 1]); // negative amax
    // amax / 7 exactly halfway between two bf16 values (low half of the f32 bits 0x8000): ties to even
    fill([bitsToF32(0x3f808000) * 7, bitsToF32(0x3f818000) * 7, 1]);
    fill([bitsToF32(1), bitsToF32(0x80000001), bitsToF32(0x007fffff), -bitsToF32(3)]); // subnormals
    fill([bitsToF32(0x00000001), 0]); // amax / 7 underflows to 0: s = 0, codes 0
    fill([3.4e38, -1e38, 1e30, 1]); // huge
    fill([1, NaN, 2]); // a NaN poisons its group
    fill([1, Infinity, -3]); // so does an infinity
    fill([-Infinity, 1]);
    const values = Float32Array.from(groups.flat().map((x) => Math.fround(x)));
    const n = groups.length / 2; // 2 groups per row
    for (const levels of [15, 16] as const)
      for (const dtype of ["f32", "bf16"] as const) {
        const ref = await checkAgainstRef(dev, values, n, 2 * G, dtype, G, levels);
        if (dtype === "f32") {
          // spot checks of the reference itself (SPEC 4's words), so that it cannot share a mistake silently
          expect(ref.scales[0]).toBe(0); // all zeros: s = 0
          expect(ref.scales[9]).toBe(0x7fc0); // the NaN group
          expect(ref.scales[10]).toBe(0x7f80); // the inf group
          if (levels === 15) expect(Array.from(ref.codes.slice(2 * G, 2 * G + 11))).toEqual([7, 0, 2, 2, 4, 0, -2, -2, -4, 6, -6]);
          else {
            expect(Array.from(ref.codes.slice(3 * G, 3 * G + 7))).toEqual([7, -8, 0, 6, -6, 4, -7]);
            expect([ref.clamped[3 * G], ref.clamped[3 * G + 1]]).toEqual([1, 0]);
          }
        }
      }
  });

  it("fakeQuantGrad: straight through, or zero where the code was clamped", async () => {
    const G = 32;
    const values = new Float32Array(2 * G);
    values.set([7.5, -7.5, 3, 7.49, 7.5]); // group of row 0 (levels 16: s = 1; 7.5 -> clamped)
    values.set([1, -2, 0.25], G);
    const grad = Float32Array.from({ length: 2 * G }, (_, i) => i + 1);
    const w = dev.tensor(values, [1, 2 * G]);
    const g = dev.tensor(grad, [1, 2 * G]);
    const gb = dev.tensor(Uint16Array.from(grad, (x) => bf16Rne(x)), [1, 2 * G], "bf16");
    const ste = int4.fakeQuantGrad(w, g, { levels: 16 });
    expect(Array.from((await ste.read()) as Float32Array)).toEqual(Array.from(grad));
    const clipped = int4.fakeQuantGrad(w, g, { levels: 16, clip: true });
    const ref = quantizeRef(values, 1, 2 * G, G, 16);
    const want = Array.from(grad, (x, i) => (ref.clamped[i] ? 0 : x));
    expect(want[0]).toBe(0);
    expect(want[4]).toBe(0);
    expect(Array.from((await clipped.read()) as Float32Array)).toEqual(want);
    const clippedBf16 = int4.fakeQuantGrad(w, gb, { levels: 16, clip: true });
    expect(clippedBf16.dtype).toBe("bf16");
    expect(Array.from((await clippedBf16.read()) as Uint16Array)).toEqual(want.map((x) => bf16Rne(x)));
    const none = int4.fakeQuantGrad(w, g, { levels: 15, clip: true }); // 15 levels never clamp amax
    expect(Array.from((await none.read()) as Float32Array)).toEqual(Array.from(grad));
    for (const x of [w, g, gb, ste, clipped, clippedBf16, none]) x.dispose();
  });

  it("a row alone quantizes as inside a batch, and repeated runs agree", async () => {
    const n = 24, k = 512;
    const values = randomValues(n * k, 99);
    const all = int4.quantize(dev.tensor(values, [n, k]), { groupSize: 64 });
    const allPacked = (await all.packed.read()) as Int32Array;
    for (const r of [0, 7, 23]) {
      const one = int4.quantize(dev.tensor(values.slice(r * k, (r + 1) * k), [1, k]), { groupSize: 64 });
      expect(Array.from((await one.packed.read()) as Int32Array)).toEqual(Array.from(allPacked.slice((r * k) / 8, ((r + 1) * k) / 8)));
    }
    const again = int4.quantize(dev.tensor(values, [n, k]), { groupSize: 64 });
    expect(Array.from((await again.packed.read()) as Int32Array)).toEqual(Array.from(allPacked));
  });

  it("checks its arguments (E_DTYPE, E_SHAPE, E_ARG) at the call", () => {
    using w = dev.tensor(new Float32Array(64), [2, 32]);
    using odd = dev.tensor(new Float32Array(2 * 40), [2, 40]);
    using i32 = dev.tensor(new Int32Array(64), [2, 32]);
    expect(() => int4.quantize(i32)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    expect(() => int4.quantize(odd)).toThrow(expect.objectContaining({ code: "E_SHAPE", message: expect.stringMatching(/multiple of groupSize 32 but received 40/) }));
    expect(() => int4.quantize(w, { groupSize: 16 })).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/groupSize .* received 16/) }));
    expect(() => int4.quantize(w, { levels: 8 })).toThrow(expect.objectContaining({ code: "E_ARG" }));
    expect(() => int4.quantize(w, { group: 32 } as never)).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/unknown option "group"/) }));
    expect(() => int4.dequantize({ packed: w } as never)).toThrow(expect.objectContaining({ code: "E_ARG" }));
    expect(() => int4.fakeQuantGrad(w, odd)).toThrow(expect.objectContaining({ code: "E_SHAPE" }));
    expect(() => int4.fakeQuantGrad(w, w, { clip: 1 } as never)).toThrow(expect.objectContaining({ code: "E_ARG" }));
    const q = int4.quantize(w);
    expect(() => int4.dequantize({ ...q, shape: [2, 64] })).toThrow(expect.objectContaining({ code: "E_SHAPE" }));
    q.packed.dispose();
    expect(() => int4.dequantize(q)).toThrow(expect.objectContaining({ code: "E_DISPOSED" }));
    q.scales.dispose();
  });
});

describe.each(TEST_DEVICES.filter((d) => !QUANT_DEVICES.includes(d)))("int4 quantizer on %s", (name) => {
  it("is reported as unsupported, naming the device", () => {
    using w = device(name).tensor(new Float32Array(64), [2, 32]);
    expect(() => int4.quantize(w)).toThrow(expect.objectContaining({ code: "E_UNSUPPORTED", message: expect.stringMatching(new RegExp(`int4.quantize is not implemented on device ${name}`)) }));
  });
});

// The same bits with 1 and 2 threads, on every ISA setting, and in a process whose threads run with
// MXCSR.DAZ and FTZ set (the quantizer uses the default FP environment whatever the host's): digests from
// child processes. Weights are made as raw bits, so that the child's own FP settings cannot change them.
describe("int4 quantizer determinism across processes (cpu)", () => {
  const daz = dazLibrary();
  const code = `
    import { openDevice, int4 } from "./dist/esm/index.js";
    import { createHash } from "node:crypto";
    const dev = openDevice("cpu");
    let s = 5;
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    // sign, an exponent from 0 (subnormal) to 140, a random mantissa
    const bits = new Uint32Array(96 * 512).map(() => ((next() & 0x80000000) | (((next() >>> 8) % 141) << 23) | (next() >>> 9)) >>> 0);
    const v = new Float32Array(bits.buffer);
    const h = createHash("sha256");
    for (const [g, l] of [[32, 15], [128, 16]]) {
      const q = int4.quantize(dev.tensor(v, [96, 512]), { groupSize: g, levels: l });
      h.update(new Uint8Array((await q.packed.read()).buffer)); h.update(new Uint8Array((await q.scales.read()).buffer));
      h.update(new Uint8Array((await int4.dequantize(q).read()).buffer));
    }
    console.log(h.digest("hex"));`;
  it("1 vs 2 threads, every ISA setting and a DAZ/FTZ process give one digest (subnormal-heavy weights)", () => {
    const digests = new Set(outputsUnder(code, [...CPU_SETTINGS, { GLM_KERNELS_THREADS: "2" }, { LD_PRELOAD: daz }]));
    expect(digests.size).toBe(1);
    expect([...digests][0]).toMatch(/^[0-9a-f]{64}$/);
  });
});

// The scales against numpy's f32 division and ml_dtypes' bf16 rounding (test/fixtures/int4-scales.json,
// made by scripts/fixtures/make-fixtures.py): amax values around bf16 ties, subnormal, huge, random.
describe.each(QUANT_DEVICES)("int4 scales on %s against numpy + ml_dtypes", (name) => {
  it("bf16(amax / 7) and bf16(amax / 7.5), every bit", async () => {
    const fx = JSON.parse(readFileSync(join(ROOT, "test/fixtures/int4-scales.json"), "utf8")) as { amaxBits: number[]; scale15: number[]; scale16: number[] };
    const n = fx.amaxBits.length;
    const bits = new Uint32Array(n * 32);
    fx.amaxBits.forEach((b, r) => (bits[r * 32 + (r % 32)] = b)); // one weight per group carries the amax
    const w = device(name).tensor(new Float32Array(bits.buffer), [n, 32]);
    for (const [levels, want] of [[15, fx.scale15], [16, fx.scale16]] as const) {
      const q = int4.quantize(w, { levels, groupSize: 32 });
      expect(Array.from((await q.scales.read()) as Uint16Array)).toEqual(want);
    }
  });
});
