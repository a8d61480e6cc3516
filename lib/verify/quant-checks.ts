// The int4 quantizer's, the fp8 quantizer's and the matmuls' determinism checks behind `glm-kernels verify` (SPEC 6): golden
// digests of seeded cases, repeated runs, and for the matmuls each row alone vs inside the batch.
// Inputs are exact integer recipes on the Prng (lib/verify/prng.ts), so another language rebuilds them:
//   weight or activation i: bits = sign (u1 >> 31) | exponent (120 + u2 mod 12) << 23 | mantissa (u3 >> 9)
//   as f32, u1..u3 three consecutive Prng outputs; bf16 / f16 data are those f32 values rounded to nearest
//   even (bf16 from the f32 bits; f16 from the value).
// The quantizer's digests hold on every device; the matmuls' only on the CPU device (across devices SPEC 4
// promises agreement within tolerance), so other devices check repeats and batch invariance only. (cuda-sim's
// SIMT matmuls, f16 / f32 x, follow the CPU's written order and give its digests too; its tensor-core ones,
// bf16 x and fp8.matmul, one digest under every schedule seed: test/cuda-sim.test.ts checks both apart, as properties of
// those kernels, not promises of SPEC 4.)
import { createHash } from "node:crypto";
import type { Device } from "../device.js";
import { bf16FromF32Bits, toF16Bits, type DType } from "../dtype.js";
import { dequantize, quantize } from "../ops/int4.js";
import { dequantize as fp8Dequantize, matmul as fp8Matmul, quantize as fp8Quantize } from "../ops/fp8.js";
import { int4Matmul, matmul } from "../ops/matmul.js";
import type { Tensor } from "../tensor.js";
import { loadQuantGolden, type Check } from "./checks.js";
import { Prng } from "./prng.js";

export interface QuantCase {
  name: string;
  dtype: "bf16" | "f32";
  n: number;
  k: number;
  groupSize: number;
  levels: 15 | 16;
  seed: number;
}

export interface MatmulCase {
  name: string;
  xDtype: "bf16" | "f16" | "f32";
  wDtype: "bf16" | "f16" | "f32" | "int4";
  m: number;
  n: number;
  k: number;
  groupSize?: number;
  seed: number;
}

export const QUANT_CASES: QuantCase[] = [
  { name: "int4-quantize-bf16-64x256-g32-l15", dtype: "bf16", n: 64, k: 256, groupSize: 32, levels: 15, seed: 41 },
  { name: "int4-quantize-f32-48x384-g128-l16", dtype: "f32", n: 48, k: 384, groupSize: 128, levels: 16, seed: 42 },
  { name: "int4-quantize-bf16-16x512-g64-l16", dtype: "bf16", n: 16, k: 512, groupSize: 64, levels: 16, seed: 43 },
];

export interface Fp8Case {
  name: string;
  dtype: "bf16" | "f16" | "f32";
  shape: [number, number, number];
  block: [number, number];
  seed: number;
}

export const FP8_CASES: Fp8Case[] = [
  { name: "fp8-quantize-bf16-2x200x300-b128x128", dtype: "bf16", shape: [2, 200, 300], block: [128, 128], seed: 61 },
  { name: "fp8-quantize-f32-3x64x257-b1x128", dtype: "f32", shape: [3, 64, 257], block: [1, 128], seed: 62 },
];

export interface Fp8MatmulCase {
  name: string;
  m: number;
  n: number;
  k: number;
  block: [number, number];
  seed: number;
}

// fp8.matmul's f32 sums (the bf16 output would hide its order in the low bits); cpu-only goldens.
export const FP8_MATMUL_CASES: Fp8MatmulCase[] = [
  { name: "fp8-matmul-5x48x300-b128x128", m: 5, n: 48, k: 300, block: [128, 128], seed: 71 },
  { name: "fp8-matmul-3x20x256-b1x128", m: 3, n: 20, k: 256, block: [1, 128], seed: 72 },
];

