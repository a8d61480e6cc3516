import { GlmKernelsError, describe } from "./errors.js";

export type DType = "f32" | "f16" | "bf16" | "f8e4m3" | "i32" | "u8";
export const DTYPES: readonly DType[] = ["f32", "f16", "bf16", "f8e4m3", "i32", "u8"];

/** The native enum (glmk_dtype in native/include/glmk/device.h). */
export const DTYPE_CODE: Record<DType, number> = { f32: 0, f16: 1, bf16: 2, f8e4m3: 3, i32: 4, u8: 5 };
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, f8e4m3: 1, i32: 4, u8: 1 };

export type HostArray = Float32Array | Int32Array | Uint16Array | Uint8Array;
type HostCtor = Float32ArrayConstructor | Int32ArrayConstructor | Uint16ArrayConstructor | Uint8ArrayConstructor;
export const HOST_ARRAY: Record<DType, HostCtor> = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  f8e4m3: Uint8Array,
  i32: Int32Array,
  u8: Uint8Array,
};

/** dtype for host data: Float32Array -> f32, Int32Array -> i32, Uint8Array -> u8; Uint16Array needs bf16/f16. */
export function resolveDType(data: unknown, dtype: unknown): DType {
  if (dtype !== undefined && !(DTYPES as readonly unknown[]).includes(dtype))
    throw new GlmKernelsError("E_DTYPE", `Expected one of ${DTYPES.join(", ")} for dtype but received ${describe(dtype)}`);
  const ctorName = ArrayBuffer.isView(data) ? data.constructor.name : "";
  const accepted = (Object.keys(HOST_ARRAY) as DType[]).filter((d) => HOST_ARRAY[d].name === ctorName);
  if (accepted.length === 0)
    throw new GlmKernelsError(
      "E_DTYPE",
      `Expected a Float32Array, Int32Array, Uint16Array (bf16/f16 bits) or Uint8Array for data but received ${describe(data)}`,
    );
  if (dtype !== undefined) {
    if (!accepted.includes(dtype as DType))
      throw new GlmKernelsError(
        "E_DTYPE",
        `Expected a ${HOST_ARRAY[dtype as DType].name} for data of dtype ${dtype as string} but received ${describe(data)}`,
      );
    return dtype as DType;
  }
  if (ctorName === "Uint16Array")
    throw new GlmKernelsError("E_DTYPE", `Expected an explicit dtype "bf16" or "f16" for Uint16Array data but received ${describe(dtype)}`);
  return accepted[0] === "f8e4m3" ? "u8" : accepted[0];
}

// Section: scalar conversions (round to nearest even), for preparing bf16/f16 data on the host.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}
export function bitsToF32(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

/** f32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet). */
export function toBf16Bits(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}
export function bf16FromF32Bits(b: number): number {
  b >>>= 0;
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

/** f32 -> IEEE binary16 bits, round to nearest even, overflow to inf, NaN quiet. */
export function toF16Bits(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}
export function f16FromF32Bits(b: number): number {
  b >>>= 0;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    man |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = man & ((1 << shift) - 1);
    let r = man >>> shift;
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++;
  return sign | r;
}
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function toBf16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toBf16Bits(values[i]);
  return out;
}
export function toF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toF16Bits(values[i]);
  return out;
}
