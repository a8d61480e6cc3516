// A plain TypeScript reference of SPEC 5's E4M3FN and block scaling, written apart from the C++ one
// (native/include/glmk/fp8-arith.h): decoding from the format's definition, encoding by searching the
// nearest finite value (ties to the even code), f32 arithmetic as doubles rounded with Math.fround.
import { bf16Rne, f32ToBits } from "./int4-ref.js";

/** The value of an e4m3 code (NaN for 0x7F / 0xFF). */
export function e4m3Value(c: number): number {
  const s = c & 0x80 ? -1 : 1;
  const e = (c >> 3) & 15, m = c & 7;
  if (e === 15 && m === 7) return NaN;
  return e === 0 ? s * m * 2 ** -9 : s * (1 + m / 8) * 2 ** (e - 7);
}

const FINITE = Array.from({ length: 127 }, (_, c) => c).filter((c) => !Number.isNaN(e4m3Value(c))); // 0x00..0x7E

/** f32 value -> e4m3 code: nearest, ties to even code; saturate beyond 448 (and inf); NaN -> 0x7F; -0 -> 0x80. */
export function e4m3Encode(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a > 448) return sign | 0x7e;
  let best = 0;
  for (const c of FINITE) {
    const d = Math.abs(e4m3Value(c) - a), bd = Math.abs(e4m3Value(best) - a);
    if (d < bd || (d === bd && (c & 1) === 0 && (best & 1) === 1)) best = c;
  }
  return sign | best;
}

/** f32 value -> IEEE binary16 bits, round half to even (overflow to inf; NaN -> 0x7E00). */
export function f16Rne(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  let e = Math.max(-14, Math.floor(Math.log2(a)));
  if (2 ** e > a) e--; // (log2 rounding)
  e = Math.max(-14, e);
  const unit = 2 ** (e - 10); // the spacing of binary16 values in [2^e, 2^(e+1)) (subnormals: 2^-24)
  let q = a / unit; // exact in double
  const f = Math.floor(q), d = q - f;
  q = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  const v = q * unit;
  if (v >= 65520 || v > 65504) return sign | 0x7c00;
  if (v < 2 ** -14) return sign | q; // subnormal (q <= 1024; 1024 is the smallest normal's code)
  const ee = Math.floor(Math.log2(v));
  return sign | ((ee + 15) << 10) | Math.round(v / 2 ** (ee - 10) - 1024);
}

export interface Fp8Ref {
  data: Uint8Array;
  scaleInv: Float32Array;
}

/** w: f32 values [batch, n, k] (bf16 / f16 weights widened first). */
export function fp8QuantizeRef(w: Float32Array, batch: number, n: number, k: number, bn: number, bk: number): Fp8Ref {
  const rows = Math.ceil(n / bn), cols = Math.ceil(k / bk);
  const data = new Uint8Array(batch * n * k);
  const scaleInv = new Float32Array(batch * rows * cols);
  for (let b = 0; b < batch; b++)
    for (let rb = 0; rb < rows; rb++)
      for (let cb = 0; cb < cols; cb++) {
        let amax = 0;
        for (let r = rb * bn; r < Math.min(n, (rb + 1) * bn); r++)
          for (let c = cb * bk; c < Math.min(k, (cb + 1) * bk); c++) {
            const v = Math.abs(w[(b * n + r) * k + c]);
            amax = Number.isNaN(v) || Number.isNaN(amax) ? NaN : Math.max(amax, v);
          }
        const s = Number.isNaN(amax) ? NaN : Math.fround(Math.max(amax, Math.fround(1e-4)) / 448);
        scaleInv[(b * rows + rb) * cols + cb] = s;
        for (let r = rb * bn; r < Math.min(n, (rb + 1) * bn); r++)
          for (let c = cb * bk; c < Math.min(k, (cb + 1) * bk); c++) {
            const i = (b * n + r) * k + c;
            data[i] = e4m3Encode(Math.fround(w[i] / s));
          }
      }
  return { data, scaleInv };
}

