// Regenerates the README's results table from bench/results/*.json (written by `glm-kernels bench --json`),
// and the chart beside each report (bench/results/X.svg from X.json) with the CLI's own code in dist/.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";

const chartJs = new URL("../dist/esm/bench/chart.js", import.meta.url);
if (!existsSync(chartJs)) {
  console.error(`readme-table: ${chartJs.pathname} is missing: run \`npm run build:ts\` first (it draws the charts)`);
  process.exit(1);
}
const { topkChartSvg } = await import(chartJs.href);

const dir = "bench/results";
const rows = [];
for (const f of readdirSync(dir).filter((f) => f.endsWith(".json")).sort()) {
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
const readme = readFileSync("README.md", "utf8");
const start = "<!-- bench:start -->";
const end = "<!-- bench:end -->";
const a = readme.indexOf(start);
const b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error("README.md has no bench:start / bench:end markers");
writeFileSync("README.md", readme.slice(0, a + start.length) + "\n" + table + "\n" + readme.slice(b));
console.log(table);
