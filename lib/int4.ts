// The int4 namespace of the public API (SPEC 4).
import { int4Matmul } from "./ops/matmul.js";
import { dequantize, fakeQuant, fakeQuantGrad, quantize } from "./ops/int4.js";
import { load, save } from "./ops/int4-checkpoint.js";

export type { Int4Options, Int4Weights } from "./ops/int4.js";
export type { Int4LoadOptions } from "./ops/int4-checkpoint.js";
export const int4 = Object.freeze({ quantize, dequantize, fakeQuant, fakeQuantGrad, load, save, matmul: int4Matmul });
