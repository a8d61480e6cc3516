// A plain TypeScript model of SPEC 5's MoE layer in the written order (glmk/moe-arith.h): the package's own
// exp, sigmoid and silu, the router's logits (the matmul order), the selection, and the experts' SwiGLU with
// its slot-order combine. Every f32 operation is a double operation rounded once with Math.fround (exact
// for f32 +, -, *, /), the fma chains through addF32 (the product is exact in a double).
import { addF32, fp8MatmulRef, type Fp8Ref } from "./fp8-ref.js";
import { bf16Rne, bf16ToF32 } from "./int4-ref.js";

const f = Math.fround;
const C = {
  log2e: 1.4426950216293335,
  ln2hi: 0.693359375,
  ln2lo: -0.00021219444170128554,
  c6: 0.00019875691214110702,
  c5: 0.0013981999363750219,
  c4: 0.008333452045917511,
  c3: 0.041665796190500259,
  c2: 0.1666666567325592,
  hi: 88.72283935546875,
  lo: -103.97207641601562,
  eps: 9.9999996826552254e-21,
};

export function expfRef(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > C.hi) return Infinity;
  if (x < C.lo) return 0;
  const t = f(x * C.log2e);
  const n = Math.trunc(t >= 0 ? f(t + 0.5) : f(t - 0.5));
  let r = f(x - f(n * C.ln2hi));
  r = f(r - f(n * C.ln2lo));
  let p = C.c6;
  for (const c of [C.c5, C.c4, C.c3, C.c2, 0.5]) p = f(f(p * r) + c);
  p = f(f(p * f(r * r)) + r);
  p = f(p + 1);
  const h = Math.trunc(n / 2);
  return f(f(p * 2 ** h) * 2 ** (n - h));
}

export const sigmoidRef = (x: number): number => f(1 / f(1 + expfRef(-x)));
export const siluRef = (x: number): number => f(x / f(1 + expfRef(-x)));

/** The GEMM core's order for one dot product of f32 values: 16 fma chains over k mod 16, then the fixed tree. */
export function dotRef(x: ArrayLike<number>, w: ArrayLike<number>): number {
  const p = new Array(16).fill(0);
  for (let k = 0; k < x.length; k++) p[k % 16] = addF32(x[k] * w[k], p[k % 16]);
  const q = Array.from({ length: 8 }, (_, i) => f(p[i] + p[i + 8]));
  const r = Array.from({ length: 4 }, (_, i) => f(q[i] + q[i + 4]));
  return f(f(r[0] + r[2]) + f(r[1] + r[3]));
}

/** The selection order: higher first, NaN below every number, ties (and NaN pairs) to the lower id. */
const before = (sa: number, ia: number, sb: number, ib: number): boolean => {
  const na = Number.isNaN(sa), nb = Number.isNaN(sb);
  if (na || nb) return na === nb ? ia < ib : nb;
  return sa !== sb ? sa > sb : ia < ib;
};

export interface RouteRefOptions {
  bias?: ArrayLike<number>;
  topK: number;
  nGroup: number;
  topkGroup: number;
  scaling: number;
  norm: boolean;
}

/** moe.route for one token from its f32 logits. */
export function selectRef(logits: ArrayLike<number>, o: RouteRefOptions): { ids: number[]; weights: number[] } {
  const e = logits.length;
  const p = Array.from(logits, (l) => sigmoidRef(l));
  const s = p.map((v, i) => f(v + (o.bias ? o.bias[i] : 0)));
  const gs = e / o.nGroup;
  const groupOk = new Array(o.nGroup).fill(o.nGroup === 1);
  if (o.nGroup > 1) {
    const score = Array.from({ length: o.nGroup }, (_, g) => {
      const members = Array.from({ length: gs }, (_, j) => g * gs + j).sort((a, b) => (before(s[a], a, s[b], b) ? -1 : 1));
      return f(s[members[0]] + s[members[1]]);
    });
    const groups = Array.from({ length: o.nGroup }, (_, g) => g).sort((a, b) => (before(score[a], a, score[b], b) ? -1 : 1));
    for (const g of groups.slice(0, o.topkGroup)) groupOk[g] = true;
  }
  const ids = Array.from({ length: e }, (_, i) => i)
    .filter((i) => groupOk[Math.floor(i / gs)])
    .sort((a, b) => (before(s[a], a, s[b], b) ? -1 : 1))
    .slice(0, o.topK);
  let weights = ids.map((i) => p[i]);
  if (o.norm) {
    let sum = 0;
    for (const w of weights) sum = f(sum + w);
    const denom = f(sum + C.eps);
    weights = weights.map((w) => f(w / denom));
  }
  return { ids, weights: weights.map((w) => f(w * o.scaling)) };
}

