// The addon loads on every x86-64 CPU: code that runs when it loads (static initializers and what they call)
// uses no AVX, AVX2 or AVX-512 instruction, since the ISA is chosen at run time (GLM_KERNELS_ISA, isa.cc).
// A namespace-scope table in a file compiled for AVX-512 would break that (its constructor runs at load).
// Checked on the disassembly of the built addon (objdump from binutils, which g++ brings).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/child.js";

const ADDON = join(ROOT, "build/Release/glm_kernels.node");
const objdump = spawnSync("objdump", ["--version"]).status === 0;

describe.runIf(existsSync(ADDON) && objdump && process.arch === "x64")("what runs when the addon loads", () => {
  it("static initializers, and the functions they call (3 levels), use no VEX or EVEX instruction", () => {
    const asm = spawnSync("objdump", ["-d", "--no-show-raw-insn", "-C", ADDON], { encoding: "utf8", maxBuffer: 1 << 30 }).stdout;
    const funcs = new Map<string, string[]>();
    let cur = "";
    for (const line of asm.split("\n")) {
      const m = /^[0-9a-f]+ <(.*)>:$/.exec(line);
      if (m) funcs.set((cur = m[1]), []);
      else if (cur && line.trim()) funcs.get(cur)!.push(line.split("\t").pop()!.trim());
    }
    const inits = [...funcs.keys()].filter((f) => f.includes("GLOBAL__sub_I"));
    expect(inits.length).toBeGreaterThan(0);
    const seen = new Set<string>(), bad: string[] = [];
    const walk = (f: string, depth: number) => {
      if (seen.has(f) || depth > 3) return;
      seen.add(f);
      for (const ins of funcs.get(f) ?? []) {
        if (/^v\w+\s/.test(ins) || /[xyz]mm(1[6-9]|2\d|3[01])|ymm|zmm/.test(ins)) bad.push(`${f}: ${ins}`);
        const call = /(?:call|jmp)\s+[0-9a-f]+ <([^>@+]+)>/.exec(ins);  // (a tail call is a jmp)
        if (call && !call[1].startsWith("std::")) walk(call[1], depth + 1);
      }
    };
    for (const f of inits) walk(f, 0);
    expect(bad).toEqual([]);
  });
});
