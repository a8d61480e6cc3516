// safetensors reading and writing, and int4.load / int4.save (SPEC 4), against files nobody here wrote:
// test/fixtures/ct-int4.safetensors comes from Hugging Face's `safetensors` (scripts/fixtures/
// make-fixtures.py), with a compressed-tensors pack-quantized layer in it. Bad files must give a
// GlmKernelsError naming the file and tensor, never a crash or a huge allocation.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, copyFileSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { int4 } from "../dist/esm/index.js";
import { readHeader, loadTensor, writeSafetensors, MAX_HEADER_BYTES } from "../dist/esm/safetensors.js";
import { ROOT } from "./helpers/child.js";
import { device } from "./helpers/devices.js";
import { bf16Rne, bf16ToF32 } from "./reference/int4-ref.js";

const FIX = join(ROOT, "test/fixtures");
const FILE = join(FIX, "ct-int4.safetensors");
const expected = JSON.parse(readFileSync(join(FIX, "ct-int4.json"), "utf8")) as {
  prefix: string;
  shape: [number, number];
  groupSize: number;
  codes: number[];
  packed: number[];
  scaleBits: number[];
  others: Record<string, { dtype: string; shape: number[]; bits: string[] }>;
};
const dev = device("cpu");
const tmp = mkdtempSync(join(tmpdir(), "glmk-st-"));

// A file from a header object and a data buffer (for the bad-file cases).
function craft(name: string, header: unknown, data: Uint8Array, headerSize?: bigint): string {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(headerSize ?? BigInt(json.length));
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([head, json, data]));
  return path;
}

describe("safetensors, read", () => {
  it("reads the official writer's file: every dtype, shape and byte", async () => {
    const h = await readHeader(FILE);
    expect(h.metadata).toEqual({ format: "pt" });
    for (const [name, want] of Object.entries(expected.others)) {
      const t = h.tensors.get(name)!;
      expect([t.dtype, t.shape]).toEqual([want.dtype, want.shape]);
      if (want.dtype === "I64") continue; // host-only dtype
      const x = await loadTensor(h, name, dev);
      const got = new Uint8Array(((await x.read()) as ArrayBufferView).buffer.slice(0));
      const width = { BF16: 2, F16: 2, F32: 4, I32: 4, U8: 1, F8_E4M3: 1 }[want.dtype]!;
      const words = Array.from({ length: got.length / width }, (_, i) => {
        let v = 0n;
        for (let b = width - 1; b >= 0; b--) v = (v << 8n) | BigInt(got[i * width + b]);
        return v.toString();
      });
      expect(words).toEqual(want.bits);
      x.dispose();
    }
  });

  it("int4.load gives the compressed-tensors layer: codes, scales, shape, group size", async () => {
    const q = await int4.load(FILE, expected.prefix, { device: dev });
    expect([q.shape, q.groupSize, q.levels]).toEqual([expected.shape, 32, 16]);
    expect(Array.from((await q.packed.read()) as Int32Array)).toEqual(expected.packed);
    expect(Array.from((await q.scales.read()) as Uint16Array)).toEqual(expected.scaleBits);
    // and the values the file's packing means (compressed-tensors: q + 8, least significant nibble first)
    const deq = (await int4.dequantize(q).read()) as Uint16Array;
    const [n, k] = expected.shape;
    const want = Array.from({ length: n * k }, (_, i) =>
      bf16Rne(expected.codes[i] * bf16ToF32(expected.scaleBits[Math.floor(i / k) * (k / 32) + Math.floor((i % k) / 32)])),
    );
    expect(Array.from(deq)).toEqual(want);
  });

  it("compressed-tensors' own test vector: the word 0x76543210 holds codes -8..-1", async () => {
    // tests/test_compressors/quantized_compressors/test_pack_quant.py: [[-8, ..., -1]] packs to 1985229328
    const packed = dev.tensor(new Int32Array([1985229328, 0x88888888, 0x88888888, 0x88888888]), [1, 4]);
    const scales = dev.tensor(new Uint16Array([0x3f80]), [1, 1], "bf16"); // s = 1
    const deq = int4.dequantize({ packed, scales, groupSize: 32, levels: 16, shape: [1, 32] });
    const values = Array.from((await deq.read()) as Uint16Array, bf16ToF32);
    expect(values).toEqual([-8, -7, -6, -5, -4, -3, -2, -1, ...Array(24).fill(0)]);
  });
});

