import { native, type NativeDevice, type NativeInfo } from "./binding.js";
import { resolveDType, DTYPE_BYTES, type DType } from "./dtype.js";
import { envDevice, envIsa, envSimSeed, envSpinUs, envThreads } from "./env.js";
import { GlmKernelsError, describe } from "./errors.js";
import { Tensor, settleSoon, type LiveCount } from "./tensor.js";
import { checkShape } from "./validate.js";

export type DeviceKind = "cpu" | "cuda" | "cuda-sim" | "ascend";
const KINDS: readonly DeviceKind[] = ["cpu", "cuda", "cuda-sim", "ascend"];

export interface DeviceInfo {
  kind: DeviceKind;
  name: string;
  /** Bytes of device memory (CPU: physical RAM). */
  memory: number;
  /** CPU worker threads; accelerators: multiprocessors / AI cores. */
  threads: number;
  /** CPU: the instruction-set path in use. */
  isa?: string;
  capabilities: string[];
  build: { abi: number; compiler: string; package: string };
}

/** Device.memory(): like tfjs's tf.memory(). */
export interface MemoryInfo {
  /** Tensors of this device neither disposed nor collected yet. */
  liveTensors: number;
  /** Their bytes (shape x dtype size). */
  liveBytes: number;
  /** Freed device memory the device keeps for reuse (CPU: up to 64 MiB, returned after 1 s idle). */
  cachedBytes: number;
}

/**
 * Uploads of more than this many bytes leave the calling thread: the device copies the source in stream order
 * (dev.tensor() returns at once; `await dev.upload()` resolves once the copy is done). Smaller ones are
 * copied during the call.
 */
export const UPLOAD_DEFER_BYTES = 1 << 20;

/** An in-order stream on one device (SPEC 2). */
export class Device {
  readonly name: string;
  readonly kind: DeviceKind;
  readonly ordinal: number;
  /** @internal */
  readonly native: NativeDevice;
  readonly #live: LiveCount = { tensors: 0, bytes: 0 };

  /** @internal Use openDevice(). */
  constructor(kind: DeviceKind, ordinal: number) {
    this.kind = kind;
    this.ordinal = ordinal;
    this.name = kind === "cpu" || kind === "cuda-sim" ? kind : `${kind}:${ordinal}`;
    const b = native();
    this.native = new b.NativeDevice(kind, ordinal, envThreads(), envIsa(), envSimSeed(), envSpinUs());
  }

  info(): DeviceInfo {
    const i: NativeInfo = this.native.info();
    return {
      kind: this.kind,
      name: i.name,
      memory: i.memory,
      threads: i.threads,
      ...(i.isa ? { isa: i.isa } : {}),
      capabilities: i.capabilities ? i.capabilities.split(",") : [],
      build: { abi: i.abiVersion, compiler: i.build, package: PACKAGE_VERSION },
    };
  }

