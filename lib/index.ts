export { GlmKernelsError, type ErrorCode } from "./errors.js";
export {
  Device,
  defaultDevice,
  openDevice,
  listDevices,
  type DeviceInfo,
  type DeviceKind,
  type DeviceListing,
  type MemoryInfo,
  UPLOAD_DEFER_BYTES,
} from "./device.js";
export { Tensor } from "./tensor.js";
export {
  type DType,
  type HostArray,
  toBf16,
  toF16,
  toBf16Bits,
  toF16Bits,
  bf16BitsToF32,
  f16BitsToF32,
} from "./dtype.js";
export { topk, type TopkOptions, type TopkResult } from "./ops/topk.js";
export { moe, type ExpertWeights, type MoeLayer, type Route, type RouteOptions } from "./moe.js";
export { fp8, type Fp8Weights } from "./fp8.js";
export { matmul } from "./ops/matmul.js";
export { int4, type Int4Options, type Int4Weights } from "./int4.js";
