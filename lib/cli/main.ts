// glm-kernels CLI: info | verify | bench [op] (see --help).
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { native } from "../binding.js";
import { PACKAGE_VERSION, defaultDevice, listDevices, openDevice, type Device } from "../device.js";
import { envSimSeed } from "../env.js";
import { GlmKernelsError } from "../errors.js";
import { goldenDigests, verifyTopk } from "../verify/checks.js";

const HELP = `usage: glm-kernels <command> [options]
  info                       devices found, why the others are not, build and ABI versions
  verify [--device D] [--repeats N]
                             determinism checks on the device, one line per check with its digest
  bench [topk] [--device D] [--json F] [--time MS] [--shapes RxC,...]
                             tinybench throughput (progress on stderr, table on stdout;
                             --json F also writes the chart to F with .svg for .json)
  bench int4 [--device D] [--shapes NxK,...] [--m 1,4,...] [--groups 32,128] [--time MS] [--json F]
                             int4.matmul beside onnxruntime-node MatMulNBits and dense bf16 matmul
  bench fp8 [--device D] [--shapes NxK,...] [--m 1,8,...] [--time MS] [--json F]
                             fp8.matmul beside onnxruntime-node MatMul on the dequantized weights
  bench moe [--device D] [--tokens 1,8,64] [--h H] [--i I] [--experts E] [--top-k K] [--time MS] [--json F]
                             moe.route + moe.experts (GLM-5 shapes, 16 experts), cold, against read bandwidth
  bench latency [--device D] [--load N] [--calls N] [--json F]
                             one call's latency (1x4096 k=64, 1x131072 k=2048), median and p99,
                             idle and beside N busy processes (default 6)
environment: GLM_KERNELS_DEVICE, GLM_KERNELS_THREADS, GLM_KERNELS_ISA, GLM_KERNELS_SPIN_US, GLM_KERNELS_SIM_SEED, GLM_KERNELS_PLUGIN_PATH`;

function parseArgs(argv: string[]): { cmd: string; pos: string[]; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") flags.set("help", "1");
    else if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else {
        if (i + 1 >= argv.length) throw new GlmKernelsError("E_ARG", `Expected a value after ${a} but received nothing`);
        flags.set(a.slice(2), argv[++i]);
      }
    } else pos.push(a);
  }
  return { cmd: pos.shift() ?? "help", pos, flags };
}

function pickDevice(flags: Map<string, string>): Device {
  const d = flags.get("device");
  return d ? openDevice(d) : defaultDevice();
}

function info(): void {
  const b = native();
  console.log(`glm-kernels ${PACKAGE_VERSION}, device ABI ${b.abiVersion}, node ${process.versions.node} (N-API ${process.versions.napi})`);
  console.log(`plugin folders: ${b.pluginDirs().join(", ")}`);
  for (const l of listDevices()) {
    if (l.available) {
      const d = openDevice(l.kind === "cpu" || l.kind === "cuda-sim" ? l.kind : `${l.kind}:0`).info();
      const extra = d.isa ? `, isa ${d.isa}` : "";
      console.log(`  ${l.kind}: ${l.count} x ${d.name} (${d.threads} threads${extra}; ${(d.memory / 2 ** 30).toFixed(1)} GiB; ops ${d.capabilities.join(",")}; ${d.build.compiler})`);
    } else console.log(`  ${l.kind}: not available: ${l.reason}`);
  }
  console.log(`default device: ${defaultDevice().name}`);
}

