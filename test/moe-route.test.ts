// moe.route (SPEC 5): the package's own exp against Math.exp, every bit against the TypeScript model of the
// written order, hand-computed GLM-5 and DeepSeek-V3 configurations, ties, NaN, float64, batch invariance.
import { describe, expect, it } from "vitest";
import { moe } from "../dist/esm/index.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { bf16Rne, bf16ToF32 } from "./reference/int4-ref.js";
import { expfRef, routeRef, sigmoidRef } from "./reference/moe-ref.js";

const DEVICES = TEST_DEVICES.filter((d) => device(d).info().capabilities.includes("moe.route"));

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
}
const ulpF32 = (x: number) => 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe("the package's exp (the TypeScript model of glmk/moe-arith.h)", () => {
  it("is within 2 ulp of exp over [-87, 88] and gives inf, 0 and NaN at the ends", () => {
    let worst = 0;
    for (let i = 0; i <= 200_000; i++) {
      const x = Math.fround(-87 + (175 * i) / 200_000);
      const got = expfRef(x), want = Math.exp(x);
      worst = Math.max(worst, Math.abs(got - want) / ulpF32(want));
    }
    expect(worst).toBeLessThanOrEqual(2);
    expect(expfRef(0)).toBe(1);
    expect(expfRef(89)).toBe(Infinity);
    expect(expfRef(-104)).toBe(0);
    expect(expfRef(NaN)).toBeNaN();
    // subnormal results keep their bits (one rounding of the scaled product)
    expect(Math.abs(expfRef(-100) - Math.exp(-100))).toBeLessThanOrEqual(2 ** -149);
  });
});

