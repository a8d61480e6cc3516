// moe.route + moe.experts at GLM-5's shapes scaled to one machine (issue 19): H 6144, I 2048, 16 experts,
// top-8, T tokens. The expert stacks (604 MB of e4m3 codes and scales) are far larger than any L3, and each
// call draws another route, so every call streams its experts' weights cold. Reports tokens/s and the weight
// bytes of the experts a call touches per second, against the read bandwidth measured in the same run; the
// fp8.matmul peer comparison (onnxruntime-node MatMul on the dequantized weights) is `bench fp8`'s.
import type { Device } from "../device.js";
import type { Fp8Weights } from "../ops/fp8.js";
import { experts, route } from "../ops/moe.js";
import type { Tensor } from "../tensor.js";
import { measureBandwidth, p50 as median, pairedCell, pairedFraction, runInfo, type RunInfo } from "./common.js";
import { benchFp8, type Fp8BenchRow } from "./fp8.js";

export interface MoeBenchRow {
  tokens: number;
  ms: number;
  tokensPerS: number;
  /** distinct experts a call touches, averaged over the routes drawn */
  expertsTouched: number;
  weightGBs: number;
  /** paired rounds (bench/common.ts, pairedFraction): the median call against the best read just before it */
  fractionOfRead: number;
  /** the median of the rounds' best reads, GB/s */
  readGBs?: number;
  /** the median of the rounds' call GB/s (right after the read passes) */
  pairedGBs?: number;
  routeMs: number;
}

export interface MoeBenchReport extends RunInfo {
  h: number;
  i: number;
  e: number;
  topK: number;
  rows: MoeBenchRow[];
  /** fp8.matmul alone at M = 1 on one expert's [I, H] weights beside onnxruntime-node MatMul (f32 weights), same run */
  fp8Peer: Fp8BenchRow | null;
}

const ROUTES = 16;

