// The stream model around read() and sync() (SPEC 2), on every test device: failures reach the next sync
// once, many settle in order, and the process neither exits early, nor hangs, nor crashes when a sync is
// pending while it exits (the CPU device settles these promises from its own thread).
import { describe, expect, it } from "vitest";
import { topk } from "../dist/esm/index.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { runNode } from "./helpers/child.js";

describe.each(TEST_DEVICES)("stream on %s", (name) => {
  const dev = device(name);

  it("a failure reaches the next sync() once, and the sync after it resolves", async () => {
    using s = dev.tensor(new Float32Array([1, 2, 3, 4]), [2, 2]);
    using lengths = dev.tensor(new Int32Array([1, 5]), [2]);
    const bad = topk(s, 1, { lengths });
    await expect(dev.sync()).rejects.toMatchObject({ code: "E_ARG", message: expect.stringMatching(/^topk: .*lengths\[1\]/) });
    await expect(dev.sync()).resolves.toBeUndefined();
    bad.indices.dispose();
    bad.values.dispose();
  });

  it("many reads and syncs in flight all settle, each read with its own data", async () => {
    const { got } = await manyInFlight(dev);
    expect(got).toEqual(Array.from({ length: 64 }, (_, i) => [i, 0 - i, 2 * i]));
  });
});

// 64 reads with a sync after every 8th, all in flight at once; `order` is the order they settled in
// (reads as i, syncs as 1000 + i).
async function manyInFlight(dev: ReturnType<typeof device>) {
  const order: number[] = [];
  const reads: Array<Promise<number[]>> = [];
  const syncs: Array<Promise<unknown>> = [];
  const tensors = [];
  for (let i = 0; i < 64; i++) {
    const t = dev.tensor(new Int32Array([i, 0 - i, 2 * i]), [3]);
    tensors.push(t);
    reads.push(t.read().then((a) => (order.push(i), Array.from(a as Int32Array))));
    if (i % 8 === 7) syncs.push(dev.sync().then(() => order.push(1000 + i)));
  }
  const got = await Promise.all(reads);
  await Promise.all(syncs);
  for (const t of tensors) t.dispose();
  return { got, order };
}

// The CPU device settles from its stream thread, in stream order (devices without sync_notify settle each
// promise from a libuv thread of its own, in whatever order those finish).
it("on cpu, reads and syncs settle in the order they were enqueued", async () => {
  const { order } = await manyInFlight(device("cpu"));
  const expected: number[] = [];
  for (let i = 0; i < 64; i++) expected.push(i, ...(i % 8 === 7 ? [1000 + i] : []));
  expect(order).toEqual(expected);
});

describe("process lifetime with promises in flight", () => {
  const BIG = `
    import { defaultDevice, topk } from "glm-kernels";
    const dev = defaultDevice();
    const x = dev.tensor(new Float32Array(64 * 32768).map((_, i) => (i * 2654435761) % 1000), [64, 32768]);
    const r = topk(x, 2048);`;

  it("a pending sync keeps the process alive until it settles", () => {
    const r = runNode(`${BIG}\nawait dev.sync();\nconsole.log("synced", (await r.indices.read()).length);`);
    expect([r.status, r.signal, r.stderr]).toEqual([0, null, ""]);
    expect(r.stdout.trim()).toBe(`synced ${64 * 2048}`);
  });

  it("an idle device lets the process exit", () => {
    const r = runNode(`${BIG}\nawait dev.sync();\nsetTimeout(() => console.log("timer"), 10);`, {}, 30_000);
    expect([r.status, r.signal, r.stderr, r.stdout.trim()]).toEqual([0, null, "", "timer"]);
  });

  it("process.exit() with a sync and a read pending exits cleanly", () => {
    const r = runNode(`${BIG}\ndev.sync(); r.values.read(); console.log("exiting"); process.exit(0);`);
    expect([r.status, r.signal, r.stderr, r.stdout.trim()]).toEqual([0, null, "", "exiting"]);
  });

  it("worker threads terminated in the middle of top-k, read() and sync() leave the process working", () => {
    // Each worker opens its own CPU device and runs top-k in a loop; it is terminated at a different point
    // of that loop each time. (This once ran a queued top-k on freed scratch during the device's close,
    // and threw from a promise settled while the worker's env was shutting down: both aborted the process.)
    const r = runNode(`
      import { Worker } from "node:worker_threads";
      import { defaultDevice, topk } from "glm-kernels";
      const src = \`
        import { parentPort } from "node:worker_threads";
        import { defaultDevice, topk } from "glm-kernels";
        const dev = defaultDevice();
        const x = dev.tensor(new Float32Array(16 * 32768).map((_, i) => (i * 7919) % 1001), [16, 32768]);
        parentPort.postMessage("up");
        for (let i = 0; ; i++) {
          const r = topk(x, 2048);
          const p = r.indices.read();
          if (i % 3 === 0) await dev.sync(); else await p;
          r.indices.dispose(); r.values.dispose();
        }\`;
      for (let i = 0; i < 16; i++) {
        const w = new Worker(src, { eval: true, type: "module" });
        await new Promise((res) => w.once("message", res));
        await new Promise((res) => setTimeout(res, (i * 7) % 23));
        await w.terminate();
      }
      const dev = defaultDevice();
      const x = dev.tensor(new Float32Array([3, 1, 2]), [1, 3]);
      console.log(Array.from(await topk(x, 2).indices.read()).join(","));`);
    expect([r.status, r.signal, r.stderr]).toEqual([0, null, ""]);
    expect(r.stdout.trim()).toBe("0,2");
  });
});
