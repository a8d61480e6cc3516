// int4.matmul beside onnxruntime-node's MatMulNBits on the same bytes (SPEC 4) and our dense bf16 matmul,
// in the same run, cold: each contender rotates through copies of its weights that together exceed the L3.
// Reports weight bytes (codes + scales) per second against the read bandwidth measured in the same run,
// and GFLOP/s against an estimate of the machine's FMA peak (twice that with VDPBF16PS: isa avx512bf16).
import { readFileSync } from "node:fs";
import { native } from "../binding.js";
import type { Device } from "../device.js";
import { int4Matmul, matmul } from "../ops/matmul.js";
import { quantize, type Int4Weights } from "../ops/int4.js";
import type { Tensor } from "../tensor.js";
import { loadOrt, measureBandwidth, p50 as median, pairedCell, pairedFraction, runInfo } from "./common.js";
import type { RunInfo } from "./common.js";
import { matmulNBitsModel } from "./onnx-model.js";

export interface Int4BenchRow {
  m: number;
  n: number;
  k: number;
  groupSize: number;
  /** int4.matmul, p50 ms (bf16 x) */
  ms: number;
  /** weight + scale bytes per second, GB/s */
  weightGBs: number;
  /** paired rounds (bench/common.ts, pairedFraction): the median call against the best read just before it */
  fractionOfRead: number;
  /** the same rounds against the median read */
  fractionOfTypicalRead?: number;
  /** the median of the rounds' best reads, GB/s */
  readGBs?: number;
  /** the median of the rounds' call GB/s (right after the read passes) */
  pairedGBs?: number;
  gflops: number;
  fractionOfPeak: number;
  /** onnxruntime-node MatMulNBits, p50 ms (f32 A: what it takes) */
  peerMs: number | null;
  speedup: number | null;
  /** our dense bf16 matmul on the same shape, p50 ms */
  denseMs: number;
}

export interface Int4BenchReport extends RunInfo {
  /** threads x 32 flops per cycle (one 16-lane fma; twice that for VDPBF16PS) x clockGHz: an estimate */
  peakGflops: number;
  /** the core clock measured in the same run (bench/int4.ts, clockGHz); absent where /proc/cpuinfo's was used */
  clockGHz?: number;
  rows: Int4BenchRow[];
}

export const INT4_SHAPES: Array<[number, number]> = [
  [6144, 6144],
  [2048, 6144],
];
export const INT4_M = [1, 4, 16, 64];
export const INT4_GROUPS = [32, 128];
const COLD_BYTES = 96 * 2 ** 20;
// Small shapes stay warm (their copies would be thousands): these caps keep the setup bounded.
const MAX_COPIES = 64;
const MAX_SESSIONS = 8;

// The core clock: measured (a chain of dependent additions: /proc/cpuinfo's "cpu MHz" is a virtual machine's
// nominal clock here, 2.6 GHz on cores that ran at 3.7, which put measured GFLOP/s above the "peak"), else
// what /proc/cpuinfo says.
function clockGHz(): { ghz: number; measured: boolean } {
  const nb = native();
  const measured = typeof nb.measureClockGHz === "function" ? nb.measureClockGHz() : NaN;  // (an older binary lacks it)
  if (measured > 0) return { ghz: measured, measured: true };
  try {
    const mhz = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return { ghz: mhz ? Number(mhz[1]) / 1000 : NaN, measured: false };
  } catch {
    return { ghz: NaN, measured: false };
  }
}

// Deterministic weights and activations (a fixed LCG), bf16 bits.
function bf16Values(n: number, seed: number, scale: number): Uint16Array {
  const out = new Uint16Array(n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[0] = (s / 2 ** 32 - 0.5) * scale;
    out[i] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16;
  }
  return out;
}

