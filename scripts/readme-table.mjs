// Regenerates the README's results tables from bench/results/*.json (written by `glm-kernels bench --json`):
// the top-k table from topk-*.json, with the chart beside each report (bench/results/X.svg from X.json,
// drawn by the CLI's own code in dist/), and the int4, fp8 and moe tables from int4-*, fp8-* and moe-*.json.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";

const chartJs = new URL("../dist/esm/bench/chart.js", import.meta.url);
if (!existsSync(chartJs)) {
  console.error(`readme-table: ${chartJs.pathname} is missing: run \`npm run build:ts\` first (it draws the charts)`);
  process.exit(1);
}
const { topkChartSvg } = await import(chartJs.href);
const { formatInt4 } = await import(new URL("../dist/esm/bench/int4.js", import.meta.url).href);
const { formatFp8 } = await import(new URL("../dist/esm/bench/fp8.js", import.meta.url).href);
const { formatMoe } = await import(new URL("../dist/esm/bench/moe.js", import.meta.url).href);

const dir = "bench/results";
const rows = [];
for (const f of readdirSync(dir).filter((f) => f.startsWith("topk-") && f.endsWith(".json")).sort()) {
  const rep = JSON.parse(readFileSync(`${dir}/${f}`, "utf8"));
  writeFileSync(`${dir}/${f.replace(/\.json$/, ".svg")}`, topkChartSvg(rep));
  for (const r of rep.rows) {
    rows.push(
      `| ${r.op} | ${r.shape} | ${r.k} | ${rep.device} (${rep.machine}, ${rep.threads} threads, ${rep.isa}) | ${r.ms.toFixed(2)} | ` +
        `${r.gbs.toFixed(1)} | ${(r.fractionOfRead * 100).toFixed(0)}% (read ${(r.readGBs ?? rep.readGBs).toFixed(1)} GB/s) | ` +
        `${r.fractionOfTypicalRead === undefined ? "-" : `${(r.fractionOfTypicalRead * 100).toFixed(0)}%`} | ` +
        `${r.peer ? `${r.peer}: ${r.peerMs.toFixed(2)} ms` : "-"} | ${r.speedup ? `${r.speedup.toFixed(1)}x` : "-"} | ${rep.date.slice(0, 10)} (\`${f}\`) |`,
    );
  }
}
const table = [
  "| op | rows x cols | k | device | ms (p50) | GB/s of scores (p50) | of read bandwidth (paired rounds) | of the median read (same rounds) | peer (same run, p50) | speed-up | date (file) |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
  ...rows,
].join("\n");
let readme = readFileSync("README.md", "utf8");
// Section: int4 and fp8 (one table per report, as the CLI prints it, plus its date and file)
function section(name, format) {
  const body = readdirSync(dir)
    .filter((f) => f.startsWith(`${name}-`) && f.endsWith(".json"))
    .sort()
    .map((f) => {
      const rep = JSON.parse(readFileSync(`${dir}/${f}`, "utf8"));
      return `${format(rep)}\n\n(${rep.date.slice(0, 10)}, \`${f}\`)`;
    })
    .join("\n\n");
  const open = `<!-- ${name}:start -->`;
  const a = readme.indexOf(open);
  const b = readme.indexOf(`<!-- ${name}:end -->`);
  if (a < 0 || b < a) throw new Error(`README.md has no ${name}:start / ${name}:end markers`);
  readme = readme.slice(0, a + open.length) + "\n" + body + "\n" + readme.slice(b);
}
section("int4", formatInt4);
section("fp8", formatFp8);
section("moe", formatMoe);
const start = "<!-- bench:start -->";
const end = "<!-- bench:end -->";
const a = readme.indexOf(start);
const b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error("README.md has no bench:start / bench:end markers");
writeFileSync("README.md", readme.slice(0, a + start.length) + "\n" + table + "\n" + readme.slice(b));
console.log(table);
