// fp8.quantize / fp8.dequantize (SPEC 5): DeepSeek-V3 / GLM-5-FP8 block-scaled E4M3FN weights.
import { DTYPE_CODE } from "../dtype.js";
import { GlmKernelsError, fail } from "../errors.js";
import { Tensor } from "../tensor.js";
import { checkOptions, checkSameDevice } from "../validate.js";

/** What fp8.quantize returns: data f8e4m3 [..., N, K], scaleInv f32 [..., ceil(N/bn), ceil(K/bk)], block [bn, bk]. */
export interface Fp8Weights {
  data: Tensor;
  scaleInv: Tensor;
  block: [number, number];
}

function checkW(w: unknown, what: string): Tensor {
  if (!(w instanceof Tensor)) fail("E_ARG", what, "a Tensor", w);
  w.ptr(what);
  if (!["bf16", "f16", "f32"].includes(w.dtype))
    throw new GlmKernelsError("E_DTYPE", `Expected dtype bf16 | f16 | f32 for ${what} but received ${w.dtype}`);
  if (w.shape.length < 2) fail("E_SHAPE", what, "a tensor of 2 or more dims [..., N, K]", `[${w.shape.join(", ")}]`);
  return w;
}

function split(shape: readonly number[]) {
  const n = shape[shape.length - 2], k = shape[shape.length - 1];
  const batch = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { batch, n, k, lead: shape.slice(0, -2) };
}

/** w bf16 | f16 | f32 [..., N, K] -> { data, scaleInv, block } on w's device; block [128, 128] (default) or [1, 128]. */
export function quantize(w: Tensor, opts?: { block?: [number, number] }): Fp8Weights {
  checkW(w, "w");
  const o = checkOptions(opts, "fp8.quantize options", ["block"]);
  const block = (o.block ?? [128, 128]) as [number, number];
  if (!Array.isArray(block) || block.length !== 2 || !block.every((b) => Number.isInteger(b) && b >= 1 && b <= 1 << 20))
    fail("E_ARG", "fp8.quantize options.block", "[rows, cols] of positive integers, e.g. [128, 128] or [1, 128]", block);
  const { batch, n, k, lead } = split(w.shape);
  const dev = w.device;
  const data = dev.empty(w.shape, "f8e4m3");
  const scaleInv = dev.empty([...lead, Math.ceil(n / block[0]), Math.ceil(k / block[1])], "f32");
  try {
    dev.native.fp8("quantize", w.ptr("w"), DTYPE_CODE[w.dtype], 0, batch, n, k, block[0], block[1], data.ptr(), scaleInv.ptr(), null);
  } catch (e) {
    data.dispose();
    scaleInv.dispose();
    throw e;
  }
  return { data, scaleInv, block: [block[0], block[1]] };
}

/** Checks fp8 weights (what fp8.quantize returns, or data and scaleInv with [128, 128] blocks when block is absent). */
export function checkFp8Weights(q: unknown, what: string): Fp8Weights & { batch: number; n: number; k: number } {
  if (q === null || typeof q !== "object") fail("E_ARG", what, "fp8 weights { data, scaleInv, block? }", q);
  const { data, scaleInv } = q as Partial<Fp8Weights>;
  const block = (q as Partial<Fp8Weights>).block ?? [128, 128];
  if (!(data instanceof Tensor) || data.dtype !== "f8e4m3") fail("E_DTYPE", `${what}.data`, "an f8e4m3 tensor", data);
  if (!(scaleInv instanceof Tensor) || scaleInv.dtype !== "f32") fail("E_DTYPE", `${what}.scaleInv`, "an f32 tensor", scaleInv);
  data.ptr(`${what}.data`);
  scaleInv.ptr(`${what}.scaleInv`);
  checkSameDevice(scaleInv, data.device, `${what}.scaleInv`);
  if (!Array.isArray(block) || block.length !== 2 || !block.every((b) => Number.isInteger(b) && b >= 1))
    fail("E_ARG", `${what}.block`, "[rows, cols] of positive integers", block);
  if (data.shape.length < 2) fail("E_SHAPE", `${what}.data`, "[..., N, K]", `[${data.shape.join(", ")}]`);
  const { batch, n, k, lead } = split(data.shape);
  const want = [...lead, Math.ceil(n / block[0]), Math.ceil(k / block[1])];
  if (scaleInv.shape.length !== want.length || scaleInv.shape.some((d, i) => d !== want[i]))
    fail("E_SHAPE", `${what}.scaleInv`, `shape [${want.join(", ")}] for blocks [${block.join(", ")}]`, `[${scaleInv.shape.join(", ")}]`);
  return { data, scaleInv, block: [block[0], block[1]], batch, n, k };
}

/** -> [..., N, K] in dtype (default bf16): w' = f32(data) * scaleInv, rounded once to dtype. */
export function dequantize(q: Fp8Weights, dtype: "bf16" | "f16" | "f32" = "bf16"): Tensor {
  const w = checkFp8Weights(q, "q");
  if (dtype !== "bf16" && dtype !== "f16" && dtype !== "f32") fail("E_DTYPE", "dtype", '"bf16", "f16" or "f32"', dtype);
  const out = w.data.device.empty(w.data.shape, dtype);
  try {
    w.data.device.native.fp8("dequantize", null, 0, DTYPE_CODE[dtype], w.batch, w.n, w.k, w.block[0], w.block[1], w.data.ptr(), w.scaleInv.ptr(), out.ptr());
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/**
 * x bf16 [M, K] times fp8 weights [N, K] (blocks [bn, 128]) -> bf16 [M, N]: x quantized per token per 128
 * channels on the fly, f32 accumulation per 128-K block, each block's sum scaled (sum * s_a) * scaleInv
 * (DeepSeek's order) before it is added (SPEC 5). `{ dtype: "f32" }` (our addition) returns the f32 sums
 * unrounded.
 */
export function matmul(x: Tensor, wq: Fp8Weights, opts?: { dtype?: "bf16" | "f32" }): Tensor {
  const o = checkOptions(opts, "fp8.matmul options", ["dtype"]);
  const dtype = o.dtype ?? "bf16";
  if (dtype !== "bf16" && dtype !== "f32") fail("E_DTYPE", "fp8.matmul options.dtype", '"bf16" or "f32"', dtype);
  const w = checkFp8Weights(wq, "wq");
  if (w.data.shape.length !== 2) fail("E_SHAPE", "wq.data", "[N, K] (one expert: index the stack first)", `[${w.data.shape.join(", ")}]`);
  if (w.block[1] !== 128) fail("E_ARG", "wq.block", "[rows, 128] (activations are quantized per 128 channels)", w.block);
  if (!(x instanceof Tensor)) fail("E_ARG", "x", "a Tensor", x);
  x.ptr("x");
  if (x.dtype !== "bf16") throw new GlmKernelsError("E_DTYPE", `Expected dtype bf16 for x but received ${x.dtype}`);
  if (x.shape.length !== 2 || x.shape[1] !== w.k) fail("E_SHAPE", "x", `[M, ${w.k}] (K of the weights)`, `[${x.shape.join(", ")}]`);
  checkSameDevice(x, w.data.device, "x");
  const m = x.shape[0];
  const y = x.device.empty([m, w.n], dtype);
  try {
    x.device.native.fp8Matmul(x.ptr("x"), m, w.k, w.data.ptr(), w.scaleInv.ptr(), w.block[0], w.n, y.ptr(), DTYPE_CODE[dtype]);
  } catch (e) {
    y.dispose();
    throw e;
  }
  return y;
}
