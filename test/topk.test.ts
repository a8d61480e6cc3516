// top-k (SPEC 3) against the plain TypeScript reference, on every device in GLM_KERNELS_TEST_DEVICES.
import { describe, expect, it } from "vitest";
import { GlmKernelsError, topk, toBf16, toF16, type Device } from "glm-kernels";
import { makeInput, type TopkCase } from "../dist/esm/verify/cases.js";
import { runTopk } from "../dist/esm/verify/checks.js";
import { Prng } from "../dist/esm/verify/prng.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { firstMismatch, topkRef } from "./reference/topk-ref.js";

async function expectMatchesReference(dev: Device, c: TopkCase) {
  const input = makeInput(c);
  const got = await runTopk(dev, c, input);
  const want = topkRef(input, c.rows, c.cols, c.k);
  expect(firstMismatch(got, want, c.k), c.name).toBeNull();
}

const CASES: TopkCase[] = [];
let seed = 100;
for (const dtype of ["f32", "bf16", "f16"] as const) {
  for (const gen of ["uniform", "ties", "special"] as const) {
    CASES.push({ name: `${dtype}-${gen}-6x40000-k2048`, dtype, rows: 6, cols: 40000, k: 2048, gen, seed: seed++ });
    CASES.push({ name: `${dtype}-${gen}-5x3333-k777`, dtype, rows: 5, cols: 3333, k: 777, gen, seed: seed++ });
    CASES.push({ name: `${dtype}-${gen}-ragged-9x17001-k2048`, dtype, rows: 9, cols: 17001, k: 2048, gen, seed: seed++, ragged: true });
  }
}
CASES.push(
  { name: "f32-uniform-2x300000-k2048 (split rows)", dtype: "f32", rows: 2, cols: 300000, k: 2048, gen: "uniform", seed: 200 },
  { name: "f32-ties-1x140000-k2048 (split, ties)", dtype: "f32", rows: 1, cols: 140000, k: 2048, gen: "ties", seed: 201 },
  { name: "f32-uniform-3x1000-k1", dtype: "f32", rows: 3, cols: 1000, k: 1, gen: "uniform", seed: 202 },
  { name: "f32-uniform-3x999-k999 (k = cols)", dtype: "f32", rows: 3, cols: 999, k: 999, gen: "uniform", seed: 203 },
  { name: "f32-uniform-7x1-k1", dtype: "f32", rows: 7, cols: 1, k: 1, gen: "uniform", seed: 204 },
  { name: "f32-uniform-4x2047-k2048? no: 4x2049-k2048", dtype: "f32", rows: 4, cols: 2049, k: 2048, gen: "uniform", seed: 205 },
  { name: "f32-constant-3x50000-k2048 (all tied)", dtype: "f32", rows: 3, cols: 50000, k: 2048, gen: "constant", seed: 206 },
  { name: "f16-special-4x65536-k512", dtype: "f16", rows: 4, cols: 65536, k: 512, gen: "special", seed: 207 },
  { name: "bf16-ties-3x131072-k1024", dtype: "bf16", rows: 3, cols: 131072, k: 1024, gen: "ties", seed: 208 },
  { name: "f32-uniform-2x12000-k5000 (large k)", dtype: "f32", rows: 2, cols: 12000, k: 5000, gen: "uniform", seed: 209 },
  { name: "bf16-ties-1x50000-k5000 (long row, large k)", dtype: "bf16", rows: 1, cols: 50000, k: 5000, gen: "ties", seed: 210 },
  { name: "f32-uniform-2x20000-k9000 (k > 8192)", dtype: "f32", rows: 2, cols: 20000, k: 9000, gen: "uniform", seed: 211 },
  { name: "f16-ties-1x100000-k9000 (long row, k > 8192)", dtype: "f16", rows: 1, cols: 100000, k: 9000, gen: "ties", seed: 212 },
  { name: "f32-constant-200x9000-k1000 (many tied rows)", dtype: "f32", rows: 200, cols: 9000, k: 1000, gen: "constant", seed: 213 },
  { name: "f32-constant-1x70000-k2048 (split, all tied)", dtype: "f32", rows: 1, cols: 70000, k: 2048, gen: "constant", seed: 214 },
  { name: "f32-uniform-1x65536-k16 (split, small k)", dtype: "f32", rows: 1, cols: 65536, k: 16, gen: "uniform", seed: 215 },
  { name: "bf16-special-2x100000-k2048 (split, specials)", dtype: "bf16", rows: 2, cols: 100000, k: 2048, gen: "special", seed: 216 },
  { name: "f32-ties-1x65536-k4096 (split, ties, k past the halves)", dtype: "f32", rows: 1, cols: 65536, k: 4096, gen: "ties", seed: 217 },
);

