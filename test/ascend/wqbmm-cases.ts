// The child process behind test/ascend/wqbmm.test.ts (through the CPU fake of CANN) and hardware.test.ts (on an
// NPU): int4.matmul on ascend with GLM_KERNELS_ASCEND_INT4=wqbmm against the cpu device.
import { expect } from "vitest";
import { runNode } from "../helpers/child.js";
import { firstOutOfTolerance, magnitudes } from "../helpers/tolerance.js";
import { bf16ToF32 } from "../reference/int4-ref.js";

export type WqCase = [m: number, n: number, k: number, group: number, xDtype: string];

// For each [m, n, k, group, xDtype]: x (bf16 bits, or f16 / f32 values), w's fakeQuant on cpu (bf16 bits), y on
// cpu, y on ascend twice, each row of x alone on ascend, and matmul(x, fakeQuant(w)) on ascend.
const script = (cases: WqCase[]) => `
import { openDevice, int4, matmul, GlmKernelsError } from "glm-kernels";
const out = [];
for (const [m, n, k, g, xd] of ${JSON.stringify(cases)}) {
  let s = m * 7919 + n * 31 + k + g;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 4;
  const xv = Float32Array.from({ length: m * k }, r);
  if (m > 2 && xd === "bf16") { xv[k + 3] = Infinity; xv[2 * k + 5] = NaN; }
  // f16 x: multiples of 2^-6 below 4 (exact, normal): their bits by hand
  const f16 = (v) => { if (v === 0) return 0; const e = Math.floor(Math.log2(Math.abs(v))); return (v < 0 ? 0x8000 : 0) | ((e + 15) << 10) | Math.round((Math.abs(v) / 2 ** e - 1) * 1024); };
  const x = xd === "bf16" ? Uint16Array.from(new Uint32Array(xv.buffer), (b) => (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16)
    : xd === "f16" ? Uint16Array.from(xv, (v) => f16(Math.round(v * 64) / 64)) : xv;
  const w = Float32Array.from({ length: n * k }, r);
  const run = async (name) => {
    const d = openDevice(name);
    const X = xd === "f32" ? d.tensor(x, [m, k]) : d.tensor(x, [m, k], xd);
    const W = d.tensor(w, [n, k]);
    const q = int4.quantize(W, { groupSize: g });
    const ys = [await int4.matmul(X, q).read(), await int4.matmul(X, q).read()];
    const rows = [];
    for (let i = 0; i < m; i++) rows.push(Array.from(await int4.matmul(xd === "f32" ? d.tensor(x.slice(i * k, (i + 1) * k), [1, k]) : d.tensor(x.slice(i * k, (i + 1) * k), [1, k], xd), q).read()));
    const dense = await matmul(X, int4.fakeQuant(W, { groupSize: g })).read();
    return { ys: ys.map((a) => Array.from(a)), rows, dense: Array.from(dense), fq: Array.from(await int4.fakeQuant(W, { groupSize: g }).read()) };
  };
  try {
    const [a, c] = [await run("ascend"), await run("cpu")];
    out.push({ x: Array.from(x), fq: c.fq, cpu: c.ys[0], ascend: a.ys, rows: a.rows, dense: a.dense });
  } catch (e) { out.push({ error: e instanceof GlmKernelsError ? e.code + " " + e.message : "OTHER " + String(e) }); }
}
console.log(JSON.stringify(out));
`;

export type WqOut = { x: number[]; fq: number[]; cpu: number[]; ascend: number[][]; rows: number[][]; dense: number[]; error?: string };

/** Runs the cases in one child process with env (GLM_KERNELS_ASCEND_INT4=wqbmm is the caller's to set). */
export function runWq(cases: WqCase[], env: Record<string, string>) {
  const r = runNode(script(cases), env);
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as WqOut[];
}

/** Case c's ascend output: the same bits again and row by row alone, and within the stated tolerance of cpu. */
export function expectWithinTolerance(o: WqOut, [m, n, k]: WqCase) {
  expect(o.error).toBeUndefined();
  expect(o.ascend[1]).toEqual(o.ascend[0]);
  for (let i = 0; i < m; i++) expect(o.rows[i], `row ${i} alone`).toEqual(o.ascend[0].slice(i * n, (i + 1) * n));
  const mag = magnitudes(o.x.map(bf16ToF32), o.fq.map(bf16ToF32), m, n, k);
  const i = firstOutOfTolerance(o.ascend[0], o.cpu, mag, k);
  expect(i, i < 0 ? "" : `y[${i}]: ascend ${bf16ToF32(o.ascend[0][i])}, cpu ${bf16ToF32(o.cpu[i])}`).toBe(-1);
}
