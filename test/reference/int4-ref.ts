// A plain TypeScript reference of SPEC 4's int4 quantizer, written apart from the C++ one
// (native/include/glmk/int4-arith.h): f32 arithmetic as doubles rounded with Math.fround (exact for one
// division: a double quotient rounded to f32 is the correctly rounded f32 quotient), bf16 by integer
// rounding of the f32 bits. Inputs and outputs are raw bits: f32 as Uint32Array, bf16 as Uint16Array.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bitsToF32(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

export function f32ToBits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** f32 value -> bf16 bits, round half to even; every NaN -> 0x7FC0. */
export function bf16Rne(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const b = f32ToBits(Math.fround(x));
  const upper = b >>> 16;
  const lower = b & 0xffff;
  if (lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1)) return (upper + 1) & 0xffff;
  return upper;
}

export const bf16ToF32 = (h: number): number => bitsToF32(h << 16);

/** Round half to even of a double (used on f32 quotients). */
function rne(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface RefQuant {
  packed: Int32Array;
  scales: Uint16Array;
  /** the codes, one per weight, row-major */
  codes: Int8Array;
  /** where the code was clamped */
  clamped: Uint8Array;
}

/** w: f32 values (bf16 weights widened first), [n, k]. */
export function quantizeRef(w: Float32Array, n: number, k: number, groupSize: number, levels: 15 | 16): RefQuant {
  const lo = levels === 15 ? -7 : -8;
  const hi = 7;
  const groups = k / groupSize;
  const scales = new Uint16Array(n * groups);
  const codes = new Int8Array(n * k);
  const clamped = new Uint8Array(n * k);
  for (let r = 0; r < n; r++)
    for (let g = 0; g < groups; g++) {
      const base = r * k + g * groupSize;
      let amax = 0;
      for (let i = 0; i < groupSize; i++) {
        const a = Math.abs(w[base + i]);
        if (Number.isNaN(a) || Number.isNaN(amax)) amax = NaN;
        else amax = Math.max(amax, a);
      }
      const sBits = bf16Rne(Math.fround(amax / (levels === 15 ? 7 : 7.5)));
      scales[r * groups + g] = sBits;
      const s = bf16ToF32(sBits);
      for (let i = 0; i < groupSize; i++) {
        let q = 0;
        if (s !== 0) {
          const x = Math.fround(w[base + i] / s);
          if (!Number.isNaN(x)) {
            const rounded = x === Infinity || x === -Infinity ? x : rne(x);
            q = Math.min(hi, Math.max(lo, rounded));
            if (q !== rounded) clamped[base + i] = 1;
          }
        }
        codes[base + i] = q;
      }
    }
  const packed = new Int32Array((n * k) / 8);
  for (let j = 0; j < packed.length; j++) {
    let word = 0;
    for (let i = 0; i < 8; i++) word |= (codes[j * 8 + i] + 8) << (4 * i);
    packed[j] = word;
  }
  return { packed, scales, codes, clamped };
}

/** bf16 bits of q * s for every weight. */
export function dequantizeRef(codes: Int8Array, scales: Uint16Array, n: number, k: number, groupSize: number): Uint16Array {
  const out = new Uint16Array(n * k);
  for (let r = 0; r < n; r++)
    for (let i = 0; i < k; i++) {
      const s = bf16ToF32(scales[r * (k / groupSize) + Math.floor(i / groupSize)]);
      out[r * k + i] = bf16Rne(codes[r * k + i] * s);
    }
  return out;
}
