// matmul(x, w) and int4.matmul(x, q) (SPEC 4): y = x w^T, f32 accumulation in one written-down order
// (devices/cpu/gemm.hpp), output in x's dtype. int4.matmul(x, int4.quantize(w)) == matmul(x, int4.fakeQuant(w)).
import { DTYPE_CODE } from "../dtype.js";
import { fail } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { checkSameDevice, checkTensor } from "../validate.js";
import { checkInt4Weights, type Int4Weights } from "./int4.js";

const W_INT4 = 100; // GLMK_W_INT4

function checkX(x: Tensor, k: number): void {
  checkTensor(x, "x", ["bf16", "f16", "f32"], 2);
  if (x.shape[1] !== k) fail("E_SHAPE", "x", `[M, ${k}] (K of the weights)`, `[${x.shape.join(", ")}]`);
}

/** x [M, K] (bf16 | f16 | f32) times w [N, K] (bf16 | f16 | f32) transposed -> [M, N] in x's dtype. */
export function matmul(x: Tensor, w: Tensor): Tensor {
  checkTensor(w, "w", ["bf16", "f16", "f32"], 2);
  const [n, k] = w.shape;
  checkX(x, k);
  checkSameDevice(w, x.device, "w");
  const m = x.shape[0];
  const y = x.device.empty([m, n], x.dtype);
  try {
    x.device.native.matmul(x.ptr("x"), DTYPE_CODE[x.dtype], m, k, w.ptr("w"), DTYPE_CODE[w.dtype], n, null, null, 0, y.ptr());
  } catch (e) {
    y.dispose();
    throw e;
  }
  return y;
}

/** x [M, K] times int4 weights [N, K] (what int4.quantize or int4.load returns) -> [M, N] in x's dtype. */
export function int4Matmul(x: Tensor, q: Int4Weights): Tensor {
  const w = checkInt4Weights(q, "q");
  const [n, k] = w.shape;
  checkX(x, k);
  checkSameDevice(w.packed, x.device, "q.packed");
  const m = x.shape[0];
  const y = x.device.empty([m, n], x.dtype);
  try {
    x.device.native.matmul(x.ptr("x"), DTYPE_CODE[x.dtype], m, k, null, W_INT4, n, w.packed.ptr("q.packed"), w.scales.ptr("q.scales"), w.groupSize, y.ptr());
  } catch (e) {
    y.dispose();
    throw e;
  }
  return y;
}
