// Latency of one top-k call, from the call to its values in JS (topk + await read()), idle and with N busy
// processes beside it (issue 17): what a decode step pays per layer. Inputs rotate through > 64 MiB of
// copies, so each call reads its row from memory, not from the L3.
import { spawn, type ChildProcess } from "node:child_process";
import type { Device } from "../device.js";
import type { TopkOptions, TopkResult } from "../ops/topk.js";
import type { Tensor } from "../tensor.js";
import { makeInput } from "../verify/cases.js";

export interface LatencyRow {
  shape: string;
  k: number;
  /** Busy processes running beside the calls (0: idle). */
  load: number;
  calls: number;
  medianUs: number;
  p99Us: number;
}

export interface LatencyReport {
  date: string;
  machine: string;
  device: string;
  threads: number;
  cores: number;
  rows: LatencyRow[];
}

/** The shapes of issue 17: a small call (its fixed cost) and one decode row of the DSA indexer. */
export const LATENCY_SHAPES: Array<{ rows: number; cols: number; k: number }> = [
  { rows: 1, cols: 4096, k: 64 },
  { rows: 1, cols: 131072, k: 2048 },
];

type TopkFn = (scores: Tensor, k?: number, options?: TopkOptions) => TopkResult;

/** N processes that spin on a core each until stopped. */
export function startLoad(n: number): () => void {
  const kids: ChildProcess[] = [];
  for (let i = 0; i < n; i++) kids.push(spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  return () => {
    for (const c of kids) c.kill("SIGKILL");
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Times `calls` back-to-back calls (after 50 untimed ones) of top-k on one shape; microseconds. */
export async function timeCalls(dev: Device, topk: TopkFn, rows: number, cols: number, k: number, calls: number) {
  const bytes = rows * cols * 4;
  const copies = Math.max(2, Math.ceil((64 * 2 ** 20) / bytes));
  const host = makeInput({ name: "latency", dtype: "f32", rows, cols, k, gen: "uniform", seed: 7 }).data;
  const inputs = Array.from({ length: copies }, () => dev.tensor(host, [rows, cols], "f32"));
  await dev.sync();
  const times: number[] = [];
  for (let i = -50; i < calls; i++) {
    const t0 = performance.now();
    const r = topk(inputs[(i + 50) % copies], k);
    await r.values.read();
    const t1 = performance.now();
    r.indices.dispose();
    r.values.dispose();
    if (i >= 0) times.push((t1 - t0) * 1000);
  }
  for (const t of inputs) t.dispose();
  times.sort((a, b) => a - b);
  return { medianUs: quantile(times, 0.5), p99Us: quantile(times, 0.99) };
}

export async function benchLatency(
  dev: Device,
  topk: TopkFn,
  opts: { loads: number[]; calls: number; log?: (s: string) => void },
): Promise<LatencyReport> {
  const rows: LatencyRow[] = [];
  for (const load of opts.loads) {
    const stop = startLoad(load);
    try {
      if (load) await new Promise((r) => setTimeout(r, 300)); // let the busy processes start spinning
      for (const s of LATENCY_SHAPES) {
        opts.log?.(`latency ${s.rows}x${s.cols} k=${s.k}, ${load} busy processes...`);
        const t = await timeCalls(dev, topk, s.rows, s.cols, s.k, opts.calls);
        rows.push({ shape: `${s.rows}x${s.cols}`, k: s.k, load, calls: opts.calls, ...t });
      }
    } finally {
      stop();
    }
  }
  const info = dev.info();
  const { availableParallelism } = await import("node:os");
  return {
    date: new Date().toISOString(),
    machine: info.name,
    device: dev.name,
    threads: info.threads,
    cores: availableParallelism(),
    rows,
  };
}

export function formatLatency(rep: LatencyReport): string {
  const idle = new Map(rep.rows.filter((r) => r.load === 0).map((r) => [r.shape, r]));
  const lines = [
    `top-k latency, call to values in JS (${rep.device}, ${rep.machine}, ${rep.threads} threads, ${rep.cores} cores)`,
    "| shape | k | busy processes | calls | median us | p99 us | median vs idle |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rep.rows) {
    const base = idle.get(r.shape);
    const ratio = base ? `${(r.medianUs / base.medianUs).toFixed(2)}x` : "-";
    lines.push(`| ${r.shape} | ${r.k} | ${r.load} | ${r.calls} | ${r.medianUs.toFixed(1)} | ${r.p99Us.toFixed(1)} | ${ratio} |`);
  }
  return lines.join("\n");
}
