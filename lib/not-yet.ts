// SPEC 4-5 names that this release does not implement yet. They exist so that `import { matmul, int4, fp8, moe }`
// works; calling one throws E_UNSUPPORTED (never a wrong answer).
import { GlmKernelsError } from "./errors.js";

function notYet(name: string): (...args: unknown[]) => never {
  return () => {
    throw new GlmKernelsError("E_UNSUPPORTED", `${name} is not implemented in glm-kernels ${"0.1.0"} yet (see the README's status table)`);
  };
}

export const moe = Object.freeze({ route: notYet("moe.route"), experts: notYet("moe.experts") });