export async function benchMoe(
  dev: Device,
  opts: { time: number; tokens?: number[]; h?: number; i?: number; e?: number; topK?: number; log: (s: string) => void },
): Promise<MoeBenchReport> {
  const [h, i, e, topK] = [opts.h ?? 6144, opts.i ?? 2048, opts.e ?? 16, opts.topK ?? 8];
  const bw = measureBandwidth(dev, opts.log);
  const info = dev.info();
  const p50 = (time: number, fn: () => Promise<void>) => median(time, fn, Math.min(200, time / 4), 3);
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  // e4m3 codes of magnitude up to about 2 (never NaN), scales near DeepSeek's
  const stack = (n: number, k: number): Fp8Weights => {
    const codes = new Uint8Array(e * n * k);
    for (let j = 0; j < codes.length; j++) {
      const r = next() >>> 16;
      codes[j] = (r & 0x80) | ((r >>> 8) % 0x48); // sign | exponent <= 8, any mantissa: |v| < 4
    }
    const scales = Float32Array.from({ length: e * Math.ceil(n / 128) * Math.ceil(k / 128) }, () => 1e-3 * (1 + (next() % 100) / 100));
    return { data: dev.tensor(codes, [e, n, k], "f8e4m3"), scaleInv: dev.tensor(scales, [e, Math.ceil(n / 128), Math.ceil(k / 128)]), block: [128, 128] };
  };
  opts.log(`moe: ${e} experts of H ${h} x I ${i} (${((3 * e * h * i) / 2 ** 20).toFixed(0)} MiB of e4m3 codes), top-${topK}`);
  const ex = { gateProj: stack(i, h), upProj: stack(i, h), downProj: stack(h, i) };
  const gate = dev.tensor(Uint16Array.from({ length: e * h }, () => ((next() >>> 16) & 0x8000) | (0x3c00 + (next() % 0x200))), [e, h], "bf16");
  const bytesPerExpert = 3 * (h * i + Math.ceil(h / 128) * Math.ceil(i / 128) * 4);
  const rows: MoeBenchRow[] = [];
  const made: Tensor[] = [];
  try {
    for (const t of opts.tokens ?? [1, 8, 64]) {
      // ROUTES different batches of tokens; each call takes the next one
      const batches = Array.from({ length: ROUTES }, () => {
        const x = dev.tensor(Uint16Array.from({ length: t * h }, () => ((next() >>> 16) & 0x8000) | (0x3e00 + (next() % 0x200))), [t, h], "bf16");
        made.push(x);
        return x;
      });
      const routes = batches.map((x) => route(x, gate, { topK }));
      for (const r of routes) made.push(r.ids, r.weights);
      let touched = 0;
      for (const r of routes) touched += new Set((await r.ids.read()) as Int32Array).size;
      touched /= ROUTES;
      let c = 0;
      const call = async () => {
        const k = c++ % ROUTES;
        const y = experts(batches[k], routes[k], ex);
        await y.read();
        y.dispose();
      };
      const ms = await p50(opts.time, call);
      const paired = await pairedFraction(touched * bytesPerExpert, info.threads, call, { what: `  T=${t} moe.experts`, log: opts.log });
      c = 0;
      const routeMs = await p50(Math.min(opts.time, 300), async () => {
        const r = route(batches[c++ % ROUTES], gate, { topK });
        await r.weights.read();
        r.ids.dispose();
        r.weights.dispose();
      });
      const gbs = (touched * bytesPerExpert) / (ms / 1e3) / 1e9;
      rows.push({ tokens: t, ms, tokensPerS: t / (ms / 1e3), expertsTouched: touched, weightGBs: gbs, fractionOfRead: paired.fraction, readGBs: paired.readGBs, pairedGBs: paired.gbs, routeMs });
      opts.log(`  T=${t}: ${ms.toFixed(2)} ms (${touched.toFixed(1)} experts), route ${routeMs.toFixed(3)} ms`);
    }
  } finally {
    for (const x of made) x.dispose();
    for (const q of Object.values(ex)) (q.data.dispose(), q.scaleInv.dispose());
    gate.dispose();
  }
  // fp8.matmul alone at M = 1 beside what a Node user has instead (bench fp8's measurement, this run)
  const peer = await benchFp8(dev, { time: opts.time, shapes: [[i, h]], ms: [1], log: opts.log, readGBs: bw.readGBs });
  return { ...runInfo(dev, bw.readGBs), h, i, e, topK, rows, fp8Peer: peer.rows[0] ?? null };
}

export function formatMoe(rep: MoeBenchReport): string {
  const lines = [
    `${rep.machine} | device ${rep.device} | ${rep.threads} threads | isa ${rep.isa} | read ${rep.readGBs.toFixed(1)} GB/s | H ${rep.h}, I ${rep.i}, ${rep.e} experts, top-${rep.topK}`,
    "| tokens | moe.experts ms (p50) | tokens/s | experts touched | expert weight GB/s | of read bw (paired rounds: call GB/s of read GB/s) | moe.route ms (p50) |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rep.rows)
    lines.push(
      `| ${r.tokens} | ${r.ms.toFixed(2)} | ${r.tokensPerS.toFixed(0)} | ${r.expertsTouched.toFixed(1)} | ${r.weightGBs.toFixed(1)} | ` +
        `${pairedCell(r)} | ${r.routeMs.toFixed(3)} |`,
    );
  const p = rep.fp8Peer;
  if (p)
    lines.push(
      "",
      `fp8.matmul alone, M = 1, ${p.n} x ${p.k} (one expert's gate): ${p.ms.toFixed(3)} ms, ${p.weightGBs.toFixed(1)} GB/s ` +
        `(${pairedCell(p)} of read bw)` +
        (p.peerMs === null ? "" : `; onnxruntime-node MatMul on the f32-dequantized weights ${p.peerMs.toFixed(3)} ms: ${p.speedup!.toFixed(2)}x`),
    );
  return lines.join("\n");
}
