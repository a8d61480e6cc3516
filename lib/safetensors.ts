// safetensors files, read and written by file offset: a tensor goes between the file and device memory in
// chunks, never the whole file (or a whole shard) in one JS buffer, so that 5 GB shards work. Format
// (huggingface/safetensors): an 8-byte little-endian header size n, n bytes of JSON, then the data; each
// tensor's `data_offsets` [begin, end) are relative to the data and must tile it without gaps or overlap.
import { open, rename, rm, stat, readFile, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Device } from "./device.js";
import { DTYPE_BYTES, type DType } from "./dtype.js";
import { GlmKernelsError } from "./errors.js";
import type { Tensor } from "./tensor.js";

/** Element bytes of every safetensors dtype we read or write. */
export const ST_DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};

/** safetensors dtype -> the device dtype it loads as (the others are readable on the host only). */
export const ST_TO_DTYPE: Record<string, DType> = { BF16: "bf16", F16: "f16", F32: "f32", I32: "i32", U8: "u8", F8_E4M3: "f8e4m3" };
export const DTYPE_TO_ST: Record<DType, string> = { bf16: "BF16", f16: "F16", f32: "F32", i32: "I32", u8: "U8", f8e4m3: "F8_E4M3" };

/** The largest JSON header we accept (the official reader's limit too). */
export const MAX_HEADER_BYTES = 100_000_000;
const CHUNK = 1 << 20;

export interface StTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export interface StHeader {
  path: string;
  metadata: Record<string, string>;
  tensors: Map<string, StTensor>;
}

function bad(path: string, what: string): never {
  throw new GlmKernelsError("E_ARG", `Expected a valid safetensors file at ${path} but ${what}`);
}

/** Parses and checks a file's header (sizes, dtypes, shapes, offsets); reads nothing else. */
export async function readHeader(path: string): Promise<StHeader> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new GlmKernelsError("E_ARG", `Expected a readable safetensors file at ${path} but ${(e as Error).message}`);
  }
  try {
    const size = (await fh.stat()).size;
    if (size < 8) bad(path, `it has ${size} bytes, fewer than the 8 of the header size`);
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const n64 = head.readBigUInt64LE(0);
    if (n64 > BigInt(MAX_HEADER_BYTES)) bad(path, `its header size is ${n64} bytes, more than the ${MAX_HEADER_BYTES} allowed`);
    const n = Number(n64);
    if (8 + n > size) bad(path, `its header size ${n} runs past the end of the file (${size} bytes)`);
    const json = Buffer.alloc(n);
    await fh.read(json, 0, n, 8);
    let parsed: unknown;
    try {
      parsed = JSON.parse(json.toString("utf8"));
    } catch (e) {
      bad(path, `its header is not JSON (${(e as Error).message})`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) bad(path, "its header is not a JSON object");
    const dataBytes = size - 8 - n;
    const metadata: Record<string, string> = {};
    const tensors = new Map<string, StTensor>();
    for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (name === "__metadata__") {
        if (v === null || typeof v !== "object" || Array.isArray(v)) bad(path, "its __metadata__ is not an object");
        for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
          if (typeof mv !== "string") bad(path, `its __metadata__.${mk} is not a string`);
          metadata[mk] = mv;
        }
        continue;
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (t === null || typeof t !== "object") bad(path, `tensor ${name} is not an object`);
      if (typeof t.dtype !== "string" || !(t.dtype in ST_DTYPE_BYTES)) bad(path, `tensor ${name} has an unknown dtype ${JSON.stringify(t.dtype)}`);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        bad(path, `tensor ${name} has a bad shape ${JSON.stringify(t.shape)}`);
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
        bad(path, `tensor ${name} has bad data_offsets ${JSON.stringify(off)}`);
      const elems = (t.shape as number[]).reduce((a, b) => a * b, 1);
      const want = elems * ST_DTYPE_BYTES[t.dtype];
      if (off[1] - off[0] !== want)
        bad(path, `tensor ${name} (${t.dtype} [${(t.shape as number[]).join(", ")}]) needs ${want} bytes but its data_offsets span ${off[1] - off[0]}`);
      if (off[1] > dataBytes) bad(path, `tensor ${name} ends at data byte ${off[1]}, past the ${dataBytes} bytes of data (truncated?)`);
      tensors.set(name, { name, dtype: t.dtype, shape: t.shape as number[], begin: 8 + n + off[0], end: 8 + n + off[1] });
    }
    // The tensors must tile the data: sorted by offset, each starts where the last ended.
    let at = 8 + n;
    for (const t of [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end)) {
      if (t.begin < at) bad(path, `tensor ${t.name} overlaps the tensor before it (data offset ${t.begin - 8 - n})`);
      if (t.begin > at) bad(path, `there is a gap of ${t.begin - at} bytes before tensor ${t.name}`);
      at = t.end;
    }
    if (at !== size) bad(path, `${size - at} bytes after the last tensor are not part of any tensor`);
    return { path, metadata, tensors };
  } finally {
    await fh.close();
  }
}

