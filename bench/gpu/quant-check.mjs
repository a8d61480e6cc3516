// The int4 and fp8 quantizers on a real cuda device against the CPU device (itself checked bit for bit against the
// TypeScript reference in CI): random, adversarial (zeros, .5 quotients, subnormals, huge, NaN, inf) and
// real-shaped 6144 x 2048 weights, both grids, every group size, bf16 and f32; packed, scales,
// dequantize, fakeQuant and fakeQuantGrad compared bit for bit; then fp8.matmul, moe.route, moe.experts,
// matmul and int4.matmul, also bit for bit, except fp8.matmul, moe.experts and matmul and int4.matmul with
// bf16 x: tensor cores, within tolerance (below). bench/gpu/acceptance.sh runs it.
// Usage: node bench/gpu/int4-check.mjs path/to/package
import { resolve } from "node:path";

const pkg = resolve(process.argv[2] ?? ".");
const { openDevice, int4 } = await import(`${pkg}/dist/esm/index.js`);
const cpu = openDevice("cpu");
const gpu = openDevice(process.argv[3] ?? "cuda");
let failed = 0;

function weights(n, k, seed, kind) {
  const bits = new Uint32Array(n * k);
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const special = [0, 0x80000000, 0x7fc00000, 0x7f800000, 0xff800000, 1, 0x80000001, 0x007fffff, 0x7f7fffff, 0x3f800000, 0x40f00000, 0x40e00000];
  for (let i = 0; i < bits.length; i++) {
    if (kind === "adversarial" && next() % 16 === 0) bits[i] = special[next() % special.length];
    else bits[i] = ((next() & 0x80000000) | ((kind === "adversarial" ? next() % 255 : 110 + (next() % 20)) << 23) | (next() >>> 9)) >>> 0;
  }
  if (kind === "adversarial") for (let i = 0; i < 128; i++) bits[i] = 0; // whole zero groups
  return new Float32Array(bits.buffer);
}

