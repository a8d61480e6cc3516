// Environment variables (README "Environment"): parsed and checked once per read.
import { availableParallelism } from "node:os";
import { GlmKernelsError, describe } from "./errors.js";

export const ISAS = ["auto", "avx512bf16", "avx512vbmi", "avx512", "avx2", "scalar"] as const;
export type IsaName = (typeof ISAS)[number];

function envInt(name: string, min: number, max: number, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max)
    throw new GlmKernelsError("E_ARG", `Expected an integer between ${min} and ${max} for ${name} but received ${describe(raw)}`);
  return n;
}

/** GLM_KERNELS_THREADS: CPU worker threads (default: the cores Node may use). */
export function envThreads(): number {
  return envInt("GLM_KERNELS_THREADS", 1, 1024, Math.max(1, availableParallelism()));
}

/**
 * GLM_KERNELS_SPIN_US: how long (microseconds) an idle CPU worker or stream thread polls for the next
 * piece of work before it sleeps (default 200; 0: sleep at once). Never changes results.
 */
export function envSpinUs(): number {
  return envInt("GLM_KERNELS_SPIN_US", 0, 1000000, 200);
}

/** GLM_KERNELS_ISA: the highest instruction set the CPU device may use. */
export function envIsa(): IsaName {
  const raw = process.env.GLM_KERNELS_ISA;
  if (raw === undefined || raw === "") return "auto";
  if (!(ISAS as readonly string[]).includes(raw))
    throw new GlmKernelsError("E_ARG", `Expected one of ${ISAS.join(", ")} for GLM_KERNELS_ISA but received ${describe(raw)}`);
  return raw as IsaName;
}

/** GLM_KERNELS_SIM_SEED: the cuda-sim schedule seed (default 1). */
export function envSimSeed(): bigint {
  const raw = process.env.GLM_KERNELS_SIM_SEED;
  if (raw === undefined || raw === "") return 1n;
  if (!/^\d{1,20}$/.test(raw.trim()) || BigInt(raw.trim()) >= 1n << 64n)
    throw new GlmKernelsError("E_ARG", `Expected an integer between 0 and 2^64-1 for GLM_KERNELS_SIM_SEED but received ${describe(raw)}`);
  return BigInt(raw.trim());
}

/** GLM_KERNELS_DEVICE (default cpu). */
export function envDevice(): string {
  const raw = process.env.GLM_KERNELS_DEVICE;
  return raw === undefined || raw === "" ? "cpu" : raw;
}
