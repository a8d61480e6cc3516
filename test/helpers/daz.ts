// A shared library whose constructor sets MXCSR.DAZ and FTZ (as -ffast-math start-up code does): LD_PRELOAD
// it into a child process to run glm-kernels under a host's flush-to-zero settings.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let built: string | null = null;

/** The path of the library (compiled with the machine's cc on first use). */
export function dazLibrary(): string {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), "glmk-daz-"));
  const lib = join(dir, "libdaz.so");
  writeFileSync(join(dir, "daz.c"), "__attribute__((constructor)) static void daz(void) { __builtin_ia32_ldmxcsr(__builtin_ia32_stmxcsr() | 0x8040); }\n");
  execFileSync("cc", ["-shared", "-fPIC", "-msse", "-o", lib, join(dir, "daz.c")]);
  built = lib;
  return lib;
}
