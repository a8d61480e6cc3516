// The packed tarball installs and runs on a machine with no C/C++ compiler and no install scripts.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/child.js";

function which(cmd: string): string {
  return realpathSync(execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim());
}

describe("npm pack + install without a compiler", () => {
  it("installs the tarball and runs `npx glm-kernels info` and a top-k", () => {
    if (!existsSync(join(ROOT, "prebuilds/linux-x64/glm-kernels.node"))) execFileSync("npm", ["run", "prebuild"], { cwd: ROOT, stdio: "ignore" });
    const tmp = mkdtempSync(join(tmpdir(), "glmk-pack-"));
    const tgz = execFileSync("npm", ["pack", "--silent", "--pack-destination", tmp], { cwd: ROOT, encoding: "utf8" }).trim().split("\n").pop()!;
    // PATH with node, npm, npx and sh only: no cc, gcc, g++, c++, make, python3.
    const bin = join(tmp, "bin");
    mkdirSync(bin);
    for (const c of ["node", "sh"]) symlinkSync(which(c), join(bin, c));
    const npmCli = join(dirname(which("npm")), "npm-cli.js");
    const npxCli = join(dirname(which("npm")), "npx-cli.js");
    writeFileSync(join(bin, "npm"), `#!${join(bin, "sh")}\nexec "${join(bin, "node")}" "${npmCli}" "$@"\n`, { mode: 0o755 });
    writeFileSync(join(bin, "npx"), `#!${join(bin, "sh")}\nexec "${join(bin, "node")}" "${npxCli}" "$@"\n`, { mode: 0o755 });
    expect(readdirSync(bin).sort()).toEqual(["node", "npm", "npx", "sh"]);
    const proj = join(tmp, "proj");
    mkdirSync(proj);
    writeFileSync(join(proj, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    const env = { ...process.env, PATH: bin, npm_config_nodedir: "", CC: "", CXX: "" };
    const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { cwd: proj, env, encoding: "utf8", timeout: 240_000 });
    const inst = run(join(bin, "npm"), ["install", "--no-audit", "--no-fund", join(tmp, tgz)]);
    expect(inst.status, inst.stderr).toBe(0);
    expect(existsSync(join(proj, "node_modules/glm-kernels/build"))).toBe(false); // nothing was compiled
    const info = run(join(bin, "npx"), ["glm-kernels", "info"]);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/cpu: 1 x /);
    expect(info.stdout).toMatch(/default device: cpu/);
    // The cuda plugin ships next to the prebuilt addon (when nvcc built it); cuda-sim never ships.
    const pkg = join(proj, "node_modules/glm-kernels/prebuilds/linux-x64");
    if (existsSync(join(ROOT, "prebuilds/linux-x64/libglmk-cuda.so"))) {
      expect(existsSync(join(pkg, "libglmk-cuda.so"))).toBe(true);
      expect(info.stdout).toMatch(/cuda: (\d+ x |not available: no usable CUDA driver)/);
    }
    expect(existsSync(join(pkg, "libglmk-cuda-sim.so"))).toBe(false);
    // The ascend plugin always ships (it needs no CANN to build); without CANN, info says why. The CPU fake
    // of CANN never ships.
    expect(existsSync(join(pkg, "libglmk-ascend.so"))).toBe(true);
    expect(info.stdout).toMatch(/ascend: (\d+ x |not available: ascend is not available: CANN's libascendcl\.so was not found)/);
    const shipped = execFileSync("find", [join(proj, "node_modules/glm-kernels")], { encoding: "utf8" });
    expect(shipped).not.toMatch(/libascendcl|libnnopbase|libopapi|fake-cann/);
    const topk = run(join(bin, "node"), [
      "--input-type=module",
      "-e",
      `import { defaultDevice, topk } from "glm-kernels";
       const s = defaultDevice().tensor(new Float32Array([0.5, 3, -1, 2]), [1, 4]);
       console.log(Array.from(await topk(s, 2).indices.read()).join(","));`,
    ]);
    expect(topk.status, topk.stderr).toBe(0);
    expect(topk.stdout.trim()).toBe("1,3");
  });
});
