// What every benchmark shares: tinybench's median, the peer (onnxruntime-node) loaded where it exists, and
// the run's own measurement of the machine's read bandwidth.
import { Bench } from "tinybench";
import { native } from "../binding.js";
import type { Device } from "../device.js";

export type Ort = typeof import("onnxruntime-node");

/** Where and when a report was measured (every report's header). */
export interface RunInfo {
  date: string;
  machine: string;
  device: string;
  threads: number;
  isa: string;
  /** the machine's read bandwidth, GB/s, measured in the same run */
  readGBs: number;
}

/** The median latency in ms of fn, measured by tinybench for `time` ms after its own warm-up. */
export async function p50(time: number, fn: () => Promise<void>, warmupTime = Math.min(200, time / 4), iterations?: number): Promise<number> {
  const bench = new Bench({ time, warmupTime, ...(iterations ? { iterations } : {}) });
  bench.add("task", fn);
  await bench.run();
  const res = bench.tasks[0].result;
  if (!res || !("latency" in res)) throw new Error(`benchmark task failed: ${JSON.stringify(res)}`);
  return (res.latency as { p50: number }).p50;
}

/** onnxruntime-node on the cpu device (null elsewhere, or where it is not installed: then no peer column). */
export async function loadOrt(dev: Device, log: (s: string) => void): Promise<Ort | null> {
  if (dev.kind !== "cpu") return null;
  try {
    const mod = (await import("onnxruntime-node")) as Ort;
    return (mod as unknown as { default?: Ort }).default ?? mod;
  } catch {
    log("onnxruntime-node is not installed: no peer column");
    return null;
  }
}

/** The machine's read and copy bandwidth, measured now with the device's thread count. */
export function measureBandwidth(dev: Device, log: (s: string) => void): { readGBs: number; copyGBs: number } {
  const threads = dev.info().threads;
  log(`measuring memory bandwidth (${threads} threads)...`);
  return native().measureBandwidth(512, threads, 5);
}

/** The header of a report measured now on dev, with the read bandwidth of the same run. */
export function runInfo(dev: Device, readGBs: number): RunInfo {
  const info = dev.info();
  return { date: new Date().toISOString(), machine: info.name, device: dev.name, threads: info.threads, isa: info.isa ?? "", readGBs };
}

const READ_BYTES = 128 * 2 ** 20;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

let readBuffer: Uint8Array | null = null;

/**
 * A bandwidth-bound call against the machine's read bandwidth, measured within the same second: over
 * `rounds` rounds (9 unless given), 3 read passes over 128 MiB with the device's threads, then the call once untimed and 5
 * times timed. fraction: the median over rounds of (bytes / the median call) / (the best of the 3 passes);
 * typical: the same against the median pass; readGBs: the median of the rounds' best passes; gbs: the median
 * of the rounds' call GB/s (calls right after read passes: slower than a long run of calls). This shared
 * host's read bandwidth drifts from minute to minute (34 to 55 GB/s within an hour, the 2 vCPUs here), so
 * a call and a read pass minutes apart do not compare. `call` runs one call to completion on cold inputs;
 * `what` names it in the progress line written to `log`.
 */
export async function pairedFraction(
  bytes: number,
  threads: number,
  call: () => Promise<void>,
  opts: { what: string; log: (s: string) => void; rounds?: number },
) {
  const rounds = opts.rounds ?? 9;
  opts.log(`${opts.what}: ${rounds} rounds of (3 read passes over 128 MiB; the call once untimed, then 5 times timed)`);
  // NOTE: one buffer for every read pass of the process, written once and read once untimed, so that no
  // timed pass pays for dirty lines (see measureBandwidth) and no round pays for page faults.
  if (!readBuffer) readBuffer = new Uint8Array(READ_BYTES).fill(1);
  const buf = readBuffer;
  native().readPass(buf, threads);
  const calls: number[] = [];
  const typical: number[] = [];
  const strict: number[] = [];
  const reads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const passes = [0, 1, 2].map(() => native().readPass(buf, threads));
    await call();  // the reads evicted our buffers and put the pool to sleep (tinybench warms up too)
    const ms: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await call();
      ms.push(performance.now() - t0);
    }
    const gbs = bytes / (median(ms) / 1e3) / 1e9;
    calls.push(gbs);
    reads.push(Math.max(...passes));
    typical.push(gbs / median(passes));
    strict.push(gbs / Math.max(...passes));
  }
  return { fraction: median(strict), typical: median(typical), readGBs: median(reads), gbs: median(calls) };
}

/** A table cell for a paired fraction: "61% (32.7 of read 52.4)" (the rounds' call GB/s of their read GB/s). */
export function pairedCell(r: { fractionOfRead: number; readGBs?: number; pairedGBs?: number }): string {
  const pct = `${(r.fractionOfRead * 100).toFixed(0)}%`;
  if (r.readGBs === undefined) return pct;
  return `${pct} (${r.pairedGBs === undefined ? "" : `${r.pairedGBs.toFixed(1)} of `}read ${r.readGBs.toFixed(1)})`;
}
