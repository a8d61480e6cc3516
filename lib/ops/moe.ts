// moe.route / moe.experts (SPEC 5): the DeepSeek-V3 / GLM-5 MoE layer after attention, deterministic and
// batch-invariant on every device.
import { DTYPE_CODE } from "../dtype.js";
import { fail } from "../errors.js";
import { Tensor } from "../tensor.js";
import { checkOptions, checkSameDevice, checkTensor } from "../validate.js";
import { type Fp8Weights, checkFp8Weights } from "./fp8.js";

export interface RouteOptions {
  /** f32 [E] correction bias, added to the scores for selection only (default zeros). */
  bias?: Tensor;
  topK?: number;
  nGroup?: number;
  topkGroup?: number;
  routedScalingFactor?: number;
  normTopkProb?: boolean;
}

export interface Route {
  ids: Tensor;
  weights: Tensor;
}

export interface ExpertWeights {
  gateProj: Fp8Weights;
  upProj: Fp8Weights;
  downProj: Fp8Weights;
}

function intOpt(v: unknown, what: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail("E_ARG", what, `an integer between ${min} and ${max}`, v);
  return v;
}

/**
 * hidden [T, H] (bf16 | f16 | f32) and the router's gateWeight [E, H] -> { ids i32 [T, topK], weights f32 [T, topK] }:
 * f32 logits (the matmul order), sigmoid with the package's own exp, selection by sigmoid + bias
 * (group-limited when nGroup > 1), slots by that score descending, ties to the lower id, NaN last.
 */
export function route(hidden: Tensor, gateWeight: Tensor, opts?: RouteOptions): Route {
  const x = checkTensor(hidden, "hidden", ["bf16", "f16", "f32"], 2);
  const g = checkTensor(gateWeight, "gateWeight", ["bf16", "f16", "f32"], 2);
  checkSameDevice(g, x.device, "gateWeight");
  const [t, h] = x.shape;
  const [e, gh] = g.shape;
  if (gh !== h) fail("E_SHAPE", "gateWeight", `[E, ${h}] (H of hidden)`, `[${g.shape.join(", ")}]`);
  if (e < 1) fail("E_SHAPE", "gateWeight", "at least one expert row", `[${g.shape.join(", ")}]`);
  const o = checkOptions(opts, "moe.route options", ["bias", "topK", "nGroup", "topkGroup", "routedScalingFactor", "normTopkProb"]);
  let bias: Tensor | undefined;
  if (o.bias !== undefined) {
    bias = checkTensor(o.bias, "options.bias", ["f32"], 1);
    checkSameDevice(bias, x.device, "options.bias");
    if (bias.shape[0] !== e) fail("E_SHAPE", "options.bias", `[${e}] (E of gateWeight)`, `[${bias.shape.join(", ")}]`);
  }
  const nGroup = intOpt(o.nGroup, "options.nGroup", 1, 1, e);
  if (e % nGroup !== 0 || (nGroup > 1 && e / nGroup < 2))
    fail("E_ARG", "options.nGroup", `a divisor of E = ${e} giving groups of 2 or more experts`, nGroup);
  const topkGroup = intOpt(o.topkGroup, "options.topkGroup", 1, 1, nGroup);
  const topK = intOpt(o.topK, "options.topK", Math.min(8, e), 1, topkGroup * (e / nGroup));
  const scaling = o.routedScalingFactor ?? 2.5;
  if (typeof scaling !== "number" || !Number.isFinite(scaling))
    fail("E_ARG", "options.routedScalingFactor", "a finite number", scaling);
  const norm = o.normTopkProb ?? true;
  if (typeof norm !== "boolean") fail("E_ARG", "options.normTopkProb", "a boolean", norm);
  const ids = x.device.empty([t, topK], "i32");
  const weights = x.device.empty([t, topK], "f32");
  try {
    x.device.native.moeRoute(x.ptr(), DTYPE_CODE[x.dtype], g.ptr(), DTYPE_CODE[g.dtype], bias ? bias.ptr() : null, t, h, e,
      topK, nGroup, topkGroup, norm, scaling, ids.ptr(), weights.ptr());
  } catch (err) {
    ids.dispose();
    weights.dispose();
    throw err;
  }
  return { ids, weights };
}

