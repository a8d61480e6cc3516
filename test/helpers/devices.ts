// Which devices the shared suites run on: GLM_KERNELS_TEST_DEVICES (comma-separated), default "cpu".
import { openDevice, type Device } from "glm-kernels";

export const TEST_DEVICES = (process.env.GLM_KERNELS_TEST_DEVICES ?? "cpu").split(",").filter(Boolean);

export function device(name: string): Device {
  return openDevice(name);
}
