// Host-to-device copies (SPEC 2, issue 17): a big dev.tensor() returns at once and the device copies the
// source in stream order; `await dev.upload()` resolves once the copy is done. What a later write to the
// source does is defined: up to 1 MiB the tensor is a snapshot taken during the call; bigger ones hold the
// source's bytes as of the copy, which is done once upload() resolves or any later read()/sync() settles.
import { describe, expect, it } from "vitest";
import { UPLOAD_DEFER_BYTES } from "../dist/esm/device.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";
import { runNode } from "./helpers/child.js";

describe.each(TEST_DEVICES)("uploads on %s", (name) => {
  const dev = device(name);

  it("up to 1 MiB: a snapshot, later writes to the source do not show", async () => {
    const src = new Float32Array(UPLOAD_DEFER_BYTES / 4).fill(1);
    using t = dev.tensor(src, [src.length]);
    src.fill(2);
    expect((await t.read()).every((v) => v === 1)).toBe(true);
  });

  it("above 1 MiB: after `await dev.upload()` (or a sync) the source may be changed", async () => {
    const src = new Float32Array(UPLOAD_DEFER_BYTES / 4 + 16).map((_, i) => i);
    const t = await dev.upload(src, [src.length]);
    src.fill(-1);
    const u = dev.tensor(src, [src.length]);
    await dev.sync();
    src.fill(7);
    const a = (await t.read()) as Float32Array;
    const b = (await u.read()) as Float32Array;
    expect(a.every((v, i) => v === i)).toBe(true);
    expect(b.every((v) => v === -1)).toBe(true);
    t.dispose();
    u.dispose();
  });

  // The source's last reference is dropped while the copy may still be in flight, and collected: the host
  // keeps it alive until the device releases it. The top-k is enqueued right behind the upload, with no
  // sync between, so it must see the data by stream order alone (on cuda: behind the staged copies).
  it("above 1 MiB: an op enqueued right after sees the data; a dropped source is kept alive until copied", () => {
    const code = `
      import { openDevice, topk } from "./dist/esm/index.js";
      const dev = openDevice(${JSON.stringify(name)});
      const rows = 4, cols = (9 << 20) / rows + 3;  // 36 MiB: chunks, and a tail
      const value = (i) => ((i * 7919) % 1000003) * 1e-6;
      const make = () => new Float32Array(rows * cols).map((_, i) => value(i));
      const uploads = [];
      for (let j = 0; j < 3; j++) uploads.push(dev.tensor(make(), [rows, cols]));
      const results = uploads.map((t) => topk(t, 1));
      for (let j = 0; j < 4; j++) { gc(); new Float32Array(rows * cols).fill(-1); }
      const want = [];
      const ref = make();
      for (let r = 0; r < rows; r++) {
        let best = 0;
        for (let c = 1; c < cols; c++) if (ref[r * cols + c] > ref[r * cols + best]) best = c;
        want.push(best);
      }
      const got = [];
      for (const r of results) got.push(Array.from(await r.indices.read()));
      const back = await uploads[2].read();
      let bad = -1;
      for (let i = 0; i < back.length && bad < 0; i++) if (back[i] !== Math.fround(value(i))) bad = i;
      console.log(JSON.stringify({ want, got, bad }));`;
    const r = runNode(code, { NODE_OPTIONS: "--expose-gc" });
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim());
    expect(m.bad).toBe(-1);
    for (const g of m.got) expect(g).toEqual(m.want);
  });

  it("upload() checks its arguments like tensor() (a rejected promise, nothing leaked)", async () => {
    const before = dev.memory().liveTensors;
    await expect(dev.upload(new Float32Array(3), [2, 2])).rejects.toMatchObject({ code: "E_SHAPE" });
    await expect(dev.upload(new Uint16Array(4), [2, 2])).rejects.toMatchObject({ code: "E_DTYPE" });
    expect(dev.memory().liveTensors).toBe(before);
  });
});

// Event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution) while a 256 MiB upload and a
// 512 x 32768 top-k run, in a child process of its own. Before issue 17 the upload alone blocked the JS
// thread for 177 ms. The delay also counts time the OS gives other processes (CI runs other test files,
// one of them compiling, on the same 2 cores), so the child measures three times and the test takes the
// quietest: a real block shows in every try, a neighbour's burst rarely in all three. On cuda-sim the
// upload goes through the cuda plugin's pinned staging and stream-ordered gates (devices/cuda/upload.hpp).
describe.each(TEST_DEVICES.filter((d) => d === "cpu" || d === "cuda-sim"))("the event loop stays free on %s", (name) => {
  it("during a 256 MiB upload and a 512 x 32768 top-k", () => {
    const code = `
      import { monitorEventLoopDelay } from "node:perf_hooks";
      import { openDevice, topk } from "./dist/esm/index.js";
      const dev = openDevice(${JSON.stringify(name)});
      const big = new Float32Array(64 << 20).fill(0.5);
      const scores = new Float32Array(512 * 32768).map((_, i) => Math.sin(i * 0.37));
      const h = monitorEventLoopDelay({ resolution: 1 });
      const tick = setInterval(() => {}, 1);
      const best = { tensorCallMs: Infinity, uploadMaxMs: Infinity, topkCallMs: Infinity, topkMaxMs: Infinity };
      const keep = (k, v) => (best[k] = Math.min(best[k], v));
      for (let attempt = 0; attempt < 3; attempt++) {
        await new Promise((r) => setTimeout(r, 50));
        h.reset();
        h.enable();
        let t0 = performance.now();
        const t = dev.tensor(big, [64 << 20]);
        keep("tensorCallMs", performance.now() - t0);
        await dev.sync();
        const u = await dev.upload(big, [64 << 20]);
        h.disable();
        keep("uploadMaxMs", h.max / 1e6);
        const s = dev.tensor(scores, [512, 32768]);
        await dev.sync();
        h.reset();
        h.enable();
        t0 = performance.now();
        const r = topk(s, 2048);
        keep("topkCallMs", performance.now() - t0);
        await r.values.read();
        h.disable();
        keep("topkMaxMs", h.max / 1e6);
        for (const x of [t, u, s, r.indices, r.values]) x.dispose();
      }
      clearInterval(tick);
      console.log(JSON.stringify(best));`;
    const r = runNode(code);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout.trim());
    // The call itself: the copy is not in it, but a V8 garbage collection that the new external bytes
    // start can be (2-6 ms measured here, on a 4 MB heap).
    expect(m.tensorCallMs).toBeLessThan(20);
    expect(m.topkCallMs).toBeLessThan(20);
    expect(m.uploadMaxMs).toBeLessThan(30);
    expect(m.topkMaxMs).toBeLessThan(30);
  });
});
