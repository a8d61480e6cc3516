// moe.load / moe.save (SPEC 5): one MoE layer of a DeepSeek-V3 / GLM-5-FP8 checkpoint, from one safetensors
// file or a folder with model.safetensors.index.json (any number of shards), streamed by file offset:
//   model.layers.<L>.mlp.experts.<e>.{gate,up,down}_proj.{weight F8_E4M3 [n, k], weight_scale_inv F32 [n/128, k/128]}
//   model.layers.<L>.mlp.shared_experts.{gate,up,down}_proj.{weight, weight_scale_inv}   (optional)
//   model.layers.<L>.mlp.gate.weight (BF16 | F16 | F32 [E, H]), ...mlp.gate.e_score_correction_bias (F32 | BF16 [E])
// The experts are stacked on the device as [E, I, H], [E, I, H], [E, H, I] with their scales [E, ., .].
import { Device, defaultDevice, openDevice } from "../device.js";
import { GlmKernelsError, fail } from "../errors.js";
import { StSource, loadInto, loadTensor, readHostTensor, writeSafetensors, type StEntry, type StHeader } from "../safetensors.js";
import type { Tensor } from "../tensor.js";
import { checkOptions, checkTensor } from "../validate.js";
import { checkFp8Weights, type Fp8Weights } from "./fp8.js";
import type { ExpertWeights } from "./moe.js";

/** What moe.load returns and moe.save writes. */
export interface MoeLayer {
  gateWeight: Tensor;
  bias?: Tensor;
  experts: ExpertWeights;
  shared?: ExpertWeights;
}

const PROJ = ["gate_proj", "up_proj", "down_proj"] as const;
const KEY = { gate_proj: "gateProj", up_proj: "upProj", down_proj: "downProj" } as const;

function disposeAll(ts: (Tensor | undefined)[]) {
  for (const t of ts) if (t && !t.disposed) t.dispose();
}

// Reads one projection of `count` experts (names(e) -> its weight name) into a stack [count, n, k] (count 0:
// one unstacked [n, k], the shared expert).
async function loadStack(src: StSource, names: (e: number) => string, count: number, dev: Device, made: Tensor[]): Promise<Fp8Weights> {
  const experts = Math.max(1, count);
  let shape: number[] = [], sshape: number[] = [];
  let data: Tensor | undefined, scaleInv: Tensor | undefined;
  for (let e = 0; e < experts; e++) {
    const wName = names(e), sName = `${wName}_scale_inv`;
    const [hw, hs]: StHeader[] = await Promise.all([src.headerFor(wName), src.headerFor(sName)]);
    const w = hw.tensors.get(wName), s = hs.tensors.get(sName);
    if (!w) throw new GlmKernelsError("E_ARG", `Expected a tensor ${wName} in ${hw.path} but it has none of that name`);
    if (!s) throw new GlmKernelsError("E_ARG", `Expected a tensor ${sName} in ${hs.path} but it has none of that name`);
    if (w.dtype !== "F8_E4M3") throw new GlmKernelsError("E_DTYPE", `Expected ${wName} in ${hw.path} to be F8_E4M3 but received ${w.dtype}`);
    if (s.dtype !== "F32") throw new GlmKernelsError("E_DTYPE", `Expected ${sName} in ${hs.path} to be F32 but received ${s.dtype}`);
    if (w.shape.length !== 2) throw new GlmKernelsError("E_SHAPE", `Expected ${wName} in ${hw.path} to be [N, K] but received [${w.shape.join(", ")}]`);
    const want = [Math.ceil(w.shape[0] / 128), Math.ceil(w.shape[1] / 128)];
    if (s.shape.length !== 2 || s.shape[0] !== want[0] || s.shape[1] !== want[1])
      throw new GlmKernelsError("E_SHAPE", `Expected ${sName} in ${hs.path} of shape [${want.join(", ")}] (blocks [128, 128] of [${w.shape.join(", ")}]) but received [${s.shape.join(", ")}]`);
    if (e === 0) {
      shape = w.shape;
      sshape = s.shape;
      data = dev.empty(count ? [count, ...shape] : shape, "f8e4m3");
      made.push(data);
      scaleInv = dev.empty(count ? [count, ...sshape] : sshape, "f32");
      made.push(scaleInv);
    } else if (w.shape[0] !== shape[0] || w.shape[1] !== shape[1]) {
      throw new GlmKernelsError("E_SHAPE", `Expected ${wName} in ${hw.path} of shape [${shape.join(", ")}] (as expert 0) but received [${w.shape.join(", ")}]`);
    }
    await loadInto(hw, wName, data!, e * (data!.byteLength / experts));
    await loadInto(hs, sName, scaleInv!, e * (scaleInv!.byteLength / experts));
  }
  return { data: data!, scaleInv: scaleInv!, block: [128, 128] };
}

