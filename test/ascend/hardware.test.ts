// On a real Ascend NPU (CANN installed, `source <CANN>/set_env.sh` done, an NPU listed by npu-smi): top-k
// equals the cpu device bit for bit, and gives the golden digests. Skipped, with the reason printed, where
// there is no NPU (our CI: the plugin runs there against the CPU fake of CANN, see fake-cann.test.ts).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { listDevices, openDevice } from "glm-kernels";
import { makeInput, type TopkCase } from "../../dist/esm/verify/cases.js";
import { goldenDigests, runTopk } from "../../dist/esm/verify/checks.js";
import { firstMismatch } from "../reference/topk-ref.js";

const listing = listDevices().find((l) => l.kind === "ascend")!;
const onFake = listing.available && /fake CANN/.test(openDevice("ascend").info().name);
const npu = listing.available && !onFake;
if (!npu)
  console.log(
    `test/ascend/hardware.test.ts skipped: no Ascend NPU here (${onFake ? "ASCEND_HOME_PATH points at the CPU fake of CANN" : listing.reason})`,
  );

describe.runIf(npu)("ascend on NPU hardware", () => {
  const golden = JSON.parse(readFileSync(new URL("../determinism/golden.json", import.meta.url), "utf8")).digests;

  it("gives the golden top-k digests", async () => {
    expect(await goldenDigests(openDevice("ascend"))).toEqual(golden);
  });

  it.each([
    { name: "f32-special-4x65536-k2048", dtype: "f32", rows: 4, cols: 65536, k: 2048, gen: "special", seed: 1 },
    { name: "bf16-ties-ragged-64x32768-k2048", dtype: "bf16", rows: 64, cols: 32768, k: 2048, gen: "ties", seed: 2, ragged: true },
    { name: "f16-special-8x131072-k1024", dtype: "f16", rows: 8, cols: 131072, k: 1024, gen: "special", seed: 3 },
  ] as TopkCase[])("equals the cpu device bit for bit: $name", async (c) => {
    const input = makeInput(c);
    const npuOut = await runTopk(openDevice("ascend"), c, input);
    const cpuOut = await runTopk(openDevice("cpu"), c, input);
    expect(firstMismatch(npuOut, cpuOut, c.k)).toBeNull();
  });
});
