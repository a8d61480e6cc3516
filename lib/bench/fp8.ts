// fp8.matmul beside what a Node user has instead: onnxruntime-node's MatMul on the same weights dequantized
// to f32 (SPEC 5, issue 19), in the same run, cold: each contender rotates through copies of its weights that
// together exceed the L3. Reports fp8 weight bytes (codes + scales) per second against the read bandwidth.
import type { Device } from "../device.js";
import { dequantize, matmul, quantize, type Fp8Weights } from "../ops/fp8.js";
import { loadOrt, measureBandwidth, p50 as median, pairedCell, pairedFraction, runInfo } from "./common.js";
import type { RunInfo } from "./common.js";
import { matmulModel } from "./onnx-model.js";

export interface Fp8BenchRow {
  m: number;
  n: number;
  k: number;
  ms: number;
  weightGBs: number;
  /** paired rounds (bench/common.ts, pairedFraction): the median call against the best read just before it */
  fractionOfRead: number;
  /** the median of the rounds' best reads, GB/s */
  readGBs?: number;
  /** the median of the rounds' call GB/s (right after the read passes) */
  pairedGBs?: number;
  /** onnxruntime-node MatMul on f32 weights (the dequantized fp8 ones), p50 ms */
  peerMs: number | null;
  speedup: number | null;
}

export interface Fp8BenchReport extends RunInfo {
  rows: Fp8BenchRow[];
}

const COLD_BYTES = 96 * 2 ** 20;
const MAX_COPIES = 64;

export async function benchFp8(
  dev: Device,
  opts: { time: number; shapes?: Array<[number, number]>; ms?: number[]; log: (s: string) => void; readGBs?: number },
): Promise<Fp8BenchReport> {
  const info = dev.info();
  const bw = opts.readGBs === undefined ? measureBandwidth(dev, opts.log) : { readGBs: opts.readGBs };
  const ort = await loadOrt(dev, opts.log);
  const p50 = (time: number, fn: () => Promise<void>) => median(time, fn, Math.min(100, time / 4), 3);
  const rows: Fp8BenchRow[] = [];
  for (const [n, k] of opts.shapes ?? [[2048, 6144], [6144, 2048]]) {
    let s = n + k;
    const w = dev.tensor(Float32Array.from({ length: n * k }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.05), [n, k]);
    const bytes = n * k + Math.ceil(n / 128) * Math.ceil(k / 128) * 4;
    const copies = Math.min(MAX_COPIES, Math.max(2, Math.ceil(COLD_BYTES / bytes)));
    opts.log(`fp8 ${n}x${k}: ${copies} cold copies of ${(bytes / 2 ** 20).toFixed(1)} MiB`);
    const qs: Fp8Weights[] = Array.from({ length: copies }, () => quantize(w));
    const f32 = (await dequantize(qs[0], "f32").read()) as Float32Array;
    for (const m of opts.ms ?? [1, 8, 64]) {
      const xs = new Uint16Array(m * k).map((_, i) => 0x3f00 + (i % 97));
      const x = dev.tensor(xs, [m, k], "bf16");
      let i = 0;
      const call = async () => {
        const y = matmul(x, qs[i++ % copies]);
        await y.read();
        y.dispose();
      };
      const ms = await p50(opts.time, call);
      const paired = await pairedFraction(bytes, info.threads, call, { what: `  M=${m} fp8.matmul`, log: opts.log });
      let peerMs: number | null = null;
      if (ort) {
        const sessions: Array<import("onnxruntime-node").InferenceSession> = [];
        const sessionCopies = Math.min(8, Math.max(2, Math.ceil(COLD_BYTES / (n * k * 4))));
        for (let c = 0; c < sessionCopies; c++)
          sessions.push(await ort.InferenceSession.create(matmulModel(m, n, k, f32), { intraOpNumThreads: info.threads, interOpNumThreads: 1 }));
        const a = new ort.Tensor("float32", Float32Array.from(xs, (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]), [m, k]);
        let c = 0;
        peerMs = await p50(opts.time, async () => {
          await sessions[c++ % sessions.length].run({ A: a });
        });
        for (const ses of sessions) await ses.release();
      }
      x.dispose();
      const gbs = bytes / (ms / 1e3) / 1e9;
      rows.push({ m, n, k, ms, weightGBs: gbs, fractionOfRead: paired.fraction, readGBs: paired.readGBs, pairedGBs: paired.gbs, peerMs, speedup: peerMs === null ? null : peerMs / ms });
      opts.log(`  M=${m}: ${ms.toFixed(3)} ms${peerMs === null ? "" : `, onnxruntime MatMul (f32 weights) ${peerMs.toFixed(3)} ms`}`);
    }
    for (const q of qs) {
      q.data.dispose();
      q.scaleInv.dispose();
    }
    w.dispose();
  }
  return { ...runInfo(dev, bw.readGBs), rows };
}

export function formatFp8(rep: Fp8BenchReport): string {
  const lines = [
    `${rep.machine} | device ${rep.device} | ${rep.threads} threads | isa ${rep.isa} | read ${rep.readGBs.toFixed(1)} GB/s`,
    "| M | N x K | fp8.matmul ms | fp8 weight GB/s | of read bw (paired rounds: call GB/s of read GB/s) | onnxruntime MatMul (f32 weights) ms | x peer |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rep.rows)
    lines.push(
      `| ${r.m} | ${r.n} x ${r.k} | ${r.ms.toFixed(3)} | ${r.weightGBs.toFixed(1)} | ${pairedCell(r)} | ` +
        `${r.peerMs === null ? "-" : r.peerMs.toFixed(3)} | ${r.speedup === null ? "-" : `${r.speedup.toFixed(2)}x`} |`,
    );
  return lines.join("\n");
}
