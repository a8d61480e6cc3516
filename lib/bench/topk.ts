// Top-k throughput beside onnxruntime-node's TopK (the CPU peer), cold inputs, plus the machine's memory
// bandwidth measured in the same run. Inputs rotate through > 128 MiB of copies so that no call finds its
// input in the L3 (32-48 MB here; SPEC: benchmark cold).
import type { Device } from "../device.js";
import { topk } from "../ops/topk.js";
import type { Tensor } from "../tensor.js";
import { makeInput, type TopkCase } from "../verify/cases.js";
import { loadOrt, measureBandwidth, p50, pairedFraction, runInfo } from "./common.js";
import type { RunInfo } from "./common.js";
import { topkModel } from "./onnx-model.js";

export interface BenchRow {
  op: string;
  shape: string;
  k: number;
  device: string;
  ms: number;
  /** GB/s of scores read (one pass). */
  gbs: number;
  /** The machine's read bandwidth: the median of the paired rounds' best reads (see fractionOfRead). */
  readGBs: number;
  /**
   * The fraction of read bandwidth that top-k reaches (1.0 = scores read at the read bandwidth): the median,
   * over `pairedRounds` rounds, of (scores read per second by top-k, median of 5 calls after one untimed
   * call) / (read bandwidth, best of 3 passes over 128 MiB, measured right before those calls). Typical
   * top-k against the best read, taken within the same second: this shared host's speed drifts from
   * minute to minute, so two measurements minutes apart do not compare.
   */
  fractionOfRead: number;
  /**
   * The same rounds, the typical call against the typical read (the median of the 3 passes): the host
   * also has slow stretches of a few milliseconds, and the best of 3 passes is the quietest of them.
   */
  fractionOfTypicalRead: number;
  pairedRounds: number;
  peer: string | null;
  peerMs: number | null;
  /** peerMs / ms: above 1 means faster than the peer. */
  speedup: number | null;
}

export interface BenchReport extends RunInfo {
  copyGBs: number;
  rows: BenchRow[];
}

export const TOPK_SHAPES: Array<[number, number]> = [
  [32, 131072],
  [512, 32768],
  [1, 131072],
  [64, 131072],
];

const COLD_BYTES = 128 * 2 ** 20;
const PAIRED_ROUNDS = 15;

export async function benchTopk(
  dev: Device,
  opts: { time: number; shapes?: Array<[number, number]>; k?: number; log: (s: string) => void },
): Promise<BenchReport> {
  const k = opts.k ?? 2048;
  const info = dev.info();
  const bw = measureBandwidth(dev, opts.log);
  const ort = await loadOrt(dev, opts.log);
  const rows: BenchRow[] = [];
  for (const [r, c] of opts.shapes ?? TOPK_SHAPES) {
    const shape = `${r}x${c}`;
    const bytes = r * c * 4;
    const copies = Math.max(2, Math.ceil(COLD_BYTES / bytes));
    opts.log(`topk ${shape} k=${k}: ${copies} cold copies of ${(bytes / 2 ** 20).toFixed(1)} MiB`);
    const tc: TopkCase = { name: shape, dtype: "f32", rows: r, cols: c, k, gen: "uniform", seed: 42 };
    const host = makeInput(tc).data as Float32Array;
    const inputs: Tensor[] = [];
    for (let i = 0; i < copies; i++) inputs.push(dev.tensor(host, [r, c]));
    await dev.sync();
    let next = 0;
    // NOTE: one Bench per contender, each warmed up right before it is measured, and the peer's session
    // created only after ours is done. A shared Bench warms every task first and then measures them in
    // turn, so the peer's warm-up ran right before our measured calls, its threads competing for the
    // same 2 cores as they wound down.
    const call = async () => {
      const out = topk(inputs[next++ % copies], k);
      await dev.sync();
      out.indices.dispose();
      out.values.dispose();
    };
    const ours = await p50(opts.time, call);
    const paired = await pairedFraction(bytes, info.threads, call, { what: `topk ${shape}`, log: opts.log, rounds: PAIRED_ROUNDS });
    let peerMs: number | null = null;
    if (ort) {
      const session = await ort.InferenceSession.create(topkModel(r, c, k), {
        intraOpNumThreads: info.threads,
        interOpNumThreads: 1,
      });
      const ortInputs: import("onnxruntime-node").Tensor[] = [];
      for (let i = 0; i < copies; i++) ortInputs.push(new ort.Tensor("float32", host.slice(), [r, c]));
      let j = 0;
      peerMs = await p50(opts.time, async () => {
        await session.run({ X: ortInputs[j++ % copies] });
      });
      await session.release();
    }
    const gbs = bytes / (ours / 1e3) / 1e9;
    rows.push({
      op: "topk",
      shape,
      k,
      device: dev.name,
      ms: ours,
      gbs,
      readGBs: paired.readGBs,
      fractionOfRead: paired.fraction,
      fractionOfTypicalRead: paired.typical,
      pairedRounds: PAIRED_ROUNDS,
      peer: ort ? "onnxruntime-node TopK" : null,
      peerMs,
      speedup: peerMs === null ? null : peerMs / ours,
    });
    for (const t of inputs) t.dispose();
  }
  return {
    ...runInfo(dev, bw.readGBs),
    copyGBs: bw.copyGBs,
    rows,
  };
}

export function formatReport(rep: BenchReport): string {
  const lines = [
    `${rep.machine} | device ${rep.device} | ${rep.threads} threads | isa ${rep.isa} | read ${rep.readGBs.toFixed(1)} GB/s, copy ${rep.copyGBs.toFixed(1)} GB/s (same run; "of read bw" pairs each round of calls with reads measured just before them: the median call against the best read, and against the median read)`,
    "op   | shape       | k    | ms (p50) | GB/s  | read GB/s | of read bw | of median read | peer ms (p50) | x peer",
    "-----|-------------|------|----------|-------|-----------|------------|----------------|---------------|-------",
  ];
  for (const r of rep.rows)
    lines.push(
      [
        r.op.padEnd(4),
        r.shape.padEnd(11),
        String(r.k).padEnd(4),
        r.ms.toFixed(3).padStart(8),
        r.gbs.toFixed(1).padStart(5),
        r.readGBs.toFixed(1).padStart(9),
        `${(r.fractionOfRead * 100).toFixed(0)}%`.padStart(10),
        `${(r.fractionOfTypicalRead * 100).toFixed(0)}%`.padStart(14),
        (r.peerMs === null ? "-" : r.peerMs.toFixed(3)).padStart(13),
        r.speedup === null ? "-" : `${r.speedup.toFixed(1)}x`,
      ].join(" | "),
    );
  return lines.join("\n");
}
