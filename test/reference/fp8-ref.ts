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
