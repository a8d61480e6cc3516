// Argument checks shared by the ops: each throws GlmKernelsError naming the argument, expected, received.
import type { Device } from "./device.js";
import type { DType } from "./dtype.js";
import { GlmKernelsError, describe, fail } from "./errors.js";
import { Tensor } from "./tensor.js";

export function checkShape(shape: unknown, what: string): asserts shape is readonly number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0))
    fail("E_SHAPE", what, "an array of non-negative integers", shape);
}

export function checkInt(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    fail("E_ARG", what, `an integer between ${min} and ${max}`, value);
  return value;
}

export function checkTensor(value: unknown, what: string, dtypes: readonly DType[], rank: number): Tensor {
  if (!(value instanceof Tensor)) fail("E_ARG", what, "a Tensor", value);
  value.ptr(what);
  if (!dtypes.includes(value.dtype))
    throw new GlmKernelsError("E_DTYPE", `Expected dtype ${dtypes.join(" | ")} for ${what} but received ${value.dtype}`);
  if (value.shape.length !== rank)
    throw new GlmKernelsError(
      "E_SHAPE",
      `Expected a ${rank}-D tensor for ${what} but received shape [${value.shape.join(", ")}]`,
    );
  return value;
}

export function checkSameDevice(t: Tensor, device: Device, what: string): void {
  if (t.device !== device)
    throw new GlmKernelsError("E_DEVICE_MISMATCH", `Expected ${what} on ${device.name} but received a tensor on ${t.device.name}`);
}

export function checkOptions(opts: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) fail("E_ARG", what, "an options object", opts);
  for (const key of Object.keys(opts))
    if (!allowed.includes(key))
      throw new GlmKernelsError("E_ARG", `Expected options ${allowed.join(", ")} for ${what} but received unknown option ${describe(key)}`);
  return opts as Record<string, unknown>;
}