/** Dequantized values as f32 numbers, and their bf16 / f16 bits. */
export function fp8DequantizeRef(q: Fp8Ref, batch: number, n: number, k: number, bn: number, bk: number) {
  const rows = Math.ceil(n / bn), cols = Math.ceil(k / bk);
  const f32 = new Float32Array(batch * n * k);
  for (let b = 0; b < batch; b++)
    for (let r = 0; r < n; r++)
      for (let c = 0; c < k; c++) {
        const i = (b * n + r) * k + c;
        f32[i] = Math.fround(e4m3Value(q.data[i]) * q.scaleInv[(b * rows + Math.floor(r / bn)) * cols + Math.floor(c / bk)]);
      }
  const f32Bits = Uint32Array.from(f32, (v) => (Number.isNaN(v) ? 0x7fc00000 : f32ToBits(v)));
  return { f32, f32Bits, bf16: Uint16Array.from(f32, (v) => bf16Rne(v)), f16: Uint16Array.from(f32, (v) => f16Rne(v)) };
}

function nextUpF32(x: number): number {
  if (x === 0) return 2 ** -149;
  const b = f32ToBits(x);
  return new Float32Array(new Uint32Array([x > 0 ? b + 1 : b - 1]).buffer)[0];
}
const nextDownF32 = (x: number) => -nextUpF32(-x);

/** f32 addition, correctly rounded (a double sum is inexact when the exponents are far apart). */
export function addF32(a: number, b: number): number {
  const s = a + b;
  const bb = s - a;
  const err = a - (s - bb) + (b - bb); // TwoSum: a + b == s + err exactly
  const r = Math.fround(s);
  if (err === 0 || r === s) return r; // s exact, or an f32 itself (err is far below half an f32 ulp)
  const other = r < s ? nextUpF32(r) : nextDownF32(r);
  if (Math.abs(s - r) !== Math.abs(other - s)) return r; // not a midpoint: one rounding was enough
  return err > 0 ? Math.max(r, other) : Math.min(r, other); // a midpoint: the exact sum decides
}

/**
 * fp8.matmul (SPEC 5) in the written order: x bf16 bits [m, k]; weights as fp8QuantizeRef gives them
 * ([n, k] data, scaleInv [ceil(n/bn), ceil(k/128)]); returns y as bf16 bits [m, n], and its f32 sums.
 */
export function fp8MatmulRef(xBits: Uint16Array, m: number, k: number, w: Fp8Ref, n: number, bn: number): { bf16: Uint16Array; f32: Float32Array } {
  const blocks = Math.ceil(k / 128);
  const y = new Uint16Array(m * n);
  const y32 = new Float32Array(m * n);
  const xa = new Float64Array(m * k);
  const sa = new Float64Array(m * blocks);
  const bf = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];
  for (let r = 0; r < m; r++)
    for (let j = 0; j < blocks; j++) {
      let amax = 0;
      for (let c = j * 128; c < Math.min(k, (j + 1) * 128); c++) {
        const v = Math.abs(bf(xBits[r * k + c]));
        amax = Number.isNaN(v) || Number.isNaN(amax) ? NaN : Math.max(amax, v);
      }
      const s = Number.isNaN(amax) ? NaN : Math.fround(Math.max(amax, Math.fround(1e-4)) / 448);
      sa[r * blocks + j] = s;
      for (let c = j * 128; c < Math.min(k, (j + 1) * 128); c++) xa[r * k + c] = e4m3Value(e4m3Encode(Math.fround(bf(xBits[r * k + c]) / s)));
    }
  for (let r = 0; r < m; r++)
    for (let col = 0; col < n; col++) {
      let acc = 0;
      for (let j = 0; j < blocks; j++) {
        const p = new Array(16).fill(0);
        for (let c = j * 128; c < Math.min(k, (j + 1) * 128); c++)
          p[c % 16] = Math.fround(p[c % 16] + xa[r * k + c] * e4m3Value(w.data[col * k + c])); // exact products and sums (multiples of 2^-18)
        const q = Array.from({ length: 8 }, (_, i) => Math.fround(p[i] + p[i + 8]));
        const rr = Array.from({ length: 4 }, (_, i) => Math.fround(q[i] + q[i + 4]));
        const ss = [Math.fround(rr[0] + rr[2]), Math.fround(rr[1] + rr[3])];
        const partial = Math.fround(ss[0] + ss[1]);
        const term = Math.fround(Math.fround(partial * sa[r * blocks + j]) * w.scaleInv[Math.floor(col / bn) * blocks + j]);
        acc = addF32(acc, term);
      }
      y[r * n + col] = bf16Rne(acc);
      y32[r * n + col] = acc;
    }
  return { bf16: y, f32: y32 };
}
