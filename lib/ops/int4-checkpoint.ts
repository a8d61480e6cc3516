// int4.load / int4.save (SPEC 4): compressed-tensors pack-quantized checkpoints (`<prefix>.weight_packed`
// I32 [N, K/8], `<prefix>.weight_scale` BF16 [N, K/groupSize], `<prefix>.weight_shape` I32 or I64 [2]),
// from one safetensors file or a folder with model.safetensors.index.json, streamed by file offset.
import { Device, defaultDevice, openDevice } from "../device.js";
import { GlmKernelsError, fail } from "../errors.js";
import { StSource, loadTensor, readHostTensor, writeSafetensors, type StEntry } from "../safetensors.js";
import { checkOptions } from "../validate.js";
import { checkInt4Weights, type Int4Weights } from "./int4.js";

export interface Int4LoadOptions {
  /** A Device or a device name (default: defaultDevice()). */
  device?: Device | string;
  /** Checked against the scales' shape (and config.json's quantization_config) when given. */
  groupSize?: number;
  /** 15 or 16 (default: 16, compressed-tensors' grid). Not stored in the checkpoint: codes are data. */
  levels?: number;
}

// The group size that config.json's compressed-tensors quantization_config declares for the weights, if any.
function configGroupSize(config: Record<string, unknown> | null): number | null {
  const qc = config?.quantization_config as { config_groups?: Record<string, { weights?: { group_size?: unknown } }> } | undefined;
  if (!qc?.config_groups) return null;
  for (const g of Object.values(qc.config_groups)) if (typeof g?.weights?.group_size === "number") return g.weights.group_size;
  return null;
}

export async function load(path: string, prefix: string, options?: Int4LoadOptions): Promise<Int4Weights> {
  if (typeof path !== "string" || path === "") fail("E_ARG", "path", "a file or folder path", path);
  if (typeof prefix !== "string" || prefix === "") fail("E_ARG", "prefix", "a tensor name prefix (e.g. model.layers.0.mlp.down_proj)", prefix);
  const o = checkOptions(options, "int4.load options", ["device", "groupSize", "levels"]);
  const dev = o.device === undefined ? defaultDevice() : o.device instanceof Device ? o.device : openDevice(o.device as string);
  const levels = o.levels ?? 16;
  if (levels !== 15 && levels !== 16) fail("E_ARG", "int4.load options.levels", "15 or 16", levels);
  const src = await StSource.open(path);
  const names = { packed: `${prefix}.weight_packed`, scale: `${prefix}.weight_scale`, shape: `${prefix}.weight_shape` };
  const [hp, hs, hsh] = await Promise.all([src.headerFor(names.packed), src.headerFor(names.scale), src.headerFor(names.shape)]);
  const where = (h: { path: string }, name: string) => `${name} in ${h.path}`;
  // Section: weight_shape -> [N, K]
  const sh = await readHostTensor(hsh, names.shape);
  if ((sh.dtype !== "I32" && sh.dtype !== "I64") || sh.shape.length !== 1 || sh.shape[0] !== 2)
    throw new GlmKernelsError("E_DTYPE", `Expected ${where(hsh, names.shape)} to be I32 or I64 [2] but received ${sh.dtype} [${sh.shape.join(", ")}]`);
  const dims = sh.dtype === "I32" ? [sh.bytes.readInt32LE(0), sh.bytes.readInt32LE(4)] : [Number(sh.bytes.readBigInt64LE(0)), Number(sh.bytes.readBigInt64LE(8))];
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new GlmKernelsError("E_SHAPE", `Expected ${where(hsh, names.shape)} to hold [N, K] >= 0 but it holds [${dims.join(", ")}]`);
  const [n, k] = dims;
  // Section: packed and scales against it
  const p = hp.tensors.get(names.packed)!;
  const s = hs.tensors.get(names.scale)!;
  if (p.dtype !== "I32") throw new GlmKernelsError("E_DTYPE", `Expected ${where(hp, names.packed)} to be I32 but received ${p.dtype}`);
  if (s.dtype !== "BF16") throw new GlmKernelsError("E_DTYPE", `Expected ${where(hs, names.scale)} to be BF16 but received ${s.dtype}`);
  if (p.shape.length !== 2 || p.shape[0] !== n || p.shape[1] !== Math.ceil(k / 8))
    throw new GlmKernelsError("E_SHAPE", `Expected ${where(hp, names.packed)} of shape [${n}, ${Math.ceil(k / 8)}] (weight_shape [${n}, ${k}]) but received [${p.shape.join(", ")}]`);
  if (s.shape.length !== 2 || s.shape[0] !== n || s.shape[1] < 1)
    throw new GlmKernelsError("E_SHAPE", `Expected ${where(hs, names.scale)} of shape [${n}, K / groupSize] but received [${s.shape.join(", ")}]`);
  const groupSize = k / s.shape[1];
  if (![32, 64, 128].includes(groupSize))
    throw new GlmKernelsError(
      "E_UNSUPPORTED",
      `Expected ${names.scale} to hold one scale per 32, 64 or 128 weights of K = ${k} but it has ${s.shape[1]} per row` +
        (Number.isInteger(groupSize) ? "" : " (K not a multiple of the group size: partial groups are not supported yet)"),
    );
  if (o.groupSize !== undefined && o.groupSize !== groupSize)
    fail("E_ARG", "int4.load options.groupSize", `the checkpoint's group size ${groupSize}`, o.groupSize);
  const declared = configGroupSize(await src.config());
  if (declared !== null && declared !== groupSize)
    throw new GlmKernelsError("E_SHAPE", `Expected ${names.scale} to match config.json's quantization_config group_size ${declared} but its shape gives ${groupSize}`);
  // Section: the data, streamed into device memory
  const packed = await loadTensor(hp, names.packed, dev);
  try {
    const scales = await loadTensor(hs, names.scale, dev);
    return { packed, scales, groupSize, levels, shape: [n, k] };
  } catch (e) {
    packed.dispose();
    throw e;
  }
}

/** Writes { [prefix]: int4 weights, ... } as a compressed-tensors pack-quantized safetensors file. */
export async function save(path: string, weights: Record<string, Int4Weights>): Promise<void> {
  if (typeof path !== "string" || path === "") fail("E_ARG", "path", "a file path", path);
  if (weights === null || typeof weights !== "object" || Array.isArray(weights)) fail("E_ARG", "weights", "an object of prefix -> int4 weights", weights);
  const entries: Record<string, StEntry> = {};
  for (const [prefix, q] of Object.entries(weights)) {
    const w = checkInt4Weights(q, `weights[${JSON.stringify(prefix)}]`);
    const shape = Buffer.alloc(16);
    shape.writeBigInt64LE(BigInt(w.shape[0]), 0);
    shape.writeBigInt64LE(BigInt(w.shape[1]), 8);
    entries[`${prefix}.weight_packed`] = w.packed;
    entries[`${prefix}.weight_scale`] = w.scales;
    entries[`${prefix}.weight_shape`] = { dtype: "I64", shape: [2], bytes: shape };
  }
  await writeSafetensors(path, entries, { format: "pt" });
}
