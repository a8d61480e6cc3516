// A plain TypeScript top-k, written from SPEC 3 alone (no code shared with the kernels): the reference
// every device is compared against.
import { bf16BitsToF32, f16BitsToF32 } from "glm-kernels";

export interface RefInput {
  data: Float32Array | Uint16Array;
  dtype: "f32" | "bf16" | "f16" | string;
  lengths?: Int32Array;
  rowStarts?: Int32Array;
}

function widen(data: Float32Array | Uint16Array, dtype: string, i: number): number {
  if (dtype === "f32") return data[i];
  return dtype === "bf16" ? bf16BitsToF32(data[i]) : f16BitsToF32(data[i]);
}

/** Descending; every NaN above +inf and equal to each other; -0 == +0; ties by ascending index. */
function compare(a: { v: number; i: number }, b: { v: number; i: number }): number {
  const an = Number.isNaN(a.v);
  const bn = Number.isNaN(b.v);
  if (an !== bn) return an ? -1 : 1;
  if (!an && a.v !== b.v) return a.v > b.v ? -1 : 1;
  return a.i - b.i;
}

export function topkRef(input: RefInput, rows: number, cols: number, k: number): { indices: Int32Array; values: Float32Array } {
  const indices = new Int32Array(rows * k).fill(-1);
  const values = new Float32Array(rows * k).fill(-Infinity);
  const bits = new Uint32Array(values.buffer);
  for (let r = 0; r < rows; r++) {
    const start = input.rowStarts ? input.rowStarts[r] : 0;
    const len = input.lengths ? input.lengths[r] : cols - start;
    const cand = new Array<{ v: number; i: number }>(len);
    for (let i = 0; i < len; i++) cand[i] = { v: widen(input.data, input.dtype, r * cols + start + i), i };
    cand.sort(compare);
    for (let j = 0; j < Math.min(k, len); j++) {
      indices[r * k + j] = cand[j].i;
      if (Number.isNaN(cand[j].v)) bits[r * k + j] = 0x7fc00000;
      else values[r * k + j] = cand[j].v;
    }
  }
  return { indices, values };
}

/** DeepGEMM-style bitwise check: the first mismatching coordinate and both values, or null. */
export function firstMismatch(
  got: { indices: Int32Array; values: Float32Array },
  want: { indices: Int32Array; values: Float32Array },
  k: number,
): string | null {
  const gb = new Uint32Array(got.values.buffer, got.values.byteOffset, got.values.length);
  const wb = new Uint32Array(want.values.buffer, want.values.byteOffset, want.values.length);
  if (got.indices.length !== want.indices.length) return `length ${got.indices.length} != ${want.indices.length}`;
  for (let p = 0; p < want.indices.length; p++) {
    if (got.indices[p] !== want.indices[p] || gb[p] !== wb[p])
      return `row ${Math.floor(p / k)} slot ${p % k}: got (${got.indices[p]}, 0x${gb[p].toString(16)}) want (${want.indices[p]}, 0x${wb[p].toString(16)})`;
  }
  return null;
}