describe("safetensors offsets past 4 GiB", () => {
  it("reads a tensor that sits 4.5 GiB into a (sparse) file", async () => {
    const filler = 4.5 * 2 ** 30;
    const header = Buffer.from(
      JSON.stringify({ filler: { dtype: "U8", shape: [filler], data_offsets: [0, filler] }, tail: { dtype: "F32", shape: [4], data_offsets: [filler, filler + 16] } }),
    );
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(header.length));
    const path = join(tmp, "sparse.safetensors");
    writeFileSync(path, Buffer.concat([head, header]));
    const fh = await open(path, "r+");
    await fh.write(new Uint8Array(Float32Array.from([1.5, -2, 3.25, 1e-3]).buffer), 0, 16, 8 + header.length + filler);
    await fh.close();
    const h = await readHeader(path);
    const t = await loadTensor(h, "tail", dev);
    expect(Array.from((await t.read()) as Float32Array)).toEqual(Array.from(Float32Array.from([1.5, -2, 3.25, 1e-3])));
    await rm(path);
  });
});

describe("safetensors and int4.save, write", () => {
  it("round trip: our quantizer's output written and read back bit for bit, also through a sharded folder", async () => {
    const n = 64, k = 256;
    const w = dev.tensor(Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 13))), [n, k]);
    const a = int4.quantize(w, { groupSize: 64, levels: 15 });
    const b = int4.quantize(w, { groupSize: 128, levels: 16 });
    const file = join(tmp, "ours.safetensors");
    await int4.save(file, { "layers.0.q": a, "layers.1.k": b });
    const h = await readHeader(file);
    expect(h.tensors.get("layers.0.q.weight_shape")).toMatchObject({ dtype: "I64", shape: [2] });
    expect(h.tensors.get("layers.0.q.weight_packed")).toMatchObject({ dtype: "I32", shape: [n, k / 8] });
    expect(h.tensors.get("layers.1.k.weight_scale")).toMatchObject({ dtype: "BF16", shape: [n, k / 128] });
    const raw = readFileSync(file);
    expect(Number(raw.readBigUInt64LE(0)) % 8).toBe(0); // header padded to 8 bytes
    const a2 = await int4.load(file, "layers.0.q", { levels: 15 });
    const b2 = await int4.load(file, "layers.1.k", { groupSize: 128 });
    for (const [x, y] of [[a, a2], [b, b2]] as const) {
      expect([y.shape, y.groupSize, y.levels]).toEqual([x.shape, x.groupSize, x.levels]);
      expect(Array.from((await y.packed.read()) as Int32Array)).toEqual(Array.from((await x.packed.read()) as Int32Array));
      expect(Array.from((await y.scales.read()) as Uint16Array)).toEqual(Array.from((await x.scales.read()) as Uint16Array));
    }
    // a folder: two shards, an index, and a config.json that declares the group size
    const dir = join(tmp, "ckpt");
    mkdirSync(dir);
    await int4.save(join(dir, "model-00001-of-00002.safetensors"), { "layers.0.q": a });
    await int4.save(join(dir, "model-00002-of-00002.safetensors"), { "layers.1.k": b });
    const weightMap: Record<string, string> = {};
    for (const s of ["weight_packed", "weight_scale", "weight_shape"]) {
      weightMap[`layers.0.q.${s}`] = "model-00001-of-00002.safetensors";
      weightMap[`layers.1.k.${s}`] = "model-00002-of-00002.safetensors";
    }
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ quantization_config: { quant_method: "compressed-tensors", format: "pack-quantized", config_groups: { group_0: { weights: { num_bits: 4, group_size: 128, symmetric: true, strategy: "group", type: "int" }, targets: ["Linear"] } } } }));
    const b3 = await int4.load(dir, "layers.1.k");
    expect(Array.from((await b3.packed.read()) as Int32Array)).toEqual(Array.from((await b.packed.read()) as Int32Array));
    await expect(int4.load(dir, "layers.0.q")).rejects.toMatchObject({ code: "E_SHAPE", message: expect.stringMatching(/config.json's quantization_config group_size 128/) });
    await expect(int4.load(dir, "layers.9.v")).rejects.toMatchObject({ code: "E_ARG", message: expect.stringMatching(/layers\.9\.v\.weight_packed .*weight_map/) });
  });

  it("writeSafetensors refuses wrong byte counts and leaves no file behind", async () => {
    const path = join(tmp, "never.safetensors");
    await expect(writeSafetensors(path, { x: { dtype: "F32", shape: [3], bytes: new Uint8Array(8) } })).rejects.toMatchObject({ code: "E_SHAPE" });
    expect(() => readFileSync(path)).toThrow();
  });
});