function tensorInfo(h: StHeader, name: string): StTensor {
  const t = h.tensors.get(name);
  if (!t) throw new GlmKernelsError("E_ARG", `Expected a tensor ${name} in ${h.path} but it has none of that name`);
  return t;
}

/** A tensor's bytes into a new device tensor of its dtype, in chunks (never the whole tensor on the host). */
export async function loadTensor(h: StHeader, name: string, dev: Device): Promise<Tensor> {
  const t = tensorInfo(h, name);
  const dtype = ST_TO_DTYPE[t.dtype];
  if (!dtype)
    throw new GlmKernelsError("E_DTYPE", `Expected tensor ${name} in ${h.path} to have a device dtype (${Object.keys(ST_TO_DTYPE).join(", ")}) but received ${t.dtype}`);
  const out = dev.empty(t.shape, dtype);
  try {
    await loadInto(h, name, out, 0);
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** A tensor's bytes into `dst` from byte `offset` on (a slice of a stack), in chunks. */
export async function loadInto(h: StHeader, name: string, dst: Tensor, offset: number): Promise<void> {
  const t = tensorInfo(h, name);
  if (offset + (t.end - t.begin) > dst.byteLength)
    throw new GlmKernelsError("E_SHAPE", `Expected tensor ${name} in ${h.path} to fit ${dst.byteLength - offset} bytes but it holds ${t.end - t.begin}`);
  const fh = await open(h.path, "r");
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, t.end - t.begin)));
    const base = dst.ptr() + BigInt(offset);
    for (let at = t.begin; at < t.end; ) {
      const want = Math.min(buf.length, t.end - at);
      const { bytesRead } = await fh.read(buf, 0, want, at);
      if (bytesRead !== want) bad(h.path, `tensor ${name} could not be read whole (the file shrank?)`);
      // a synchronous copy (no deferral: buf is reused for the next chunk)
      dst.device.native.upload(base + BigInt(at - t.begin), buf.subarray(0, want), Number.MAX_SAFE_INTEGER);
      at += want;
    }
  } finally {
    await fh.close();
  }
}

/** A small tensor's bytes on the host (e.g. weight_shape), at most `limit` bytes. */
export async function readHostTensor(h: StHeader, name: string, limit = 1 << 20): Promise<{ dtype: string; shape: number[]; bytes: Buffer }> {
  const t = tensorInfo(h, name);
  if (t.end - t.begin > limit) throw new GlmKernelsError("E_SHAPE", `Expected tensor ${name} in ${h.path} to hold at most ${limit} bytes but it holds ${t.end - t.begin}`);
  const fh = await open(h.path, "r");
  try {
    const bytes = Buffer.alloc(t.end - t.begin);
    await fh.read(bytes, 0, bytes.length, t.begin);
    return { dtype: t.dtype, shape: t.shape, bytes };
  } finally {
    await fh.close();
  }
}

/**
 * What writeSafetensors writes for one name: a device tensor, host bytes with their safetensors dtype, or a
 * range of a device tensor (e.g. one expert of a stack) with its own shape.
 */
export type StEntry =
  | Tensor
  | { dtype: string; shape: number[]; bytes: Uint8Array }
  | { of: Tensor; offset: number; shape: number[] };

function entryInfo(name: string, e: StEntry): { dtype: string; shape: number[]; bytes: number } {
  if ("of" in e) {
    e.of.ptr(name);
    const bytes = e.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[e.of.dtype];
    if (e.offset < 0 || e.offset + bytes > e.of.byteLength)
      throw new GlmKernelsError("E_SHAPE", `Expected ${name} to lie inside its tensor of ${e.of.byteLength} bytes but it spans [${e.offset}, ${e.offset + bytes})`);
    return { dtype: DTYPE_TO_ST[e.of.dtype], shape: e.shape, bytes };
  }
  if ("bytes" in e) {
    const want = e.shape.reduce((a, b) => a * b, 1) * (ST_DTYPE_BYTES[e.dtype] ?? NaN);
    if (!(want === e.bytes.byteLength)) throw new GlmKernelsError("E_SHAPE", `Expected ${want} bytes for ${name} (${e.dtype} [${e.shape.join(", ")}]) but received ${e.bytes.byteLength}`);
    return { dtype: e.dtype, shape: e.shape, bytes: e.bytes.byteLength };
  }
  e.ptr(name);
  return { dtype: DTYPE_TO_ST[e.dtype], shape: [...e.shape], bytes: e.byteLength };
}

