// The picture beside the README's results table: GB/s of scores per shape, ours and the peer, with the read
// bandwidth of the same run. A self-contained SVG (no fonts, scripts or links to fetch), written by
// `glm-kernels bench --json F` next to F and by scripts/readme-table.mjs from the committed reports.
import type { BenchReport } from "./topk.js";

/** A report as written by benchTopk; `dtype` absent means f32 (the only dtype the bench runs today). */
export type ChartReport = BenchReport & { dtype?: string };

const BYTES: Record<string, number> = { f32: 4, f16: 2, bf16: 2 };
const W = 720;
const H = 440;
const PLOT = { left: 64, right: 704, top: 92, bottom: 358 };
const COLOR = { ours: "#2563eb", peer: "#f59e0b", read: "#dc2626", grid: "#e5e7eb", text: "#111827", dim: "#4b5563" };
const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"`;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

const n2 = (v: number) => String(Math.round(v * 100) / 100);
const label = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

function parseShape(shape: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(shape);
  if (!m) throw new Error(`Expected a row shape ROWSxCOLS but received "${shape}"`);
  return [Number(m[1]), Number(m[2])];
}

/** A step of 1, 2 or 5 times a power of ten that cuts [0, max] into at most about 6 intervals. */
function tickStep(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => max / s <= 6)!;
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${n2(x)}" y="${n2(y)}"${attrs ? " " + attrs : ""}>${escapeXml(s)}</text>`;
}

