// E4M3FN and fp8 block quantization (SPEC 5) bit for bit against the plain TypeScript reference and against
// ml_dtypes (test/fixtures/e4m3.json, made by scripts/fixtures/make-fixtures.py).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fp8, type Device } from "../dist/esm/index.js";
import { CPU_SETTINGS, ROOT, outputsUnder } from "./helpers/child.js";
import { dazLibrary } from "./helpers/daz.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { bf16Rne, bf16ToF32, bitsToF32, f32ToBits } from "./reference/int4-ref.js";
import { e4m3Encode, e4m3Value, f16Rne, fp8DequantizeRef, fp8QuantizeRef } from "./reference/fp8-ref.js";

const fx = JSON.parse(readFileSync(join(ROOT, "test/fixtures/e4m3.json"), "utf8")) as { decodedBits: (number | null)[]; probeBits: number[]; encoded: number[] };
const FP8_DEVICES = TEST_DEVICES.filter((d) => device(d).info().capabilities.includes("fp8.quantize"));

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

function f16ToF32(h: number): number {
  const e = (h >> 10) & 31, m = h & 1023, sg = h & 0x8000 ? -1 : 1;
  if (e === 31) return m ? NaN : sg * Infinity;
  return e === 0 ? sg * m * 2 ** -24 : sg * (1 + m / 1024) * 2 ** (e - 15);
}

// Weights of dtype from f32 values; returns the tensor and the values it holds.
function weights(dev: Device, v: Float32Array, shape: number[], dtype: "bf16" | "f16" | "f32") {
  if (dtype === "f32") return { t: dev.tensor(v, shape), w: v };
  const bits = Uint16Array.from(v, (x) => (dtype === "bf16" ? bf16Rne(x) : f16Rne(x)));
  return { t: dev.tensor(bits, shape, dtype), w: Float32Array.from(bits, (b) => (dtype === "bf16" ? bf16ToF32(b) : f16ToF32(b))) };
}

describe("the TypeScript reference itself", () => {
  it("decodes like ml_dtypes (all 256 codes) and encodes like ml_dtypes at every rounding boundary", () => {
    for (let c = 0; c < 256; c++) {
      const want = fx.decodedBits[c];
      if (want === null) expect(Number.isNaN(e4m3Value(c))).toBe(true);
      else expect(f32ToBits(e4m3Value(c)), `code ${c}`).toBe(want >>> 0);
    }
    fx.probeBits.forEach((b, i) => expect(e4m3Encode(bitsToF32(b)), `0x${(b >>> 0).toString(16)}`).toBe(fx.encoded[i]));
    // SPEC 5's own rules, where ml_dtypes (non-saturating) says otherwise
    expect([e4m3Encode(449), e4m3Encode(464), e4m3Encode(1e30), e4m3Encode(Infinity), e4m3Encode(-Infinity)]).toEqual([0x7e, 0x7e, 0x7e, 0x7e, 0xfe]);
    expect([e4m3Encode(NaN), e4m3Encode(-0), e4m3Encode(0)]).toEqual([0x7f, 0x80, 0x00]);
  });
});

