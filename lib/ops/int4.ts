// int4.quantize / dequantize / fakeQuant / fakeQuantGrad (SPEC 4): symmetric int4 weights in groups along K,
// compressed-tensors' pack-quantized layout, the same arithmetic on every device (glmk/int4-arith.h).
import { DTYPE_CODE } from "../dtype.js";
import { GlmKernelsError, fail } from "../errors.js";
import { Tensor } from "../tensor.js";
import { checkOptions, checkSameDevice, checkTensor } from "../validate.js";

export interface Int4Options {
  /** Weights per scale along K: 32 (default), 64 or 128. */
  groupSize?: number;
  /** 15 (default: codes -7..7, the Kimi/slime grid) or 16 (codes -8..7, compressed-tensors' default). */
  levels?: number;
}

/** What int4.quantize returns (and int4.load): tensors on the weights' device. */
export interface Int4Weights {
  /** i32 [N, K/8]: code q stored as the nibble q + 8, element i of a word at bits 4i..4i+3 along K. */
  packed: Tensor;
  /** bf16 [N, K/groupSize]. */
  scales: Tensor;
  groupSize: number;
  levels: number;
  shape: [number, number];
}

function options(opts: unknown, what: string, extra: readonly string[] = []) {
  const o = checkOptions(opts, what, ["groupSize", "levels", ...extra]);
  const groupSize = o.groupSize ?? 32;
  const levels = o.levels ?? 15;
  if (groupSize !== 32 && groupSize !== 64 && groupSize !== 128) fail("E_ARG", `${what}.groupSize`, "32, 64 or 128", groupSize);
  if (levels !== 15 && levels !== 16) fail("E_ARG", `${what}.levels`, "15 or 16", levels);
  return { groupSize, levels, o };
}

function checkK(k: number, groupSize: number, what: string): void {
  if (k % groupSize !== 0)
    throw new GlmKernelsError("E_SHAPE", `Expected K (the last dim of ${what}) to be a multiple of groupSize ${groupSize} but received ${k}`);
}

type Op = "quantize" | "dequantize" | "fakeQuantGrad";

interface Int4Call {
  w?: Tensor;
  packed?: Tensor;
  scales?: Tensor;
  out?: Tensor;
  grad?: Tensor;
  clip?: boolean;
}

function run(op: Op, q: Int4Call, levels: number, groupSize: number) {
  const [n, k] = (q.w ?? q.out!).shape;
  const dev = (q.w ?? q.packed!).device;
  dev.native.int4(
    op,
    q.w ? q.w.ptr("w") : null,
    q.w ? DTYPE_CODE[q.w.dtype] : 0,
    levels,
    n,
    k,
    groupSize,
    q.packed ? q.packed.ptr("packed") : null,
    q.scales ? q.scales.ptr("scales") : null,
    q.out ? q.out.ptr() : null,
    q.out ? DTYPE_CODE[q.out.dtype] : 0,
    q.clip ?? false,
    q.grad ? q.grad.ptr("grad") : null,
  );
}

/** w bf16 | f32 [N, K] -> { packed, scales, groupSize, levels, shape } on w's device. */
export function quantize(w: Tensor, opts?: Int4Options): Int4Weights {
  checkTensor(w, "w", ["bf16", "f32"], 2);
  const { groupSize, levels } = options(opts, "int4.quantize options");
  const [n, k] = w.shape;
  checkK(k, groupSize, "w");
  const dev = w.device;
  const packed = dev.empty([n, k / 8], "i32");
  const scales = dev.empty([n, k / groupSize], "bf16");
  try {
    run("quantize", { w, packed, scales }, levels, groupSize);
  } catch (e) {
    packed.dispose();
    scales.dispose();
    throw e;
  }
  return { packed, scales, groupSize, levels, shape: [n, k] };
}

/** Checks what int4.quantize returned (or a caller's own packed and scales). */
export function checkInt4Weights(q: unknown, what: string): Int4Weights {
  if (q === null || typeof q !== "object") fail("E_ARG", what, "int4 weights { packed, scales, groupSize, levels, shape }", q);
  const { packed, scales, groupSize, levels, shape } = q as Partial<Int4Weights>;
  if (groupSize !== 32 && groupSize !== 64 && groupSize !== 128) fail("E_ARG", `${what}.groupSize`, "32, 64 or 128", groupSize);
  if (levels !== 15 && levels !== 16) fail("E_ARG", `${what}.levels`, "15 or 16", levels);
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    fail("E_SHAPE", `${what}.shape`, "[N, K] of non-negative integers", shape);
  const [n, k] = shape as [number, number];
  checkK(k, groupSize, `${what}.shape`);
  checkTensor(packed, `${what}.packed`, ["i32"], 2);
  checkTensor(scales, `${what}.scales`, ["bf16"], 2);
  checkSameDevice(scales as Tensor, (packed as Tensor).device, `${what}.scales`);
  const pk = (packed as Tensor).shape;
  const sc = (scales as Tensor).shape;
  if (pk[0] !== n || pk[1] !== k / 8) fail("E_SHAPE", `${what}.packed`, `an i32 tensor of shape [${n}, ${k / 8}]`, `[${pk.join(", ")}]`);
  if (sc[0] !== n || sc[1] !== k / groupSize)
    fail("E_SHAPE", `${what}.scales`, `a bf16 tensor of shape [${n}, ${k / groupSize}]`, `[${sc.join(", ")}]`);
  return q as Int4Weights;
}

function dequantizeInto(q: Int4Weights, dtype: "bf16" | "f32"): Tensor {
  const out = q.packed.device.empty(q.shape, dtype);
  try {
    run("dequantize", { packed: q.packed, scales: q.scales, out }, q.levels, q.groupSize);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** -> bf16 [N, K]: w' = bf16(q * s). */
export function dequantize(q: Int4Weights): Tensor {
  return dequantizeInto(checkInt4Weights(q, "q"), "bf16");
}

/** The values of dequantize(quantize(w, opts)), in w's dtype (f32: those bf16 values widened). */
export function fakeQuant(w: Tensor, opts?: Int4Options): Tensor {
  const q = quantize(w, opts);
  try {
    return dequantizeInto(q, w.dtype as "bf16" | "f32");
  } finally {
    q.packed.dispose(); // stream-ordered: after the dequantize that reads them
    q.scales.dispose();
  }
}

/**
 * The straight-through gradient of fakeQuant: grad unchanged (slime's STE), or with `{ clip: true }` zero
 * where w's code was clamped (torch's fake_quantize). grad: bf16 | f32, w's shape; the result has grad's dtype.
 */
export function fakeQuantGrad(w: Tensor, grad: Tensor, opts?: Int4Options & { clip?: boolean }): Tensor {
  checkTensor(w, "w", ["bf16", "f32"], 2);
  checkTensor(grad, "grad", ["bf16", "f32"], 2);
  checkSameDevice(grad, w.device, "grad");
  if (grad.shape[0] !== w.shape[0] || grad.shape[1] !== w.shape[1])
    fail("E_SHAPE", "grad", `a tensor of w's shape [${w.shape.join(", ")}]`, `[${grad.shape.join(", ")}]`);
  const { groupSize, levels, o } = options(opts, "int4.fakeQuantGrad options", ["clip"]);
  if (o.clip !== undefined && typeof o.clip !== "boolean") fail("E_ARG", "int4.fakeQuantGrad options.clip", "a boolean", o.clip);
  checkK(w.shape[1], groupSize, "w");
  const out = w.device.empty(grad.shape, grad.dtype);
  try {
    run("fakeQuantGrad", { w, out, grad, clip: o.clip === true }, levels, groupSize);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}
