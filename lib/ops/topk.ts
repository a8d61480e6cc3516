// topk(scores, k = 2048, { lengths?, rowStarts? }) -> { indices, values }   (SPEC 3)
import { DTYPE_CODE } from "../dtype.js";
import { GlmKernelsError, describe, fail } from "../errors.js";
import { Tensor } from "../tensor.js";
import { checkInt, checkOptions, checkSameDevice, checkTensor } from "../validate.js";

export interface TopkOptions {
  /** Candidates per row (default cols - rowStarts[r]). Int32Array or i32 tensor [rows]. */
  lengths?: Int32Array | Tensor;
  /** First candidate column per row (default 0). Int32Array or i32 tensor [rows]. */
  rowStarts?: Int32Array | Tensor;
}

export interface TopkResult {
  /** i32 [rows, k]: positions relative to rowStarts[r]; -1 past a short row's length. */
  indices: Tensor;
  /** f32 [rows, k]: the selected scores widened to f32 (NaN canonical); -inf past a short row's length. */
  values: Tensor;
}

export function topk(scores: Tensor, k = 2048, options?: TopkOptions): TopkResult {
  checkTensor(scores, "scores", ["f32", "bf16", "f16"], 2);
  const [rows, cols] = scores.shape;
  if (cols < 1 || cols > 0x7fffffff)
    throw new GlmKernelsError("E_SHAPE", `Expected scores [rows, cols] with cols >= 1 but received [${rows}, ${cols}]`);
  checkInt(k, "k", 1, cols);
  const opts = checkOptions(options, "topk options", ["lengths", "rowStarts"]);
  const dev = scores.device;
  const temps: Tensor[] = [];
  const perRow = (name: "lengths" | "rowStarts", starts?: Int32Array): Tensor | null => {
    const v = opts[name];
    if (v === undefined || v === null) return null;
    if (v instanceof Tensor) {
      checkTensor(v, name, ["i32"], 1);
      checkSameDevice(v, dev, name);
      if (v.shape[0] !== rows) fail("E_SHAPE", name, `an i32 tensor of shape [${rows}]`, `[${v.shape.join(", ")}]`);
      return v;
    }
    if (!(v instanceof Int32Array)) fail("E_ARG", name, "an Int32Array or i32 tensor", v);
    if (v.length !== rows) fail("E_SHAPE", name, `an Int32Array of length ${rows}`, v);
    for (let r = 0; r < rows; r++) {
      const start = name === "lengths" ? (starts ? starts[r] : 0) : 0;
      if (v[r] < 0 || v[r] > cols - start)
        throw new GlmKernelsError(
          "E_ARG",
          `Expected ${name}[${r}] between 0 and ${cols - start} but received ${describe(v[r])}`,
        );
    }
    const t = dev.tensor(v, [rows], "i32");
    temps.push(t);
    return t;
  };
  const startsHost = opts.rowStarts instanceof Int32Array ? opts.rowStarts : undefined;
  const rowStarts = perRow("rowStarts");
  const lengths = perRow("lengths", startsHost);
  const indices = dev.empty([rows, k], "i32");
  const values = dev.empty([rows, k], "f32");
  try {
    if (rows > 0)
      dev.native.topk(
        scores.ptr("scores"),
        DTYPE_CODE[scores.dtype],
        rows,
        cols,
        k,
        lengths ? lengths.ptr("lengths") : null,
        rowStarts ? rowStarts.ptr("rowStarts") : null,
        indices.ptr(),
        values.ptr(),
      );
  } catch (e) {
    indices.dispose();
    values.dispose();
    throw e;
  } finally {
    for (const t of temps) t.dispose();
  }
  return { indices, values };
}
