// Memory (SPEC 2, issue 17): native bytes are visible to V8, so tensors left to the garbage collector are
// collected in time; dev.memory() counts what is live and cached; the CPU cache goes back to the system
// after a second idle, or at once with emptyCache(). Each loop runs in a child process of its own, so that
// its RSS is its own.
import { describe, expect, it } from "vitest";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { runNode } from "./helpers/child.js";

// A loop of uploads and top-k calls whose tensors are never disposed, only read; prints the RSS growth.
function gcOnlyLoop(rows: number, cols: number, calls: number, deviceName: string) {
  const code = `
    import { openDevice, topk } from "./dist/esm/index.js";
    const dev = openDevice(${JSON.stringify(deviceName)});
    const data = new Float32Array(${rows * cols}).map((_, i) => Math.sin(i));
    { const w = topk(dev.tensor(data, [${rows}, ${cols}]), 64); await w.indices.read(); }
    const start = process.memoryUsage().rss;
    let peak = start;
    for (let i = 0; i < ${calls}; i++) {
      const t = dev.tensor(data, [${rows}, ${cols}]);
      const r = topk(t, 64);
      await r.indices.read();
      if (i % 256 === 0) peak = Math.max(peak, process.memoryUsage().rss);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(JSON.stringify({ growMB: (peak - start) / 2 ** 20, memory: dev.memory() }));`;
  const r = runNode(code, {}, 240_000);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { growMB: number; memory: { liveTensors: number } };
}

describe("memory without dispose() (child processes)", () => {
  it("4 x 262144 f32 inputs (4 MiB each), 2,000 calls: RSS grows by less than 100 MB", () => {
    const { growMB } = gcOnlyLoop(4, 262144, 2000, "cpu");
    expect(growMB).toBeLessThan(100); // before issue 17: 4.1 GB after 2,000 calls on this machine
  });

  it("4 x 4096 f32 inputs, 120,000 calls: RSS grows by less than 100 MB", () => {
    const { growMB } = gcOnlyLoop(4, 4096, 120_000, "cpu");
    expect(growMB).toBeLessThan(100); // before issue 17: 746 MB after 30,000 calls
  });
});

describe.each(TEST_DEVICES)("dev.memory() on %s", (name) => {
  const dev = device(name);

  it("counts live tensors and their bytes; dispose() takes them off", async () => {
    await dev.sync();
    const before = dev.memory();
    const a = dev.tensor(new Float32Array(1000), [10, 100]);
    const b = dev.tensor(new Uint16Array(6), [2, 3], "bf16");
    expect(dev.memory()).toMatchObject({ liveTensors: before.liveTensors + 2, liveBytes: before.liveBytes + 4012 });
    a.dispose();
    a.dispose(); // idempotent: counted once
    expect(dev.memory()).toMatchObject({ liveTensors: before.liveTensors + 1, liveBytes: before.liveBytes + 12 });
    b.dispose();
    expect(dev.memory()).toMatchObject({ liveTensors: before.liveTensors, liveBytes: before.liveBytes });
    expect(typeof dev.memory().cachedBytes).toBe("number");
  });
});

// cpu: the block cache (devices/cpu); cuda-sim: the cuda plugin's stream-ordered pool, trimmed by its
// helper thread after a second idle (devices/cuda/upload.hpp), on the emulator's pool (cuda-sim-runtime.cc).
describe.each(TEST_DEVICES.filter((d) => d === "cpu" || d === "cuda-sim"))("the %s memory cache", (name) => {
  it("keeps freed blocks, gives them back after a second idle, and at once on emptyCache()", () => {
    const code = `
      import { openDevice } from "./dist/esm/index.js";
      const dev = openDevice(${JSON.stringify(name)});
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const fill = () => { for (let i = 0; i < 8; i++) dev.tensor(new Float32Array(1 << 18), [1 << 18]).dispose(); };
      const out = {};
      fill(); await dev.sync();
      out.afterFree = dev.memory().cachedBytes;
      await sleep(1600);
      out.afterIdle = dev.memory().cachedBytes;
      fill(); await dev.sync();
      out.again = dev.memory().cachedBytes;
      dev.emptyCache();
      out.afterEmpty = dev.memory().cachedBytes;
      console.log(JSON.stringify(out));`;
    const r = runNode(code);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim());
    expect(m.afterFree).toBeGreaterThanOrEqual(1 << 20); // a 1 MiB block, reused by each next tensor
    expect(m.afterIdle).toBe(0);
    expect(m.again).toBeGreaterThanOrEqual(1 << 20);
    expect(m.afterEmpty).toBe(0);
  });
});
