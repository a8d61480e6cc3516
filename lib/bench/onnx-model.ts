// A one-node ONNX model (TopK) encoded by hand: just enough protobuf to build the peer's graph in code.

function varint(n: bigint): number[] {
  let v = BigInt.asUintN(64, n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const key = (field: number, wire: number) => varint(BigInt((field << 3) | wire));
const int = (field: number, v: number | bigint) => [...key(field, 0), ...varint(BigInt(v))];
const bytes = (field: number, b: number[]) => [...key(field, 2), ...varint(BigInt(b.length)), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s, "utf8")]);

const ONNX_FLOAT = 1;
const ONNX_INT64 = 7;

function valueInfo(name: string, elemType: number, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  const tensorType = [...int(1, elemType), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

const attrInt = (name: string, v: number) => [...str(1, name), ...int(3, v), ...int(20, 2)];

/** TopK(X [rows, cols] f32, K = k) -> (V f32 [rows, k], I i64 [rows, k]), opset 13, largest, sorted. */
export function topkModel(rows: number, cols: number, k: number): Uint8Array {
  const node = [
    ...str(1, "X"),
    ...str(1, "K"),
    ...str(2, "V"),
    ...str(2, "I"),
    ...str(3, "topk"),
    ...str(4, "TopK"),
    ...bytes(5, attrInt("axis", -1)),
    ...bytes(5, attrInt("largest", 1)),
    ...bytes(5, attrInt("sorted", 1)),
  ];
  const kData = new Uint8Array(new BigInt64Array([BigInt(k)]).buffer);
  const kInit = [...int(1, 1), ...int(2, ONNX_INT64), ...str(8, "K"), ...bytes(9, [...kData])];
  const graph = [
    ...bytes(1, node),
    ...str(2, "g"),
    ...bytes(5, kInit),
    ...bytes(11, valueInfo("X", ONNX_FLOAT, [rows, cols])),
    ...bytes(12, valueInfo("V", ONNX_FLOAT, [rows, k])),
    ...bytes(12, valueInfo("I", ONNX_INT64, [rows, k])),
  ];
  const model = [...int(1, 8), ...bytes(8, [...str(1, ""), ...int(2, 13)]), ...bytes(7, graph)];
  return Uint8Array.from(model);
}

// Section: MatMulNBits (com.microsoft), built from Buffers: its weight initializer is tens of MB.
const cat = (...parts: Array<Uint8Array | number[]>) => Buffer.concat(parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p))));
const lenDelim = (field: number, body: Uint8Array) => cat(key(field, 2), varint(BigInt(body.length)), body);
const ONNX_UINT8 = 2;

function initializer(name: string, dataType: number, dims: number[], raw: Uint8Array): Buffer {
  return cat(...dims.map((d) => int(1, d)), int(2, dataType), str(8, name), lenDelim(9, raw));
}

/**
 * Y [M, N] f32 = MatMulNBits(A [M, K] f32, B u8 [N, K/bs, bs/2], scales f32 [N * K/bs]) with 4-bit codes and
 * the default zero point 8: the same bytes as SPEC 4's packed weights (onnxruntime's contrib op, opset 1).
 */
export function matmulNBitsModel(m: number, n: number, k: number, blockSize: number, packed: Uint8Array, scales: Float32Array): Uint8Array {
  const node = cat(
    str(1, "A"),
    str(1, "B"),
    str(1, "scales"),
    str(2, "Y"),
    str(3, "mm"),
    str(4, "MatMulNBits"),
    str(7, "com.microsoft"),
    bytes(5, attrInt("K", k)),
    bytes(5, attrInt("N", n)),
    bytes(5, attrInt("bits", 4)),
    bytes(5, attrInt("block_size", blockSize)),
  );
  const graph = cat(
    lenDelim(1, node),
    str(2, "g"),
    lenDelim(5, initializer("B", ONNX_UINT8, [n, k / blockSize, blockSize / 2], packed)),
    lenDelim(5, initializer("scales", ONNX_FLOAT, [n * (k / blockSize)], new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength))),
    bytes(11, valueInfo("A", ONNX_FLOAT, [m, k])),
    bytes(12, valueInfo("Y", ONNX_FLOAT, [m, n])),
  );
  return cat(int(1, 8), bytes(8, [...str(1, ""), ...int(2, 13)]), bytes(8, [...str(1, "com.microsoft"), ...int(2, 1)]), lenDelim(7, graph));
}

/** Y [M, N] f32 = MatMul(A [M, K] f32, B [K, N] f32 initializer): B is w [N, K] (f32, row-major) transposed. */
export function matmulModel(m: number, n: number, k: number, w: Float32Array): Uint8Array {
  const bt = new Float32Array(k * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) bt[c * n + r] = w[r * k + c];
  const node = cat(str(1, "A"), str(1, "B"), str(2, "Y"), str(3, "mm"), str(4, "MatMul"));
  const graph = cat(
    lenDelim(1, node),
    str(2, "g"),
    lenDelim(5, initializer("B", ONNX_FLOAT, [k, n], new Uint8Array(bt.buffer))),
    bytes(11, valueInfo("A", ONNX_FLOAT, [m, k])),
    bytes(12, valueInfo("Y", ONNX_FLOAT, [m, n])),
  );
  return cat(int(1, 8), bytes(8, [...str(1, ""), ...int(2, 13)]), lenDelim(7, graph));
}
