// moe.load / moe.save (SPEC 5): a sharded checkpoint written by Hugging Face's safetensors (test/fixtures/moe-fp8,
// scripts/fixtures/make-moe-fixture.py) stacks to what numpy stacks; the names match a published GLM-5-FP8
// header; save -> load is bit for bit; bad checkpoints are clear errors.
import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fp8, moe, type Tensor } from "../dist/esm/index.js";
import { readHeader } from "../dist/esm/safetensors.js";
import { ROOT } from "./helpers/child.js";
import { TEST_DEVICES, device } from "./helpers/devices.js";

const DEVICES = TEST_DEVICES.filter((d) => device(d).info().capabilities.includes("moe.experts"));
const FIXTURE = join(ROOT, "test/fixtures/moe-fp8");
const EXPECT = JSON.parse(readFileSync(join(FIXTURE, "expect.json"), "utf8"));
const sha = async (t: Tensor) => {
  const a = await t.read();
  return createHash("sha256").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");
};
const tmp = () => mkdtempSync(join(tmpdir(), "glmk-moe-"));

describe.each(DEVICES)("moe.load / moe.save on %s", (name) => {
  const dev = device(name);

  it("a sharded DeepSeek-V3-style checkpoint stacks as numpy stacks it; dequantized as numpy + ml_dtypes do", async () => {
    const m = await moe.load(FIXTURE, 1, { device: dev });
    const { E, I, H, sharedI } = EXPECT;
    expect(m.gateWeight.shape).toEqual([E, H]);
    expect(m.gateWeight.dtype).toBe("bf16");
    expect(await sha(m.gateWeight)).toBe(EXPECT.gate);
    expect(await sha(m.bias!)).toBe(EXPECT.bias);
    const keys = { gate_proj: "gateProj", up_proj: "upProj", down_proj: "downProj" } as const;
    for (const [p, k] of Object.entries(keys)) {
      const q = m.experts[k];
      expect(q.data.shape).toEqual(p === "down_proj" ? [E, H, I] : [E, I, H]);
      expect(await sha(q.data), p).toBe(EXPECT.stacks[p].data);
      expect(await sha(q.scaleInv), p).toBe(EXPECT.stacks[p].scaleInv);
      expect(await sha(fp8.dequantize(q, "f32")), p).toBe(EXPECT.stacks[p].dequantF32);
      const s = m.shared![k];
      expect(s.data.shape).toEqual(p === "down_proj" ? [H, sharedI] : [sharedI, H]);
      expect(await sha(s.data), p).toBe(EXPECT.shared[p].data);
      expect(await sha(fp8.dequantize(s, "f32")), p).toBe(EXPECT.shared[p].dequantF32);
    }
    // and the layer runs
    const x = dev.tensor(new Uint16Array(3 * H).fill(0x3f80), [3, H], "bf16");
    const r = moe.route(x, m.gateWeight, { bias: m.bias, topK: 2 });
    expect(moe.experts(x, r, m.experts, { shared: m.shared }).shape).toEqual([3, H]);
  });

  it("save writes the published names, dtypes and scale shapes; load(save(x)) is x bit for bit; experts agree", async () => {
    const m = await moe.load(FIXTURE, 1, { device: dev });
    const dir = tmp();
    const file = join(dir, "layer.safetensors");
    await moe.save(file, 7, m);
    const h = await readHeader(file);
    // the names and layout of a published GLM-5-FP8 header (zai-org, layer 3, expert 0:
    // gate/up F8_E4M3 [2048, 6144] + F32 [16, 48], down F8_E4M3 [6144, 2048] + F32 [48, 16]), at our shapes
    const { E, I, H } = EXPECT;
    for (let e = 0; e < E; e++)
      for (const [p, n, k] of [["gate_proj", I, H], ["up_proj", I, H], ["down_proj", H, I]] as const) {
        const w = h.tensors.get(`model.layers.7.mlp.experts.${e}.${p}.weight`)!;
        const s = h.tensors.get(`model.layers.7.mlp.experts.${e}.${p}.weight_scale_inv`)!;
        expect([w.dtype, ...w.shape]).toEqual(["F8_E4M3", n, k]);
        expect([s.dtype, ...s.shape]).toEqual(["F32", Math.ceil(n / 128), Math.ceil(k / 128)]);
      }
    expect(h.tensors.get("model.layers.7.mlp.gate.weight")!.dtype).toBe("BF16");
    expect(h.tensors.get("model.layers.7.mlp.gate.e_score_correction_bias")!.dtype).toBe("F32");
    expect(h.tensors.has("model.layers.7.mlp.shared_experts.down_proj.weight_scale_inv")).toBe(true);
    const back = await moe.load(file, 7, { device: dev });
    for (const k of ["gateProj", "upProj", "downProj"] as const) {
      expect(await sha(back.experts[k].data)).toBe(await sha(m.experts[k].data));
      expect(await sha(back.experts[k].scaleInv)).toBe(await sha(m.experts[k].scaleInv));
      expect(await sha(back.shared![k].data)).toBe(await sha(m.shared![k].data));
    }
    expect(await sha(back.gateWeight)).toBe(await sha(m.gateWeight));
    expect(await sha(back.bias!)).toBe(await sha(m.bias!));
    const x = dev.tensor(Uint16Array.from({ length: 2 * H }, (_, i) => 0x3f00 + (i % 200)), [2, H], "bf16");
    const ya = moe.experts(x, moe.route(x, m.gateWeight, { bias: m.bias, topK: 2 }), m.experts, { shared: m.shared });
    const yb = moe.experts(x, moe.route(x, back.gateWeight, { bias: back.bias, topK: 2 }), back.experts, { shared: back.shared });
    expect(await sha(yb)).toBe(await sha(ya));
  });

  it("fp8.quantize stacks save and load too (blocks [128, 128] only)", async () => {
    const q = (n: number, k: number) => fp8.quantize(dev.tensor(Float32Array.from({ length: 2 * n * k }, (_, i) => Math.sin(i)), [2, n, k]));
    const layer = { gateWeight: dev.tensor(new Float32Array(2 * 128), [2, 128]), experts: { gateProj: q(64, 128), upProj: q(64, 128), downProj: q(128, 64) } };
    const file = join(tmp(), "q.safetensors");
    await moe.save(file, 0, layer);
    const back = await moe.load(file, 0, { device: dev });
    expect(back.bias).toBeUndefined();
    expect(back.shared).toBeUndefined();
    expect(back.gateWeight.dtype).toBe("f32");
    expect(await sha(back.experts.downProj.data)).toBe(await sha(layer.experts.downProj.data));
    const row = { ...layer.experts, gateProj: fp8.quantize(dev.tensor(new Float32Array(2 * 64 * 128), [2, 64, 128]), { block: [1, 128] }) };
    await expect(moe.save(file, 0, { ...layer, experts: row })).rejects.toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/block/) }));
  });

  it("bad checkpoints are clear errors", async () => {
    await expect(moe.load(FIXTURE, 0, { device: dev })).rejects.toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/layer 0 has none \(a dense layer\?\)/) }));
    await expect(moe.load(FIXTURE, -1)).rejects.toThrow(expect.objectContaining({ code: "E_ARG", message: expect.stringMatching(/layer/) }));
    await expect(moe.load(join(FIXTURE, "nope"), 1)).rejects.toThrow(expect.objectContaining({ code: "E_ARG" }));
    // a missing expert, a wrong dtype, a wrong scale shape, config.json disagreeing
    const broken = (edit: (index: { weight_map: Record<string, string> }) => void, config?: object) => {
      const dir = tmp();
      cpSync(FIXTURE, dir, { recursive: true });
      const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
      edit(index);
      writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
      if (config) writeFileSync(join(dir, "config.json"), JSON.stringify(config));
      return dir;
    };
    const noExpert2 = broken((ix) => {
      for (const k of Object.keys(ix.weight_map)) if (k.includes(".experts.2.gate_proj")) delete ix.weight_map[k];
    });
    await expect(moe.load(noExpert2, 1, { device: dev })).rejects.toThrow(expect.objectContaining({ message: expect.stringMatching(/experts\.2\.gate_proj\.weight is missing/) }));
    const wrongCount = broken(() => {}, { n_routed_experts: 256 });
    await expect(moe.load(wrongCount, 1, { device: dev })).rejects.toThrow(expect.objectContaining({ code: "E_SHAPE", message: expect.stringMatching(/n_routed_experts 256/) }));
    // single files with one defect each (written with the package's writer); a failed load frees what it made
    const zeros = (dtype: string, shape: number[], size: number) => ({ dtype, shape, bytes: new Uint8Array(shape.reduce((a, b) => a * b, 1) * size) });
    const expert = (e: number, n = 32) => ({
      [`model.layers.2.mlp.experts.${e}.gate_proj.weight`]: zeros("F8_E4M3", [n, 128], 1),
      [`model.layers.2.mlp.experts.${e}.gate_proj.weight_scale_inv`]: zeros("F32", [1, 1], 4),
      [`model.layers.2.mlp.experts.${e}.up_proj.weight`]: zeros("F8_E4M3", [n, 128], 1),
      [`model.layers.2.mlp.experts.${e}.up_proj.weight_scale_inv`]: zeros("F32", [1, 1], 4),
      [`model.layers.2.mlp.experts.${e}.down_proj.weight`]: zeros("F8_E4M3", [128, n], 1),
      [`model.layers.2.mlp.experts.${e}.down_proj.weight_scale_inv`]: zeros("F32", [1, 1], 4),
    });
    const good = { "model.layers.2.mlp.gate.weight": zeros("BF16", [2, 128], 2), ...expert(0), ...expert(1) };
    const cases: [string, object, string, RegExp][] = [
      ["ok", {}, "", /./],
      ["dtype", { "model.layers.2.mlp.experts.1.up_proj.weight": zeros("BF16", [32, 128], 2) }, "E_DTYPE", /experts\.1\.up_proj\.weight .*F8_E4M3 but received BF16/],
      ["scale", { "model.layers.2.mlp.experts.0.down_proj.weight_scale_inv": zeros("F32", [2, 1], 4) }, "E_SHAPE", /down_proj\.weight_scale_inv .*\[1, 1\].*received \[2, 1\]/],
      ["ragged", expert(1, 16), "E_SHAPE", /experts\.1\.gate_proj\.weight .*\[32, 128\] \(as expert 0\)/],
      ["router", { "model.layers.2.mlp.gate.weight": zeros("BF16", [3, 128], 2) }, "E_SHAPE", /gate\.weight .*\[2, H\]/],
      ["bias", { "model.layers.2.mlp.gate.e_score_correction_bias": zeros("I32", [2], 4) }, "E_DTYPE", /e_score_correction_bias .*F32 or BF16/],
    ];
    const { writeSafetensors } = await import("../dist/esm/safetensors.js");
    const before = dev.memory().liveTensors;
    for (const [label, over, code, message] of cases) {
      const file = join(tmp(), `${label}.safetensors`);
      await writeSafetensors(file, { ...good, ...over });
      if (label === "ok") {
        const m = await moe.load(file, 2, { device: dev });
        expect(m.experts.downProj.data.shape).toEqual([2, 128, 32]);
        for (const t of [m.gateWeight, ...Object.values(m.experts).flatMap((q) => [q.data, q.scaleInv])]) t.dispose();
        continue;
      }
      await expect(moe.load(file, 2, { device: dev }), label).rejects.toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
    }
    expect(dev.memory().liveTensors).toBe(before);
    await expect(moe.save(join(tmp(), "x.safetensors"), 1, { gateWeight: null } as never)).rejects.toThrow(expect.objectContaining({ code: "E_ARG" }));
  });
});
