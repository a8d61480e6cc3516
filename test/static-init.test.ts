// The addon loads on every x86-64 CPU: code that runs when it loads (the functions .init_array lists, and what
// they call or jump to, 3 levels) uses no AVX, AVX2 or AVX-512 instruction, since the ISA is chosen at run time
// (GLM_KERNELS_ISA, isa.cc). A namespace-scope table in a file compiled for AVX-512 would break that: its
// constructor runs at load. Checked on the disassembly (objdump from binutils, which g++ brings) of the addon
// this checkout loads: build/Release's, else the prebuilt (stripped) one, hence .init_array and addresses, not
// symbol names.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/child.js";

const ADDON = [join(ROOT, "build/Release/glm_kernels.node"), join(ROOT, "prebuilds/linux-x64/glm-kernels.node")].find((f) => existsSync(f));
const objdump = spawnSync("objdump", ["--version"]).status === 0;
const run = (args: string[]) => spawnSync("objdump", [...args, ADDON!], { encoding: "utf8", maxBuffer: 1 << 30 }).stdout;

describe.runIf(ADDON && objdump && process.arch === "x64")("what runs when the addon loads", () => {
  it("the .init_array functions, and what they call or jump to, use no VEX or EVEX instruction", () => {
    // .init_array: little-endian 8-byte addresses
    const bytes: number[] = [];
    for (const line of run(["-s", "-j", ".init_array"]).split("\n")) {
      const m = /^ [0-9a-f]+ ((?:[0-9a-f]{2,8} ?){1,4}) /.exec(line);
      if (m) for (const w of m[1].trim().split(" ")) for (let i = 0; i < w.length; i += 2) bytes.push(parseInt(w.slice(i, i + 2), 16));
    }
    const entries: number[] = [];
    for (let i = 0; i + 8 <= bytes.length; i += 8) entries.push(bytes.slice(i, i + 8).reduceRight((v, b) => v * 256 + b, 0));
    expect(entries.length).toBeGreaterThan(0);
    // the code, instruction by instruction
    const at = new Map<number, number>(), code: { addr: number; ins: string }[] = [];
    for (const line of run(["-d", "--no-show-raw-insn"]).split("\n")) {
      const m = /^\s+([0-9a-f]+):\s+(.*)$/.exec(line);
      if (m) at.set(parseInt(m[1], 16), code.push({ addr: parseInt(m[1], 16), ins: m[2].trim() }) - 1);
    }
    const seen = new Set<number>(), bad: string[] = [];
    const walk = (addr: number, depth: number) => {
      if (seen.has(addr) || depth > 3 || !at.has(addr)) return;
      seen.add(addr);
      for (let i = at.get(addr)!; i < code.length && i < at.get(addr)! + 4000; i++) {
        const { ins } = code[i];
        if (/^v\w+\s/.test(ins) || /%(ymm|zmm|[xy]mm(1[6-9]|2\d|3[01])|k[0-7])\b/.test(ins)) bad.push(`${code[i].addr.toString(16)}: ${ins}`);
        const target = /^(call|jmp)\s+([0-9a-f]+)(\s|$)/.exec(ins);
        if (target) walk(parseInt(target[2], 16), depth + 1);
        if (/^(ret|ud2|int3)\b/.test(ins) || /^jmp\s/.test(ins)) break;
      }
    };
    for (const e of entries) walk(e, 0);
    expect(seen.size).toBeGreaterThanOrEqual(entries.length);
    expect(bad).toEqual([]);
  });
});
