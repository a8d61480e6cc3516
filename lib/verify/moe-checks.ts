// moe.route's and moe.experts' determinism checks behind `glm-kernels verify` (SPEC 5, 6): golden digests of
// seeded cases, repeated runs, each token alone vs inside the batch. Inputs follow quant-checks.ts's recipe
// (seededF32), scaled by exact powers of two; route ids for the experts cases are (3 t + 5 j) mod E.
// Route digests hold on every device (SPEC 5: the same experts and weights everywhere); the experts'
// only on the CPU device (their matmuls agree across devices within tolerance).
import { createHash } from "node:crypto";
import type { Device } from "../device.js";
import { bf16FromF32Bits } from "../dtype.js";
import { quantize as fp8Quantize } from "../ops/fp8.js";
import { experts, route } from "../ops/moe.js";
import type { Tensor } from "../tensor.js";
import type { Check } from "./checks.js";
import { Prng } from "./prng.js";
import { seededF32 } from "./quant-checks.js";

export interface MoeRouteCase {
  name: string;
  t: number;
  h: number;
  e: number;
  topK: number;
  nGroup: number;
  topkGroup: number;
  seed: number;
}

export interface MoeExpertsCase {
  name: string;
  t: number;
  h: number;
  i: number;
  e: number;
  topK: number;
  sharedI: number;
  seed: number;
}

export const MOE_ROUTE_CASES: MoeRouteCase[] = [
  { name: "moe-route-glm5-6x160-e256-top8", t: 6, h: 160, e: 256, topK: 8, nGroup: 1, topkGroup: 1, seed: 81 },
  { name: "moe-route-dsv3-5x96-e64-g8-top4g-top6", t: 5, h: 96, e: 64, topK: 6, nGroup: 8, topkGroup: 4, seed: 82 },
];

export const MOE_EXPERTS_CASES: MoeExpertsCase[] = [
  { name: "moe-experts-5x256-i160-e4-top2-shared96", t: 5, h: 256, i: 160, e: 4, topK: 2, sharedI: 96, seed: 91 },
];

/** The case's inputs as host arrays (bf16 bits for hidden and gate). */
export function moeRouteInputs(c: MoeRouteCase) {
  const p = new Prng(c.seed);
  const bf = (v: Float32Array) => Uint16Array.from(new Uint32Array(v.buffer), (b) => bf16FromF32Bits(b));
  const hidden = bf(seededF32(c.t * c.h, p));
  const gate = bf(seededF32(c.e * c.h, p).map((v) => v * 2 ** -8));
  const bias = seededF32(c.e, p).map((v) => v * 2 ** -10);
  return { hidden, gate, bias };
}