describe.each(DEVICES)("moe.route on %s", (name) => {
  const dev = device(name);
  const f32 = (v: ArrayLike<number>, shape: number[]) => dev.tensor(Float32Array.from(v), shape);

  it("sigmoid is the model's bit for bit over a sweep of logits (H = 1, gate 1: logit = x)", async () => {
    const xs = Float32Array.from({ length: 4001 }, (_, i) => Math.fround(-100 + i * 0.05));
    xs[7] = -0, xs[8] = 1e-30, xs[9] = -1e-38, xs[10] = 88.5, xs[11] = -88.5, xs[12] = Infinity, xs[13] = -Infinity;
    const r = moe.route(f32(xs, [xs.length, 1]), f32([1], [1, 1]), { topK: 1, normTopkProb: false, routedScalingFactor: 1 });
    const w = (await r.weights.read()) as Float32Array;
    expect(bits(w)).toEqual(bits(Float32Array.from(xs, sigmoidRef)));
    expect(Array.from((await r.ids.read()) as Int32Array).every((v) => v === 0)).toBe(true);
  });

  it.each([
    ["GLM-5: 256 experts, top-8, no groups", 5, 96, 256, { topK: 8, nGroup: 1, topkGroup: 1, routedScalingFactor: 2.5, normTopkProb: true }],
    ["DeepSeek-V3: 8 groups, top-4 groups, top-8", 4, 64, 256, { topK: 8, nGroup: 8, topkGroup: 4, routedScalingFactor: 2.5, normTopkProb: true }],
    ["small, unnormalized, bf16 gate", 7, 40, 12, { topK: 3, nGroup: 3, topkGroup: 2, routedScalingFactor: 1.5, normTopkProb: false }],
  ] as const)("%s: every bit as the written order", async (_label, t, h, e, o) => {
    const r = lcg(t * h + e);
    const xv = Float32Array.from({ length: t * h }, () => bf16ToF32(bf16Rne(r() * 2)));
    const gv = Float32Array.from({ length: e * h }, () => bf16ToF32(bf16Rne(r() * 0.5)));
    const bias = Float32Array.from({ length: e }, () => Math.fround(r() * 0.05));
    const x = dev.tensor(Uint16Array.from(xv, (v) => bf16Rne(v)), [t, h], "bf16");
    const g = dev.tensor(Uint16Array.from(gv, (v) => bf16Rne(v)), [e, h], "bf16");
    const got = moe.route(x, g, { ...o, bias: f32(bias, [e]) });
    const want = routeRef(xv, gv, t, h, e, { ...o, scaling: o.routedScalingFactor, norm: o.normTopkProb, bias });
    expect(Array.from((await got.ids.read()) as Int32Array)).toEqual(Array.from(want.ids));
    expect(bits((await got.weights.read()) as Float32Array)).toEqual(bits(want.weights));
    // float64: logits, sigmoid and the normalization within a few f32 ulps of exact
    const w = (await got.weights.read()) as Float32Array;
    const ids = (await got.ids.read()) as Int32Array;
    for (let i = 0; i < t; i++) {
      const p = Array.from(ids.subarray(i * o.topK, (i + 1) * o.topK), (id) => {
        let d = 0;
        for (let c = 0; c < h; c++) d += xv[i * h + c] * gv[id * h + c];
        return 1 / (1 + Math.exp(-d));
      });
      const sum = o.normTopkProb ? p.reduce((a, b) => a + b, 0) + 1e-20 : 1;
      p.forEach((pv, j) => expect(Math.abs(w[i * o.topK + j] - (pv / sum) * o.routedScalingFactor)).toBeLessThan(1e-5 * o.routedScalingFactor));
    }
  });

  it("hand-computed GLM-5 routing: the bias picks, p weighs, ties go to the lower id", async () => {
    // H = 1, hidden 1: logit = gate. Experts 3, 9, 40, 77, 100, 150, 200, 255 have logit ln 3 (p = 0.75),
    // the rest 0 (p = 0.5). Bias lifts 7 and 8 above them for selection, and 8's tie with 7 puts 7 first.
    const e = 256;
    const logits = new Float32Array(e);
    const hot = [3, 9, 40, 77, 100, 150, 200, 255];
    for (const i of hot) logits[i] = Math.log(3);
    const bias = new Float32Array(e);
    bias[7] = 1, bias[8] = 1, bias[255] = -1;
    const r = moe.route(f32([1], [1, 1]), f32(logits, [e, 1]), { bias: f32(bias, [e]) });
    const ids = Array.from((await r.ids.read()) as Int32Array);
    expect(ids).toEqual([7, 8, 3, 9, 40, 77, 100, 150]);
    // weights: p / (sum of p + 1e-20) * 2.5 with p = 0.5, 0.5, then six times 0.75: sum 5.5
    const w = Array.from((await r.weights.read()) as Float32Array);
    const p = [0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75];
    w.forEach((v, j) => expect(v).toBeCloseTo((p[j] / 5.5) * 2.5, 6));
  });

  it("hand-computed DeepSeek-V3 groups: a group's score is its two best, groups tie to the lower id", async () => {
    // 8 groups of 4 (E = 32). Group 0 holds the single best expert (logit 4, p 0.982) and nothing else
    // (score 0.985); group 1 has logits 3 and 1.4 (score 0.9526 + 0.8022 = 1.7548); groups 5 and 6 have
    // two experts of logit 2 each (score 2 * 0.8808 = 1.7616) and tie: group 5, the lower id, goes first.
    const logits = new Float32Array(32).fill(-6);
    logits[1] = 4;
    logits[4] = 3, logits[6] = 1.4;
    logits[21] = 2, logits[23] = 2;
    logits[25] = 2, logits[26] = 2;
    const pick = async (topkGroup: number) =>
      Array.from((await moe.route(f32([1], [1, 1]), f32(logits, [32, 1]), { topK: 3, nGroup: 8, topkGroup }).ids.read()) as Int32Array);
    expect(await pick(1)).toEqual([21, 23, 20]); // group 5 only; its third expert is the lower of two equals
    expect(await pick(2)).toEqual([21, 23, 25]); // groups 5 and 6
    expect(await pick(3)).toEqual([4, 21, 23]); // groups 5, 6 and 1; group 0's lone best is never eligible
    // without groups the lone best expert wins
    const r2 = moe.route(f32([1], [1, 1]), f32(logits, [32, 1]), { topK: 3 });
    expect(Array.from((await r2.ids.read()) as Int32Array)).toEqual([1, 4, 21]);
  });

  it("NaN logits rank below every number; an all-NaN token takes the lowest ids and NaN weights", async () => {
    const gate = f32([1, NaN, 2, -1, NaN, 0], [6, 1]);
    const r = moe.route(f32([1, NaN], [2, 1]), gate, { topK: 5 });
    const ids = Array.from((await r.ids.read()) as Int32Array);
    expect(ids).toEqual([2, 0, 5, 3, 1, 0, 1, 2, 3, 4]);
    const w = (await r.weights.read()) as Float32Array;
    expect(Array.from(w.subarray(0, 5)).every(Number.isNaN)).toBe(true); // a chosen NaN poisons the normalization
    const r3 = moe.route(f32([1], [1, 1]), gate, { topK: 4 });
    expect(Array.from((await r3.weights.read()) as Float32Array).some(Number.isNaN)).toBe(false);
  });

  it("a token alone == the same token inside a shuffled batch", async () => {
    const t = 12, h = 50, e = 64;
    const r = lcg(9);
    const xBits = Uint16Array.from({ length: t * h }, () => bf16Rne(r()));
    const g = dev.tensor(Uint16Array.from({ length: e * h }, () => bf16Rne(r())), [e, h], "bf16");
    const o = { nGroup: 8, topkGroup: 3, topK: 6 };
    const all = moe.route(dev.tensor(xBits, [t, h], "bf16"), g, o);
    const allIds = (await all.ids.read()) as Int32Array, allW = (await all.weights.read()) as Float32Array;
    const perm = [5, 11, 0, 7, 3, 9, 1, 10, 2, 8, 4, 6];
    const shuffled = new Uint16Array(t * h);
    perm.forEach((src, dst) => shuffled.set(xBits.subarray(src * h, (src + 1) * h), dst * h));
    const sh = moe.route(dev.tensor(shuffled, [t, h], "bf16"), g, o);
    const shIds = (await sh.ids.read()) as Int32Array, shW = (await sh.weights.read()) as Float32Array;
    perm.forEach((src, dst) => {
      expect(Array.from(shIds.subarray(dst * 6, dst * 6 + 6))).toEqual(Array.from(allIds.subarray(src * 6, src * 6 + 6)));
      expect(bits(shW.subarray(dst * 6, dst * 6 + 6))).toEqual(bits(allW.subarray(src * 6, src * 6 + 6)));
    });
    const one = moe.route(dev.tensor(xBits.slice(3 * h, 4 * h), [1, h], "bf16"), g, o);
    expect(bits((await one.weights.read()) as Float32Array)).toEqual(bits(allW.subarray(18, 24)));
  });

  it("checks its arguments", () => {
    const x = f32([1, 2], [1, 2]);
    const g = f32(new Float32Array(16), [8, 2]);
    expect(moe.route(x, g).ids.shape).toEqual([1, 8]);
    expect(() => moe.route(x, f32([1, 2, 3], [1, 3]))).toThrow(expect.objectContaining({ code: "E_SHAPE", message: expect.stringMatching(/gateWeight/) }));
    expect(() => moe.route(x, g, { topK: 9 })).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/options.topK/) }));
    expect(() => moe.route(x, g, { nGroup: 3 })).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/options.nGroup/) }));
    expect(() => moe.route(x, g, { nGroup: 8 })).toThrow(expect.objectContaining({ code: "E_ARG" })); // groups of one
    expect(() => moe.route(x, g, { nGroup: 4, topkGroup: 1, topK: 3 })).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/topK/) }));
    expect(() => moe.route(x, g, { bias: f32([1], [1]) })).toThrow(expect.objectContaining({ code: "E_SHAPE", message: expect.stringMatching(/options.bias/) }));
    expect(() => moe.route(x, g, { routedScalingFactor: NaN })).toThrow(expect.objectContaining({ code: "E_ARG" }));
    expect(() => moe.route(x, g, { topk: 2 } as never)).toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/unknown option "topk"/) }));
  });
});
