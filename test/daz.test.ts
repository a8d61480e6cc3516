// A process whose main thread set MXCSR.DAZ and FTZ before anything else (as -ffast-math start-up code
// does): the CPU device's threads inherit them, and every ISA path must still rank subnormal scores of
// every dtype exactly (compared bit for bit with the reference, computed here without DAZ).
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuIsaPaths } from "./helpers/devices.js";
import { dazLibrary } from "./helpers/daz.js";
import { runNode } from "./helpers/child.js";
import { topkRef } from "./reference/topk-ref.js";

const ROWS = 4;
const COLS = 32768;  // long enough that the filter runs with a sampled threshold
const K = 2048;

// Mostly subnormals of both signs (so the k-th score and the threshold are subnormal), some zeros of both
// signs, some negative normals. A fixed LCG, so that a failure reproduces.
function makeBits(dtype: "f32" | "bf16" | "f16"): Uint32Array | Uint16Array {
  const n = ROWS * COLS;
  const out = dtype === "f32" ? new Uint32Array(n) : new Uint16Array(n);
  const mant = dtype === "f32" ? 0x7fffff : dtype === "bf16" ? 0x7f : 0x3ff;
  const sign = dtype === "f32" ? 0x80000000 : 0x8000;
  const normal = dtype === "f32" ? 0x3f800000 : dtype === "bf16" ? 0x3f80 : 0x3c00;  // 1.0
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  for (let i = 0; i < n; i++) {
    const u = next() % 100;
    const m = 1 + (next() % mant);
    out[i] = u < 55 ? m : u < 85 ? sign | m : u < 90 ? 0 : u < 95 ? sign : sign | normal;
  }
  return out;
}

describe("cpu top-k in a process with MXCSR.DAZ and FTZ set", () => {
  const dir = mkdtempSync(join(tmpdir(), "glmk-daz-"));
  const lib = dazLibrary();

  it.each(cpuIsaPaths().flatMap((isa) => (["f32", "bf16", "f16"] as const).map((dtype) => [isa, dtype] as const)))(
    "GLM_KERNELS_ISA=%s, %s subnormals",
    (isa, dtype) => {
      const bits = makeBits(dtype);
      const input = join(dir, `${dtype}.bin`);
      const output = join(dir, `${isa}-${dtype}.out`);
      writeFileSync(input, new Uint8Array(bits.buffer));
      const r = runNode(
        `import { defaultDevice, topk } from "glm-kernels";
         import { readFileSync, writeFileSync } from "node:fs";
         // DAZ is on in this thread if a subnormal f32 reads as zero.
         const daz = new Float32Array(new Uint32Array([1]).buffer)[0] === 0;
         const dev = defaultDevice();
         const raw = readFileSync(${JSON.stringify(input)});
         const data = ${dtype === "f32" ? "new Float32Array" : "new Uint16Array"}(raw.buffer, raw.byteOffset, raw.byteLength / ${dtype === "f32" ? 4 : 2});
         const x = dev.tensor(data, [${ROWS}, ${COLS}], ${JSON.stringify(dtype)});
         const out = topk(x, ${K});
         const i = await out.indices.read(), v = await out.values.read();
         writeFileSync(${JSON.stringify(output)}, Buffer.concat([Buffer.from(i.buffer), Buffer.from(v.buffer)]));
         console.log(daz);`,
        { LD_PRELOAD: lib, GLM_KERNELS_ISA: isa, GLM_KERNELS_THREADS: "2" },
      );
      expect([r.status, r.stderr]).toEqual([0, ""]);
      expect(r.stdout.trim()).toBe("true");
      const got = readFileSync(output);
      const want = topkRef(
        { data: dtype === "f32" ? new Float32Array(bits.buffer) : (bits as Uint16Array), dtype },
        ROWS,
        COLS,
        K,
      );
      const n = ROWS * K;
      expect(Array.from(new Int32Array(got.buffer, got.byteOffset, n))).toEqual(Array.from(want.indices));
      expect(Array.from(new Uint32Array(got.buffer, got.byteOffset + 4 * n, n))).toEqual(
        Array.from(new Uint32Array(want.values.buffer)),
      );
    },
  );
});
