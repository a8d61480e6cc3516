// The bench chart (lib/bench/chart.ts) on a small synthetic report: its structure, bar heights, read line, escaping.
import { describe, expect, it } from "vitest";
import { topkChartSvg, type ChartReport } from "../dist/esm/bench/chart.js";

type Row = ChartReport["rows"][number];
const row = (shape: string, gbs: number, readGBs: number, peerMs: number | null): Row => {
  const [r, c] = shape.split("x").map(Number);
  const ms = (r * c * 4) / gbs / 1e6;
  return {
    op: "topk", shape, k: 2048, device: "cpu", ms, gbs, readGBs, fractionOfRead: gbs / readGBs, fractionOfTypicalRead: gbs / readGBs,
    pairedRounds: 15, peer: peerMs === null ? null : "onnxruntime-node TopK", peerMs, speedup: peerMs === null ? null : peerMs / ms,
  };
};
const report = (rows: Row[]): ChartReport => ({
  date: "2026-11-24T05:02:34.860Z", machine: 'Xeon <E5> & "friends"', device: "cpu", threads: 2, isa: "avx512",
  readGBs: 17, copyGBs: 19, rows,
});

const attrs = (tag: string) =>
  Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]])) as Record<string, string>;
const elements = (svg: string, name: string, cls: string) =>
  [...svg.matchAll(new RegExp(`<${name} [^>]*>`, "g"))].map((m) => attrs(m[0])).filter((a) => (a.class ?? "").split(" ").includes(cls));

describe("topkChartSvg", () => {
  // 512x32768 has no peer (as on a device without one); the read bandwidth differs per shape.
  const rep = report([row("64x131072", 14, 17.2, 48), row("1x131072", 5, 15.4, 2), row("512x32768", 9.6, 15.7, null)]);
  const svg = topkChartSvg(rep);

  it("is one balanced svg element with a viewBox", () => {
    expect(svg.startsWith("<svg ")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).toMatch(/^<svg [^>]*viewBox="0 0 \d+ \d+"/);
    const stack: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([\w-]+)[^>]*?(\/?)>/g)) {
      if (m[3]) continue;
      if (!m[1]) stack.push(m[2]);
      else expect(stack.pop()).toBe(m[2]);
    }
    expect(stack).toEqual([]);
    expect(svg).not.toMatch(/<script|href=|@import|url\(/);
  });

  it("draws one bar per contender per shape, ordered by row length, heights proportional to GB/s", () => {
    const ours = elements(svg, "rect", "ours");
    const peer = elements(svg, "rect", "peer");
    expect(ours.map((a) => a["data-shape"])).toEqual(["512x32768", "1x131072", "64x131072"]);
    expect(peer.map((a) => a["data-shape"])).toEqual(["1x131072", "64x131072"]);
    const peerGbs = (shape: string, peerMs: number) => (Number(shape.split("x")[0]) * Number(shape.split("x")[1]) * 4) / (peerMs / 1e3) / 1e9;
    expect(peer.map((a) => Number(a["data-gbs"]))).toEqual([peerGbs("1x131072", 2), peerGbs("64x131072", 48)]);
    expect(ours.map((a) => Number(a["data-gbs"]))).toEqual([9.6, 5, 14]);
    const bars = [...ours, ...peer];
    const scale = Number(bars[0].height) / Number(bars[0]["data-gbs"]);
    const base = Number(bars[0].y) + Number(bars[0].height);
    for (const a of bars) {
      expect(Number(a.height)).toBeCloseTo(Number(a["data-gbs"]) * scale, 1);
      expect(Number(a.y) + Number(a.height)).toBeCloseTo(base, 1);
    }
    // The tallest value (the read line at 17.2) fits in the plot.
    expect(base - 17.2 * scale).toBeGreaterThan(0);
  });

  it("draws the read bandwidth of each shape at its height over its group", () => {
    const ours = elements(svg, "rect", "ours");
    const scale = Number(ours[0].height) / Number(ours[0]["data-gbs"]);
    const base = Number(ours[0].y) + Number(ours[0].height);
    const reads = elements(svg, "line", "read");
    expect(reads.map((a) => Number(a["data-gbs"]))).toEqual([15.7, 15.4, 17.2]);
    reads.forEach((a, i) => {
      expect(Number(a.y1)).toBeCloseTo(base - Number(a["data-gbs"]) * scale, 1);
      expect(Number(a.y2)).toBe(Number(a.y1));
      // The segment spans its group's bar.
      const bar = ours[i];
      expect(Number(a.x1)).toBeLessThan(Number(bar.x));
      expect(Number(a.x2)).toBeGreaterThan(Number(bar.x) + Number(bar.width));
    });
  });

  it("draws one read line across the plot when every shape had the same read", () => {
    const reads = elements(topkChartSvg(report([row("1x131072", 5, 16, null), row("4x131072", 8, 16, null)])), "line", "read");
    expect(reads.length).toBe(1);
  });

  it("escapes text and names the run in the title", () => {
    expect(svg).toContain("Xeon &lt;E5&gt; &amp; &quot;friends&quot;");
    expect(svg).not.toContain("<E5>");
    expect(svg).toContain("2 threads");
    expect(svg).toContain("2026-11-24");
    expect(svg).toContain("onnxruntime-node TopK");
  });
});