async function verify(flags: Map<string, string>): Promise<number> {
  const dev = pickDevice(flags);
  const repeats = Number(flags.get("repeats") ?? 20);
  const di = dev.info();
  console.log(`verify on ${dev.name} (${di.name}${di.isa ? `, isa ${di.isa}` : ""}, ${di.threads} threads)`);
  let failed = 0;
  const checks = await verifyTopk(dev, {
    repeats,
    onCheck: (c) => {
      if (!c.ok) failed++;
      console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(52)} ${c.digest}${c.detail ? `  (${c.detail})` : ""}`);
    },
  });
  // One more check in a child process: another thread count (cpu) or another schedule seed (cuda-sim).
  const other =
    dev.kind === "cpu"
      ? { label: `threads ${di.threads} vs ${di.threads === 1 ? 2 : 1}`, env: { GLM_KERNELS_THREADS: String(di.threads === 1 ? 2 : 1) } }
      : dev.kind === "cuda-sim"
        ? { label: `schedule seed ${envSimSeed()} vs ${envSimSeed() + 1n}`, env: { GLM_KERNELS_SIM_SEED: String(envSimSeed() + 1n) } }
        : null;
  if (other) {
    const mine = await goldenDigests(dev);
    const child = spawnSync(process.execPath, [process.argv[1], "digests", "--device", dev.name], {
      env: { ...process.env, ...other.env },
      encoding: "utf8",
    });
    const theirs = child.status === 0 ? (JSON.parse(child.stdout) as Record<string, string>) : {};
    const names = Object.keys(mine);
    const same = names.filter((n) => theirs[n] === mine[n]).length;
    const ok = same === names.length;
    if (!ok) failed++;
    console.log(`${ok ? "ok  " : "FAIL"} ${`${other.label} (child process)`.padEnd(52)} ${same}/${names.length} cases identical${child.status === 0 ? "" : `; child failed: ${child.stderr.trim()}`}`);
  }
  // The int4 quantizer and the matmuls, where the device has them (and for cpu, the same digests again from
  // a child process with another thread count and instruction set).
  const { verifyQuant, quantDigests } = await import("../verify/quant-checks.js");
  const int4Checks = await verifyQuant(dev, {
    repeats: Math.min(repeats, 5),
    onCheck: (c) => {
      if (!c.ok) failed++;
      console.log(`${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(52)} ${c.digest}${c.detail ? `  (${c.detail})` : ""}`);
    },
  });
  let int4Child = 0;
  if (dev.kind === "cpu" && int4Checks.length) {
    const mine = await quantDigests(dev);
    const child = spawnSync(process.execPath, [process.argv[1], "digests", "--int4", "1", "--device", dev.name], {
      env: { ...process.env, GLM_KERNELS_THREADS: String(di.threads === 1 ? 2 : 1), GLM_KERNELS_ISA: "scalar" },
      encoding: "utf8",
    });
    const theirs = child.status === 0 ? (JSON.parse(child.stdout) as Record<string, string>) : {};
    const names = Object.keys(mine);
    const same = names.filter((n) => theirs[n] === mine[n]).length;
    if (same !== names.length) failed++;
    int4Child = 1;
    console.log(`${same === names.length ? "ok  " : "FAIL"} ${"int4/fp8/matmul/moe, scalar path, other threads (child)".padEnd(52)} ${same}/${names.length} cases identical${child.status === 0 ? "" : `; child failed: ${child.stderr.trim()}`}`);
  }
  console.log(`${checks.length + (other ? 1 : 0) + int4Checks.length + int4Child - failed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

function parseShapes(v: string): Array<[number, number]> {
  return v.split(",").map((one) => {
    const m = /^(\d+)x(\d+)$/.exec(one.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
      throw new GlmKernelsError("E_ARG", `Expected --shapes as ROWSxCOLS[,ROWSxCOLS...] (e.g. 512x32768) but received "${v}"`);
    return [Number(m[1]), Number(m[2])];
  });
}

async function bench(pos: string[], flags: Map<string, string>): Promise<number> {
  const op = pos[0] ?? "topk";
  if (op === "latency") return latency(flags);
  if (op === "int4") return benchInt4Cli(flags);
  if (op === "fp8") return benchFp8Cli(flags);
  if (op === "moe") return benchMoeCli(flags);
  if (op !== "topk") throw new GlmKernelsError("E_ARG", `Expected a benchmark (topk, int4, fp8, moe or latency) but received "${op}"`);
  const dev = pickDevice(flags);
  const time = timeFlag(flags, 2000);
  const shapes = flags.has("shapes") ? parseShapes(flags.get("shapes")!) : undefined;
  const { benchTopk, formatReport } = await import("../bench/topk.js");
  const rep = await benchTopk(dev, { time, shapes, log: (s) => process.stderr.write(`${s}\n`) });
  console.log(formatReport(rep));
  const json = writeReport(flags, rep);
  if (json) {
    const { topkChartSvg } = await import("../bench/chart.js");
    writeFileSync(json.replace(/(\.json)?$/, ".svg"), topkChartSvg(rep));
  }
  return 0;
}

// --time MS (default dflt): the time tinybench spends on each case.
function timeFlag(flags: Map<string, string>, dflt: number): number {
  const time = Number(flags.get("time") ?? dflt);
  if (!(time > 0)) throw new GlmKernelsError("E_ARG", `Expected --time to be a positive number of ms but received "${flags.get("time")}"`);
  return time;
}

// --json F: the report as JSON at F.
function writeReport(flags: Map<string, string>, rep: unknown): string | undefined {
  const json = flags.get("json");
  if (!json) return undefined;
  mkdirSync(dirname(json), { recursive: true });
  writeFileSync(json, JSON.stringify(rep, null, 2) + "\n");
  return json;
}

function intList(flags: Map<string, string>, name: string, allowed?: number[]): number[] | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  const xs = v.split(",").map((t) => Number(t.trim()));
  if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 1 || x > 1_000_000 || (allowed && !allowed.includes(x))))
    throw new GlmKernelsError("E_ARG", `Expected --${name} as a comma-separated list of ${allowed ? allowed.join(" | ") : "positive integers"} but received "${v}"`);
  return xs;
}

async function benchInt4Cli(flags: Map<string, string>): Promise<number> {
  const dev = pickDevice(flags);
  const time = timeFlag(flags, 500);
  const shapes = flags.has("shapes")
    ? parseShapes(flags.get("shapes")!).map(([a, b]) => {
        if (b % 128 !== 0) throw new GlmKernelsError("E_ARG", `Expected --shapes NxK with K a multiple of 128 but received "${a}x${b}"`);
        return [a, b] as [number, number];
      })
    : undefined;
  const { benchInt4, formatInt4 } = await import("../bench/int4.js");
  const rep = await benchInt4(dev, {
    time,
    shapes,
    ms: intList(flags, "m"),
    groups: intList(flags, "groups", [32, 64, 128]),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  console.log(formatInt4(rep));
  writeReport(flags, rep);
  return 0;
}

async function benchFp8Cli(flags: Map<string, string>): Promise<number> {
  const dev = pickDevice(flags);
  const time = timeFlag(flags, 500);
  const shapes = flags.has("shapes") ? parseShapes(flags.get("shapes")!) : undefined;
  const { benchFp8, formatFp8 } = await import("../bench/fp8.js");
  const rep = await benchFp8(dev, { time, shapes, ms: intList(flags, "m"), log: (s) => process.stderr.write(`${s}\n`) });
  console.log(formatFp8(rep));
  writeReport(flags, rep);
  return 0;
}

async function benchMoeCli(flags: Map<string, string>): Promise<number> {
  const dev = pickDevice(flags);
  const time = timeFlag(flags, 1000);
  const { benchMoe, formatMoe } = await import("../bench/moe.js");
  const rep = await benchMoe(dev, {
    time,
    tokens: intList(flags, "tokens"),
    h: flags.has("h") ? positiveInt(flags, "h", 6144, 1) : undefined,
    i: flags.has("i") ? positiveInt(flags, "i", 2048, 1) : undefined,
    e: flags.has("experts") ? positiveInt(flags, "experts", 16, 1) : undefined,
    topK: flags.has("top-k") ? positiveInt(flags, "top-k", 8, 1) : undefined,
    log: (s) => process.stderr.write(`${s}\n`),
  });
  console.log(formatMoe(rep));
  writeReport(flags, rep);
  return 0;
}

function positiveInt(flags: Map<string, string>, name: string, dflt: number, min: number): number {
  const v = flags.has(name) ? Number(flags.get(name)) : dflt;
  if (!Number.isInteger(v) || v < min || v > 1_000_000)
    throw new GlmKernelsError("E_ARG", `Expected --${name} to be an integer between ${min} and 1000000 but received "${flags.get(name)}"`);
  return v;
}

async function latency(flags: Map<string, string>): Promise<number> {
  const dev = pickDevice(flags);
  const load = positiveInt(flags, "load", 6, 0);
  const calls = positiveInt(flags, "calls", 2000, 1);
  const { benchLatency, formatLatency } = await import("../bench/latency.js");
  const { topk } = await import("../ops/topk.js");
  const rep = await benchLatency(dev, topk, {
    loads: load ? [0, load] : [0],
    calls,
    log: (s) => process.stderr.write(`${s}\n`),
  });
  console.log(formatLatency(rep));
  writeReport(flags, rep);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { cmd, pos, flags } = parseArgs(argv);
  if (flags.has("help") || cmd === "help") {
    console.log(HELP);
    return 0;
  }
  switch (cmd) {
    case "info":
      info();
      return 0;
    case "verify":
      return verify(flags);
    case "bench":
      return bench(pos, flags);
    case "digests": // for verify's child processes: the golden cases' digests as JSON (--int4 1: the int4 ones)
      if (flags.get("int4") === "1") {
        const { quantDigests } = await import("../verify/quant-checks.js");
        console.log(JSON.stringify(await quantDigests(pickDevice(flags))));
      } else console.log(JSON.stringify(await goldenDigests(pickDevice(flags))));
      return 0;
    default:
      console.error(`unknown command "${cmd}"\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof GlmKernelsError) console.error(`glm-kernels: ${e.code}: ${e.message}`);
    else console.error(e);
    process.exitCode = 1;
  },
);