export function moeExpertsInputs(c: MoeExpertsCase) {
  const p = new Prng(c.seed);
  const hidden = Uint16Array.from(new Uint32Array(seededF32(c.t * c.h, p).buffer), (b) => bf16FromF32Bits(b));
  const w = (n: number) => seededF32(n, p).map((v) => v * 2 ** -6);
  const gate = w(c.e * c.i * c.h), up = w(c.e * c.i * c.h), down = w(c.e * c.h * c.i);
  const sGate = w(c.sharedI * c.h), sUp = w(c.sharedI * c.h), sDown = w(c.h * c.sharedI);
  const ids = Int32Array.from({ length: c.t * c.topK }, (_, x) => (3 * Math.floor(x / c.topK) + 5 * (x % c.topK)) % c.e);
  const weights = seededF32(c.t * c.topK, p).map((v) => v * 2 ** -4);
  return { hidden, gate, up, down, sGate, sUp, sDown, ids, weights };
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** ids (i32 LE) and weights (f32 LE) of tokens [r0, r1). */
async function routeOut(dev: Device, c: MoeRouteCase, r0 = 0, r1 = c.t): Promise<Uint8Array[]> {
  const inp = moeRouteInputs(c);
  using x = dev.tensor(inp.hidden.slice(r0 * c.h, r1 * c.h), [r1 - r0, c.h], "bf16");
  using g = dev.tensor(inp.gate, [c.e, c.h], "bf16");
  using b = dev.tensor(inp.bias, [c.e]);
  const r = route(x, g, { bias: b, topK: c.topK, nGroup: c.nGroup, topkGroup: c.topkGroup });
  using ids = r.ids;
  using w = r.weights;
  return [bytesOf(await ids.read()).slice(), bytesOf(await w.read()).slice()];
}

/** The output (bf16 LE) of tokens [r0, r1). */
async function expertsOut(dev: Device, c: MoeExpertsCase, r0 = 0, r1 = c.t): Promise<Uint8Array[]> {
  const inp = moeExpertsInputs(c);
  const made: Tensor[] = [];
  const q = (v: Float32Array, shape: number[]) => {
    using w = dev.tensor(v, shape);
    const r = fp8Quantize(w);
    made.push(r.data, r.scaleInv);
    return r;
  };
  try {
    const ex = { gateProj: q(inp.gate, [c.e, c.i, c.h]), upProj: q(inp.up, [c.e, c.i, c.h]), downProj: q(inp.down, [c.e, c.h, c.i]) };
    const shared = { gateProj: q(inp.sGate, [c.sharedI, c.h]), upProj: q(inp.sUp, [c.sharedI, c.h]), downProj: q(inp.sDown, [c.h, c.sharedI]) };
    using x = dev.tensor(inp.hidden.slice(r0 * c.h, r1 * c.h), [r1 - r0, c.h], "bf16");
    using ids = dev.tensor(inp.ids.slice(r0 * c.topK, r1 * c.topK), [r1 - r0, c.topK]);
    using w = dev.tensor(inp.weights.slice(r0 * c.topK, r1 * c.topK), [r1 - r0, c.topK]);
    using y = experts(x, { ids, weights: w }, ex, { shared });
    return [bytesOf(await y.read()).slice()];
  } finally {
    for (const t of made) t.dispose();
  }
}

/** SHA-256 of the parts, one after the other. */
const sha = (parts: Uint8Array[]) => parts.reduce((h, b) => h.update(b), createHash("sha256")).digest("hex");

export async function moeDigests(dev: Device): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const caps = dev.info().capabilities;
  if (caps.includes("moe.route")) for (const c of MOE_ROUTE_CASES) out[c.name] = sha(await routeOut(dev, c));
  if (caps.includes("moe.experts")) for (const c of MOE_EXPERTS_CASES) out[c.name] = sha(await expertsOut(dev, c));
  return out;
}

export async function verifyMoe(dev: Device, golden: Record<string, string>, repeats: number, report: (c: Check) => void): Promise<void> {
  const caps = dev.info().capabilities;
  const run = async <C extends { name: string; t: number }>(cases: C[], out: (c: C, r0?: number, r1?: number) => Promise<Uint8Array[]>, everyDevice: boolean) => {
    for (const c of cases) {
      const full = await out(c);
      const digest = sha(full);
      if (everyDevice || dev.kind === "cpu")
        report({ name: `golden ${c.name}`, ok: digest === golden[c.name], digest, ...(digest === golden[c.name] ? {} : { detail: `expected ${golden[c.name]}` }) });
      let same = 1;
      for (let i = 1; i < repeats; i++) if (sha(await out(c)) === digest) same++;
      report({ name: `repeat x${repeats} ${c.name}`, ok: same === repeats, digest, detail: `${same}/${repeats} identical` });
      let bad = -1;
      for (let r = 0; r < c.t && bad < 0; r++) {
        const alone = await out(c, r, r + 1);
        // every part is [t, ...]: token r alone == its rows of each part
        if (!full.every((part, j) => Buffer.compare(Buffer.from(alone[j]), Buffer.from(part.subarray(r * alone[j].length, (r + 1) * alone[j].length))) === 0)) bad = r;
      }
      report({ name: `batch-invariant ${c.name}`, ok: bad < 0, digest, detail: bad < 0 ? `${c.t} tokens alone == batch` : `token ${bad} differs` });
    }
  };
  if (caps.includes("moe.route")) await run(MOE_ROUTE_CASES, (c, r0, r1) => routeOut(dev, c, r0, r1), true);
  if (caps.includes("moe.experts")) await run(MOE_EXPERTS_CASES, (c, r0, r1) => expertsOut(dev, c, r0, r1), false);
}
