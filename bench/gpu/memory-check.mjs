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
console.log(`memory-check: ${failed ? `${failed} FAILED` : "passed"}`);
process.exitCode = failed ? 1 : 0;
