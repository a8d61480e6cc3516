// Compiles lib/ to dist/esm (ESM) and dist/cjs (CommonJS), with the shared CommonJS loader in both.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync("dist", { recursive: true, force: true });
for (const [config, out, type] of [
  ["tsconfig.json", "dist/esm", "module"],
  ["tsconfig.cjs.json", "dist/cjs", "commonjs"],
]) {
  execFileSync(process.execPath, [tsc, "-p", config], { stdio: "inherit" });
  mkdirSync(out, { recursive: true });
  copyFileSync("lib/load-binding.cjs", `${out}/load-binding.cjs`);
  copyFileSync("lib/load-binding.d.cts", `${out}/load-binding.d.cts`);
  writeFileSync(`${out}/package.json`, JSON.stringify({ type }) + "\n");
}