/**
 * Writes a safetensors file: tensors in name order, the header padded with spaces to a multiple of 8.
 * Device tensors are copied out in chunks. Written to a temporary file beside `path`, then renamed, so that
 * a failure never leaves a half-written file under the name.
 */
export async function writeSafetensors(path: string, entries: Record<string, StEntry>, metadata: Record<string, string> = {}): Promise<void> {
  const names = Object.keys(entries).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let at = 0;
  const infos = names.map((name) => entryInfo(name, entries[name]));
  names.forEach((name, i) => {
    header[name] = { dtype: infos[i].dtype, shape: infos[i].shape, data_offsets: [at, at + infos[i].bytes] };
    at += infos[i].bytes;
  });
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const tmp = join(dirname(path), `.${Date.now()}-${process.pid}.safetensors.tmp`);
  const fh = await open(tmp, "w");
  try {
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    await fh.write(head);
    await fh.write(json);
    for (const [i, name] of names.entries()) {
      const e = entries[name];
      if ("bytes" in e) {
        await fh.write(e.bytes);
        continue;
      }
      const [t, start, length] = "of" in e ? [e.of, e.offset, infos[i].bytes] : [e, 0, e.byteLength];
      const base = t.ptr(name) + BigInt(start);
      for (let off = 0; off < length; off += CHUNK) {
        const n = Math.min(CHUNK, length - off);
        const r = t.device.native.read(base + BigInt(off), n);
        await fh.write(new Uint8Array(r instanceof ArrayBuffer ? r : await r));
      }
    }
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Where each tensor lives: one file, or a folder with model.safetensors.index.json (its weight_map). */
export class StSource {
  readonly #headers = new Map<string, Promise<StHeader>>();
  private constructor(
    readonly path: string,
    readonly folder: string | null,
    readonly weightMap: Record<string, string> | null,
  ) {}

  static async open(path: string): Promise<StSource> {
    let s;
    try {
      s = await stat(path);
    } catch (e) {
      throw new GlmKernelsError("E_ARG", `Expected a safetensors file or a checkpoint folder at ${path} but ${(e as Error).message}`);
    }
    if (!s.isDirectory()) return new StSource(path, null, null);
    const index = join(path, "model.safetensors.index.json");
    let map: unknown;
    try {
      map = (JSON.parse(await readFile(index, "utf8")) as { weight_map?: unknown }).weight_map;
    } catch {
      // one file in the folder
      return new StSource(join(path, "model.safetensors"), null, null);
    }
    if (map === null || typeof map !== "object" || Array.isArray(map) || !Object.values(map).every((f) => typeof f === "string" && !f.includes("/") && !f.includes("\\")))
      throw new GlmKernelsError("E_ARG", `Expected ${index} to hold a weight_map of tensor names to shard file names but it does not`);
    return new StSource(path, path, map as Record<string, string>);
  }

  /** The header of the file that holds `name`. */
  async headerFor(name: string): Promise<StHeader> {
    let file = this.path;
    if (this.weightMap) {
      const shard = this.weightMap[name];
      if (!shard) throw new GlmKernelsError("E_ARG", `Expected a tensor ${name} in ${join(this.folder!, "model.safetensors.index.json")} but its weight_map has none`);
      file = join(this.folder!, shard);
    }
    let h = this.#headers.get(file);
    if (!h) {
      h = readHeader(file);
      this.#headers.set(file, h);
    }
    return h;
  }

  /** Every tensor name: the index's weight_map, or the one file's header. */
  async names(): Promise<string[]> {
    if (this.weightMap) return Object.keys(this.weightMap);
    return [...(await this.headerFor("")).tensors.keys()];
  }

  /** config.json beside the checkpoint, when there is one. */
  async config(): Promise<Record<string, unknown> | null> {
    const dir = this.folder ?? dirname(this.path);
    try {
      return JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    } catch {
      return null;
    }
  }
}