/** The chart of one top-k report: grouped bars of GB/s of scores (ours p50, the peer p50) and the read bandwidth. */
export function topkChartSvg(report: ChartReport): string {
  const dtype = report.dtype ?? "f32";
  const elem = BYTES[dtype];
  if (elem === undefined) throw new Error(`Expected a report dtype of f32, f16 or bf16 but received "${dtype}"`);
  const groups = report.rows
    .map((r) => {
      const [rows, cols] = parseShape(r.shape);
      const bytes = rows * cols * elem;
      // Both contenders as benchTopk computes gbs: score bytes read once per call over the p50 latency.
      const peer = r.peerMs !== null && r.peerMs > 0 ? bytes / (r.peerMs / 1e3) / 1e9 : null;
      return { row: r, rows, cols, ours: r.gbs, peer, read: r.readGBs ?? report.readGBs };
    })
    .sort((a, b) => a.cols - b.cols || a.rows - b.rows);
  const peerName = report.rows.find((r) => r.peer)?.peer ?? null;
  const max = Math.max(1e-9, ...groups.flatMap((g) => [g.ours, g.peer ?? 0, g.read]));
  const step = tickStep(max);
  const yMax = Math.ceil((max * 1.06) / step) * step;
  const scale = (PLOT.bottom - PLOT.top) / yMax;
  const y = (v: number) => PLOT.bottom - v * scale;
  const out: string[] = [];
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);

  const ks = [...new Set(report.rows.map((r) => r.k))].join(", ");
  out.push(text(W / 2, 26, `top-k: GB/s of scores read (p50), k = ${ks}, ${dtype}, cold inputs`, `text-anchor="middle" font-size="16" font-weight="600"`));
  const sub = `${report.device} · ${report.machine} · ${report.threads} threads${report.isa ? ` · ${report.isa}` : ""} · ${report.date.slice(0, 10)}`;
  out.push(text(W / 2, 46, sub, `text-anchor="middle" font-size="12" fill="${COLOR.dim}"`));

  // Legend, one row under the title.
  const legend: Array<[string, string, boolean]> = [["glm-kernels (ours)", COLOR.ours, false]];
  if (peerName) legend.push([peerName, COLOR.peer, false]);
  legend.push(["read bandwidth, same run", COLOR.read, true]);
  const itemW = legend.map(([s]) => 24 + s.length * 6.3 + 22);
  let lx = (W - itemW.reduce((a, b) => a + b, 0)) / 2;
  legend.forEach(([s, color, line], i) => {
    out.push(
      line
        ? `<line x1="${n2(lx)}" y1="70" x2="${n2(lx + 18)}" y2="70" stroke="${color}" stroke-width="2" stroke-dasharray="5 3"/>`
        : `<rect x="${n2(lx + 2)}" y="64" width="14" height="12" fill="${color}"/>`,
    );
    out.push(text(lx + 24, 74, s, `font-size="12"`));
    lx += itemW[i];
  });

  // Y axis: grid lines and tick labels.
  for (let v = 0; v <= yMax + step / 2; v += step) {
    out.push(`<line x1="${PLOT.left}" y1="${n2(y(v))}" x2="${PLOT.right}" y2="${n2(y(v))}" stroke="${v ? COLOR.grid : COLOR.dim}"/>`);
    out.push(text(PLOT.left - 6, y(v) + 4, String(Math.round(v * 1e6) / 1e6), `text-anchor="end" font-size="11" fill="${COLOR.dim}"`));
  }
  const midY = (PLOT.top + PLOT.bottom) / 2;
  out.push(text(18, midY, "GB/s of scores (higher is better)", `transform="rotate(-90 18 ${n2(midY)})" text-anchor="middle" font-size="12"`));

  // Groups: the bars, their values, the read bandwidth over each group, the shape below.
  const gw = (PLOT.right - PLOT.left) / Math.max(1, groups.length);
  const bw = Math.min(48, gw * 0.3);
  const sameRead = groups.every((g) => g.read === groups[0].read);
  groups.forEach((g, i) => {
    const cx = PLOT.left + gw * (i + 0.5);
    const bars: Array<[string, number, string]> = [["ours", g.ours, COLOR.ours]];
    if (g.peer !== null) bars.push(["peer", g.peer, COLOR.peer]);
    bars.forEach(([who, v, color], j) => {
      const x = cx - (bars.length * bw + (bars.length - 1) * 6) / 2 + j * (bw + 6);
      out.push(
        `<rect class="bar ${who}" data-shape="${escapeXml(g.row.shape)}" data-gbs="${v}" x="${n2(x)}" y="${n2(y(v))}" width="${n2(bw)}" height="${n2(v * scale)}" fill="${color}"/>`,
      );
      // The value above the bar, or inside it (white) where the read line would run through it.
      const inside = Math.abs(y(v) - 8 - y(g.read)) < 10 && v * scale > 20;
      const fill = inside ? ` fill="#ffffff"` : "";
      out.push(text(x + bw / 2, inside ? y(v) + 15 : y(v) - 4, label(v), `text-anchor="middle" font-size="11"${fill}`));
    });
    if (!sameRead) {
      out.push(
        `<line class="read" data-gbs="${g.read}" x1="${n2(cx - gw * 0.42)}" y1="${n2(y(g.read))}" x2="${n2(cx + gw * 0.42)}" y2="${n2(y(g.read))}" stroke="${COLOR.read}" stroke-width="2" stroke-dasharray="5 3"/>`,
      );
      out.push(text(cx + gw * 0.42, y(g.read) - 5, `read ${label(g.read)}`, `text-anchor="end" font-size="11" fill="${COLOR.read}"`));
    }
    out.push(text(cx, PLOT.bottom + 18, g.row.shape, `text-anchor="middle" font-size="12"`));
    if (g.row.speedup !== null) out.push(text(cx, PLOT.bottom + 34, `${g.row.speedup.toFixed(1)}x the peer`, `text-anchor="middle" font-size="11" fill="${COLOR.dim}"`));
  });
  if (sameRead && groups.length) {
    const r = groups[0].read;
    out.push(`<line class="read" data-gbs="${r}" x1="${PLOT.left}" y1="${n2(y(r))}" x2="${PLOT.right}" y2="${n2(y(r))}" stroke="${COLOR.read}" stroke-width="2" stroke-dasharray="5 3"/>`);
    out.push(text(PLOT.right - 4, y(r) - 5, `read ${label(r)}`, `text-anchor="end" font-size="11" fill="${COLOR.read}"`));
  }
  out.push(text((PLOT.left + PLOT.right) / 2, H - 16, "rows x cols of scores (ordered by row length, then rows)", `text-anchor="middle" font-size="12"`));

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" ${FONT} fill="${COLOR.text}">`,
    `<title>${escapeXml(`top-k GB/s of scores, ${report.device}, ${report.machine}, ${report.date.slice(0, 10)}`)}</title>`,
    ...out.map((l) => "  " + l),
    "</svg>",
    "",
  ].join("\n");
}
