// GLM_KERNELS_ASCEND_INT4=wqbmm through the CPU fake of CANN: int4.matmul with bf16 x on
// aclnnWeightQuantBatchMatmulV2 (SPEC 4's packed words XORed into CANN's two's-complement INT4 on the NPU, the
// scales as the per-group antiquantScale). Checked: which CANN calls it makes, the result within the stated
// tolerance of the cpu device (helpers/tolerance.ts) and the same bits run to run and row alone vs in the batch,
// the calls it cannot take falling back to the exact path (where SPEC 4's identity holds), a bad value, a CANN
// without the op, and a failure injected into it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/child.js";
import { expectWithinTolerance, runWq, type WqCase } from "./wqbmm-cases.js";

const FAKE = join(ROOT, "build-plugins/fake-cann");
const WQBMM = { ASCEND_HOME_PATH: FAKE, ASCEND_TOOLKIT_HOME: "", GLMK_FAKE_CANN_FAIL: "", GLM_KERNELS_ASCEND_INT4: "wqbmm" };

const run = (cases: WqCase[], env: Record<string, string> = {}) => runWq(cases, { ...WQBMM, ...env });

function traced(cases: WqCase[]) {
  const trace = join(mkdtempSync(join(tmpdir(), "glmk-trace-")), "calls.txt");
  const outs = run(cases, { GLMK_FAKE_CANN_TRACE: trace });
  return { outs, lines: readFileSync(trace, "utf8").split("\n") };
}

const ops = (lines: string[], name: string) => lines.filter((l) => l.startsWith(name + "GetWorkspaceSize")).length;

describe.runIf(existsSync(join(FAKE, "lib64/libascendcl.so")))("ascend int4.matmul on aclnnWeightQuantBatchMatmulV2 (GLM_KERNELS_ASCEND_INT4=wqbmm)", () => {
  it("bf16 x: one XOR repack and one aclnnWeightQuantBatchMatmulV2 per call, within the stated tolerance of cpu, the same bits again and row alone", () => {
    const cases: WqCase[] = [
      [17, 130, 256, 64, "bf16"],
      [1, 70, 512, 32, "bf16"],
      [5, 24, 384, 128, "bf16"],
    ];
    const { outs, lines } = traced(cases);
    // per case: 2 batch calls + m row calls go to WQBMM; the dense matmul and nothing else to aclnnMatmul
    const calls = cases.reduce((s, [m]) => s + 2 + m, 0);
    expect(ops(lines, "aclnnWeightQuantBatchMatmulV2")).toBe(calls);
    expect(ops(lines, "aclnnBitwiseXorTensor")).toBe(calls);
    expect(ops(lines, "aclnnMatmul")).toBe(cases.length);
    expect(lines.filter((l) => l.startsWith("aclnnWeightQuantBatchMatmulV2GetWorkspaceSize"))).toEqual(
      cases.flatMap(([m, , , g]) => Array(2 + m).fill(`aclnnWeightQuantBatchMatmulV2GetWorkspaceSize x 27 weight 29 scale 27 groupSize ${g}`)),
    );
    expect(lines.filter((l) => l.startsWith("error"))).toEqual([]);
    cases.forEach((c, i) => expectWithinTolerance(outs[i], c));
  });

  it("calls CANN's op cannot take (f16 or f32 x, a group as long as K) take the exact path, where int4.matmul == matmul(x, fakeQuant(w))", () => {
    const cases: WqCase[] = [
      [3, 20, 128, 32, "f16"],
      [2, 9, 64, 32, "f32"],
      [4, 16, 128, 128, "bf16"],
    ];
    const { outs, lines } = traced(cases);
    expect(ops(lines, "aclnnWeightQuantBatchMatmulV2")).toBe(0);
    expect(ops(lines, "aclnnBitwiseXorTensor")).toBe(0);
    for (const o of outs) {
      expect(o.error).toBeUndefined();
      expect(o.ascend[0]).toEqual(o.dense);
    }
  });

  it("a value other than exact or wqbmm is E_ARG at open, naming the variable", () => {
    const [o] = run([[1, 8, 64, 32, "bf16"]], { GLM_KERNELS_ASCEND_INT4: "fast" });
    expect(o.error).toBe('E_ARG Expected exact or wqbmm for GLM_KERNELS_ASCEND_INT4 but received "fast"');
    const [e] = run([[1, 8, 64, 32, "bf16"]], { GLM_KERNELS_ASCEND_INT4: "exact" });
    expect(e.error).toBeUndefined();
  });

  it("a CANN without aclnnWeightQuantBatchMatmulV2: E_DEVICE at open naming it, and the default (exact) still works", () => {
    const dir = mkdtempSync(join(tmpdir(), "glmk-cann-nowq-"));
    mkdirSync(join(dir, "lib64"));
    for (const f of ["libascendcl.so", "libnnopbase.so", "libopapi_math.so", "libopapi_transformer.so"]) symlinkSync(join(FAKE, "lib64", f), join(dir, "lib64", f));
    symlinkSync(join(ROOT, "build-plugins/fake-cann-variants/libopapi_nn-nowqbmm.so"), join(dir, "lib64/libopapi_nn.so"));
    const [o] = run([[1, 8, 64, 32, "bf16"]], { ASCEND_HOME_PATH: dir });
    expect(o.error).toMatch(/^E_DEVICE GLM_KERNELS_ASCEND_INT4=wqbmm needs aclnnWeightQuantBatchMatmulV2, which this CANN's op libraries lack \(looked in .*glmk-cann-nowq-.*\/lib64.*\); unset it for the exact path$/);
    const [d] = run([[1, 8, 64, 32, "bf16"]], { ASCEND_HOME_PATH: dir, GLM_KERNELS_ASCEND_INT4: "" });
    expect(d.error).toBeUndefined();
    expect(d.ascend[0]).toEqual(d.dense);
  });

  it.each([
    ["aclnnWeightQuantBatchMatmulV2GetWorkspaceSize#1", /^E_DEVICE int4\.matmul: aclnnWeightQuantBatchMatmulV2GetWorkspaceSize: ACL error 561000: fake CANN: injected failure/],
    ["exec:aclnnWeightQuantBatchMatmulV2#1", /^E_DEVICE execution failed \(aclrtSynchronizeStream\): ACL error 507015: fake CANN: injected execution failure in aclnnWeightQuantBatchMatmulV2/],
    ["aclnnBitwiseXorTensorGetWorkspaceSize#1", /^E_DEVICE int4\.matmul: aclnnBitwiseXorTensorGetWorkspaceSize: ACL error 561000: fake CANN: injected failure/],
  ])("%s: a GlmKernelsError carrying CANN's message, the process alive, the next call right", (fail, pattern) => {
    const [o, next] = run([[2, 8, 64, 32, "bf16"], [2, 8, 64, 32, "bf16"]], { GLMK_FAKE_CANN_FAIL: fail });
    expect(o.error).toMatch(pattern);
    const [good] = run([[2, 8, 64, 32, "bf16"]]);
    expect(next.error).toBeUndefined();
    expect(next.ascend[0]).toEqual(good.ascend[0]);
  });
});
