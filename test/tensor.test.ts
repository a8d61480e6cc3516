// Tensors and the stream model (SPEC 2), and both module formats.
import { describe, expect, it } from "vitest";
import { GlmKernelsError, defaultDevice, listDevices, openDevice, topk } from "glm-kernels";
import { runNode } from "./helpers/child.js";

const dev = defaultDevice();

describe("tensors", () => {
  it("infer dtypes and round-trip every dtype bit for bit", async () => {
    const f = dev.tensor(new Float32Array([1, -0, NaN, 3.5]), [2, 2]);
    expect([f.dtype, f.shape, f.device]).toEqual(["f32", [2, 2], dev]);
    expect(Array.from(new Uint32Array(((await f.read()) as Float32Array).buffer))).toEqual([0x3f800000, 0x80000000, 0x7fc00000, 0x40600000]);
    expect(dev.tensor(new Int32Array([7, -8]), [2]).readSync()).toEqual(new Int32Array([7, -8]));
    expect(dev.tensor(new Uint8Array([1, 255]), [2]).dtype).toBe("u8");
    for (const dt of ["bf16", "f16"] as const) {
      const t = dev.tensor(new Uint16Array([0xffff, 1]), [2], dt);
      expect([t.dtype, Array.from(t.readSync())]).toEqual([dt, [0xffff, 1]]);
    }
    const e8 = dev.tensor(new Uint8Array([0x7f, 0x80]), [2], "f8e4m3");
    expect(e8.readSync()).toBeInstanceOf(Uint8Array);
  });

  it("refuse a Uint16Array without dtype, mismatched data and shapes", () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return "none";
      } catch (e) {
        expect(e).toBeInstanceOf(GlmKernelsError);
        return (e as GlmKernelsError).code;
      }
    };
    expect(code(() => dev.tensor(new Uint16Array(2), [2]))).toBe("E_DTYPE");
    expect(code(() => dev.tensor(new Float32Array(2), [2], "i32"))).toBe("E_DTYPE");
    expect(code(() => dev.tensor(new Float64Array(2) as never, [2]))).toBe("E_DTYPE");
    expect(code(() => dev.tensor(new Float32Array(3), [2, 2]))).toBe("E_SHAPE");
    expect(code(() => dev.tensor(new Float32Array(3), [-3] as never))).toBe("E_SHAPE");
  });

  it("dispose is idempotent, works with `using`, and later use is E_DISPOSED", async () => {
    const t = dev.tensor(new Float32Array(4), [4]);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    await expect(t.read()).rejects.toMatchObject({ code: "E_DISPOSED" });
    let outer;
    {
      using u = dev.tensor(new Float32Array(4), [4]);
      outer = u;
    }
    expect(outer.disposed).toBe(true);
  });

  it("ops enqueue in order: disposing inputs right after an op is safe; sync resolves", async () => {
    const s = dev.tensor(new Float32Array([3, 1, 2]), [1, 3]);
    const r = topk(s, 2);
    s.dispose();
    await dev.sync();
    expect(Array.from((await r.indices.read()) as Int32Array)).toEqual([0, 2]);
  });

  it("devices: names, caching, info, listing", () => {
    expect(openDevice("cpu:0")).toBe(openDevice("cpu"));
    const i = dev.info();
    expect(i.kind).toBe("cpu");
    expect(i.threads).toBeGreaterThan(0);
    expect(i.capabilities).toContain("topk");
    expect(i.build.abi).toBe(3);
    const l = listDevices();
    expect(l.map((d) => d.kind)).toEqual(["cpu", "cuda", "cuda-sim", "ascend"]);
    expect(l[0]).toMatchObject({ kind: "cpu", available: true, count: 1 });
    expect(() => openDevice("cpu:1")).toThrow(GlmKernelsError);
  });
});

describe("module formats", () => {
  it("CommonJS require works", () => {
    const r = runNode(`import { createRequire } from "node:module"; const g = createRequire(import.meta.url)("glm-kernels");
      const t = g.defaultDevice().tensor(new Float32Array([1, 2]), [1, 2]); console.log(Array.from(g.topk(t, 1).indices.readSync()), g.GlmKernelsError.name);`);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("[ 1 ] GlmKernelsError");
  });
});
