// cuda-sim: the emulator's own checks, and the CUDA top-k, quantizers, matmuls (SIMT and tensor-core) and MoE
// under many schedule seeds. The shared suites (topk, int4, matmul, fp8, fp8-matmul, moe-*, determinism/) also run on cuda-sim
// through TEST_DEVICES.
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { CLI, ROOT, runCli } from "./helpers/child.js";
import { fp8, int4, matmul, moe } from "../dist/esm/index.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { firstOutOfTolerance } from "./helpers/tolerance.js";

const run = promisify(execFile);
const BUILD = join(ROOT, "build-plugins");
const golden = JSON.parse(readFileSync(join(ROOT, "test/determinism/golden.json"), "utf8")).digests as Record<string, string>;

describe.runIf(TEST_DEVICES.includes("cuda-sim"))("cuda-sim", () => {
  it("the SIMT emulator's self-test passes (seeded schedules have teeth, misuse is reported)", () => {
    const r = spawnSync(join(BUILD, "simt-selftest"), { encoding: "utf8" });
    expect(r.stdout).toMatch(/atomic-counter placement differs between seeds/);
    expect(r.stdout).toMatch(/a missing __syncthreads changes the output between seeds/);
    expect(r.stdout).toMatch(/a divergent __syncthreads is reported/);
    expect(r.stdout).toMatch(/shuffles, ballots, votes and barrier counts match CUDA/);
    expect(r.status, r.stdout).toBe(0);
  });

  it("the emulator's tensor-core models (mma.sync, ldmatrix, cp.async: devices/cuda/mma.cuh) match the PTX ISA's layouts and catch misuse", () => {
    const r = spawnSync(join(BUILD, "simt-mma-selftest"), { encoding: "utf8" });
    expect(r.stdout).toMatch(/ok {3}bf16 m16n8k16 fragments \(PTX layouts\) give the hand-computed product/);
    expect(r.stdout).toMatch(/ok {3}e4m3 m16n8k32 fragments \(PTX layouts\) give the hand-computed product/);
    expect(r.stdout).toMatch(/ok {3}ldmatrix \.x4\.trans matches plain shared-memory reads/);
    expect(r.stdout).toMatch(/ok {3}a kernel with no wait_group reads poison \(NaN\), not the data/);
    expect(r.stdout).toMatch(/ok {3}a lane that skips an mma is reported with file:line: .*mma-selftest\.cc:\d+/);
    expect(r.stdout).toMatch(/ok {3}tile GEMM 32x16x32 bf16 \(B col\) \(cp\.async \+ ldmatrix \+ mma\) matches a plain reference, seed 3/);
    expect(r.stdout).toMatch(/ok {3}cvt\.rn\.bf16x2\.f32 rounds like glmk_bf16_rne/);
    expect(r.stdout).toMatch(/ok {3}fma\.rn\.bf16x2 rounds the exact a b \+ c once/);
    expect(r.stdout).toMatch(/simt mma self-test passed/);
    expect(r.status, r.stdout).toBe(0);
  });

  it("the CUDA top-k, matmul, int4.matmul, fp8.matmul, moe.route and moe.experts match C++ references through the device ABI (no Node), 3 seeds", () => {
    const r = spawnSync(join(BUILD, "topk-sim-check"), ["3"], { encoding: "utf8" });
    expect(r.stdout).toMatch(/topk on cuda-sim passed/);
    expect(r.stdout).toMatch(/fp8.matmul, moe.route and moe.experts on cuda-sim passed/);
    expect(r.stdout).toMatch(/ok {3}moe.experts: a bad id is reported at sync seed 3: .*received 4 at \[1, 0\]/);
    // fp8.matmul on tensor cores: within tolerance of the written order and of float64 (NaN codes: NaN bits),
    // the same bits again and for each row alone
    expect(r.stdout).toMatch(/ok {3}fp8.matmul \[19 x 70 x 256\] block 128 NaN codes \(tensor cores, within tolerance\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}fp8.matmul: the same bits again and for each row alone \(bits\) seed 3/);
    // moe.experts' grouped products on tensor cores: the device's own fp8.matmul composed (bits), within
    // tolerance of the written order, again and each token alone (bits)
    expect(r.stdout).toMatch(/ok {3}moe.experts == the device's fp8.matmul composed \(grouped, tensor cores; bits\) seed 3/);
    // ... also where H, I and the shared I are whole 128-blocks (the pipelined grouped products): each
    // check_experts call prints this line once a seed, so 5 calls give 5 (the last three pipelined, the last
    // with 1040 slots: two chunks of the block grouping)
    expect(r.stdout.match(/ok {3}moe.experts == the device's fp8.matmul composed \(grouped, tensor cores; bits\) seed 3/g)?.length).toBe(5);
    expect(r.stdout).toMatch(/ok {3}moe.experts within tolerance of the written order \(the cpu device\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}moe.experts: the same bits again and for each token alone \(bits\) seed 3/);
    expect(r.stdout).toMatch(/matmul and int4.matmul on cuda-sim passed/);
    expect(r.stdout).toMatch(/ok {3}int4.matmul\(x bf16, quantize\(w\)\) == matmul\(x, fakeQuant\(w\)\) \[3 x 24 x 256\], group 32, 15 levels seed 3/);
    // the tensor-core kernel (bf16 x): identity with an f32 fakeQuant (the exact hi / mid / lo split), rows
    // alone == in a batch, one output for seeds 1..3, and proof that it runs the mma model (not the CPU's order)
    expect(r.stdout).toMatch(/ok {3}int4.matmul\(x bf16, quantize\(w\)\) == matmul\(x, fakeQuant\(w\)\) \[5 x 16 x 64\], group 32, 16 levels, f32 fakeQuant, x with inf and NaN seed 3/);
    expect(r.stdout).toMatch(/ok {3}int4.matmul x bf16 w int4, K 128: rows alone and in a batch of 17 == inside a batch of 19 \(bits\) seed 3/);
    // the pipelined kernel (matmul-pipe.cuh: cp.async stages, ldmatrix; int4 with K a multiple of 256, bf16 w
    // of 64) against the simple one, bit for bit: int4 against f32 fakeQuant, bf16 w against the same values
    // as f32 w; and its rows alone == in a batch
    expect(r.stdout).toMatch(/ok {3}int4.matmul\(x bf16, quantize\(w\)\) == matmul\(x, fakeQuant\(w\)\) \[33 x 37 x 768\], group 64, 16 levels, f32 fakeQuant, x with inf and NaN seed 3/);
    expect(r.stdout).toMatch(/ok {3}int4.matmul\(x bf16, quantize\(w\)\) == matmul\(x, fakeQuant\(w\)\) \[1 x 40 x 512\], group 32, 15 levels, f32 fakeQuant seed 3/);
    expect(r.stdout).toMatch(/ok {3}matmul x bf16 \[35 x 23 x 320\]: w bf16 \(pipelined\) == the same w as f32 \(simple kernel\), with inf and NaN \(bits\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}int4.matmul x bf16 w int4, K 256: rows alone and in a batch of 17 == inside a batch of 19 \(bits\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}matmul x bf16 w bf16, K 128: rows alone and in a batch of 17 == inside a batch of 19 \(bits\) seed 3/);
    // int4's fast decode (two fma.rn.bf16x2 a pair of codes) passed its check at open and is in use; the
    // variable takes the f32 decode (info's isa: fp8 mma / int4 decode); both give the same bits
    expect(r.stdout).toMatch(/paths: default e4m3\/fma, GLM_KERNELS_CUDA_PIPE=0 e4m3\/fma, GLM_KERNELS_CUDA_INT4_DECODE=f32 e4m3\/f32/);
    expect(r.stdout).toMatch(/ok {3}int4 decoded by fma.rn.bf16x2 == by f32 and cvt, int4.matmul \[20 x 33 x 768\] group 64, a NaN and a zero scale \(bits\) seed 3/);
    // the same inputs on a second device opened with GLM_KERNELS_CUDA_PIPE=0 (the simple kernels), bit for bit
    expect(r.stdout).toMatch(/ok {3}pipelined == simple kernel, int4.matmul \[1 x 48 x 512\] group 32, a NaN and a zero scale \(bits\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}pipelined == simple kernel, fp8.matmul \[33 x 23 x 384\] block 1, NaN codes, y f32 \(bits\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}int4.matmul and matmul \(f32 w\) x bf16 \[5 x 40 x 256\]: the bytes of schedule seed 1 \(bits\) seed 3/);
    expect(r.stdout).toMatch(/ok {3}matmul x bf16 runs on the mma model: .* seed 3/);
    expect(r.status, r.stdout).toBe(0);
  });

  // cuda-sim reports sm_90, so fp8.matmul runs the e4m3 mma (m16n8k32) above; GLM_KERNELS_CUDA_FP8_MMA=bf16
  // takes the sm_80 path (e4m3 widened to bf16, exact; m16n8k16): the same checks on it
  it("fp8.matmul's bf16-mma path (sm_80's; GLM_KERNELS_CUDA_FP8_MMA=bf16) and moe.experts on it pass the C++ checks: within tolerance, NaN bits, again and row alone bit for bit, 2 seeds", () => {
    const r = spawnSync(join(BUILD, "topk-sim-check"), ["2"], { encoding: "utf8", env: { ...process.env, GLM_KERNELS_CUDA_FP8_MMA: "bf16" } });
    expect(r.stdout).toMatch(/ok {3}fp8.matmul \[19 x 70 x 256\] block 128 NaN codes \(tensor cores, within tolerance\) seed 2/);
    expect(r.stdout).toMatch(/ok {3}fp8.matmul: the same bits again and for each row alone \(bits\) seed 2/);
    expect(r.stdout).toMatch(/ok {3}moe.experts == the device's fp8.matmul composed \(grouped, tensor cores; bits\) seed 2/);
    expect(r.stdout).toMatch(/fp8.matmul, moe.route and moe.experts on cuda-sim passed/);
    expect(r.stdout).toMatch(/ok {3}pipelined == simple kernel, fp8.matmul \[1 x 40 x 512\] block 128, NaN codes, y bf16 \(bits\) seed 2/);
    expect(r.status, r.stdout).toBe(0);
  });

  it("deferred uploads (pinned staging behind stream-ordered gates) and the idle pool trim, through the device ABI", () => {
    // devices/cuda/sim/upload-check.cc: bytes right at chunk edges, a top-k right after an upload sees the
    // data, release once, from another thread, after the last read of the source; close() waits for them.
    const r = spawnSync(join(BUILD, "upload-sim-check"), { encoding: "utf8" });
    expect(r.stdout).toMatch(/upload-check on cuda-sim: ok/);
    expect(r.status, r.stdout).toBe(0);
    // without pinned memory the plugin copies during the call instead: still right, release still once
    const np = spawnSync(join(BUILD, "upload-sim-check"), { encoding: "utf8", env: { ...process.env, GLMK_SIM_NO_PINNED: "1" } });
    expect(np.stdout).toMatch(/upload-check on cuda-sim: ok/);
    expect(np.status, np.stdout).toBe(0);
    // an upload whose enqueue fails part way: an error now and at the next sync, and the stream goes on
    const ff = spawnSync(join(BUILD, "upload-sim-check"), { encoding: "utf8", env: { ...process.env, GLMK_SIM_HOSTFN_FAIL_AT: "3" } });
    expect(ff.stdout).toMatch(/upload-check on cuda-sim \(a failed enqueue\): ok/);
    expect(ff.status, ff.stdout).toBe(0);
  });

  it("gives the golden digests under 20 schedule seeds (one child process per seed)", async () => {
    const seeds = Array.from({ length: 20 }, (_, i) => BigInt(i) * 0x9e3779b97f4a7c15n % 2n ** 64n + BigInt(i));
    const results: Record<string, string>[] = [];
    for (let i = 0; i < seeds.length; i += 2) {
      const batch = seeds.slice(i, i + 2).map((s) =>
        run(process.execPath, [CLI, "digests", "--device", "cuda-sim"], {
          cwd: ROOT,
          env: { ...process.env, GLM_KERNELS_SIM_SEED: String(s) },
          maxBuffer: 1 << 20,
        }),
      );
      for (const r of await Promise.all(batch)) results.push(JSON.parse(r.stdout));
    }
    expect(results).toHaveLength(20);
    for (const r of results) expect(r).toEqual(golden);
  }, 600_000);

  it("`glm-kernels verify --device cuda-sim` prints the CPU's digests", () => {
    const digests = (out: string) =>
      Object.fromEntries([...out.matchAll(/^ok\s+golden (\S+)\s+([0-9a-f]{64})/gm)].map((m) => [m[1], m[2]]));
    const sim = runCli(["verify", "--device", "cuda-sim", "--repeats", "2"]);
    const cpu = runCli(["verify", "--device", "cpu", "--repeats", "2"]);
    expect(sim.status, sim.stdout + sim.stderr).toBe(0);
    expect(sim.stdout).toMatch(/schedule seed \d+ vs \d+ \(child process\)\s+12\/12 cases identical/);
    // top-k's 12 cases, the int4 quantizer's 3, the fp8 quantizer's 2 and moe.route's 2 (SPEC 5: route is the
    // same bits on every device); verify prints the matmul, int4.matmul, fp8.matmul and experts goldens on cpu
    // only (across devices SPEC 4 and 5 promise them within tolerance; cuda-sim's SIMT ones equal the CPU's bit
    // for bit, its tensor-core ones agree across seeds: the test below checks both), and on cuda-sim their
    // repeats and batch invariance
    expect(sim.stdout).toMatch(/^ok {3}batch-invariant int4-matmul-bf16-7x33x256-g64 +[0-9a-f]{64} {2}\(7 rows alone == batch\)$/m);
    expect(Object.keys(digests(sim.stdout))).toHaveLength(19);
    const cpuSame = Object.fromEntries(Object.entries(digests(cpu.stdout)).filter(([k]) => !/matmul-|moe-experts-/.test(k)));
    expect(digests(sim.stdout)).toEqual(cpuSame);
  }, 600_000);

  // NOTE: the quantizers, moe.route and the f16 / f32 x matmuls (SIMT: devices/cuda/matmul.cuh) follow the
  // CPU device's written order, so their digests are the CPU's golden ones, bit for bit, whatever the
  // schedule. bf16 x matmuls, fp8.matmul and moe.experts' products go to tensor cores (devices/cuda/
  // matmul-mma.cuh, fp8-matmul-mma.cuh, moe.cuh): within tolerance of the CPU only (test/matmul.test.ts,
  // test/fp8-matmul.test.ts, test/moe-experts.test.ts), so
  // those digests are checked against each other: the same bytes under every seed (the mma model is a warp
  // collective; nothing in the kernels races).
  it("the quantizers, the f16 / f32 x matmuls and moe.route give the CPU's golden digests, and the tensor-core ops (bf16 x matmuls, fp8.matmul, moe.experts) one digest, under schedule seeds 1..5 and two more", async () => {
    const quantGolden = JSON.parse(readFileSync(join(ROOT, "test/determinism/golden.json"), "utf8")).quantDigests as Record<string, string>;
    const all = Object.fromEntries(Object.entries(quantGolden).filter(([k]) => /^((int4|fp8)-quantize|matmul|int4-matmul|fp8-matmul|moe-route|moe-experts)-/.test(k)));
    expect(Object.keys(all)).toHaveLength(15);
    const tensorCore = (k: string) => /^((matmul|int4-matmul)-bf16-|fp8-matmul-|moe-experts-)/.test(k);
    const want = Object.fromEntries(Object.entries(all).filter(([k]) => !tensorCore(k)));
    const results: Record<string, string>[] = [];
    const seeds = [1n, 2n, 3n, 4n, 5n, 0x9e3779b97f4a7c15n, 2n ** 64n - 1n];
    for (let i = 0; i < seeds.length; i += 2) {
      const batch = seeds.slice(i, i + 2).map((s) =>
        run(process.execPath, [CLI, "digests", "--int4", "1", "--device", "cuda-sim"], {
          cwd: ROOT,
          env: { ...process.env, GLM_KERNELS_SIM_SEED: String(s) },
          maxBuffer: 1 << 20,
        }),
      );
      for (const r of await Promise.all(batch)) results.push(JSON.parse(r.stdout));
    }
    const tc = (r: Record<string, string>) => Object.fromEntries(Object.entries(r).filter(([k]) => tensorCore(k)));
    expect(Object.keys(tc(results[0])).sort()).toEqual(["fp8-matmul-3x20x256-b1x128", "fp8-matmul-5x48x300-b128x128", "int4-matmul-bf16-7x33x256-g64", "matmul-bf16-bf16-5x40x256", "moe-experts-5x256-i160-e4-top2-shared96"]);
    for (const r of results) {
      expect(Object.fromEntries(Object.entries(r).filter(([k]) => !tensorCore(k)))).toEqual(want);
      expect(tc(r)).toEqual(tc(results[0]));
    }
  }, 600_000);

  // fp8.matmul runs on tensor cores (devices/cuda/fp8-matmul-mma.cuh): its NaNs (from e4m3 NaN codes) are the
  // CPU's bits (canonical 0x7FC00000), its finite f32 sums within K 2^-22 sum |t| of the CPU's (helpers/
  // tolerance.ts; here |x| < 1.2 and the quantized |w| <= 1.01, so sum |t| <= 1.25 K bounds every output's).
  it("fp8.matmul's f32 sums with NaN codes: the CPU's NaN bits, its finite values within tolerance; moe.route's NaN weights: the CPU's bits", async () => {
    const [n, k] = [20, 300];
    const w = Float32Array.from({ length: n * k }, (_, i) => ((i * 37) % 101) / 50 - 1);
    const x = Uint16Array.from({ length: 3 * k }, (_, i) => 0x3f80 + ((i * 13) % 97) - 48);
    const run = async (name: string) => {
      const dev = device(name);
      const q = fp8.quantize(dev.tensor(w, [n, k]));
      const codes = (await q.data.read()) as Uint8Array;
      (codes[5] = 0x7f), (codes[k + 130] = 0xff), (codes[n * k - 1] = 0x7f);
      q.data = dev.tensor(codes, [n, k], "f8e4m3");
      const y = (await fp8.matmul(dev.tensor(x, [3, k], "bf16"), q, { dtype: "f32" }).read()) as Float32Array;
      const r = moe.route(dev.tensor(new Float32Array([1, NaN]), [2, 1]), dev.tensor(new Float32Array([1, NaN, 2, -1, NaN, 0]), [6, 1]), { topK: 5 });
      return [y, Array.from(new Uint32Array(((await r.weights.read()) as Float32Array).buffer))] as const;
    };
    const [cpu, sim] = [await run("cpu"), await run("cuda-sim")];
    const [cb, sb] = [new Uint32Array(cpu[0].buffer), new Uint32Array(sim[0].buffer)];
    expect(cb.some((b) => (b & 0x7fffffff) > 0x7f800000)).toBe(true);
    for (let i = 0; i < cb.length; i++) {
      if ((cb[i] & 0x7fffffff) > 0x7f800000) expect(sb[i], `y[${i}]`).toBe(cb[i]);
      else expect(Math.abs(sim[0][i] - cpu[0][i]), `y[${i}]: ${sim[0][i]} vs ${cpu[0][i]}`).toBeLessThanOrEqual(k * 2 ** -22 * 1.25 * k);
    }
    expect(sim[1]).toEqual(cpu[1]);
  });

  // NOTE: every NaN of a matmul output is canonical on both devices (0x7FC00000 in f32; bf16 and f16 too), so
  // the NaN bits compare exactly (test/matmul.test.ts checks two different NaNs meeting, on every ISA path).
  // f32 x (SIMT) gives the CPU's bits; bf16 x (tensor cores) its infinities and NaNs bit for bit and its finite
  // outputs within the stated tolerance (helpers/tolerance.ts; |x| < 1, |w| <= 1, so sum |x w| <= K).
  it("matmul's and int4.matmul's sums with NaN, infinities and 0 x inf: the CPU's bits (f32 x), its non-finite bits and finite values within tolerance (bf16 x)", async () => {
    const [m, n, k] = [3, 5, 64];
    const xb = Uint32Array.from({ length: m * k }, (_, i) => 0x3f000000 + ((i * 7919) % 0x800000));
    (xb[k + 2] = 0x7f800000), (xb[2 * k + 9] = 0xff800000);
    const finite = new Float32Array(xb.slice().buffer);
    xb[1] = 0xffc00123; // a NaN with a payload and the sign set, in row 0 (int4's row 3 below is NaN: not there)
    const wv = Float32Array.from({ length: n * k }, (_, i) => ((i * 37) % 101) / 50 - 1);
    (wv[k + 2] = 0), (wv[3 * k + 7] = -Infinity); // 0 x inf; and an infinite int4 scale: row 3 dequantizes to NaN
    const run = async (name: string) => {
      const dev = device(name);
      const w = dev.tensor(wv, [n, k]);
      const xh = dev.tensor(Uint16Array.from(xb, (b) => b >>> 16), [m, k], "bf16");
      const q = int4.quantize(w, { groupSize: 32 });
      const out = [matmul(dev.tensor(new Float32Array(xb.buffer), [m, k]), w), int4.matmul(dev.tensor(finite, [m, k]), q), matmul(xh, w), int4.matmul(xh, q)];
      const bits = async (y: (typeof out)[number]) => {
        const a = (await y.read()) as Float32Array | Uint16Array;
        return Array.from(a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a);
      };
      return Promise.all(out.map(bits));
    };
    const [cpu, sim] = [await run("cpu"), await run("cuda-sim")];
    // NaNs there (the payload NaN, 0 x inf, a NaN scale), every one of them the canonical NaN
    const nans = [...cpu[0], ...cpu[1]].filter((b) => (b & 0x7fffffff) > 0x7f800000);
    expect(nans.length).toBeGreaterThan(2);
    expect(new Set(nans)).toEqual(new Set([0x7fc00000]));
    expect(sim.slice(0, 2)).toEqual(cpu.slice(0, 2));
    const bf16Nan = [...cpu[2], ...cpu[3]].filter((b) => (b & 0x7fff) > 0x7f80);
    expect(bf16Nan.length).toBeGreaterThan(2);
    for (const i of [2, 3]) expect(firstOutOfTolerance(sim[i], cpu[i], new Float64Array(m * n).fill(k), k), `output ${i}`).toBe(-1);
  });

  it("is a test device: never in the npm package", () => {
    expect(existsSync(join(ROOT, "prebuilds/linux-x64/libglmk-cuda-sim.so"))).toBe(false);
  });
});
