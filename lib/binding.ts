// The raw native module, typed in one place: the only untyped seam.
import loadBinding from "./load-binding.cjs";
import { GlmKernelsError } from "./errors.js";

export interface NativeInfo {
  kind: string;
  name: string;
  isa: string;
  build: string;
  capabilities: string;
  memory: number;
  threads: number;
  ordinal: number;
  abiVersion: number;
}

export interface NativeDevice {
  info(): NativeInfo;
  /** Also reports the bytes to V8 as external memory. */
  alloc(bytes: number): bigint;
  /** bytes: as given to alloc. */
  free(ptr: bigint, bytes: number): void;
  /** A promise when the device reads the source later, in stream order (sizes above deferFrom). */
  upload(ptr: bigint, data: ArrayBufferView, deferFrom: number): Promise<ArrayBuffer> | undefined;
  /** An ArrayBuffer at once when the device already got there. */
  read(ptr: bigint, bytes: number): Promise<ArrayBuffer> | ArrayBuffer;
  readSync(ptr: bigint, bytes: number): ArrayBuffer;
  sync(): Promise<ArrayBuffer> | ArrayBuffer;
  memory(): { liveBytes?: number; cachedBytes?: number };
  int4(
    op: "quantize" | "dequantize" | "fakeQuantGrad",
    w: bigint | null,
    wDtype: number,
    levels: number,
    n: number,
    k: number,
    groupSize: number,
    packed: bigint | null,
    scales: bigint | null,
    out: bigint | null,
    outDtype: number,
    clip: boolean,
    grad: bigint | null,
  ): void;
  fp8(
    op: "quantize" | "dequantize",
    w: bigint | null,
    wDtype: number,
    outDtype: number,
    batch: number,
    n: number,
    k: number,
    blockN: number,
    blockK: number,
    data: bigint,
    scaleInv: bigint,
    out: bigint | null,
  ): void;
  fp8Matmul(x: bigint, m: number, k: number, data: bigint, scaleInv: bigint, blockN: number, n: number, y: bigint, yDtype: number): void;
  moeRoute(
    hidden: bigint,
    hiddenDtype: number,
    gate: bigint,
    gateDtype: number,
    bias: bigint | null,
    t: number,
    h: number,
    e: number,
    topK: number,
    nGroup: number,
    topkGroup: number,
    norm: boolean,
    scaling: number,
    ids: bigint,
    weights: bigint,
  ): void;
  /** stacks: (data, scaleInv, blockN) for gate, up, down, then the shared expert's three when sharedI > 0. */
  moeExperts(
    hidden: bigint,
    t: number,
    h: number,
    i: number,
    e: number,
    topK: number,
    ids: bigint,
    weights: bigint,
    stacks: (bigint | number)[],
    sharedI: number,
    out: bigint,
  ): void;
  matmul(
    x: bigint,
    xDtype: number,
    m: number,
    k: number,
    w: bigint | null,
    wDtype: number,
    n: number,
    packed: bigint | null,
    scales: bigint | null,
    groupSize: number,
    y: bigint,
  ): void;
  emptyCache(): void;
  syncNow(): void;
  topk(
    scores: bigint,
    dtype: number,
    rows: number,
    cols: number,
    k: number,
    lengths: bigint | null,
    rowStarts: bigint | null,
    indices: bigint,
    values: bigint,
  ): void;
}

export interface NativeBinding {
  abiVersion: number;
  setErrorClass(cls: typeof GlmKernelsError): void;
  pluginDirs(): string[];
  measureBandwidth(megabytes: number, threads: number, repeats: number): { readGBs: number; copyGBs: number };
  readPass(buffer: ArrayBuffer | ArrayBufferView, threads: number): number;
  /** the core clock from a chain of dependent additions on this thread (NaN off x86-64) */
  measureClockGHz?(): number;
  NativeDevice: {
    new (kind: string, ordinal: number, threads: number, isa: string, seed: bigint, spinUs: number): NativeDevice;
    probe(kind: string): number;
  };
}

let cached: NativeBinding | null = null;

/** The installed package's root folder (where package.json, prebuilds/ and test/determinism/ live). */
export function packageRoot(): string {
  return loadBinding.root();
}

/** The addon, loaded on first use; a missing or unloadable binary is an E_PLUGIN that says how to build one. */
export function native(): NativeBinding {
  if (cached) return cached;
  const { binding, root, error } = loadBinding();
  if (!binding) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new GlmKernelsError(
      "E_PLUGIN",
      `glm-kernels: no prebuilt binary for ${process.platform}-${process.arch} (node ${process.versions.node}, ` +
        `N-API ${process.versions.napi}) could be loaded from ${root} (${why}). Build one from source (needs python3, ` +
        `make and a C++17 compiler): \`npm install-scripts approve glm-kernels && npm rebuild glm-kernels\`, or ` +
        `\`cd node_modules/glm-kernels && npx node-gyp rebuild\`.`,
    );
  }
  cached = binding as NativeBinding;
  cached.setErrorClass(GlmKernelsError);
  return cached;
}
