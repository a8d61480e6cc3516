import type { Device } from "./device.js";
import { DTYPE_BYTES, HOST_ARRAY, type DType, type HostArray } from "./dtype.js";
import { GlmKernelsError } from "./errors.js";
import type { NativeDevice } from "./binding.js";

/** @internal What a device's tensors hold, counted on the JS thread (Device.memory()). */
export interface LiveCount {
  tensors: number;
  bytes: number;
}

interface Held {
  nd: NativeDevice;
  ptr: bigint;
  bytes: number;
  live: LiveCount;
}

// Backstop for tensors that were never disposed: their memory is freed (stream-ordered) once collected.
// The addon reports every tensor's bytes to V8 as external memory, so collection keeps pace with them.
const registry = new FinalizationRegistry<Held>(release);

function release({ nd, ptr, bytes, live }: Held): void {
  live.tensors--;
  live.bytes -= bytes;
  try {
    nd.free(ptr, bytes);
  } catch {
    // the device is gone with the process; nothing to free
  }
}

let lastTurn = 0;

/**
 * What read() and sync() hand back when the device was already done: `value` itself, but at least once a
 * millisecond a promise that settles on the next turn of the event loop instead, so that a loop of awaited
 * calls still lets timers, I/O and the collection of dropped tensors run (a turn costs about 1 us here).
 */
export function settleSoon<T>(value: T): T | Promise<T> {
  if (performance.now() - lastTurn < 1) return value;
  return new Promise((resolve) =>
    setImmediate(() => {
      lastTurn = performance.now();
      resolve(value);
    }),
  );
}

/** A typed, shaped buffer in one device's memory. */
export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: Device;
  readonly size: number;
  readonly byteLength: number;
  #ptr: bigint | null;
  #nd: NativeDevice;
  #live: LiveCount;

  /** @internal Use device.tensor() (or an op) to make one. */
  constructor(device: Device, nd: NativeDevice, live: LiveCount, shape: readonly number[], dtype: DType) {
    this.device = device;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shape.reduce((a, b) => a * b, 1);
    this.byteLength = this.size * DTYPE_BYTES[dtype];
    this.#nd = nd;
    this.#live = live;
    this.#ptr = nd.alloc(this.byteLength);
    live.tensors++;
    live.bytes += this.byteLength;
    registry.register(this, { nd, ptr: this.#ptr, bytes: this.byteLength, live }, this);
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
    const r = this.#nd.read(this.ptr("read()"), this.byteLength);
    const buf = r instanceof ArrayBuffer ? await settleSoon(r) : await r;
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
    release({ nd: this.#nd, ptr, bytes: this.byteLength, live: this.#live });
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype} [${this.shape.join(", ")}] on ${this.device.name}${this.disposed ? ", disposed" : ""})`;
  }
}
