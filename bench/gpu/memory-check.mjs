// Memory on a real cuda device (bench/gpu/acceptance.sh runs it): dev.memory() sees the stream-ordered
// pool, emptyCache() trims it, and a loop that never disposes (tensors left to the garbage collector, as in
// issue 17) keeps both host RSS and the pool bounded.
// Usage: node bench/gpu/memory-check.mjs path/to/package   (a folder with dist/ and prebuilds/)
import { resolve } from "node:path";

const pkg = resolve(process.argv[2] ?? ".");
const { openDevice, topk } = await import(`${pkg}/dist/esm/index.js`);
const dev = openDevice("cuda");
const MiB = 2 ** 20;
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failed++;
};

const ts = Array.from({ length: 16 }, () => dev.tensor(new Float32Array(MiB), [MiB]));
await dev.sync();
const live = dev.memory();
for (const t of ts) t.dispose();
await dev.sync();
const freed = dev.memory();
dev.emptyCache();
const emptied = dev.memory();
check(live.liveTensors >= 16 && live.liveBytes >= 64 * MiB, `16 live tensors of 4 MiB counted: ${JSON.stringify(live)}`);
check(freed.cachedBytes >= 64 * MiB, `after dispose the pool keeps them: ${JSON.stringify(freed)}`);
check(emptied.cachedBytes < freed.cachedBytes, `emptyCache() trims the pool: ${JSON.stringify(emptied)}`);

const data = new Float32Array(4 * 262144).map((_, i) => Math.sin(i));
const rss0 = process.memoryUsage().rss;
let peakCached = 0;
for (let i = 0; i < 2000; i++) {
  const r = topk(dev.tensor(data, [4, 262144]), 64);
  await r.indices.read();
  if (i % 100 === 0) peakCached = Math.max(peakCached, dev.memory().cachedBytes);
}
const grow = (process.memoryUsage().rss - rss0) / MiB;
check(grow < 100, `2,000 GC-only top-k calls on 4 MiB inputs: host RSS +${grow.toFixed(0)} MB`);
console.log(`     pool cached bytes at most ${(peakCached / MiB).toFixed(0)} MiB during the loop; now ${JSON.stringify(dev.memory())}`);

// The pool's idle trim: after a second without allocations, frees or uploads, the plugin's helper thread
// gives the cached memory back (cudaMemPoolTrimTo); what shares a granule with a live block may stay.
await dev.sync();
const beforeIdle = dev.memory().cachedBytes;
await new Promise((r) => setTimeout(r, 1600));
const afterIdle = dev.memory().cachedBytes;
check(afterIdle < 8 * MiB, `a second idle trims the pool: ${(beforeIdle / MiB).toFixed(1)} -> ${(afterIdle / MiB).toFixed(1)} MiB cached`);

// Deferred uploads: a 256 MiB dev.tensor() returns at once; an op enqueued right after sees the data.
const n = 64 * MiB;
const big = new Float32Array(n).map((_, i) => (i % 4099) * 0.25);
for (let attempt = 0; attempt < 2; attempt++) {
  const t0 = performance.now();
  const t = dev.tensor(big, [4, n / 4]);
  const callMs = performance.now() - t0;
  const r = topk(t, 1);
  const got = Array.from(await r.indices.read());
  const back = await t.read();
  let bad = -1;
  for (let i = 0; i < n && bad < 0; i += 997) if (back[i] !== big[i]) bad = i;
  const want = [0, 1, 2, 3].map((row) => {
    let best = 0;
    for (let c = 1; c < n / 4; c++) if (big[row * (n / 4) + c] > big[row * (n / 4) + best]) best = c;
    return best;
  });
  check(callMs < 20 && bad < 0 && got.every((g, i) => g === want[i]),
    `256 MiB dev.tensor(): the call took ${callMs.toFixed(1)} ms; bytes ${bad < 0 ? "right" : `wrong at ${bad}`}; top-k behind it ${JSON.stringify(got)} (want ${JSON.stringify(want)})`);
  for (const x of [t, r.indices, r.values]) x.dispose();
}
console.log(`memory-check: ${failed ? `${failed} FAILED` : "passed"}`);
process.exitCode = failed ? 1 : 0;
