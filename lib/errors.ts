/** Stable error codes (SPEC 2). */
export type ErrorCode =
  | "E_ARG"
  | "E_DTYPE"
  | "E_SHAPE"
  | "E_DEVICE"
  | "E_DEVICE_MISMATCH"
  | "E_DISPOSED"
  | "E_OOM"
  | "E_UNSUPPORTED"
  | "E_PLUGIN";

/** The one error class of glm-kernels; `.code` is stable, `.message` says what was expected and received. */
export class GlmKernelsError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "GlmKernelsError";
    this.code = code;
  }
}

/** How a received value is shown in messages: `0 of type number`, `"x" of type string`, `Float64Array(3)`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as { length?: number }).length ?? value.byteLength})`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  switch (typeof value) {
    case "string":
      return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "..." : value)} of type string`;
    case "number":
    case "bigint":
    case "boolean":
      return `${String(value)} of type ${typeof value}`;
    case "function":
      return "a function";
    default: {
      const ctor = (value as object).constructor?.name;
      return ctor && ctor !== "Object" ? `an instance of ${ctor}` : "an object";
    }
  }
}

export function fail(code: ErrorCode, what: string, expected: string, received: unknown): never {
  throw new GlmKernelsError(code, `Expected ${expected} for ${what} but received ${describe(received)}`);
}
