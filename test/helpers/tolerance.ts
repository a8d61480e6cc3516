// The stated tolerance between devices for matmul and int4.matmul with bf16 x (SPEC 4: across devices within
// tolerance only; README "matmul"): a tensor-core device's bf16 y against the CPU device's,
//   |y_dev - y_cpu| <= 2^-8 max(|y_dev|, |y_cpu|) + K 2^-22 sum_k |x w|
// (a bf16 rounding flip on either side, plus both f32 accumulations: the CPU's 16 fma chains and tree, the
// mma's per-step sums) where sum_k |x w| < 2^127; bit for bit (infinities, NaN: canonical 0x7FC0) where a
// product is not finite (an infinite or NaN x or w); no promise where the finite products' sum_k |x w| reaches
// 2^127: whether a partial sum overflows f32 then depends on the order (one order's inf - inf is NaN where the
// other's is finite).
import { bf16ToF32 } from "../reference/int4-ref.js";

/** The first output of got (bf16 bits) outside the tolerance of want, or -1; mag[i] = sum_k |x w| of output i. */
export function firstOutOfTolerance(got: ArrayLike<number>, want: ArrayLike<number>, mag: ArrayLike<number>, k: number): number {
  if (got.length !== want.length) return 0;
  for (let i = 0; i < got.length; i++) {
    const a = bf16ToF32(got[i]), b = bf16ToF32(want[i]);
    if (Number.isFinite(mag[i]) && mag[i] >= 2 ** 127) continue;
    if (!Number.isFinite(mag[i]) || !Number.isFinite(a) || !Number.isFinite(b)) {
      if (got[i] !== want[i]) return i;
      continue;
    }
    if (Math.abs(a - b) > 2 ** -8 * Math.max(Math.abs(a), Math.abs(b)) + k * 2 ** -22 * mag[i]) return i;
  }
  return -1;
}

/** sum_k |x w| per output of x [m, k] times w [n, k]^T (values), in float64: NaN or inf where a product is not finite. */
export function magnitudes(x: ArrayLike<number>, w: ArrayLike<number>, m: number, n: number, k: number): Float64Array {
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let kk = 0; kk < k; kk++) s += Math.abs(x[i * k + kk] * w[j * k + kk]);
      mag[i * n + j] = s;
    }
  return mag;
}
