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