function upload(dev, f32, shape, dtype) {
  if (dtype === "f32") return dev.tensor(f32, shape);
  const u = new Uint32Array(f32.buffer);
  return dev.tensor(Uint16Array.from(u, (b) => ((b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16)), shape, "bf16");
}

const bytes = async (t) => {
  const a = await t.read();
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

async function compare(name, n, k, kind, dtype, groupSize, levels) {
  const v = weights(n, k, n + k + groupSize + levels, kind);
  const grad = weights(n, k, 7, "random");
  const out = {};
  for (const [label, dev] of [["cpu", cpu], ["gpu", gpu]]) {
    const w = upload(dev, v, [n, k], dtype);
    const g = upload(dev, grad, [n, k], dtype);
    const q = int4.quantize(w, { groupSize, levels });
    out[label] = [
      await bytes(q.packed),
      await bytes(q.scales),
      await bytes(int4.dequantize(q)),
      await bytes(int4.fakeQuant(w, { groupSize, levels })),
      await bytes(int4.fakeQuantGrad(w, g, { groupSize, levels, clip: true })),
    ];
  }
  const parts = ["packed", "scales", "dequantize", "fakeQuant", "fakeQuantGrad(clip)"];
  const bad = parts.filter((_, i) => !out.cpu[i].equals(out.gpu[i]));
  if (bad.length) failed++;
  console.log(`${bad.length ? "FAIL" : "ok  "} ${name} ${kind} ${dtype} [${n}, ${k}] group ${groupSize}, ${levels} levels${bad.length ? `: ${bad.join(", ")} differ` : ": bit for bit"}`);
}

for (const kind of ["random", "adversarial"])
  for (const [dtype, g, l] of [["bf16", 32, 15], ["f32", 64, 16], ["bf16", 128, 16], ["f32", 32, 15]]) await compare("int4", 96, 512, kind, dtype, g, l);
for (const [g, l] of [[32, 15], [128, 16]]) await compare("int4 real-shaped", 6144, 2048, "random", "bf16", g, l);

// fp8 block quantization, the same way: data, scaleInv and dequantize (bf16, f16, f32) bit for bit
const { fp8 } = await import(`${pkg}/dist/esm/index.js`);
async function compareFp8(shape, kind, dtype, block) {
  const v = weights(shape.reduce((a, b) => a * b, 1), 1, shape[1] + block[0], kind);
  const out = {};
  for (const [label, dev] of [["cpu", cpu], ["gpu", gpu]]) {
    const q = fp8.quantize(upload(dev, v, shape, dtype === "f16" ? "f32" : dtype), { block });
    out[label] = [await bytes(q.data), await bytes(q.scaleInv), await bytes(fp8.dequantize(q, "f32")), await bytes(fp8.dequantize(q, "bf16")), await bytes(fp8.dequantize(q, "f16"))];
  }
  const parts = ["data", "scaleInv", "dequantize f32", "dequantize bf16", "dequantize f16"];
  const bad = parts.filter((_, i) => !out.cpu[i].equals(out.gpu[i]));
  if (bad.length) failed++;
  console.log(`${bad.length ? "FAIL" : "ok  "} fp8 ${kind} ${dtype} [${shape.join(", ")}] block [${block.join(", ")}]${bad.length ? `: ${bad.join(", ")} differ` : ": bit for bit"}`);
}
for (const kind of ["random", "adversarial"])
  for (const [dtype, block] of [["f32", [128, 128]], ["bf16", [1, 128]]]) await compareFp8([3, 200, 300], kind, dtype, block);
await compareFp8([2, 2048, 6144], "random", "bf16", [128, 128]);
// fp8.matmul, moe.route and moe.experts. fp8.matmul runs on tensor cores (devices/cuda/fp8-matmul-mma.cuh:
// mma sums inside each 128-K block, not IEEE), so it must be within the stated tolerance of the CPU's (README
// "fp8"; terms t = xa sa w scaleInv: f32 sums |y_gpu - y_cpu| <= K 2^-22 sum |t|, bf16 2^-8 max(|y_gpu|,
// |y_cpu|) + K 2^-22 sum |t|), NaN (from NaN codes) bit for bit, and the same bits on a second run; decode and
// prefill rows, blocks [128, 128] and [1, 128], K not a multiple of 128. moe.route follows the CPU device's
// written order (SIMT), so its ids and weights must equal the CPU's bit for bit (GLM-5 and DeepSeek-V3
// grouping); moe.experts (tensor cores; below) with unused slots, repeated experts and a shared expert.
const { moe } = await import(`${pkg}/dist/esm/index.js`);
const bf16 = (f32) => upload(cpu, f32, [f32.length], "bf16").read();
const report = (name, bad) => {
  if (bad.length) failed++;
  const how = /\(.*(bit for bit|tolerance).*\)$/.test(name) ? "" : ": bit for bit";
  console.log(`${bad.length ? "FAIL" : "ok  "} ${name}${bad.length ? `: ${bad.join(", ")} differ` : how}`);
};
// an upper bound of sum_k |t| per output: |xa sa| <= |x| (1 + 2^-4) + 2^-9 sa (e4m3's relative rounding
// error, or half its subnormal spacing 2^-9 scaled by sa = max(amax, 1e-4) / 448 of the row's 128-block), |w'| the
// dequantized weights (data scaleInv) the devices use
function fp8Magnitudes(x, w, m, n, k) {
  const blocks = Math.ceil(k / 128), ax = new Float64Array(m * k);
  for (let i = 0; i < m; i++)
    for (let b = 0; b < blocks; b++) {
      let amax = 0;
      for (let c = b * 128; c < Math.min(k, b * 128 + 128); c++) amax = Math.max(amax, Math.abs(x[i * k + c]));
      const sa = Math.max(amax, 1e-4) / 448;
      for (let c = b * 128; c < Math.min(k, b * 128 + 128); c++) ax[i * k + c] = Math.abs(x[i * k + c]) * (1 + 2 ** -4) + 2 ** -9 * sa;
    }
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += ax[i * k + c] * Math.abs(w[j * k + c]);
      mag[i * n + j] = s;
    }
  return mag;
}
async function compareFp8Matmul(m, n, k, block, nan = false) {
  const w = weights(n * k, 1, m + n + k, "random"), x = await bf16(weights(m * k, 1, 3 * m + k, "random"));
  const out = {};
  let mag = null;
  for (const [label, dev] of [["cpu", cpu], ["gpu", gpu]]) {
    const q = fp8.quantize(dev.tensor(w, [n, k]), { block });
    if (nan) {
      // NaN codes (never from quantize, possible in a checkpoint): the f32 sums' NaN bits must match too
      const codes = await q.data.read();
      (codes[5] = 0x7f), (codes[k + 130] = 0xff), (codes[n * k - 1] = 0x7f);
      q.data = dev.tensor(codes, [n, k], "f8e4m3");
    }
    const xt = dev.tensor(x, [m, k], "bf16");
    out[label] = [await bytes(fp8.matmul(xt, q, { dtype: "f32" })), await bytes(fp8.matmul(xt, q)), await bytes(fp8.matmul(xt, q, { dtype: "f32" }))];
    if (label === "cpu") mag = fp8Magnitudes(Float32Array.from(x, bf16Value), await fp8.dequantize(q, "f32").read(), m, n, k);
  }
  const bad = [];
  const [c32, g32] = [out.cpu[0], out.gpu[0]].map((b) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  for (let i = 0; i < c32.length; i++) {
    const cb = out.cpu[0].readUInt32LE(4 * i), gb = out.gpu[0].readUInt32LE(4 * i);
    const off = Number.isNaN(c32[i]) || Number.isNaN(g32[i]) ? cb !== gb : !(Math.abs(g32[i] - c32[i]) <= k * 2 ** -22 * mag[i]);
    if (off) {
      bad.push(`f32 (out of tolerance at y[${i}]: ${g32[i]} vs ${c32[i]})`);
      break;
    }
  }
  const at = firstOutOfTolerance(out.gpu[1], out.cpu[1], mag, k);
  if (at >= 0) bad.push(`bf16 (out of tolerance at y[${at}])`);
  if (!out.gpu[0].equals(out.gpu[2])) bad.push("a second run on the GPU");
  report(`fp8.matmul [${m} x ${n} x ${k}] block [${block.join(", ")}]${nan ? " with NaN codes" : ""} (within tolerance, NaN and repeat bit for bit)`, bad);
}
for (const [m, n, k, block] of [[1, 2048, 6144, [128, 128]], [16, 512, 2048, [128, 128]], [64, 256, 6144, [1, 128]], [5, 300, 1000, [128, 128]]])
  await compareFp8Matmul(m, n, k, block);
await compareFp8Matmul(3, 200, 300, [128, 128], true);

async function compareRoute(t, h, e, topK, nGroup, topkGroup) {
  const x = await bf16(weights(t * h, 1, t + h, "random")), g = await bf16(weights(e * h, 1, e + h, "random").map((v) => v * 2 ** -8));
  const bias = weights(e, 1, e, "random").map((v) => v * 2 ** -10);
  const out = {};
  for (const [label, dev] of [["cpu", cpu], ["gpu", gpu]]) {
    const r = moe.route(dev.tensor(x, [t, h], "bf16"), dev.tensor(g, [e, h], "bf16"), { bias: dev.tensor(bias, [e]), topK, nGroup, topkGroup });
    out[label] = [await bytes(r.ids), await bytes(r.weights)];
  }
  report(`moe.route T ${t} H ${h} E ${e} top-${topK} groups ${nGroup}/${topkGroup}`, ["ids", "weights"].filter((_, i) => !out.cpu[i].equals(out.gpu[i])));
}
await compareRoute(128, 6144, 256, 8, 1, 1);
await compareRoute(64, 7168, 256, 8, 8, 4);

// moe.experts on the GPU runs its three products on tensor cores (devices/cuda/moe.cuh), each exactly the
// device's own fp8.matmul: so its output must equal, bit for bit, the composition of the GPU's fp8.matmul calls
// (each expert's rows in (token, slot) order; SwiGLU h = bf16(silu(g) u) and the combine in slot order in f32
// here), the same bits on a second run, and be within the stated tolerance of the CPU's (README "moe"):
// |out_gpu - out_cpu| <= 2^-5 M + 2^-8 |out_cpu|, M the sum over slots of |weight| times the down projection's
// sum of |terms| (fp8Magnitudes of the CPU's h) plus the shared expert's (an e4m3 code of h may flip by a step).
const bf16Rne = (f) => {
  const b = new Uint32Array(new Float32Array([f]).buffer)[0];
  return (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
};
const siluF32 = (g) => Math.fround(g / Math.fround(1 + Math.fround(Math.exp(-g))));
// the composition of dev's fp8.matmul calls: y [rows, h] bf16 and h [rows, i] (f32 values of bf16) of rows xs
async function swigluOf(dev, xs, rows, h, i, wg, wu, wd) {
  const q = (v, shape) => fp8.quantize(dev.tensor(v, shape));
  const mm = async (a, k, w, n) => (await fp8.matmul(dev.tensor(a, [rows, k], "bf16"), q(w, [n, k])).read());
  const g = await mm(xs, h, wg, i), u = await mm(xs, h, wu, i);
  const hb = Uint16Array.from(g, (gv, j) => bf16Rne(Math.fround(siluF32(bf16Value(gv)) * bf16Value(u[j]))));
  return { y: await mm(hb, i, wd, h), h: Float32Array.from(hb, bf16Value) };
}
async function composeExperts(dev, x, t, h, i, e, topK, ids, wts, w, sharedI) {
  const y = new Uint16Array(t * topK * h), mag = new Float64Array(t * h);
  for (let ex = 0; ex < e; ex++) {
    const rows = Array.from(ids.keys()).filter((p) => ids[p] === ex);
    if (rows.length === 0) continue;
    const xs = new Uint16Array(rows.length * h);
    rows.forEach((p, r) => xs.set(x.subarray(Math.floor(p / topK) * h, (Math.floor(p / topK) + 1) * h), r * h));
    const part = (v, n, k) => v.subarray(ex * n * k, (ex + 1) * n * k);
    const s = await swigluOf(dev, xs, rows.length, h, i, part(w[0], i, h), part(w[1], i, h), part(w[2], h, i));
    rows.forEach((p, r) => y.set(s.y.subarray(r * h, (r + 1) * h), p * h));
    if (dev === cpu) {
      const wd = await fp8.dequantize(fp8.quantize(cpu.tensor(part(w[2], h, i), [h, i])), "f32").read();
      const m = fp8Magnitudes(s.h, wd, rows.length, h, i);
      rows.forEach((p, r) => {
        for (let c = 0; c < h; c++) mag[Math.floor(p / topK) * h + c] += Math.abs(wts[p]) * m[r * h + c];
      });
    }
  }
  const sh = await swigluOf(dev, x, t, h, sharedI, w[3], w[4], w[5]);
  if (dev === cpu) {
    const m = fp8Magnitudes(sh.h, await fp8.dequantize(fp8.quantize(cpu.tensor(w[5], [h, sharedI])), "f32").read(), t, h, sharedI);
    for (let j = 0; j < t * h; j++) mag[j] += m[j];
  }
  const out = new Uint16Array(t * h);
  for (let tok = 0; tok < t; tok++)
    for (let c = 0; c < h; c++) {
      let acc = 0;
      for (let j = 0; j < topK; j++) if (ids[tok * topK + j] !== -1) acc = Math.fround(acc + Math.fround(wts[tok * topK + j] * bf16Value(y[(tok * topK + j) * h + c])));
      out[tok * h + c] = bf16Rne(Math.fround(acc + bf16Value(sh.y[tok * h + c])));
    }
  return { out, mag };
}
async function compareExperts(t, h, i, e, topK, sharedI) {
  const x = await bf16(weights(t * h, 1, t + 1, "random"));
  const ids = Int32Array.from({ length: t * topK }, (_, j) => (j === 1 ? -1 : (7 * j + (j % topK === 1 ? 0 : 3)) % e));
  const wts = Float32Array.from({ length: t * topK }, (_, j) => 0.05 + (j % 7) / 16);
  const gen = (n, seed) => weights(n, 1, seed, "random").map((v) => v * 2 ** -4);
  const w = [gen(e * i * h, 1), gen(e * i * h, 2), gen(e * h * i, 3), gen(sharedI * h, 4), gen(sharedI * h, 5), gen(h * sharedI, 6)];
  const out = {};
  for (const [label, dev] of [["cpu", cpu], ["gpu", gpu]]) {
    const q = (v, shape) => fp8.quantize(dev.tensor(v, shape));
    const ex = { gateProj: q(w[0], [e, i, h]), upProj: q(w[1], [e, i, h]), downProj: q(w[2], [e, h, i]) };
    const shared = { gateProj: q(w[3], [sharedI, h]), upProj: q(w[4], [sharedI, h]), downProj: q(w[5], [h, sharedI]) };
    const rt = { ids: dev.tensor(ids, [t, topK]), weights: dev.tensor(wts, [t, topK]) };
    const call = () => bytes(moe.experts(dev.tensor(x, [t, h], "bf16"), rt, ex, { shared }));
    out[label] = [await call(), await call()];
  }
  const { mag } = await composeExperts(cpu, x, t, h, i, e, topK, ids, wts, w, sharedI);
  const { out: composed } = await composeExperts(gpu, x, t, h, i, e, topK, ids, wts, w, sharedI);
  const bad = [];
  const [c16, g16] = [out.cpu[0], out.gpu[0]].map((b) => new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  for (let j = 0; j < c16.length; j++) {
    const cv = bf16Value(c16[j]), gv = bf16Value(g16[j]);
    if (!(Math.abs(gv - cv) <= 2 ** -5 * mag[j] + 2 ** -8 * Math.abs(cv) + 1e-6)) {
      bad.push(`out (out of tolerance at [${Math.floor(j / h)}, ${j % h}]: ${gv} vs ${cv})`);
      break;
    }
  }
  if (!Buffer.from(composed.buffer).equals(out.gpu[0])) bad.push("out vs the GPU's fp8.matmul composed");
  if (!out.gpu[0].equals(out.gpu[1])) bad.push("a second run on the GPU");
  report(`moe.experts T ${t} H ${h} I ${i} E ${e} top-${topK} shared ${sharedI} (within tolerance; == GPU fp8.matmul composed and repeat bit for bit)`, bad);
}
await compareExperts(4, 6144, 2048, 4, 8, 2048); // GLM-5 H and I; 4 experts keep the host arrays small
await compareExperts(33, 1024, 512, 16, 4, 256);

// matmul and int4.matmul: with f16 / f32 x the cuda kernels follow the CPU device's written order (SIMT), so
// their outputs must equal the CPU's bit for bit; with bf16 x they run tensor cores (devices/cuda/matmul-mma.cuh),
// whose sums are not IEEE, so they must be within the stated tolerance of the CPU's (README "matmul":
// |y_gpu - y_cpu| <= 2^-8 max(|y_gpu|, |y_cpu|) + K 2^-22 sum_k |x w| where that sum is below 2^127, bit for bit
// where a product is not finite, nothing promised where the finite sum reaches 2^127). Decode and
// prefill rows, GLM-5-sized weights, K not a multiple of 16, every x dtype; and on the GPU itself, bit for bit:
// int4.matmul(x, quantize(w)) == matmul(x, fakeQuant(w)) and the same call twice.
// NOTE: both devices write every NaN out canonical (0x7FC00000 in f32: devices/cuda/matmul.cuh), so NaN bits
// compare exactly; nanPlaces stays as a second line of defence (it maps any NaN to the canonical one).
const { matmul } = await import(`${pkg}/dist/esm/index.js`);
const { toF16Bits } = await import(`${pkg}/dist/esm/dtype.js`);
function put(dev, f32, shape, dtype) {
  if (dtype !== "f16") return upload(dev, f32, shape, dtype);
  return dev.tensor(Uint16Array.from(f32, (v) => toF16Bits(v)), shape, "f16");
}
const nanPlaces = (buf, dtype) => {
  if (dtype !== "f32") return buf;
  const u = new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  for (let i = 0; i < u.length; i++) if ((u[i] & 0x7fffffff) > 0x7f800000) u[i] = 0x7fc00000;
  return Buffer.from(u.buffer);
};
function bf16Value(h) {
  return new Float32Array(new Uint32Array([h << 16]).buffer)[0];
}
// sum_k |x w| per output in float64 (x and w as the devices hold them): NaN or inf where a product is not finite
async function magnitudes(xt, wt, m, n, k) {
  const [x, w] = [await values(xt), await values(wt)];
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += Math.abs(x[i * k + c] * w[j * k + c]);
      mag[i * n + j] = s;
    }
  return mag;
}
async function values(t) {
  const a = await t.read();
  return a instanceof Uint16Array ? Float32Array.from(a, (h) => (t.dtype === "bf16" ? bf16Value(h) : f16Value(h))) : a;
}
const f16Value = (h) => {
  const e = (h >> 10) & 31, f = h & 1023, sg = h & 0x8000 ? -1 : 1;
  return e === 31 ? (f ? NaN : sg * Infinity) : e === 0 ? sg * f * 2 ** -24 : sg * (1 + f / 1024) * 2 ** (e - 15);
};
// the first output (bf16 bits) of got outside the tolerance of want, or -1
function firstOutOfTolerance(got, want, mag, k) {
  const g = new Uint16Array(got.buffer, got.byteOffset, got.byteLength / 2), w = new Uint16Array(want.buffer, want.byteOffset, want.byteLength / 2);
  for (let i = 0; i < g.length; i++) {
    const a = bf16Value(g[i]), b = bf16Value(w[i]);
    if (Number.isFinite(mag[i]) && mag[i] >= 2 ** 127) continue; // a partial sum may overflow in one order only
    if (!Number.isFinite(mag[i]) || !Number.isFinite(a) || !Number.isFinite(b)) {
      if (g[i] !== w[i]) return i;
    } else if (Math.abs(a - b) > 2 ** -8 * Math.max(Math.abs(a), Math.abs(b)) + k * 2 ** -22 * mag[i]) return i;
  }
  return -1;
}
async function compareMatmul(m, n, k, xd, wd, kind, groupSize = 32) {
  const w = weights(n * k, 1, m + n + k, kind), x = weights(m * k, 1, 5 * m + k, "random");
  const out = {};
  let mag = null;
  for (const [label, dev] of [["cpu", cpu], ["gpu", gpu]]) {
    const xt = put(dev, x, [m, k], xd), wt = put(dev, w, [n, k], wd === "int4" ? "bf16" : wd);
    const parts = [];
    if (wd === "int4") {
      const q = int4.quantize(wt, { groupSize }), fq = int4.fakeQuant(wt, { groupSize });
      parts.push(await bytes(int4.matmul(xt, q)), await bytes(matmul(xt, fq)), await bytes(int4.matmul(xt, q)));
      if (label === "cpu" && xd === "bf16") mag = await magnitudes(xt, fq, m, n, k);
    } else {
      parts.push(await bytes(matmul(xt, wt)), await bytes(matmul(xt, wt)));
      if (label === "cpu" && xd === "bf16") mag = await magnitudes(xt, wt, m, n, k);
    }
    out[label] = parts.map((b) => nanPlaces(b, xd));
  }
  const names = wd === "int4" ? ["int4.matmul", "matmul(fakeQuant)"] : ["matmul"];
  const bad = [];
  for (let i = 0; i < names.length; i++) {
    if (xd !== "bf16") {
      if (!out.cpu[i].equals(out.gpu[i])) bad.push(names[i]);
      continue;
    }
    const at = firstOutOfTolerance(out.gpu[i], out.cpu[i], mag, k);
    if (at >= 0) bad.push(`${names[i]} (out of tolerance at y[${at}])`);
  }
  if (wd === "int4" && !out.gpu[0].equals(out.gpu[1])) bad.push("int4.matmul != matmul(x, fakeQuant(w)) on the GPU");
  if (!out.gpu[0].equals(out.gpu.at(-1))) bad.push("a second run on the GPU");
  const how = xd === "bf16" ? "within tolerance, identity and repeat bit for bit" : "bit for bit";
  report(`${wd === "int4" ? `int4.matmul group ${groupSize}` : "matmul"} x ${xd} w ${wd} [${m} x ${n} x ${k}] ${kind} (${how})`, bad);
}
for (const [m, n, k, xd, wd] of [[1, 6144, 6144, "bf16", "bf16"], [16, 2048, 6144, "bf16", "bf16"], [64, 512, 2048, "f32", "f32"], [5, 300, 1000, "f16", "bf16"], [3, 200, 999, "bf16", "f16"]])
  await compareMatmul(m, n, k, xd, wd, "random");
for (const [xd, wd] of [["bf16", "bf16"], ["f32", "f32"], ["f16", "f32"]]) await compareMatmul(7, 96, 512, xd, wd, "adversarial");
for (const [m, g] of [[1, 32], [16, 128], [64, 64]]) await compareMatmul(m, 6144, 6144 / (m === 64 ? 3 : 1), "bf16", "int4", "random", g);
await compareMatmul(5, 96, 512, "f32", "int4", "adversarial", 32);

console.log(`quantizer, matmul, int4.matmul, fp8.matmul and moe check on ${gpu.name} (${gpu.info().name}): ${failed ? `${failed} FAILED` : "passed"}`);
process.exitCode = failed ? 1 : 0;
