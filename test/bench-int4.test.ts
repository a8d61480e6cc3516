// SPEC 4's packed int4 bytes are onnxruntime's MatMulNBits B (zero point 8): onnxruntime-node, an
// implementation nobody here wrote, computes the same product from them. And `glm-kernels bench int4` runs.
import { describe, expect, it } from "vitest";
import { int4, openDevice } from "../dist/esm/index.js";
import { matmulNBitsModel } from "../dist/esm/bench/onnx-model.js";
import { runCli } from "./helpers/child.js";
import { bf16Rne, bf16ToF32 } from "./reference/int4-ref.js";

describe("int4 weights in onnxruntime's MatMulNBits", () => {
  it.each([32, 64, 128])("group %i: MatMulNBits on our packed bytes and scales agrees with int4.matmul", async (g) => {
    const ort = (await import("onnxruntime-node")).default;
    const dev = openDevice("cpu");
    const m = 3, n = 20, k = 256;
    let s = g;
    const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
    const wv = Float32Array.from({ length: n * k }, rnd);
    const xv = Float32Array.from({ length: m * k }, rnd);
    const q = int4.quantize(dev.tensor(wv, [n, k]), { groupSize: g, levels: 16 });
    const ours = (await int4.matmul(dev.tensor(xv, [m, k]), q).read()) as Float32Array;
    const packed = new Uint8Array(((await q.packed.read()) as Int32Array).buffer);
    const scales = Float32Array.from((await q.scales.read()) as Uint16Array, (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]);
    const session = await ort.InferenceSession.create(matmulNBitsModel(m, n, k, g, packed, scales));
    const y = (await session.run({ A: new ort.Tensor("float32", xv, [m, k]) })).Y.data as Float32Array;
    await session.release();
    expect(y.length).toBe(m * n);
    // float64 references from the bytes as compressed-tensors lays them out (nibble q + 8, least
    // significant first): onnxruntime computes x . (q s); we compute x . bf16(q s) (SPEC 4).
    const words = new Int32Array(packed.buffer);
    for (let r = 0; r < m; r++)
      for (let c = 0; c < n; c++) {
        let exact = 0, rounded = 0, mag = 0;
        for (let kk = 0; kk < k; kk++) {
          const i = c * k + kk;
          const code = ((words[i >> 3] >>> (4 * (i & 7))) & 15) - 8;
          const sc = scales[c * (k / g) + Math.floor(kk / g)];
          exact += xv[r * k + kk] * code * sc;
          rounded += xv[r * k + kk] * bf16ToF32(bf16Rne(code * sc));
          mag += Math.abs(xv[r * k + kk] * code * sc);
        }
        const bound = 1e-6 * mag + 1e-7;
        expect(Math.abs(y[r * n + c] - exact), `onnxruntime y[${r}, ${c}] ${y[r * n + c]} vs ${exact}`).toBeLessThan(bound);
        expect(Math.abs(ours[r * n + c] - rounded), `ours y[${r}, ${c}] ${ours[r * n + c]} vs ${rounded}`).toBeLessThan(bound);
      }
  });

  it("glm-kernels bench int4 reports ours, the peer and dense bf16 side by side", () => {
    const r = runCli(["bench", "int4", "--device", "cpu", "--shapes", "64x256", "--m", "1,4", "--groups", "32", "--time", "50"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| 1 \| 64 x 256 \| 32 \| [\d.]+ \| [\d.]+ \| \d+% \([\d.]+ of read [\d.]+\) \| [\d.]+ \| \d+% \| [\d.]+ \| [\d.]+x \| [\d.]+ \| [\d.]+x \|$/m);
    expect(r.stdout).toMatch(/^\| 4 \| 64 x 256 \| 32 \|/m);
    // the peak comes from the clock measured in the run (x86-64), not /proc/cpuinfo's nominal one
    if (process.arch === "x64") {
      const ghz = Number(/(\d+\.\d+) GHz measured/.exec(r.stdout)?.[1]);
      expect(ghz).toBeGreaterThan(0.5);
      expect(ghz).toBeLessThan(7);
    }
  });
});