describe.each(FP8_DEVICES)("fp8 on %s", (name) => {
  const dev = device(name);

  it("decodes all 256 codes exactly (as ml_dtypes), NaN canonical", async () => {
    const data = dev.tensor(Uint8Array.from({ length: 256 }, (_, i) => i), [1, 256], "f8e4m3");
    const scaleInv = dev.tensor(new Float32Array([1, 1]), [1, 2]);
    const out = new Uint32Array(((await fp8.dequantize({ data, scaleInv, block: [1, 128] }, "f32").read()) as Float32Array).buffer);
    expect(Array.from(out)).toEqual(fx.decodedBits.map((b) => (b === null ? 0x7fc00000 : b >>> 0)));
  });

  it("encodes every rounding boundary as ml_dtypes (midpoints and one ulp either side), and saturates at the top", async () => {
    // scaleInv = 1: a 448 in every block; then data = e4m3(w) exactly
    const probes = fx.probeBits.map((b) => bitsToF32(b));
    const per = 127;
    const rows = Math.ceil(probes.length / per);
    const v = new Float32Array(rows * 128);
    for (let r = 0; r < rows; r++) {
      v[r * 128] = 448;
      for (let j = 0; j < per && r * per + j < probes.length; j++) v[r * 128 + 1 + j] = probes[r * per + j];
    }
    const q = fp8.quantize(dev.tensor(v, [rows, 128]), { block: [1, 128] });
    expect(Array.from((await q.scaleInv.read()) as Float32Array).every((s) => s === 1)).toBe(true);
    const codes = (await q.data.read()) as Uint8Array;
    const got = probes.map((_, i) => codes[Math.floor(i / per) * 128 + 1 + (i % per)]);
    expect(got).toEqual(fx.encoded);
    // a block whose amax / 448 rounds down: its max quotient is above 448 and must give 448, not NaN
    let amax = 448;
    for (let t = 1; t < 5000; t++) {
      const a = bitsToF32(0x43e00000 + t * 977);
      if (a / Math.fround(a / 448) > 448) {
        amax = a;
        break;
      }
    }
    expect(amax).not.toBe(448);
    const top = fp8.quantize(dev.tensor(Float32Array.from([amax, -amax, 1]), [1, 3]), { block: [1, 128] });
    expect(Array.from((await top.data.read()) as Uint8Array).slice(0, 2)).toEqual([0x7e, 0xfe]);
  });

  it.each([
    ["f32", [2, 200, 300], [128, 128]],
    ["bf16", [3, 130, 257], [1, 128]],
    ["f16", [1, 128, 128], [128, 128]],
    ["bf16", [4, 7, 129], [128, 128]],
  ] as const)("quantize and dequantize %s %j, blocks %j: every bit as the reference (partial edge blocks)", async (dtype, shape, block) => {
    const [batch, n, k] = shape;
    const next = lcg(n * k + block[0]);
    // values over many block-level magnitudes, a few tiny blocks (the 1e-4 floor), specials sprinkled
    const v = Float32Array.from({ length: batch * n * k }, (_, i) => {
      const u = next() / 2 ** 32 - 0.5;
      const mag = 2 ** (((Math.floor(i / 97) % 23) - 11) * 1.5);
      return i % 1009 === 5 ? [0, -0, 1e-9, 65504, -3e4][i % 5] : u * mag;
    });
    const { t, w } = weights(dev, v, [...shape], dtype);
    const q = fp8.quantize(t, { block: [...block] as [number, number] });
    const ref = fp8QuantizeRef(w, batch, n, k, block[0], block[1]);
    expect(q.data.shape).toEqual([...shape]);
    expect(q.scaleInv.shape).toEqual([batch, Math.ceil(n / block[0]), Math.ceil(k / block[1])]);
    expect(Array.from(new Uint32Array(((await q.scaleInv.read()) as Float32Array).buffer))).toEqual(Array.from(ref.scaleInv, (s) => f32ToBits(s)));
    expect(Array.from((await q.data.read()) as Uint8Array)).toEqual(Array.from(ref.data));
    const deq = fp8DequantizeRef(ref, batch, n, k, block[0], block[1]);
    expect(Array.from(new Uint32Array(((await fp8.dequantize(q, "f32").read()) as Float32Array).buffer))).toEqual(Array.from(deq.f32Bits));
    expect(Array.from((await fp8.dequantize(q).read()) as Uint16Array)).toEqual(Array.from(deq.bf16));
    expect(Array.from((await fp8.dequantize(q, "f16").read()) as Uint16Array)).toEqual(Array.from(deq.f16));
  });

  it("NaN and infinity poison their block (NaN scale or infinite scale); the floor applies to tiny blocks", async () => {
    const v = new Float32Array(4 * 128);
    v[0] = NaN; // block 0: NaN scale, every code 0x7F
    v[128] = Infinity; // block 1: infinite scale
    v[129] = 2;
    for (let i = 256; i < 384; i++) v[i] = 1e-7 * (i - 300); // block 2: amax below 1e-4
    v[384] = 448; // block 3: scale 1
    const q = fp8.quantize(dev.tensor(v, [4, 128]), { block: [1, 128] });
    const s = (await q.scaleInv.read()) as Float32Array;
    expect(Number.isNaN(s[0])).toBe(true);
    expect(new Uint32Array(s.buffer)[0]).toBe(0x7fc00000);
    expect(s[1]).toBe(Infinity);
    expect(s[2]).toBe(Math.fround(Math.fround(1e-4) / 448));
    expect(s[3]).toBe(1);
    const d = (await q.data.read()) as Uint8Array;
    expect(d.slice(0, 128).every((c) => c === 0x7f)).toBe(true);
    expect([d[128], d[129], d[130]]).toEqual([0x7f, 0x00, 0x00]); // inf/inf NaN; 2/inf +0
  });

  it("checks its arguments", () => {
    using w = dev.tensor(new Float32Array(8), [2, 4]);
    using i = dev.tensor(new Int32Array(8), [2, 4]);
    using one = dev.tensor(new Float32Array(4), [4]);
    expect(() => fp8.quantize(i)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    expect(() => fp8.quantize(one)).toThrow(expect.objectContaining({ code: "E_SHAPE" }));
    expect(() => fp8.quantize(w, { block: [0, 128] })).toThrow(expect.objectContaining({ code: "E_ARG" }));
    expect(() => fp8.quantize(w, { blocks: [1, 1] } as never)).toThrow(expect.objectContaining({ code: "E_ARG" }));
    const q = fp8.quantize(w);
    expect(() => fp8.dequantize(q, "i32" as never)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
    expect(() => fp8.dequantize({ ...q, block: [1, 128] })).toThrow(expect.objectContaining({ code: "E_SHAPE" }));
    expect(() => fp8.dequantize({ data: w, scaleInv: q.scaleInv } as never)).toThrow(expect.objectContaining({ code: "E_DTYPE" }));
  });
});

describe.each(TEST_DEVICES.filter((d) => !FP8_DEVICES.includes(d)))("fp8 on %s", (name) => {
  it("is reported as unsupported, naming the device", () => {
    using w = device(name).tensor(new Float32Array(8), [2, 4]);
    expect(() => fp8.quantize(w)).toThrow(expect.objectContaining({ code: "E_UNSUPPORTED", message: expect.stringMatching(new RegExp(`fp8.quantize is not implemented on device ${name}`)) }));
  });
});

// One digest over 1 and 2 threads, every ISA setting and a DAZ/FTZ process (the quantizer runs under the
// default FP environment), and each leading-dim entry alone == the same entry inside the batch.
describe("fp8 determinism (cpu)", () => {
  it("threads, ISA settings and a DAZ/FTZ process give one digest; an entry alone == inside the batch", async () => {
    const daz = dazLibrary();
    const code = `
      import { openDevice, fp8 } from "./dist/esm/index.js";
      import { createHash } from "node:crypto";
      const dev = openDevice("cpu");
      let s = 3;
      const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
      // raw bits with exponents down into the subnormals (DAZ would flush them)
      const bits = new Uint32Array(4 * 130 * 200).map(() => ((next() & 0x80000000) | (((next() >>> 8) % 140) << 23) | (next() >>> 9)) >>> 0);
      const h = createHash("sha256");
      for (const block of [[128, 128], [1, 128]]) {
        const q = fp8.quantize(dev.tensor(new Float32Array(bits.buffer), [4, 130, 200]), { block });
        h.update(await q.data.read()); h.update(new Uint8Array((await q.scaleInv.read()).buffer));
        h.update(new Uint8Array((await fp8.dequantize(q, "f32").read()).buffer));
      }
      console.log(h.digest("hex"));`;
    expect(new Set(outputsUnder(code, [...CPU_SETTINGS, { GLM_KERNELS_THREADS: "2" }, { LD_PRELOAD: daz }])).size).toBe(1);
    // batch invariance
    const dev = device("cpu");
    const v = Float32Array.from({ length: 5 * 70 * 140 }, (_, i) => Math.sin(i * 0.13) * 2 ** ((i % 17) - 8));
    const all = fp8.quantize(dev.tensor(v, [5, 70, 140]));
    const data = (await all.data.read()) as Uint8Array;
    const sc = (await all.scaleInv.read()) as Float32Array;
    for (const e of [0, 3, 4]) {
      const one = fp8.quantize(dev.tensor(v.slice(e * 9800, (e + 1) * 9800), [1, 70, 140]));
      expect(Array.from((await one.data.read()) as Uint8Array)).toEqual(Array.from(data.slice(e * 9800, (e + 1) * 9800)));
      expect(Array.from((await one.scaleInv.read()) as Float32Array)).toEqual(Array.from(sc.slice(e * 2, (e + 1) * 2)));
    }
  });
});