export async function load(path: string, layer: number, options?: { device?: Device | string }): Promise<MoeLayer> {
  if (typeof path !== "string" || path === "") fail("E_ARG", "path", "a file or folder path", path);
  if (typeof layer !== "number" || !Number.isInteger(layer) || layer < 0) fail("E_ARG", "layer", "a non-negative integer", layer);
  const o = checkOptions(options, "moe.load options", ["device"]);
  const dev = o.device === undefined ? defaultDevice() : o.device instanceof Device ? o.device : openDevice(o.device as string);
  const src = await StSource.open(path);
  const pre = `model.layers.${layer}.mlp`;
  // Section: how many experts (0 .. E-1, all present)
  const ids = new Set<number>();
  const all = new Set(await src.names());
  const re = new RegExp(`^${pre.replace(/\./g, "\\.")}\\.experts\\.(\\d+)\\.gate_proj\\.weight$`);
  for (const name of all) {
    const m = re.exec(name);
    if (m) ids.add(Number(m[1]));
  }
  if (ids.size === 0) throw new GlmKernelsError("E_ARG", `Expected routed experts (${pre}.experts.0.gate_proj.weight) in ${path} but layer ${layer} has none (a dense layer?)`);
  const e = ids.size;
  for (let i = 0; i < e; i++)
    if (!ids.has(i)) throw new GlmKernelsError("E_ARG", `Expected experts 0 to ${e - 1} in layer ${layer} of ${path} but ${pre}.experts.${i}.gate_proj.weight is missing`);
  const config = await src.config();
  const declared = config?.n_routed_experts;
  if (typeof declared === "number" && declared !== e)
    throw new GlmKernelsError("E_SHAPE", `Expected config.json's n_routed_experts ${declared} experts in layer ${layer} but the checkpoint has ${e}`);
  // Section: the router, then the stacks
  const made: Tensor[] = [];
  try {
    const gName = `${pre}.gate.weight`, bName = `${pre}.gate.e_score_correction_bias`;
    const gh = await src.headerFor(gName);
    const gi = gh.tensors.get(gName);
    if (!gi) throw new GlmKernelsError("E_ARG", `Expected a tensor ${gName} in ${gh.path} but it has none of that name`);
    if (!["BF16", "F16", "F32"].includes(gi.dtype)) throw new GlmKernelsError("E_DTYPE", `Expected ${gName} in ${gh.path} to be BF16, F16 or F32 but received ${gi.dtype}`);
    if (gi.shape.length !== 2 || gi.shape[0] !== e)
      throw new GlmKernelsError("E_SHAPE", `Expected ${gName} in ${gh.path} of shape [${e}, H] but received [${gi.shape.join(", ")}]`);
    const gateWeight = await loadTensor(gh, gName, dev);
    made.push(gateWeight);
    let bias: Tensor | undefined;
    if (all.has(bName)) {
      const bh = await src.headerFor(bName);
      const b = await readHostTensor(bh, bName);
      if (b.shape.length !== 1 || b.shape[0] !== e) throw new GlmKernelsError("E_SHAPE", `Expected ${bName} in ${bh.path} of shape [${e}] but received [${b.shape.join(", ")}]`);
      let v: Float32Array;
      if (b.dtype === "F32") v = new Float32Array(b.bytes.buffer.slice(b.bytes.byteOffset, b.bytes.byteOffset + b.bytes.byteLength));
      else if (b.dtype === "BF16") v = Float32Array.from({ length: e }, (_, i) => new Float32Array(new Uint32Array([b.bytes.readUInt16LE(2 * i) << 16]).buffer)[0]);
      else throw new GlmKernelsError("E_DTYPE", `Expected ${bName} in ${bh.path} to be F32 or BF16 but received ${b.dtype}`);
      bias = dev.tensor(v, [e]);
      made.push(bias);
    }
    const experts = {} as ExpertWeights;
    for (const p of PROJ) experts[KEY[p]] = await loadStack(src, (x) => `${pre}.experts.${x}.${p}.weight`, e, dev, made);
    const h = gi.shape[1];
    const [, i, hh] = experts.gateProj.data.shape;
    const checkStacks = (w: ExpertWeights, lead: number[], ii: number, what: string) => {
      const want = { gateProj: [...lead, ii, h], upProj: [...lead, ii, h], downProj: [...lead, h, ii] };
      for (const k of ["gateProj", "upProj", "downProj"] as const)
        if (w[k].data.shape.join() !== want[k].join())
          throw new GlmKernelsError("E_SHAPE", `Expected ${what} ${k} of shape [${want[k].join(", ")}] (H = ${h} from ${gName}) but received [${w[k].data.shape.join(", ")}]`);
    };
    if (hh !== h) throw new GlmKernelsError("E_SHAPE", `Expected the experts' H ${hh} to equal ${gName}'s ${h}`);
    checkStacks(experts, [e], i, `layer ${layer}'s experts`);
    let shared: ExpertWeights | undefined;
    if (all.has(`${pre}.shared_experts.gate_proj.weight`)) {
      shared = {} as ExpertWeights;
      for (const p of PROJ) shared[KEY[p]] = await loadStack(src, () => `${pre}.shared_experts.${p}.weight`, 0, dev, made);
      checkStacks(shared, [], shared.gateProj.data.shape[0], `layer ${layer}'s shared expert`);
    }
    return { gateWeight, bias, experts, ...(shared ? { shared } : {}) };
  } catch (err) {
    disposeAll(made);
    throw err;
  }
}

