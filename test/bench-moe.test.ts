// `glm-kernels bench moe`: moe.route + moe.experts, tokens/s and expert weight bytes per second (small shapes).
import { describe, expect, it } from "vitest";
import { runCli } from "./helpers/child.js";

describe("bench moe", () => {
  it("reports tokens/s, experts touched and the fraction of read bandwidth per token count", () => {
    const r = runCli(["bench", "moe", "--device", "cpu", "--h", "256", "--i", "128", "--experts", "8", "--top-k", "2", "--tokens", "1,16", "--time", "50"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/H 256, I 128, 8 experts, top-2/);
    expect(r.stdout).toMatch(/^\| 1 \| [\d.]+ \| \d+ \| 2\.0 \| [\d.]+ \| \d+% \([\d.]+ of read [\d.]+\) \| [\d.]+ \|$/m);
    // 16 tokens spread over more than their top-2
    const row = r.stdout.split("\n").find((l) => l.startsWith("| 16 |"))!;
    expect(Number(row.split("|")[4])).toBeGreaterThan(2);
    const bad = runCli(["bench", "moe", "--tokens", "0"]);
    expect(r.stdout).toMatch(/^fp8.matmul alone, M = 1, 128 x 256 .*onnxruntime-node MatMul .* [\d.]+x$/m);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--tokens/);
  });
});
