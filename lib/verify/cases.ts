// Seeded top-k inputs for the determinism suite and `glm-kernels verify`. Every value is built from the
// Prng's integers with exact arithmetic, so the inputs are reproducible bit for bit in any language.
import { bf16FromF32Bits, f16FromF32Bits, f32Bits, type DType } from "../dtype.js";
import { Prng } from "./prng.js";

export type Gen = "uniform" | "ties" | "special" | "constant";

export interface TopkCase {
  name: string;
  dtype: "f32" | "bf16" | "f16";
  rows: number;
  cols: number;
  k: number;
  gen: Gen;
  seed: number;
  /** Ragged rows: starts and lengths drawn from the same Prng after the scores. */
  ragged?: boolean;
}

/** f32 bits of special scores: NaNs of both signs and several payloads, +-inf, +-0, subnormals, 1. */
export const SPECIAL_BITS = [
  0x7fc00000, 0xffc00000, 0x7f800001, 0xffffffff, 0x7f800000, 0xff800000, 0x00000000, 0x80000000, 0x00000001,
  0x80000001, 0x007fffff, 0x3f800000,
];

/** One score as f32 bits. uniform: (u >> 8) * 2^-20 - 8, exact; ties: (u mod 61) / 8 - 3. */
function scoreBits(gen: Gen, p: Prng): number {
  switch (gen) {
    case "uniform":
      return f32Bits((p.next() >>> 8) * 2 ** -20 - 8);
    case "ties":
      return f32Bits((p.next() % 61) / 8 - 3);
    case "constant":
      return 0x3f800000;
    case "special": {
      const j = p.next() % 32;
      return j < SPECIAL_BITS.length ? SPECIAL_BITS[j] >>> 0 : f32Bits((p.next() >>> 8) * 2 ** -20 - 8);
    }
  }
}

export interface TopkInput {
  data: Float32Array | Uint16Array;
  dtype: DType;
  lengths?: Int32Array;
  rowStarts?: Int32Array;
}

export function makeInput(c: TopkCase): TopkInput {
  const p = new Prng(c.seed);
  const n = c.rows * c.cols;
  let data: Float32Array | Uint16Array;
  if (c.dtype === "f32") {
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = scoreBits(c.gen, p);
    data = new Float32Array(bits.buffer);
  } else {
    const conv = c.dtype === "bf16" ? bf16FromF32Bits : f16FromF32Bits;
    data = new Uint16Array(n);
    for (let i = 0; i < n; i++) data[i] = conv(scoreBits(c.gen, p));
  }
  if (!c.ragged) return { data, dtype: c.dtype };
  // Ragged rows: start = u mod (cols + 1); length = u' mod (cols - start + 1), every 4th row shorter than k.
  const rowStarts = new Int32Array(c.rows);
  const lengths = new Int32Array(c.rows);
  for (let r = 0; r < c.rows; r++) {
    rowStarts[r] = p.below(c.cols + 1);
    const room = c.cols - rowStarts[r];
    lengths[r] = r % 4 === 3 ? p.below(Math.min(room, c.k) + 1) : p.below(room + 1);
  }
  return { data, dtype: c.dtype, lengths, rowStarts };
}

/** The golden cases (test/determinism/golden.json holds their SHA-256 digests). */
export const GOLDEN_CASES: TopkCase[] = [
  { name: "f32-uniform-4x131072-k2048", dtype: "f32", rows: 4, cols: 131072, k: 2048, gen: "uniform", seed: 1 },
  { name: "f32-uniform-1x262144-k2048", dtype: "f32", rows: 1, cols: 262144, k: 2048, gen: "uniform", seed: 2 },
  { name: "f32-uniform-48x4096-k2048", dtype: "f32", rows: 48, cols: 4096, k: 2048, gen: "uniform", seed: 3 },
  { name: "bf16-ties-8x32768-k2048", dtype: "bf16", rows: 8, cols: 32768, k: 2048, gen: "ties", seed: 4 },
  { name: "f16-uniform-8x16384-k1024", dtype: "f16", rows: 8, cols: 16384, k: 1024, gen: "uniform", seed: 5 },
  { name: "f32-special-16x3001-k512", dtype: "f32", rows: 16, cols: 3001, k: 512, gen: "special", seed: 6 },
  { name: "bf16-special-8x20000-k2048", dtype: "bf16", rows: 8, cols: 20000, k: 2048, gen: "special", seed: 7 },
  { name: "f32-ragged-24x20000-k2048", dtype: "f32", rows: 24, cols: 20000, k: 2048, gen: "uniform", seed: 8, ragged: true },
  { name: "f16-ragged-ties-12x9000-k512", dtype: "f16", rows: 12, cols: 9000, k: 512, gen: "ties", seed: 9, ragged: true },
  { name: "f32-constant-4x10000-k2048", dtype: "f32", rows: 4, cols: 10000, k: 2048, gen: "constant", seed: 10 },
  { name: "f32-uniform-3x1000-k1", dtype: "f32", rows: 3, cols: 1000, k: 1, gen: "uniform", seed: 11 },
  { name: "f32-ties-2x300-k300", dtype: "f32", rows: 2, cols: 300, k: 300, gen: "ties", seed: 12 },
];