/** moe.route over [t, h] f32 values (bf16 inputs already widened) and gate [e, h]. */
export function routeRef(x: Float32Array, gate: Float32Array, t: number, h: number, e: number, o: RouteRefOptions) {
  const ids = new Int32Array(t * o.topK), weights = new Float32Array(t * o.topK);
  for (let r = 0; r < t; r++) {
    const logits = Array.from({ length: e }, (_, j) => dotRef(x.subarray(r * h, (r + 1) * h), gate.subarray(j * h, (j + 1) * h)));
    const sel = selectRef(logits, o);
    ids.set(sel.ids, r * o.topK);
    weights.set(sel.weights, r * o.topK);
  }
  return { ids, weights };
}

/** One expert's stack entry as an Fp8Ref of [n, k] (expert e of data [E, n, k], scaleInv [E, nb, kb]). */
export function expertRef(q: Fp8Ref, e: number, n: number, k: number, bn: number): Fp8Ref {
  const nb = Math.ceil(n / bn), kb = Math.ceil(k / 128);
  return { data: q.data.subarray(e * n * k, (e + 1) * n * k), scaleInv: q.scaleInv.subarray(e * nb * kb, (e + 1) * nb * kb) };
}

export interface SwigluRef {
  gate: Fp8Ref;
  up: Fp8Ref;
  down: Fp8Ref;
  i: number;
  bn: number;
}

/** SPEC 5's SwiGLU on one bf16 row: y bf16 bits [h]. */
export function swigluRef(xBits: Uint16Array, h: number, w: SwigluRef): Uint16Array {
  const g = fp8MatmulRef(xBits, 1, h, w.gate, w.i, w.bn).bf16;
  const u = fp8MatmulRef(xBits, 1, h, w.up, w.i, w.bn).bf16;
  const hb = Uint16Array.from(g, (gv, j) => bf16Rne(f(siluRef(bf16ToF32(gv)) * bf16ToF32(u[j]))));
  return fp8MatmulRef(hb, 1, w.i, w.down, h, w.bn).bf16;
}

/** moe.experts: per token, slot order, f32 combine, shared expert last, one bf16 rounding. */
export function expertsRef(
  xBits: Uint16Array,
  t: number,
  h: number,
  ids: Int32Array,
  weights: Float32Array,
  topK: number,
  expert: (e: number) => SwigluRef,
  shared?: SwigluRef,
): Uint16Array {
  const out = new Uint16Array(t * h);
  for (let r = 0; r < t; r++) {
    const x = xBits.subarray(r * h, (r + 1) * h);
    const acc = new Float32Array(h);
    for (let j = 0; j < topK; j++) {
      const id = ids[r * topK + j];
      if (id === -1) continue;
      const y = swigluRef(x, h, expert(id));
      for (let c = 0; c < h; c++) acc[c] = f(acc[c] + f(weights[r * topK + j] * bf16ToF32(y[c])));
    }
    if (shared) {
      const y = swigluRef(x, h, shared);
      for (let c = 0; c < h; c++) acc[c] = f(acc[c] + bf16ToF32(y[c]));
    }
    for (let c = 0; c < h; c++) out[r * h + c] = bf16Rne(acc[c]);
  }
  return out;
}
