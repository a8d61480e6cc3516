// Runs a snippet of ESM in a fresh Node process against the built package (dist/esm).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = `${ROOT}bin/glm-kernels.js`;

export function runNode(code: string, env: Record<string, string> = {}, timeout = 120_000) {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

export function runCli(args: string[], env: Record<string, string> = {}, timeout = 300_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Every CPU setting a result must not depend on: each ISA path (a path this CPU lacks runs the highest it
 * has), the default, one thread. */
export const CPU_SETTINGS: Record<string, string>[] = [
  { GLM_KERNELS_ISA: "scalar" },
  { GLM_KERNELS_ISA: "avx2" },
  { GLM_KERNELS_ISA: "avx512" },
  { GLM_KERNELS_ISA: "avx512vbmi" },
  {},
  { GLM_KERNELS_THREADS: "1" },
];

/** The snippet's output (trimmed) under each environment; a non-zero exit throws with its stderr. */
export function outputsUnder(code: string, envs: Record<string, string>[]): string[] {
  return envs.map((env) => {
    const r = runNode(code, env);
    if (r.status !== 0) throw new Error(`exit ${r.status} under ${JSON.stringify(env)}: ${r.stderr}`);
    return r.stdout.trim();
  });
}