  /**
   * Copies host data onto the device; dtype is inferred from the array type unless given. Up to
   * UPLOAD_DEFER_BYTES (1 MiB) the data are copied before this returns. Bigger sources are copied by the
   * device in stream order, so that the call returns at once: keep the source unchanged until the copy is
   * done (`await dev.upload()` instead, or any later `await t.read()` / `await dev.sync()`); a write to it
   * before then may or may not show up in the tensor. The source is kept alive until the copy is done.
   */
  tensor(data: ArrayBufferView, shape: readonly number[], dtype?: DType): Tensor {
    const t = this.#make(data, shape, dtype);
    this.#upload(t, data)?.catch(() => {
      // a failed copy is reported by the next read() / sync(), as any other stream failure
    });
    return t;
  }

  /** Like tensor(), resolving once the copy is done: the source may be changed or reused from then on. */
  async upload(data: ArrayBufferView, shape: readonly number[], dtype?: DType): Promise<Tensor> {
    const t = this.#make(data, shape, dtype);
    try {
      await this.#upload(t, data);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  #make(data: ArrayBufferView, shape: readonly number[], dtype?: DType): Tensor {
    const dt = resolveDType(data, dtype);
    checkShape(shape, "shape");
    const size = shape.reduce((a, b) => a * b, 1);
    const length = data.byteLength / DTYPE_BYTES[dt];
    if (length !== size)
      throw new GlmKernelsError(
        "E_SHAPE",
        `Expected data of ${size} elements for shape [${shape.join(", ")}] but received ${describe(data)}`,
      );
    return new Tensor(this, this.native, this.#live, shape, dt);
  }

  #upload(t: Tensor, data: ArrayBufferView): Promise<ArrayBuffer> | undefined {
    try {
      return this.native.upload(t.ptr(), data, UPLOAD_DEFER_BYTES);
    } catch (e) {
      t.dispose();
      throw e;
    }
  }

  /** @internal An uninitialized tensor (op outputs). */
  empty(shape: readonly number[], dtype: DType): Tensor {
    return new Tensor(this, this.native, this.#live, shape, dtype);
  }

  /** Resolves when all work enqueued so far is done; rejects with the first failure since the last sync. */
  async sync(): Promise<void> {
    const r = this.native.sync();
    await (r instanceof ArrayBuffer ? settleSoon(r) : r);
  }

  /** What this device holds now: live tensors and their bytes, and the device's cache of freed memory. */
  memory(): MemoryInfo {
    const m = this.native.memory();
    return { liveTensors: this.#live.tensors, liveBytes: this.#live.bytes, cachedBytes: m.cachedBytes ?? 0 };
  }

  /** Returns the device's cached free memory to the system now (the CPU device also trims glibc's heap). */
  emptyCache(): void {
    this.native.emptyCache();
  }

  toString(): string {
    return `Device(${this.name})`;
  }
}

export const PACKAGE_VERSION = "0.1.0";

const opened = new Map<string, Device>();

function parseName(name: unknown): { kind: DeviceKind | "auto"; ordinal: number } {
  const m = typeof name === "string" ? /^(cpu|cuda-sim|cuda|ascend|auto)(?::(\d{1,4}))?$/.exec(name) : null;
  if (!m || (m[2] !== undefined && (m[1] === "auto" || m[1] === "cuda-sim" || (m[1] === "cpu" && m[2] !== "0"))))
    throw new GlmKernelsError(
      "E_ARG",
      `Expected a device name cpu, cpu:0, cuda, cuda:N, ascend, ascend:N, cuda-sim or auto for device but received ${describe(name)}`,
    );
  return { kind: m[1] as DeviceKind | "auto", ordinal: m[2] === undefined ? 0 : Number(m[2]) };
}

/**
 * Opens (once per process) and returns a device. An explicitly named device that cannot be opened throws
 * E_PLUGIN / E_DEVICE with the reason; `auto` tries ascend, then cuda, then cpu.
 */
export function openDevice(name: string): Device {
  const { kind, ordinal } = parseName(name);
  if (kind === "auto") {
    for (const k of ["ascend", "cuda"] as const) {
      try {
        return openDevice(k);
      } catch {
        // not available here: try the next one
      }
    }
    return openDevice("cpu");
  }
  const key = `${kind}:${ordinal}`;
  let dev = opened.get(key);
  if (!dev) {
    dev = new Device(kind, ordinal);
    opened.set(key, dev);
  }
  return dev;
}

/** GLM_KERNELS_DEVICE, else cpu. */
export function defaultDevice(): Device {
  return openDevice(envDevice());
}

export interface DeviceListing {
  kind: DeviceKind;
  /** Devices of this kind found (0 when unavailable). */
  count: number;
  available: boolean;
  /** Why it is not available (the loader's or driver's own words). */
  reason?: string;
}

/** Every device kind, probed by loading its plugin and asking its driver. */
export function listDevices(): DeviceListing[] {
  const b = native();
  return KINDS.map((kind) => {
    try {
      const count = b.NativeDevice.probe(kind);
      if (count > 0) return { kind, count, available: true };
      // No device: opening one says why in the driver's words (e.g. no NVIDIA driver).
      let reason = "no devices found";
      try {
        new b.NativeDevice(kind, 0, 1, "auto", 1n, 0);
      } catch (e) {
        reason = e instanceof Error ? e.message : String(e);
      }
      return { kind, count: 0, available: false, reason };
    } catch (e) {
      return { kind, count: 0, available: false, reason: e instanceof Error ? e.message : String(e) };
    }
  });
}