describe("bad safetensors files: a GlmKernelsError naming the file, never a crash or a huge allocation", () => {
  const good = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "I32", shape: [1], data_offsets: [8, 12] } };
  const data = new Uint8Array(12);
  const cases: Array<[string, () => string, RegExp]> = [
    ["a file shorter than 8 bytes", () => (writeFileSync(join(tmp, "short"), "abc"), join(tmp, "short")), /fewer than the 8/],
    ["a 100 MB header claim", () => craft("huge-header", good, data, BigInt(MAX_HEADER_BYTES) + 1n), /more than the 100000000 allowed/],
    ["a header size of 2^63", () => craft("u64-header", good, data, 1n << 63n), /more than the 100000000 allowed/],
    ["a header past the end", () => craft("past-end", good, data, 5000n), /runs past the end/],
    ["a header that is not JSON", () => craft("not-json", "{\"a\": ", new Uint8Array(0)), /not JSON/],
    ["an unknown dtype", () => craft("dtype", { a: { dtype: "Q4", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor a has an unknown dtype "Q4"/],
    ["a size that does not match the shape", () => craft("size", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor a .* needs 12 bytes but its data_offsets span 8/],
    ["a truncated file", () => craft("trunc", good, new Uint8Array(10)), /tensor b ends at data byte 12, past the 10 bytes/],
    ["overlapping tensors", () => craft("overlap", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, data), /overlaps/],
    ["a gap", () => craft("gap", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, data), /gap of 4 bytes before tensor b/],
    ["bytes after the last tensor", () => craft("tail", { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, data), /4 bytes after the last tensor/],
    ["negative offsets", () => craft("neg", { a: { dtype: "F32", shape: [2], data_offsets: [-8, 0] } }, data), /bad data_offsets/],
    ["a shape that is not integers", () => craft("shape", { a: { dtype: "F32", shape: [2.5], data_offsets: [0, 10] } }, data), /bad shape/],
    ["metadata that is not strings", () => craft("meta", { __metadata__: { a: 1 }, ...good }, data), /__metadata__.a is not a string/],
    ["a missing file", () => join(tmp, "nope.safetensors"), /readable safetensors file at .*nope.safetensors/],
  ];
  it.each(cases)("%s", async (_, make, message) => {
    const path = make();
    await expect(readHeader(path)).rejects.toMatchObject({ name: "GlmKernelsError", code: "E_ARG", message: expect.stringMatching(message) });
    await expect(int4.load(path, "x")).rejects.toMatchObject({ name: "GlmKernelsError" });
  });

  it("int4.load names the tensor when the layer is wrong (dtype, shape, group size)", async () => {
    const P = "m.l";
    const shape = Buffer.alloc(16);
    shape.writeBigInt64LE(4n, 0);
    shape.writeBigInt64LE(64n, 8);
    const mk = async (name: string, packed: { dtype: string; shape: number[] }, scales: { dtype: string; shape: number[] }) => {
      const b = (t: { dtype: string; shape: number[] }) => new Uint8Array(t.shape.reduce((x, y) => x * y, 1) * (t.dtype === "I32" || t.dtype === "F32" ? 4 : 2));
      const path = join(tmp, name);
      await writeSafetensors(path, {
        [`${P}.weight_packed`]: { ...packed, bytes: b(packed) },
        [`${P}.weight_scale`]: { ...scales, bytes: b(scales) },
        [`${P}.weight_shape`]: { dtype: "I64", shape: [2], bytes: shape },
      });
      return path;
    };
    await expect(int4.load(await mk("f32-packed", { dtype: "F32", shape: [4, 8] }, { dtype: "BF16", shape: [4, 2] }), P)).rejects.toMatchObject({ code: "E_DTYPE", message: expect.stringMatching(/m\.l\.weight_packed in .*f32-packed to be I32/) });
    await expect(int4.load(await mk("f16-scales", { dtype: "I32", shape: [4, 8] }, { dtype: "F16", shape: [4, 2] }), P)).rejects.toMatchObject({ code: "E_DTYPE", message: expect.stringMatching(/weight_scale .* BF16 but received F16/) });
    await expect(int4.load(await mk("rows", { dtype: "I32", shape: [5, 8] }, { dtype: "BF16", shape: [4, 2] }), P)).rejects.toMatchObject({ code: "E_SHAPE", message: expect.stringMatching(/weight_packed .* \[4, 8\]/) });
    await expect(int4.load(await mk("group", { dtype: "I32", shape: [4, 8] }, { dtype: "BF16", shape: [4, 4] }), P)).rejects.toMatchObject({ code: "E_UNSUPPORTED", message: expect.stringMatching(/32, 64 or 128 weights of K = 64 but it has 4/) });
    await expect(int4.load(await mk("ok", { dtype: "I32", shape: [4, 8] }, { dtype: "BF16", shape: [4, 2] }), P, { groupSize: 64 })).rejects.toMatchObject({ code: "E_ARG" });
    const ok = await int4.load(join(tmp, "ok"), P);
    expect([ok.shape, ok.groupSize]).toEqual([[4, 64], 32]);
  });

  it("a fixture copied without its tail is refused before anything is allocated for its tensors", async () => {
    const path = join(tmp, "cut.safetensors");
    copyFileSync(FILE, path);
    const raw = readFileSync(path);
    writeFileSync(path, raw.subarray(0, raw.length - 7));
    await expect(int4.load(path, expected.prefix)).rejects.toMatchObject({ code: "E_ARG", message: expect.stringMatching(/cut\.safetensors but tensor .* past the/) });
  });
});