export const MATMUL_CASES: MatmulCase[] = [
  { name: "matmul-bf16-bf16-5x40x256", xDtype: "bf16", wDtype: "bf16", m: 5, n: 40, k: 256, seed: 51 },
  { name: "matmul-f32-f16-3x17x100", xDtype: "f32", wDtype: "f16", m: 3, n: 17, k: 100, seed: 52 },
  { name: "matmul-f16-f32-9x24x64", xDtype: "f16", wDtype: "f32", m: 9, n: 24, k: 64, seed: 53 },
  { name: "int4-matmul-bf16-7x33x256-g64", xDtype: "bf16", wDtype: "int4", m: 7, n: 33, k: 256, groupSize: 64, seed: 54 },
  { name: "int4-matmul-f32-2x48x384-g32", xDtype: "f32", wDtype: "int4", m: 2, n: 48, k: 384, groupSize: 32, seed: 55 },
];

/** n f32 values by the recipe above. */
export function seededF32(n: number, p: Prng): Float32Array {
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const sign = p.next() & 0x80000000;
    const exp = 120 + (p.next() % 12);
    bits[i] = (sign | (exp << 23) | (p.next() >>> 9)) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

function upload(dev: Device, values: Float32Array, shape: readonly number[], dtype: DType): Tensor {
  if (dtype === "f32") return dev.tensor(values, shape);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = dtype === "bf16" ? Uint16Array.from(u32, (b) => bf16FromF32Bits(b)) : Uint16Array.from(values, (v) => toF16Bits(v));
  return dev.tensor(bits, shape, dtype);
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** SHA-256 of packed (i32 LE), then scales (bf16 LE), then the dequantized weights (bf16 LE). */
export async function quantDigest(dev: Device, c: QuantCase): Promise<string> {
  const p = new Prng(c.seed);
  using w = upload(dev, seededF32(c.n * c.k, p), [c.n, c.k], c.dtype);
  const q = quantize(w, { groupSize: c.groupSize, levels: c.levels });
  using packed = q.packed;
  using scales = q.scales;
  using deq = dequantize(q);
  return createHash("sha256")
    .update(bytesOf(await packed.read()))
    .update(bytesOf(await scales.read()))
    .update(bytesOf(await deq.read()))
    .digest("hex");
}

/** SHA-256 of data (e4m3 bytes), then scaleInv (f32 LE), then the dequantized weights (f32 LE). */
export async function fp8Digest(dev: Device, c: Fp8Case): Promise<string> {
  const [b, n, k] = c.shape;
  using w = upload(dev, seededF32(b * n * k, new Prng(c.seed)), c.shape, c.dtype);
  const q = fp8Quantize(w, { block: c.block });
  using data = q.data;
  using scaleInv = q.scaleInv;
  using deq = fp8Dequantize(q, "f32");
  return createHash("sha256")
    .update(bytesOf(await data.read()))
    .update(bytesOf(await scaleInv.read()))
    .update(bytesOf(await deq.read()))
    .digest("hex");
}

/** The case's f32 sums (rows [r0, r1) of x only when given), as bytes. */
async function fp8MatmulOut(dev: Device, c: Fp8MatmulCase, r0 = 0, r1 = c.m): Promise<Uint8Array> {
  const p = new Prng(c.seed);
  const xAll = seededF32(c.m * c.k, p);
  using w = upload(dev, seededF32(c.n * c.k, p), [c.n, c.k], "f32");
  using x = upload(dev, xAll.slice(r0 * c.k, r1 * c.k), [r1 - r0, c.k], "bf16");
  const q = fp8Quantize(w, { block: c.block });
  using data = q.data;
  using scaleInv = q.scaleInv;
  using y = fp8Matmul(x, q, { dtype: "f32" });
  return bytesOf(await y.read()).slice();
}

/** The case's output rows (bytes of y in x's dtype), rows [r0, r1) of x only when given. */
async function matmulOut(dev: Device, c: MatmulCase, r0 = 0, r1 = c.m): Promise<Uint8Array> {
  const p = new Prng(c.seed);
  const xAll = seededF32(c.m * c.k, p);
  const wv = seededF32(c.n * c.k, p);
  using x = upload(dev, xAll.slice(r0 * c.k, r1 * c.k), [r1 - r0, c.k], c.xDtype);
  using w = upload(dev, wv, [c.n, c.k], c.wDtype === "int4" ? "bf16" : c.wDtype);
  let y: Tensor;
  if (c.wDtype === "int4") {
    const q = quantize(w, { groupSize: c.groupSize, levels: 15 });
    y = int4Matmul(x, q);
    q.packed.dispose();
    q.scales.dispose();
  } else y = matmul(x, w);
  using out = y;
  return bytesOf(await out.read()).slice();
}

export async function matmulDigest(dev: Device, c: MatmulCase): Promise<string> {
  return createHash("sha256").update(await matmulOut(dev, c)).digest("hex");
}

/** Digests of every case (what a child process with other settings prints for comparison). */
export async function quantDigests(dev: Device): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const caps = dev.info().capabilities;
  if (caps.includes("int4.quantize")) for (const c of QUANT_CASES) out[c.name] = await quantDigest(dev, c);
  if (caps.includes("matmul")) for (const c of MATMUL_CASES) out[c.name] = await matmulDigest(dev, c);
  if (caps.includes("fp8.quantize")) for (const c of FP8_CASES) out[c.name] = await fp8Digest(dev, c);
  if (caps.includes("fp8.matmul"))
    for (const c of FP8_MATMUL_CASES) out[c.name] = createHash("sha256").update(await fp8MatmulOut(dev, c)).digest("hex");
  const { moeDigests } = await import("./moe-checks.js");
  return { ...out, ...(await moeDigests(dev)) };
}

export async function verifyQuant(dev: Device, opts: { repeats: number; onCheck?: (c: Check) => void }): Promise<Check[]> {
  const golden = loadQuantGolden();
  const checks: Check[] = [];
  const report = (c: Check) => {
    checks.push(c);
    opts.onCheck?.(c);
  };
  const caps = dev.info().capabilities;
  const repeated = async (name: string, digest: string, again: () => Promise<string>) => {
    let same = 0;
    for (let i = 1; i < opts.repeats; i++) if ((await again()) === digest) same++;
    report({ name: `repeat x${opts.repeats} ${name}`, ok: same === opts.repeats - 1, digest, detail: `${same + 1}/${opts.repeats} identical` });
  };
  if (caps.includes("int4.quantize"))
    for (const c of QUANT_CASES) {
      const digest = await quantDigest(dev, c);
      report({ name: `golden ${c.name}`, ok: digest === golden[c.name], digest, ...(digest === golden[c.name] ? {} : { detail: `expected ${golden[c.name]}` }) });
      await repeated(c.name, digest, () => quantDigest(dev, c));
    }
  if (caps.includes("fp8.quantize"))
    for (const c of FP8_CASES) {
      const digest = await fp8Digest(dev, c);
      report({ name: `golden ${c.name}`, ok: digest === golden[c.name], digest, ...(digest === golden[c.name] ? {} : { detail: `expected ${golden[c.name]}` }) });
      await repeated(c.name, digest, () => fp8Digest(dev, c));
    }
  const matmuls = async <C extends { name: string; m: number }>(cases: C[], out: (c: C, r0?: number, r1?: number) => Promise<Uint8Array>) => {
    for (const c of cases) {
      const full = await out(c);
      const digest = createHash("sha256").update(full).digest("hex");
      if (dev.kind === "cpu")
        report({ name: `golden ${c.name}`, ok: digest === golden[c.name], digest, ...(digest === golden[c.name] ? {} : { detail: `expected ${golden[c.name]}` }) });
      await repeated(c.name, digest, async () => createHash("sha256").update(await out(c)).digest("hex"));
      const rowBytes = full.length / c.m;
      let bad = -1;
      for (let r = 0; r < c.m && bad < 0; r++) {
        const alone = await out(c, r, r + 1);
        if (Buffer.compare(Buffer.from(alone), Buffer.from(full.subarray(r * rowBytes, (r + 1) * rowBytes))) !== 0) bad = r;
      }
      report({ name: `batch-invariant ${c.name}`, ok: bad < 0, digest, detail: bad < 0 ? `${c.m} rows alone == batch` : `row ${bad} differs` });
    }
  };
  if (caps.includes("matmul")) await matmuls(MATMUL_CASES, (c, r0, r1) => matmulOut(dev, c, r0, r1));
  if (caps.includes("fp8.matmul")) await matmuls(FP8_MATMUL_CASES, (c, r0, r1) => fp8MatmulOut(dev, c, r0, r1));
  const { verifyMoe } = await import("./moe-checks.js");
  await verifyMoe(dev, golden, opts.repeats, report);
  return checks;
}