/** Writes one MoE layer (what moe.load returns) under model.layers.<layer>.mlp.* in one safetensors file. */
export async function save(path: string, layer: number, m: MoeLayer): Promise<void> {
  if (typeof path !== "string" || path === "") fail("E_ARG", "path", "a file path", path);
  if (typeof layer !== "number" || !Number.isInteger(layer) || layer < 0) fail("E_ARG", "layer", "a non-negative integer", layer);
  if (m === null || typeof m !== "object") fail("E_ARG", "layer weights", "{ gateWeight, bias?, experts, shared? }", m);
  const pre = `model.layers.${layer}.mlp`;
  const entries: Record<string, StEntry> = {};
  const g = checkTensor(m.gateWeight, "gateWeight", ["bf16", "f16", "f32"], 2);
  entries[`${pre}.gate.weight`] = g;
  if (m.bias !== undefined) entries[`${pre}.gate.e_score_correction_bias`] = checkTensor(m.bias, "bias", ["f32"], 1);
  const put = (w: ExpertWeights | undefined, what: string, stacked: boolean, name: (e: number, p: string) => string) => {
    if (w === null || typeof w !== "object") fail("E_ARG", what, "{ gateProj, upProj, downProj } of fp8 weights", w);
    for (const p of PROJ) {
      const q = checkFp8Weights(w[KEY[p]], `${what}.${KEY[p]}`);
      if (q.block[0] !== 128 || q.block[1] !== 128) fail("E_ARG", `${what}.${KEY[p]}.block`, "[128, 128] (the checkpoint format's blocks)", q.block);
      if (q.data.shape.length !== (stacked ? 3 : 2)) fail("E_SHAPE", `${what}.${KEY[p]}.data`, stacked ? "[E, N, K]" : "[N, K]", `[${q.data.shape.join(", ")}]`);
      const count = stacked ? q.data.shape[0] : 1;
      const ws = q.data.shape.slice(-2), ss = q.scaleInv.shape.slice(-2);
      for (let e = 0; e < count; e++) {
        entries[`${name(e, p)}.weight`] = { of: q.data, offset: e * (q.data.byteLength / count), shape: ws };
        entries[`${name(e, p)}.weight_scale_inv`] = { of: q.scaleInv, offset: e * (q.scaleInv.byteLength / count), shape: ss };
      }
    }
  };
  put(m.experts, "experts", true, (e, p) => `${pre}.experts.${e}.${p}`);
  if (m.shared !== undefined) put(m.shared, "shared", false, (_e, p) => `${pre}.shared_experts.${p}`);
  await writeSafetensors(path, entries, { format: "pt" });
}
