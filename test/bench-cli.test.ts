// The bench command end to end on a small shape: its JSON report and its argument errors.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/child.js";

describe("glm-kernels bench topk", () => {
  const dir = mkdtempSync(join(tmpdir(), "glmk-bench-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a report with the paired bandwidth fraction and the peer", () => {
    const json = join(dir, "r.json");
    const r = runCli(["bench", "topk", "--device", "cpu", "--shapes", "4x16384", "--time", "100", "--json", json]);
    expect(r.stderr).toContain("rounds of (3 read passes over 128 MiB");
    expect(r.status).toBe(0);
    const rep = JSON.parse(readFileSync(json, "utf8"));
    expect(rep.rows.length).toBe(1);
    const row = rep.rows[0];
    expect([row.op, row.shape, row.k, row.pairedRounds]).toEqual(["topk", "4x16384", 2048, 15]);
    for (const v of [row.ms, row.gbs, row.readGBs, row.fractionOfRead, row.fractionOfTypicalRead]) expect(v).toBeGreaterThan(0);
    expect(row.fractionOfRead).toBeLessThanOrEqual(row.fractionOfTypicalRead);
    expect(row.gbs).toBeCloseTo((4 * 16384 * 4) / (row.ms / 1e3) / 1e9, 6);
    if (row.peer !== null) expect(row.speedup).toBeCloseTo(row.peerMs / row.ms, 6);
    expect(r.stdout).toMatch(/^topk \| 4x16384 +\| 2048 \|/m);
    expect(readFileSync(join(dir, "r.svg"), "utf8")).toMatch(/^<svg[^>]* viewBox=/); // the chart beside it
  });

  it.each([["32"], ["4x"], ["0x16"], ["4x16,abc"]])("refuses --shapes %s with E_ARG, exit 1", (v) => {
    const r = runCli(["bench", "topk", "--shapes", v]);
    expect([r.status, r.stderr.trim()]).toEqual([
      1,
      `glm-kernels: E_ARG: Expected --shapes as ROWSxCOLS[,ROWSxCOLS...] (e.g. 512x32768) but received "${v}"`,
    ]);
  });

  it("refuses a --time that is not a positive number", () => {
    const r = runCli(["bench", "topk", "--time", "-5"]);
    expect([r.status, r.stderr.trim()]).toEqual([1, 'glm-kernels: E_ARG: Expected --time to be a positive number of ms but received "-5"']);
  });
});

describe("glm-kernels bench latency", () => {
  const dir = mkdtempSync(join(tmpdir(), "glmk-lat-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reports median and p99 per shape, idle and beside busy processes", () => {
    const json = join(dir, "lat.json");
    const r = runCli(["bench", "latency", "--device", "cpu", "--load", "1", "--calls", "40", "--json", json]);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(readFileSync(json, "utf8"));
    expect(rep.rows.map((x: { shape: string; load: number }) => `${x.shape}@${x.load}`)).toEqual([
      "1x4096@0",
      "1x131072@0",
      "1x4096@1",
      "1x131072@1",
    ]);
    for (const x of rep.rows) {
      expect(x.calls).toBe(40);
      expect(x.medianUs).toBeGreaterThan(0);
      expect(x.p99Us).toBeGreaterThanOrEqual(x.medianUs);
    }
    expect(r.stdout).toMatch(/^\| 1x131072 \| 2048 \| 1 \| 40 \|/m);
  });

  it("refuses a --load that is not an integer", () => {
    const r = runCli(["bench", "latency", "--load", "x"]);
    expect([r.status, r.stderr.trim()]).toEqual([
      1,
      'glm-kernels: E_ARG: Expected --load to be an integer between 0 and 1000000 but received "x"',
    ]);
  });
});