export async function benchInt4(
  dev: Device,
  opts: { time: number; shapes?: Array<[number, number]>; ms?: number[]; groups?: number[]; log: (s: string) => void },
): Promise<Int4BenchReport> {
  const info = dev.info();
  const bw = measureBandwidth(dev, opts.log);
  const ort = await loadOrt(dev, opts.log);
  const p50 = (time: number, fn: () => Promise<void>) => median(time, fn, Math.min(100, time / 4), 3);
  // (VDPBF16PS, the int4 kernel's instruction for bf16 x on avx512bf16, does two products per lane where an
  // fma does one: that path's peak is twice the FMA peak)
  const clock = clockGHz();
  const peakGflops = info.threads * 32 * clock.ghz * (info.isa === "avx512bf16" ? 2 : 1);
  const rows: Int4BenchRow[] = [];
  for (const [n, k] of opts.shapes ?? INT4_SHAPES) {
    const wBits = bf16Values(n * k, n + k, 0.05);
    const w = dev.tensor(wBits, [n, k], "bf16");
    const denseCopies = Math.min(MAX_COPIES, Math.max(2, Math.ceil(COLD_BYTES / (n * k * 2))));
    const dense: Tensor[] = [w, ...Array.from({ length: denseCopies - 1 }, () => dev.tensor(wBits, [n, k], "bf16"))];
    for (const g of opts.groups ?? INT4_GROUPS) {
      const qBytes = (n * k) / 2 + ((n * k) / g) * 2;
      const copies = Math.min(MAX_COPIES, Math.max(2, Math.ceil(COLD_BYTES / qBytes)));
      opts.log(`int4 ${n}x${k} group ${g}: ${copies} cold copies of ${(qBytes / 2 ** 20).toFixed(1)} MiB`);
      const qs: Int4Weights[] = Array.from({ length: copies }, () => quantize(w, { groupSize: g, levels: 16 }));
      // the peer's weights: the same bytes, scales widened to f32
      let sessions: Array<import("onnxruntime-node").InferenceSession> = [];
      const packedHost = new Uint8Array(((await qs[0].packed.read()) as Int32Array).buffer);
      const scalesHost = Float32Array.from((await qs[0].scales.read()) as Uint16Array, (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]);
      for (const m of opts.ms ?? INT4_M) {
        const x = dev.tensor(bf16Values(m * k, m, 1), [m, k], "bf16");
        let i = 0;
        const call = async () => {
          const y = int4Matmul(x, qs[i++ % copies]);
          await y.read();
          y.dispose();
        };
        const ms = await p50(opts.time, call);
        const paired = await pairedFraction(qBytes, info.threads, call, { what: `  M=${m} int4.matmul`, log: opts.log });
        let j = 0;
        const denseMs = await p50(opts.time, async () => {
          const y = matmul(x, dense[j++ % dense.length]);
          await y.read();
          y.dispose();
        });
        let peerMs: number | null = null;
        if (ort) {
          const model = matmulNBitsModel(m, n, k, g, packedHost, scalesHost);
          const sessionCopies = Math.min(MAX_SESSIONS, Math.max(2, Math.ceil(COLD_BYTES / (qBytes * 2))));
          sessions = [];
          for (let c = 0; c < sessionCopies; c++)
            sessions.push(await ort.InferenceSession.create(model, { intraOpNumThreads: info.threads, interOpNumThreads: 1 }));
          const a = new ort.Tensor("float32", Float32Array.from(bf16Values(m * k, m, 1), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]), [m, k]);
          let c = 0;
          peerMs = await p50(opts.time, async () => {
            await sessions[c++ % sessions.length].run({ A: a });
          });
          for (const s of sessions) await s.release();
        }
        x.dispose();
        const gflops = (2 * m * n * k) / (ms / 1e3) / 1e9;
        rows.push({
          m,
          n,
          k,
          groupSize: g,
          ms,
          weightGBs: qBytes / (ms / 1e3) / 1e9,
          fractionOfRead: paired.fraction,
          fractionOfTypicalRead: paired.typical,
          readGBs: paired.readGBs, pairedGBs: paired.gbs,
          gflops,
          fractionOfPeak: gflops / peakGflops,
          peerMs,
          speedup: peerMs === null ? null : peerMs / ms,
          denseMs,
        });
        opts.log(`  M=${m}: ${ms.toFixed(3)} ms${peerMs === null ? "" : `, MatMulNBits ${peerMs.toFixed(3)} ms`}, dense bf16 ${denseMs.toFixed(3)} ms`);
      }
      for (const q of qs) {
        q.packed.dispose();
        q.scales.dispose();
      }
    }
    for (const t of dense) t.dispose();
  }
  return { ...runInfo(dev, bw.readGBs), peakGflops, ...(clock.measured ? { clockGHz: clock.ghz } : {}), rows };
}

export function formatInt4(rep: Int4BenchReport): string {
  const lines = [
    `${rep.machine} | device ${rep.device} | ${rep.threads} threads | isa ${rep.isa} | read ${rep.readGBs.toFixed(1)} GB/s | ${rep.isa === "avx512bf16" ? "bf16 dot-product (VDPBF16PS) peak" : "FMA peak"} about ${rep.peakGflops.toFixed(0)} GFLOP/s (estimate${rep.clockGHz ? `: ${rep.clockGHz.toFixed(2)} GHz measured` : ""})`,
    "| M | N x K | group | int4 ms | weight GB/s | of read bw (paired rounds: call GB/s of read GB/s) | GFLOP/s | of peak | MatMulNBits ms | x peer | dense bf16 ms | x dense |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rep.rows)
    lines.push(
      `| ${r.m} | ${r.n} x ${r.k} | ${r.groupSize} | ${r.ms.toFixed(3)} | ${r.weightGBs.toFixed(1)} | ${pairedCell(r)} | ` +
        `${r.gflops.toFixed(1)} | ${(r.fractionOfPeak * 100).toFixed(0)}% | ${r.peerMs === null ? "-" : r.peerMs.toFixed(3)} | ` +
        `${r.speedup === null ? "-" : `${r.speedup.toFixed(2)}x`} | ${r.denseMs.toFixed(3)} | ${(r.denseMs / r.ms).toFixed(2)}x |`,
    );
  return lines.join("\n");
}
