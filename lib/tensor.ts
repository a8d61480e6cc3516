import type { Device } from "./device.js";
import { DTYPE_BYTES, HOST_ARRAY, type DType, type HostArray } from "./dtype.js";
import { GlmKernelsError } from "./errors.js";
import type { NativeDevice } from "./binding.js";

interface Held {
  nd: NativeDevice;
  ptr: bigint;
}

// Backstop for tensors that were never disposed: their memory is freed (stream-ordered) once collected.
const registry = new FinalizationRegistry<Held>(({ nd, ptr }) => {
  try {
    nd.free(ptr);
  } catch {
    // the device is gone with the process; nothing to free
  }
});

/** A typed, shaped buffer in one device's memory. */
export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  readonly size: number;
  readonly byteLength: number;
  #ptr: bigint | null;
  #nd: NativeDevice;

  /** @internal Use device.tensor() (or an op) to make one. */
  constructor(device: Device, nd: NativeDevice, shape: readonly number[], dtype: DType) {
    this.device = device;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.byteLength = this.size * DTYPE_BYTES[dtype];
    this.#nd = nd;
    this.#ptr = nd.alloc(this.byteLength);
    registry.register(this, { nd, ptr: this.#ptr }, this);
  }

  get disposed(): boolean {
    return this.#ptr === null;
  }

  /** @internal The device pointer; throws E_DISPOSED after dispose(). */
  ptr(what = "tensor"): bigint {
    if (this.#ptr === null)
      throw new GlmKernelsError("E_DISPOSED", `Expected a live tensor for ${what} but received a disposed ${this.dtype} tensor [${this.shape.join(", ")}]`);
    return this.#ptr;
  }

  /** Host copy (bf16/f16 as Uint16Array bits, f8e4m3 as Uint8Array), after all enqueued work. */
  async read(): Promise<HostArray> {
    const buf = await this.#nd.read(this.ptr("read()"), this.byteLength);
    return new HOST_ARRAY[this.dtype](buf) as HostArray;
  }

  /** Like read(), blocking the calling thread until the device gets there. */
  readSync(): HostArray {
    return new HOST_ARRAY[this.dtype](this.#nd.readSync(this.ptr("readSync()"), this.byteLength)) as HostArray;
  }

  /** Frees the memory once the work already enqueued is done. Idempotent. */
  dispose(): void {
    if (this.#ptr === null) return;
    registry.unregister(this);
    const ptr = this.#ptr;
    this.#ptr = null;
    this.#nd.free(ptr);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype} [${this.shape.join(", ")}] on ${this.device.name}${this.disposed ? ", disposed" : ""})`;
  }
}