describe.each(TEST_DEVICES)("topk on %s", (name) => {
  const dev = device(name);

  it.each(CASES.map((c) => [c.name, c] as const))("matches the reference: %s", async (_n, c) => {
    await expectMatchesReference(dev, c);
  });

  it("orders NaN (any sign, payload) above +inf, -0 == +0, ties by ascending index", async () => {
    const bits = new Uint32Array([0x3f800000, 0xffc00001, 0x80000000, 0x7f800000, 0x00000000, 0x7f800001, 0xff800000, 0x3f800000]);
    using s = dev.tensor(new Float32Array(bits.buffer), [1, 8]);
    const r = topk(s, 8);
    const idx = Array.from((await r.indices.read()) as Int32Array);
    const val = new Uint32Array(((await r.values.read()) as Float32Array).buffer);
    expect(idx).toEqual([1, 5, 3, 0, 7, 2, 4, 6]);
    expect(Array.from(val)).toEqual([0x7fc00000, 0x7fc00000, 0x7f800000, 0x3f800000, 0x3f800000, 0x80000000, 0, 0xff800000]);
  });

  it("orders survivors bunched far below one outlier (many small unordered buckets)", async () => {
    // One huge score stretches the survivors' key range, so the first bucketing puts about a dozen
    // survivors in each bucket: the pass that finishes the order must sort every one of them.
    const [rows, cols, k] = [2, 40000, 2048];
    const p = new Prng(37);
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = (p.next() / 2 ** 32) * 2 - 1;
    data[123] = 1e30;
    data[cols + 39000] = 3e38;
    const input = { data, dtype: "f32" as const };
    const got = await runTopk(dev, { name: "outlier", dtype: "f32", rows, cols, k, gen: "uniform", seed: 0 }, input);
    expect(firstMismatch(got, topkRef(input, rows, cols, k), k)).toBeNull();
  });

  it.each(["f32", "bf16", "f16"] as const)("keeps the sign of each zero among many outputs (%s)", async (dtype) => {
    // Zeros of both signs are the largest scores of 3 rows; k = 96 puts them in full 16-output steps.
    const [rows, cols, k] = [3, 200, 96];
    const p = new Prng(31);
    const bits = new Uint32Array(rows * cols);
    for (let i = 0; i < bits.length; i++) {
      const j = p.next() % 3;
      bits[i] = j === 0 ? 0 : j === 1 ? 0x80000000 : 0xbf800000 + (p.next() % 1000);
    }
    const data =
      dtype === "f32"
        ? new Float32Array(bits.buffer)
        : Uint16Array.from(bits, (b) => (dtype === "bf16" ? b >>> 16 : b === 0 ? 0 : b === 0x80000000 ? 0x8000 : 0xbc00));
    const input = { data, dtype };
    const got = await runTopk(dev, { name: "zeros", dtype, rows, cols, k, gen: "uniform", seed: 0 }, input);
    expect(firstMismatch(got, topkRef(input, rows, cols, k), k)).toBeNull();
    expect(new Set(new Uint32Array(got.values.buffer)).has(0x80000000)).toBe(true);
  });

  it("sorts keys that differ only in their low bits, beside a NaN outlier (ascending scores)", async () => {
    // 3000 consecutive f32 bit patterns above 1.0 (increasing with the index) and one NaN: the output is
    // the reverse index order, which no near-sorted shortcut may get wrong.
    const bits = new Uint32Array(3001);
    for (let i = 0; i < 3000; i++) bits[i] = 0x3f800000 + i;
    bits[3000] = 0x7fc00000;
    using s = dev.tensor(new Float32Array(bits.buffer), [1, 3001]);
    const r = topk(s, 2048);
    const idx = (await r.indices.read()) as Int32Array;
    const val = new Uint32Array(((await r.values.read()) as Float32Array).buffer);
    expect(idx[0]).toBe(3000);
    expect(val[0]).toBe(0x7fc00000);
    for (let j = 1; j < 2048; j++) {
      expect(idx[j]).toBe(3000 - j);
      expect(val[j]).toBe(0x3f800000 + 3000 - j);
    }
  });

  it("pads short rows with -1 / -inf and keeps -inf scores inside the window", async () => {
    using s = dev.tensor(new Float32Array([-Infinity, 2, 9, 9, 1]), [1, 5]);
    const r = topk(s, 5, { lengths: new Int32Array([3]) });
    expect(Array.from((await r.indices.read()) as Int32Array)).toEqual([2, 1, 0, -1, -1]);
    expect(Array.from((await r.values.read()) as Float32Array)).toEqual([9, 2, -Infinity, -Infinity, -Infinity]);
  });

  it("never reads outside the window (garbage there changes nothing)", async () => {
    const c: TopkCase = { name: "w", dtype: "f32", rows: 8, cols: 30000, k: 2048, gen: "uniform", seed: 300, ragged: true };
    const input = makeInput(c);
    const clean = await runTopk(dev, c, input);
    const dirty = Float32Array.from(input.data as Float32Array);
    const p = new Prng(301);
    for (let r = 0; r < c.rows; r++)
      for (let i = 0; i < c.cols; i++) {
        const inside = i >= input.rowStarts![r] && i < input.rowStarts![r] + input.lengths![r];
        if (!inside) dirty[r * c.cols + i] = p.next() % 2 ? NaN : 1e30;
      }
    const got = await runTopk(dev, c, { ...input, data: dirty });
    expect(firstMismatch(got, clean, c.k)).toBeNull();
  });

  it("takes lengths and rowStarts as i32 tensors too", async () => {
    const c: TopkCase = { name: "t", dtype: "bf16", rows: 5, cols: 9000, k: 2048, gen: "uniform", seed: 302, ragged: true };
    const input = makeInput(c);
    using s = dev.tensor(input.data, [c.rows, c.cols], "bf16");
    using lengths = dev.tensor(input.lengths!, [c.rows]);
    using rowStarts = dev.tensor(input.rowStarts!, [c.rows]);
    const r = topk(s, c.k, { lengths, rowStarts });
    const got = { indices: (await r.indices.read()) as Int32Array, values: (await r.values.read()) as Float32Array };
    expect(firstMismatch(got, topkRef(input, c.rows, c.cols, c.k), c.k)).toBeNull();
  });

  it("accepts bf16 and f16 made with toBf16 / toF16, and zero rows", async () => {
    const x = [0.5, -2, 3.25, 1e-3, 65504, -0];
    for (const [data, dtype] of [[toBf16(x), "bf16"], [toF16(x), "f16"]] as const) {
      using s = dev.tensor(data, [1, 6], dtype);
      const r = topk(s, 3);
      expect(Array.from((await r.indices.read()) as Int32Array)).toEqual([4, 2, 0]);
    }
    using empty = dev.tensor(new Float32Array(0), [0, 10]);
    const r = topk(empty, 4);
    expect(r.indices.shape).toEqual([0, 4]);
    expect(((await r.values.read()) as Float32Array).length).toBe(0);
  });

  it("rejects bad arguments at the call site with a stable code", () => {
    using s = dev.tensor(new Float32Array(20), [2, 10]);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(GlmKernelsError);
        return (e as GlmKernelsError).code;
      }
      return "no error";
    };
    expect(code(() => topk(s, 0))).toBe("E_ARG");
    expect(code(() => topk(s, 11))).toBe("E_ARG");
    expect(code(() => topk(s, 2.5))).toBe("E_ARG");
    expect(code(() => topk({} as never, 2))).toBe("E_ARG");
    expect(code(() => topk(s, 2, { lengths: new Int32Array([1]) }))).toBe("E_SHAPE");
    expect(code(() => topk(s, 2, { lengths: new Int32Array([1, 11]) }))).toBe("E_ARG");
    expect(code(() => topk(s, 2, { rowStarts: new Int32Array([-1, 0]) }))).toBe("E_ARG");
    expect(code(() => topk(s, 2, { rowStarts: new Int32Array([5, 0]), lengths: new Int32Array([6, 1]) }))).toBe("E_ARG");
    expect(code(() => topk(s, 2, { lenghts: new Int32Array(2) } as never))).toBe("E_ARG");
    using i = dev.tensor(new Int32Array(20), [2, 10]);
    expect(code(() => topk(i, 2))).toBe("E_DTYPE");
    using flat = dev.tensor(new Float32Array(20), [20]);
    expect(code(() => topk(flat, 2))).toBe("E_SHAPE");
    const gone = dev.tensor(new Float32Array(20), [2, 10]);
    gone.dispose();
    expect(code(() => topk(gone, 2))).toBe("E_DISPOSED");
    let msg = "";
    try {
      topk(s, 0);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toBe("Expected an integer between 1 and 10 for k but received 0 of type number");
  });

  it("reports bad lengths inside an i32 tensor on the next read, naming topk, and keeps working", async () => {
    using s = dev.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    using lengths = dev.tensor(new Int32Array([1, 5]), [2]);
    const r = topk(s, 1, { lengths });
    await expect(r.indices.read()).rejects.toMatchObject({ code: "E_ARG", message: expect.stringMatching(/^topk: .*lengths\[1\]/) });
    const ok = topk(s, 1);
    expect(Array.from((await ok.indices.read()) as Int32Array)).toEqual([1, 1]);
  });
});
