// The int4 and fp8 quantizers on a real cuda device against the CPU device (itself checked bit for bit against the
// TypeScript reference in CI): random, adversarial (zeros, .5 quotients, subnormals, huge, NaN, inf) and
// real-shaped 6144 x 2048 weights, both grids, every group size, bf16 and f32; packed, scales,
// dequantize, fakeQuant and fakeQuantGrad compared bit for bit. bench/gpu/acceptance.sh runs it.
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
console.log(`quantizer check on ${gpu.name} (${gpu.info().name}): ${failed ? `${failed} FAILED` : "passed"}`);
process.exitCode = failed ? 1 : 0;