function checkStack(w: unknown, what: string, e: number | null, n: number, k: number) {
  const q = checkFp8Weights(w, what);
  const want = e === null ? [n, k] : [e, n, k];
  if (q.data.shape.length !== want.length || q.data.shape.some((d, i) => d !== want[i]))
    fail("E_SHAPE", `${what}.data`, `[${want.join(", ")}]`, `[${q.data.shape.join(", ")}]`);
  if (q.block[1] !== 128 || (q.block[0] !== 1 && q.block[0] !== 128))
    fail("E_ARG", `${what}.block`, "[128, 128] or [1, 128]", q.block);
  return q;
}

function checkExperts(w: unknown, what: string, stacked: boolean) {
  if (w === null || typeof w !== "object") fail("E_ARG", what, "{ gateProj, upProj, downProj } of fp8 weights", w);
  const { gateProj, upProj, downProj } = w as Partial<ExpertWeights>;
  const g = checkFp8Weights(gateProj, `${what}.gateProj`);
  const lead = stacked ? g.data.shape.length - 2 : 0;
  if (g.data.shape.length !== (stacked ? 3 : 2))
    fail("E_SHAPE", `${what}.gateProj.data`, stacked ? "[E, I, H]" : "[I, H]", `[${g.data.shape.join(", ")}]`);
  const e = stacked ? g.data.shape[0] : null;
  const [i, h] = g.data.shape.slice(lead);
  return {
    e: e ?? 1,
    i,
    h,
    stacks: [checkStack(gateProj, `${what}.gateProj`, e, i, h), checkStack(upProj, `${what}.upProj`, e, i, h), checkStack(downProj, `${what}.downProj`, e, h, i)],
  };
}

/**
 * hidden bf16 [T, H], route { ids i32 [T, topK], weights f32 [T, topK] } and expert stacks [E, I, H], [E, I, H],
 * [E, H, I] (fp8.quantize results) -> bf16 [T, H]: SPEC 5's SwiGLU per (token, slot), combined in slot order
 * in f32, plus the optional shared expert ([I', H], [I', H], [H, I']). An id of -1 is an unused slot.
 */
export function experts(hidden: Tensor, rt: Route, weights: ExpertWeights, opts?: { shared?: ExpertWeights }): Tensor {
  const x = checkTensor(hidden, "hidden", ["bf16"], 2);
  if (rt === null || typeof rt !== "object") fail("E_ARG", "route", "{ ids, weights } (what moe.route returns)", rt);
  const ids = checkTensor(rt.ids, "route.ids", ["i32"], 2);
  const rw = checkTensor(rt.weights, "route.weights", ["f32"], 2);
  const [t, h] = x.shape;
  if (ids.shape[0] !== t) fail("E_SHAPE", "route.ids", `[${t}, topK] (T of hidden)`, `[${ids.shape.join(", ")}]`);
  if (rw.shape[0] !== t || rw.shape[1] !== ids.shape[1])
    fail("E_SHAPE", "route.weights", `[${ids.shape.join(", ")}] (the shape of route.ids)`, `[${rw.shape.join(", ")}]`);
  if (ids.shape[1] < 1) fail("E_SHAPE", "route.ids", "[T, topK] with topK >= 1", `[${ids.shape.join(", ")}]`);
  const ex = checkExperts(weights, "experts", true);
  if (ex.h !== h) fail("E_SHAPE", "experts.gateProj.data", `[E, I, ${h}] (H of hidden)`, `[${ex.stacks[0].data.shape.join(", ")}]`);
  const o = checkOptions(opts, "moe.experts options", ["shared"]);
  const sh = o.shared === undefined ? null : checkExperts(o.shared, "options.shared", false);
  if (sh && sh.h !== h) fail("E_SHAPE", "options.shared.gateProj.data", `[I, ${h}] (H of hidden)`, `[${sh.stacks[0].data.shape.join(", ")}]`);
  for (const [tensor, what] of [[ids, "route.ids"], [rw, "route.weights"]] as const) checkSameDevice(tensor, x.device, what);
  for (const s of [...ex.stacks, ...(sh ? sh.stacks : [])]) checkSameDevice(s.data, x.device, "the expert weights");
  const flat: (bigint | number)[] = [];
  for (const s of [...ex.stacks, ...(sh ? sh.stacks : [])]) flat.push(s.data.ptr(), s.scaleInv.ptr(), s.block[0]);
  const out = x.device.empty([t, h], "bf16");
  try {
    x.device.native.moeExperts(x.ptr(), t, h, ex.i, ex.e, ids.shape[1], ids.ptr(), rw.ptr(), flat, sh ? sh.i : 0, out.ptr());
  } catch (err) {
    out.dispose();
    throw err;
  }
  return out;
}
