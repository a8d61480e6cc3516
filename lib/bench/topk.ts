// Top-k throughput beside onnxruntime-node's TopK (the CPU peer), cold inputs, plus the machine's memory
// bandwidth measured in the same run. Inputs rotate through > 128 MiB of copies so that no call finds its
// input in the 32 MB L3 (SPEC: benchmark cold).
import { Bench } from "tinybench";
import { native } from "../binding.js";
import type { Device } from "../device.js";
import { topk } from "../ops/topk.js";
import type { Tensor } from "../tensor.js";
import { makeInput, type TopkCase } from "../verify/cases.js";
import { topkModel } from "./onnx-model.js";

export interface BenchRow {
  op: string;
  shape: string;
  k: number;
  device: string;
  ms: number;
  /** GB/s of scores read (one pass). */
  gbs: number;
  /** The machine's read bandwidth, measured just before this shape (the host's speed drifts). */
  readGBs: number;
  /** ms / (the time one read pass over the scores takes at the measured read bandwidth), inverted: 1.0 = at bandwidth. */
  fractionOfRead: number;
  peer: string | null;
  peerMs: number | null;
  /** peerMs / ms: above 1 means faster than the peer. */
  speedup: number | null;
}

export interface BenchReport {
  date: string;
  machine: string;
  device: string;
  threads: number;
  isa: string;
  readGBs: number;
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

type Ort = typeof import("onnxruntime-node");
async function loadOrt(): Promise<Ort | null> {
  try {
    return (await import("onnxruntime-node")) as Ort;
  } catch {
    return null;
  }
}

export async function benchTopk(
  dev: Device,
  opts: { time: number; shapes?: Array<[number, number]>; k?: number; log: (s: string) => void },
): Promise<BenchReport> {
  const k = opts.k ?? 2048;
  const info = dev.info();
  // NOTE: measured again before each shape, so that each ratio compares two measurements taken under the
  // same conditions (on a shared host, read bandwidth swings by a third from minute to minute).
  const measureBw = () => {
    opts.log(`measuring memory bandwidth (${info.threads} threads)...`);
    return native().measureBandwidth(512, info.threads, 5);
  };
  const bw = measureBw();
  const ortMod = dev.kind === "cpu" ? await loadOrt() : null;
  const ort = ortMod ? ((ortMod as unknown as { default?: Ort }).default ?? ortMod) : null;
  if (dev.kind === "cpu" && !ort) opts.log("onnxruntime-node is not installed: no peer column");
  const rows: BenchRow[] = [];
  for (const [r, c] of opts.shapes ?? TOPK_SHAPES) {
    const shape = `${r}x${c}`;
    const bytes = r * c * 4;
    const copies = Math.max(2, Math.ceil(COLD_BYTES / bytes));
    opts.log(`topk ${shape} k=${k}: ${copies} cold copies of ${(bytes / 2 ** 20).toFixed(1)} MiB`);
    const rowBw = rows.length === 0 ? bw : measureBw();
    const tc: TopkCase = { name: shape, dtype: "f32", rows: r, cols: c, k, gen: "uniform", seed: 42 };
    const host = makeInput(tc).data as Float32Array;
    const inputs: Tensor[] = [];
    for (let i = 0; i < copies; i++) inputs.push(dev.tensor(host, [r, c]));
    await dev.sync();
    let next = 0;
    const bench = new Bench({ time: opts.time, warmupTime: Math.min(200, opts.time / 4) });
    bench.add("glm-kernels", async () => {
      const out = topk(inputs[next++ % copies], k);
      await dev.sync();
      out.indices.dispose();
      out.values.dispose();
    });
    let session: import("onnxruntime-node").InferenceSession | null = null;
    const ortInputs: import("onnxruntime-node").Tensor[] = [];
    if (ort) {
      session = await ort.InferenceSession.create(topkModel(r, c, k), {
        intraOpNumThreads: info.threads,
        interOpNumThreads: 1,
      });
      for (let i = 0; i < copies; i++) ortInputs.push(new ort.Tensor("float32", host.slice(), [r, c]));
      let j = 0;
      bench.add("onnxruntime-node", async () => {
        await session!.run({ X: ortInputs[j++ % copies] });
      });
    }
    await bench.run();
    const ms = (name: string) => {
      const t = bench.tasks.find((x) => x.name === name)?.result;
      return t && "latency" in t ? (t.latency as { p50: number }).p50 : NaN;
    };
    const ours = ms("glm-kernels");
    const peerMs = ort ? ms("onnxruntime-node") : null;
    const gbs = bytes / (ours / 1e3) / 1e9;
    rows.push({
      op: "topk",
      shape,
      k,
      device: dev.name,
      ms: ours,
      gbs,
      readGBs: rowBw.readGBs,
      fractionOfRead: gbs / rowBw.readGBs,
      peer: ort ? "onnxruntime-node TopK" : null,
      peerMs,
      speedup: peerMs === null ? null : peerMs / ours,
    });
    for (const t of inputs) t.dispose();
    await session?.release();
  }
  return {
    date: new Date().toISOString(),
    machine: info.name,
    device: dev.name,
    threads: info.threads,
    isa: info.isa ?? "",
    readGBs: bw.readGBs,
    copyGBs: bw.copyGBs,
    rows,
  };
}

export function formatReport(rep: BenchReport): string {
  const lines = [
    `${rep.machine} | device ${rep.device} | ${rep.threads} threads | isa ${rep.isa} | read ${rep.readGBs.toFixed(1)} GB/s, copy ${rep.copyGBs.toFixed(1)} GB/s (same run; read measured again before each shape)`,
    "op   | shape       | k    | ms (p50) | GB/s  | read GB/s | of read bw | peer ms (p50) | x peer",
    "-----|-------------|------|----------|-------|-----------|------------|---------------|-------",
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
        (r.peerMs === null ? "-" : r.peerMs.toFixed(3)).padStart(13),
        r.speedup === null ? "-" : `${r.speedup.toFixed(1)}x`,
      ].join(" | "),
    );
  return lines.join("\n");
}
