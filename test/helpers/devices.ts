// Which devices the shared suites run on: GLM_KERNELS_TEST_DEVICES (comma-separated); by default cpu plus
// every accelerator that is available here (cuda-sim once `npm run build:plugins` has built it).
import { listDevices, openDevice, type Device } from "glm-kernels";

function defaults(): string[] {
  const found = listDevices().filter((l) => l.available && l.kind !== "cpu").map((l) => l.kind);
  return ["cpu", ...found];
}

export const TEST_DEVICES = process.env.GLM_KERNELS_TEST_DEVICES
  ? process.env.GLM_KERNELS_TEST_DEVICES.split(",").filter(Boolean)
  : defaults();

export function device(name: string): Device {
  return openDevice(name);
}

/** Every CPU ISA path this machine can run (GLM_KERNELS_ISA values), lowest first. */
export function cpuIsaPaths(): string[] {
  const isa = device("cpu").info().isa;
  const all = ["scalar", "avx2", "avx512", "avx512vbmi", "avx512bf16"];
  return all.slice(0, all.indexOf(isa) + 1);
}
