// The fp8 namespace of the public API (SPEC 5).
import { dequantize, matmul, quantize } from "./ops/fp8.js";

export type { Fp8Weights } from "./ops/fp8.js";
export const fp8 = Object.freeze({ quantize, dequantize, matmul });
