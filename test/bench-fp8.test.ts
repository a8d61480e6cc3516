// `glm-kernels bench fp8`: fp8.matmul beside onnxruntime-node's MatMul on the dequantized weights; and the
// peer's model computes x w^T (checked against our dense f32 matmul).
import { describe, expect, it } from "vitest";
import { matmul, openDevice } from "../dist/esm/index.js";
import { matmulModel } from "../dist/esm/bench/onnx-model.js";
import { runCli } from "./helpers/child.js";

describe("bench fp8", () => {
  it("the peer's MatMul model computes x w^T", async () => {
    const ort = (await import("onnxruntime-node")).default;
    const m = 3, n = 5, k = 7;
    const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i));
    const x = Float32Array.from({ length: m * k }, (_, i) => Math.cos(i));
    const session = await ort.InferenceSession.create(matmulModel(m, n, k, w));
    const y = (await session.run({ A: new ort.Tensor("float32", x, [m, k]) })).Y.data as Float32Array;
    await session.release();
    const dev = openDevice("cpu");
    const ours = (await matmul(dev.tensor(x, [m, k]), dev.tensor(w, [n, k])).read()) as Float32Array;
    for (let i = 0; i < m * n; i++) expect(Math.abs(y[i] - ours[i])).toBeLessThan(1e-5);
  });

  it("reports ours and the peer side by side", () => {
    const r = runCli(["bench", "fp8", "--device", "cpu", "--shapes", "64x256", "--m", "1,4", "--time", "50"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| 1 \| 64 x 256 \| [\d.]+ \| [\d.]+ \| \d+% \([\d.]+ of read [\d.]+\) \| [\d.]+ \| [\d.]+x \|$/m);
    expect(r.stdout).toMatch(/^\| 4 \| 64 x 256 \|/m);
  });
});
