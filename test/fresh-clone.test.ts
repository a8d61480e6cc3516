// A new user's first steps: git clone, npm ci, then `npx glm-kernels info`, `verify` and `bench topk`.
// NOTE: it clones the committed HEAD of this repository, not the working tree: uncommitted changes are
// not tested until they are committed. npm ci builds the addon from source (prebuilds/ is not in git)
// with the install script, and dist/ with the prepare script.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "./helpers/child.js";

const CI_TIMEOUT = 900_000; // npm ci compiles the addon: a minute or more on 2 cores
const CLI_TIMEOUT = 300_000;

// The environment of a new user's shell: none of this checkout's npm lifecycle variables (npm run sets
// npm_config_local_prefix, npm_package_json, ... to this checkout), no NODE_PATH, no GLM_KERNELS_*
// settings; npm_config_nodedir stays (node-gyp's headers on machines that point it at them).
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    const key = k.toLowerCase();
    if (key.startsWith("npm_") && key !== "npm_config_nodedir") continue;
    if (key === "init_cwd" || key === "node_path" || key.startsWith("glm_kernels_")) continue;
    env[k] = v;
  }
  env.ONNXRUNTIME_NODE_INSTALL_CUDA = "skip";
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeout: number) {
  const r = spawnSync(cmd, args, { cwd, env: userEnv(), encoding: "utf8", timeout, maxBuffer: 64 * 2 ** 20 });
  const what = `${cmd} ${args.join(" ")} (in ${cwd})`;
  const log = `${what}: status ${r.status}, signal ${r.signal}${r.error ? `, ${r.error.message}` : ""}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", log };
}

describe("fresh clone: git clone && npm ci && npx glm-kernels ...", () => {
  // Outside this checkout, so that Node's module lookup from the clone never reaches its node_modules.
  const tmp = mkdtempSync(join(tmpdir(), "glmk-clone-"));
  const clone = join(tmp, "glm-kernels");
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  beforeAll(() => {
    const head = run("git", ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], ROOT, 60_000);
    if (head.status !== 0)
      throw new Error(`fresh-clone test: ${ROOT} has no commit at HEAD to clone (it tests the committed HEAD; commit first)\n${head.log}`);
    const sha = head.stdout.trim();
    // A local clone copies every object, so a detached HEAD checks out as well as a branch.
    const cl = run("git", ["clone", "--quiet", "--no-checkout", ROOT, clone], tmp, 120_000);
    if (cl.status !== 0) throw new Error(`fresh-clone test: git clone failed\n${cl.log}`);
    const co = run("git", ["checkout", "--quiet", "--detach", sha], clone, 120_000);
    if (co.status !== 0) throw new Error(`fresh-clone test: git checkout ${sha} failed\n${co.log}`);
    expect(existsSync(join(clone, "node_modules"))).toBe(false);
    const ci = run("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], clone, CI_TIMEOUT);
    if (ci.status !== 0) throw new Error(`fresh-clone test: npm ci failed\n${ci.log}`);
    if (!existsSync(join(clone, "dist/esm/cli/main.js")))
      throw new Error(`fresh-clone test: npm ci left no dist/esm/cli/main.js (is the prepare script in the committed package.json?)\n${ci.log}`);
  }, CI_TIMEOUT + 300_000);

  it("npx glm-kernels info lists the cpu device", () => {
    const r = run("npx", ["glm-kernels", "info"], clone, CLI_TIMEOUT);
    expect(r.status, r.log).toBe(0);
    expect(r.stdout, r.log).toMatch(/^ {2}cpu: 1 x /m);
    expect(r.stdout, r.log).toMatch(/^default device: cpu$/m);
  });

  it("npx glm-kernels verify passes every check", () => {
    const r = run("npx", ["glm-kernels", "verify"], clone, CLI_TIMEOUT);
    expect(r.status, r.log).toBe(0);
    expect(r.stdout, r.log).toMatch(/^verify on cpu /m);
    expect(r.stdout, r.log).not.toMatch(/^FAIL /m);
    const m = /^(\d+) passed, 0 failed$/m.exec(r.stdout);
    expect(m, r.log).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
  });

  it("npx glm-kernels bench topk prints a table", () => {
    const r = run("npx", ["glm-kernels", "bench", "topk", "--shapes", "1x4096", "--time", "50"], clone, CLI_TIMEOUT);
    expect(r.status, r.log).toBe(0);
    expect(r.stdout, r.log).toMatch(/^op +\| shape +\| k +\|/m);
    expect(r.stdout, r.log).toMatch(/^topk \| 1x4096 +\| 2048 +\|/m);
  });
});
