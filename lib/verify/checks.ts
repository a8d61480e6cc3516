// The determinism checks behind `glm-kernels verify` and test/determinism/ (SPEC 6).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../binding.js";
import type { Device } from "../device.js";
import { topk } from "../ops/topk.js";
import { GOLDEN_CASES, makeInput, type TopkCase, type TopkInput } from "./cases.js";
import { Prng } from "./prng.js";

export interface TopkOutput {
  indices: Int32Array;
  values: Float32Array;
}

export interface Check {
  name: string;
  ok: boolean;
  digest: string;
  detail?: string;
}

/** SHA-256 of the indices bytes then the values bytes (little-endian). */
export function digestOf(out: TopkOutput): string {
  return createHash("sha256")
    .update(new Uint8Array(out.indices.buffer, out.indices.byteOffset, out.indices.byteLength))
    .update(new Uint8Array(out.values.buffer, out.values.byteOffset, out.values.byteLength))
    .digest("hex");
}

export async function runTopk(dev: Device, c: TopkCase, input: TopkInput, rows = c.rows): Promise<TopkOutput> {
  using scores = dev.tensor(input.data, [rows, c.cols], input.dtype);
  const r = topk(scores, c.k, { lengths: input.lengths, rowStarts: input.rowStarts });
  using indices = r.indices;
  using values = r.values;
  return { indices: (await indices.read()) as Int32Array, values: (await values.read()) as Float32Array };
}

export function goldenPath(): string {
  return join(packageRoot(), "test", "determinism", "golden.json");
}

export function loadGolden(): Record<string, string> {
  return JSON.parse(readFileSync(goldenPath(), "utf8")).digests as Record<string, string>;
}

/** The int4 and fp8 quantizers' and the matmuls' digests (lib/verify/quant-checks.ts). */
export function loadQuantGolden(): Record<string, string> {
  return JSON.parse(readFileSync(goldenPath(), "utf8")).quantDigests as Record<string, string>;
}

/** Row r of a batch as its own one-row input. */
export function rowInput(c: TopkCase, input: TopkInput, r: number): TopkInput {
  const w = c.cols;
  return {
    data: input.data.slice(r * w, (r + 1) * w),
    dtype: input.dtype,
    lengths: input.lengths?.slice(r, r + 1),
    rowStarts: input.rowStarts?.slice(r, r + 1),
  };
}

/** The batch with its rows in a seeded random order; perm[j] is the source row of row j. */
export function shuffledInput(c: TopkCase, input: TopkInput, seed: number): { input: TopkInput; perm: number[] } {
  const perm = Array.from({ length: c.rows }, (_, i) => i);
  const p = new Prng(seed);
  for (let i = perm.length - 1; i > 0; i--) {
    const j = p.below(i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const data = new (input.data.constructor as Float32ArrayConstructor)(input.data.length) as typeof input.data;
  perm.forEach((src, dst) => data.set(input.data.subarray(src * c.cols, (src + 1) * c.cols), dst * c.cols));
  const pick = (a?: Int32Array) => (a ? Int32Array.from(perm, (src) => a[src]) : undefined);
  return { input: { data, dtype: input.dtype, lengths: pick(input.lengths), rowStarts: pick(input.rowStarts) }, perm };
}

function rowsEqual(a: TopkOutput, ra: number, b: TopkOutput, rb: number, k: number): boolean {
  for (let j = 0; j < k; j++) {
    if (a.indices[ra * k + j] !== b.indices[rb * k + j]) return false;
    if (!Object.is(a.values[ra * k + j], b.values[rb * k + j]) && !(Number.isNaN(a.values[ra * k + j]) && Number.isNaN(b.values[rb * k + j])))
      return false;
  }
  return true;
}

export interface VerifyOptions {
  repeats: number;
  cases?: TopkCase[];
  onCheck?: (c: Check) => void;
}

/** golden digests, repeated runs, and every row alone vs inside a shuffled batch. */
export async function verifyTopk(dev: Device, opts: VerifyOptions): Promise<Check[]> {
  const golden = loadGolden();
  const checks: Check[] = [];
  const report = (c: Check) => {
    checks.push(c);
    opts.onCheck?.(c);
  };
  for (const c of opts.cases ?? GOLDEN_CASES) {
    const input = makeInput(c);
    const first = await runTopk(dev, c, input);
    const digest = digestOf(first);
    const want = golden[c.name];
    report({ name: `golden ${c.name}`, ok: digest === want, digest, ...(digest === want ? {} : { detail: `expected ${want}` }) });
    let same = 0;
    for (let i = 1; i < opts.repeats; i++) if (digestOf(await runTopk(dev, c, input)) === digest) same++;
    report({ name: `repeat x${opts.repeats} ${c.name}`, ok: same === opts.repeats - 1, digest, detail: `${same + 1}/${opts.repeats} identical` });
    const { input: shuffled, perm } = shuffledInput(c, input, c.seed + 1000);
    const batch = await runTopk(dev, c, shuffled);
    let bad = -1;
    for (let j = 0; j < c.rows && bad < 0; j++) {
      const alone = await runTopk(dev, c, rowInput(c, shuffled, j), 1);
      if (!rowsEqual(batch, j, alone, 0, c.k) || !rowsEqual(batch, j, first, perm[j], c.k)) bad = j;
    }
    report({
      name: `batch-invariant ${c.name}`,
      ok: bad < 0,
      digest,
      detail: bad < 0 ? `${c.rows} rows alone == shuffled batch` : `row ${perm[bad]} differs (at shuffled position ${bad})`,
    });
  }
  return checks;
}

/** Digest of every golden case: what a child process with other settings prints for comparison. */
export async function goldenDigests(dev: Device, cases: TopkCase[] = GOLDEN_CASES): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const c of cases) out[c.name] = digestOf(await runTopk(dev, c, makeInput(c)));
  return out;
}
