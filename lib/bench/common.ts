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
