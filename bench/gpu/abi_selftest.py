"""Self-test of glmk_abi.py's ctypes mirrors, without torch and without a GPU.

Runs every op the GPU scripts call (topk, int4 quantize / dequantize, matmul and int4.matmul, fp8 quantize /
dequantize, fp8.matmul, moe.route, moe.experts) through glmk_abi.Glmk on small inputs made by numpy, with
device memory from the ABI's own alloc / upload / download, and compares each result with a numpy model of
SPEC.md (bit for bit where the op promises bits: the quantizers, top-k, int4.matmul == matmul(fakeQuant);
else within the tests' bound). A wrong field order, type or padding in a mirror moves a pointer or a size
and shows here as a crash, an E_ARG or a wrong result. With a C compiler at hand it also compares every
struct's size and field offsets with the header's (offsetof).

  python3 bench/gpu/abi_selftest.py [LIB] [--size tiny|large] [--seed N]
LIB defaults to build-plugins/libglmk-cuda-sim.so (cuda-sim: the plugin's kernels on the SIMT emulator).
`--size large` (bench/gpu/acceptance.sh, also under compute-sanitizer, against libglmk-cuda.so) takes
shapes with partial tiles and the benchmarks' K = 6144. Exit status 0 when every check passed.
"""
import argparse
import ctypes as C
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import glmk_abi as A

F32 = np.float32


# Section: numpy models of the number formats (SPEC.md 4 and 5)

def bf16_bits(f):
    """f32 -> bf16 bits, round to nearest even; every NaN -> 0x7FC0."""
    f = np.asarray(f, F32)
    u = f.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(f), np.uint16(0x7FC0), r)


def bf16_f32(b):
    return (np.asarray(b, np.uint16).astype(np.uint32) << 16).view(F32)


def bf16_round(f):
    return bf16_f32(bf16_bits(f))


def _e4m3_values():
    c = np.arange(256)
    e, m = (c >> 3) & 0xF, c & 7
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7.0))
    v = np.where(c & 0x80, -v, v)
    v[(c & 0x7F) == 0x7F] = np.nan
    return v


E4M3 = _e4m3_values()  # code -> value (f64, exact)


def e4m3_encode(f):
    """f32 -> E4M3FN codes: nearest even, saturating to +-448 (inf too), NaN -> 0x7F, -0 -> 0x80 (SPEC 5)."""
    f = np.asarray(f, F32)
    a = np.abs(f).astype(np.float64)
    pos = E4M3[:0x7F]  # codes 0..0x7E, increasing
    hi = np.clip(np.searchsorted(pos, np.nan_to_num(a, posinf=1e9), side="left"), 0, 0x7E)
    lo = np.clip(hi - 1, 0, 0x7E)
    d_lo, d_hi = a - pos[lo], pos[hi] - a
    code = np.where(d_hi < d_lo, hi, np.where(d_lo < d_hi, lo, np.where(lo % 2 == 0, lo, hi)))
    code = np.where(a == pos[hi], hi, code)
    code = np.where(a >= 448, 0x7E, code)
    code = code | np.where(np.signbit(f), 0x80, 0)
    return np.where(np.isnan(f), 0x7F, code).astype(np.uint8)


def int4_quantize_ref(w, group, levels):
    """w f32 [n, k] -> (packed i32 [n, k/8], scales bf16 bits [n, k/group], codes [n, k])."""
    n, k = w.shape
    g = w.reshape(n, k // group, group)
    amax = np.abs(g).max(-1).astype(F32)
    s_bits = bf16_bits(amax / (F32(7.0) if levels == 15 else F32(7.5)))
    s = bf16_f32(s_bits)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.rint(g / s)
    q = np.where(s == 0, 0, np.clip(q, -7 if levels == 15 else -8, 7)).astype(np.int64).reshape(n, k)
    nib = (q + 8).astype(np.uint32).reshape(n, k // 8, 8)
    packed = np.zeros((n, k // 8), np.uint32)
    for i in range(8):
        packed |= nib[..., i] << np.uint32(4 * i)
    return packed.view(np.int32), s_bits, q


def int4_dequant_ref(q, s_bits, group):
    s = np.repeat(bf16_f32(s_bits), group, axis=1)
    return bf16_bits(q.astype(F32) * s)


def fp8_quantize_ref(w, bn, bk):
    """w f32 [b, n, k] -> (codes [b, n, k], scaleInv f32 [b, ceil(n/bn), ceil(k/bk)])."""
    b, n, k = w.shape
    nb, kb = -(-n // bn), -(-k // bk)
    si = np.zeros((b, nb, kb), F32)
    data = np.zeros((b, n, k), np.uint8)
    for i in range(nb):
        for j in range(kb):
            blk = w[:, i * bn:(i + 1) * bn, j * bk:(j + 1) * bk]
            s = (np.maximum(np.abs(blk).max(axis=(1, 2)).astype(F32), F32(1e-4)) / F32(448)).astype(F32)
            si[:, i, j] = s
            data[:, i * bn:(i + 1) * bn, j * bk:(j + 1) * bk] = e4m3_encode(blk / s[:, None, None])
    return data, si


def fp8_matmul_ref(x, data, si, bn):
    """SPEC 5 fp8.matmul in f32 with exact block dot products: (y f32 [m, n], sum of |terms| [m, n])."""
    m, k = x.shape
    n = data.shape[0]
    wv = E4M3[data]
    y = np.zeros((m, n), F32)
    tsum = np.zeros((m, n))
    for j in range(-(-k // 128)):
        xs = x[:, j * 128:(j + 1) * 128]
        sa = (np.maximum(np.abs(xs).max(1).astype(F32), F32(1e-4)) / F32(448)).astype(F32)
        a8 = E4M3[e4m3_encode(xs / sa[:, None])]
        wb = wv[:, j * 128:(j + 1) * 128]
        ws = si[np.arange(n) // bn, j].astype(F32)
        y = (y + ((a8 @ wb.T).astype(F32) * sa[:, None]).astype(F32) * ws[None, :]).astype(F32)
        tsum += (np.abs(a8) @ np.abs(wb).T) * sa[:, None] * ws[None, :]
    return y, tsum


def within(dev, ref, tsum, k):
    """The tests' bound: |dev - ref| <= 2^-8 max(|dev|, |ref|) + K 2^-22 sum |terms|; returns (ok, worst ratio)."""
    dev, ref = np.asarray(dev, np.float64), np.asarray(ref, np.float64)
    bound = 2.0 ** -8 * np.maximum(np.abs(dev), np.abs(ref)) + k * 2.0 ** -22 * tsum + 1e-30
    ratio = np.abs(dev - ref) / bound
    return bool(np.all(ratio <= 1) and np.all(np.isfinite(dev))), float(ratio.max())


def silu(x):
    x = np.asarray(x, F32)
    return (x / (F32(1) + np.exp(-x))).astype(F32)


# Section: the device side

class Mem:
    """Device buffers from the ABI (alloc / upload / download), freed at the end."""

    def __init__(self, dev):
        self.d, self.ptrs = dev, []

    def put(self, a):
        a = np.ascontiguousarray(a)
        p = self.d.alloc(max(a.nbytes, 1))
        self.ptrs.append(p)
        if a.nbytes:
            self.d.upload(p, a.ctypes.data, a.nbytes)
        return p

    def empty(self, nbytes):
        p = self.d.alloc(max(nbytes, 1))
        self.ptrs.append(p)
        return p

    def get(self, p, shape, dtype):
        out = np.empty(shape, dtype)
        if out.nbytes:
            self.d.download(out.ctypes.data, p, out.nbytes)
        self.d.sync()
        return out

    def free_all(self):
        for p in self.ptrs:
            self.d.free(p)
        self.ptrs = []
        self.d.sync()


class Report:
    def __init__(self):
        self.failures = 0

    def __call__(self, ok, what):
        self.failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)


def check_offsets(rep):
    """sizeof and offsetof of every mirrored struct against the header, compiled by the C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        print("skip struct offsets: no C compiler here (the op checks below still prove the mirrors)")
        return
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "glmk/device.h"', "int main(void) {"]
    for cname, st in A.STRUCTS.items():
        lines.append(f'  printf("{cname} sizeof %zu\\n", sizeof({cname}));')
        for f, _ in st._fields_:
            lines.append(f'  printf("{cname} {f} %zu\\n", offsetof({cname}, {f}));')
    lines.append("  return 0;\n}\n")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "offsets.c"), os.path.join(tmp, "offsets")
        open(src, "w").write("\n".join(lines))
        inc = os.path.join(os.path.dirname(A.HEADER), "..")
        r = subprocess.run([cc, "-std=c11", "-I", inc, src, "-o", exe], capture_output=True, text=True)
        if r.returncode != 0:
            rep(False, f"struct offsets: the header's offsetof program did not compile: {r.stderr.strip()[:400]}")
            return
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split("\n")
    bad, n = [], 0
    for line in filter(None, out):
        cname, f, v = line.split()
        st = A.STRUCTS[cname]
        mine = C.sizeof(st) if f == "sizeof" else getattr(st, f).offset
        n += 1
        if mine != int(v):
            bad.append(f"{cname}.{f}: header {v}, mirror {mine}")
    rep(not bad, f"struct offsets and sizes: {n - len(bad)}/{n} equal to device.h's (ABI {A.ABI_VERSION})"
        + ("" if not bad else ": " + "; ".join(bad)))


def check_topk(d, mem, rep, rng, rows, cols, k):
    x = rng.standard_normal((rows, cols)).astype(F32)
    x[:, ::7] = np.round(x[:, ::7])  # ties
    x[x == 0] = 0.5
    idx, val = mem.empty(rows * k * 4), mem.empty(rows * k * 4)
    d.call("topk", A.topk_args(mem.put(x), A.DT_F32, rows, cols, k, idx, val))
    got_i, got_v = mem.get(idx, (rows, k), np.int32), mem.get(val, (rows, k), F32)
    ref = np.argsort(-x, axis=1, kind="stable")[:, :k]
    rep(np.array_equal(got_i, ref) and np.array_equal(got_v, np.take_along_axis(x, ref, 1)),
        f"topk f32 {rows}x{cols} k{k}: indices and values == numpy's stable order")
    # windows: row_starts and lengths (a length below k pads with -1 / -inf)
    starts = rng.integers(0, cols // 4, rows).astype(np.int32)
    lens = np.minimum(rng.integers(k // 2, cols // 2, rows), cols - starts).astype(np.int32)
    lens[0] = k - 1
    d.call("topk", A.topk_args(mem.put(x), A.DT_F32, rows, cols, k, idx, val, lengths=mem.put(lens),
                               row_starts=mem.put(starts)))
    got_i, got_v = mem.get(idx, (rows, k), np.int32), mem.get(val, (rows, k), F32)
    ok = True
    for r in range(rows):
        w = x[r, starts[r]:starts[r] + lens[r]]
        o = np.argsort(-w, kind="stable")[:k]
        ri = np.full(k, -1, np.int32)
        rv = np.full(k, -np.inf, F32)
        ri[:len(o)], rv[:len(o)] = o, w[o]
        ok = ok and np.array_equal(got_i[r], ri) and np.array_equal(got_v[r], rv)
    rep(ok, f"topk f32 {rows}x{cols} k{k} with row_starts and lengths (one length k - 1): == numpy")


def check_int4_matmul(d, mem, rep, rng, m, n, k, group, levels, w_f32):
    w = (rng.standard_normal((n, k)) * 0.05).astype(F32)
    if not w_f32:
        w = bf16_round(w)
    x_bits = bf16_bits(rng.standard_normal((m, k)).astype(F32))
    packed, scales = mem.empty(n * k // 2), mem.empty(n * (k // group) * 2)
    wp = mem.put(w if w_f32 else bf16_bits(w))
    d.call("int4_quantize", A.int4_args(n, k, group, packed, scales, w=wp, w_dtype=A.DT_F32 if w_f32 else A.DT_BF16,
                                        levels=levels))
    rp, rs, q = int4_quantize_ref(w, group, levels)
    got_p, got_s = mem.get(packed, (n, k // 8), np.int32), mem.get(scales, (n, k // group), np.uint16)
    what = f"n{n} k{k} group {group} levels {levels}, w {'f32' if w_f32 else 'bf16'}"
    rep(np.array_equal(got_p, rp) and np.array_equal(got_s, rs), f"int4.quantize {what}: packed and scales == numpy bit for bit")
    deq = mem.empty(n * k * 2)
    d.call("int4_dequantize", A.int4_args(n, k, group, packed, scales, out=deq, out_dtype=A.DT_BF16, levels=levels))
    wd_bits = int4_dequant_ref(q, rs, group)
    rep(np.array_equal(mem.get(deq, (n, k), np.uint16), wd_bits), f"int4.dequantize {what}: == bf16(q s) bit for bit")
    # int4.matmul, and matmul on the dequantized (fakeQuant) weights: SPEC 4's identity, bit for bit
    xp, y4, yd = mem.put(x_bits), mem.empty(m * n * 2), mem.empty(m * n * 2)
    d.call("matmul", A.matmul_args(xp, m, n, k, y4, w_dtype=A.DT_W_INT4, packed=packed, scales=scales, group_size=group))
    d.call("matmul", A.matmul_args(xp, m, n, k, yd, w=deq, w_dtype=A.DT_BF16))
    g4, gd = mem.get(y4, (m, n), np.uint16), mem.get(yd, (m, n), np.uint16)
    xf, wf = bf16_f32(x_bits).astype(np.float64), bf16_f32(wd_bits).astype(np.float64)
    ok, worst = within(bf16_f32(g4), xf @ wf.T, np.abs(xf) @ np.abs(wf).T, k)
    rep(ok, f"int4.matmul m{m} {what}: within the bound of x @ dequant(w)^T (worst {worst:.3f} of it)")
    rep(np.array_equal(g4, gd), f"matmul m{m} bf16 x, bf16 w = dequantize(q): == int4.matmul bit for bit")


def check_fp8(d, mem, rep, rng, m, n, k, block_n, batch=2):
    w = (rng.standard_normal((batch, n, k)) * 0.05).astype(F32)
    w[0, 0, :4] = [0.0, -0.0, 1e-9, -3.0]
    nb, kb = -(-n // block_n), -(-k // 128)
    data, si = mem.empty(batch * n * k), mem.empty(batch * nb * kb * 4)
    d.call("fp8_quantize", A.fp8_args(batch, n, k, data, si, w=mem.put(w), w_dtype=A.DT_F32, block=(block_n, 128)))
    rd, rsi = fp8_quantize_ref(w, block_n, 128)
    got_d, got_si = mem.get(data, (batch, n, k), np.uint8), mem.get(si, (batch, nb, kb), F32)
    what = f"[{batch}, {n}, {k}] blocks [{block_n}, 128]"
    rep(np.array_equal(got_d, rd) and np.array_equal(got_si.view(np.uint32), rsi.view(np.uint32)),
        f"fp8.quantize {what}: data and scaleInv == numpy bit for bit")
    out = mem.empty(batch * n * k * 2)
    d.call("fp8_dequantize", A.fp8_args(batch, n, k, data, si, out=out, out_dtype=A.DT_BF16, block=(block_n, 128)))
    full = np.repeat(np.repeat(rsi, block_n, 1)[:, :n], 128, 2)[:, :, :k]
    rep(np.array_equal(mem.get(out, (batch, n, k), np.uint16), bf16_bits((E4M3[rd] * full).astype(F32))),
        f"fp8.dequantize {what}: == bf16(f32(data) scaleInv) bit for bit")
    # fp8.matmul on the last matrix of the stack (with batch 2: pointers into the middle of the buffers)
    x_bits = bf16_bits(rng.standard_normal((m, k)).astype(F32))
    y = mem.empty(m * n * 4)
    w1, s1 = data + (batch - 1) * n * k, si + (batch - 1) * nb * kb * 4
    ref, tsum = fp8_matmul_ref(bf16_f32(x_bits), rd[-1], rsi[-1], block_n)
    for y_dtype, name in ((A.DT_BF16, "bf16"), (A.DT_F32, "f32")):
        d.call("fp8_matmul", A.fp8_matmul_args(mem.put(x_bits), m, n, k, w1, s1, y, block_n=block_n, y_dtype=y_dtype))
        got = bf16_f32(mem.get(y, (m, n), np.uint16)) if y_dtype == A.DT_BF16 else mem.get(y, (m, n), F32)
        ok, worst = within(got, ref, tsum, k)
        rep(ok, f"fp8.matmul m{m} n{n} k{k} block_n {block_n}, y {name}: within the bound of SPEC 5's model (worst {worst:.3f})")


def check_moe(d, mem, rep, rng, t, h, i, e, top_k, shared_i):
    def stack(n, k, count):
        w = (rng.standard_normal((count, n, k)) * 0.05).astype(F32)
        data, si = fp8_quantize_ref(w, 128, 128)
        return (mem.put(data), mem.put(si), 128), data, si
    gate, gd, gs = stack(i, h, e)
    up, ud, us = stack(i, h, e)
    down, dd, ds = stack(h, i, e)
    shared = None
    if shared_i:
        sg, sgd, sgs = stack(shared_i, h, 1)
        su, sud, sus = stack(shared_i, h, 1)
        sd, sdd, sds = stack(h, shared_i, 1)
        shared = (sg, su, sd)
    hidden = bf16_bits(rng.standard_normal((t, h)).astype(F32))
    ids = np.stack([rng.permutation(e)[:top_k] for _ in range(t)]).astype(np.int32)
    ids[0, -1] = -1  # an unused slot adds nothing
    wts = (rng.random((t, top_k)) + 0.1).astype(F32)
    out = mem.empty(t * h * 2)
    d.call("moe_experts", A.moe_experts_args(mem.put(hidden), t, h, i, e, top_k, mem.put(ids), mem.put(wts), gate, up, down,
                                             out, shared_i=shared_i, shared=shared))
    got = bf16_f32(mem.get(out, (t, h), np.uint16))

    def swiglu(x, g_d, g_s, u_d, u_s, d_d, d_s):
        g = bf16_round(fp8_matmul_ref(x, g_d, g_s, 128)[0])
        u = bf16_round(fp8_matmul_ref(x, u_d, u_s, 128)[0])
        hh = bf16_round(silu(g) * u)
        return bf16_round(fp8_matmul_ref(hh, d_d, d_s, 128)[0])
    xf = bf16_f32(hidden)
    ref = np.zeros((t, h), F32)
    for tt in range(t):
        for j in range(top_k):
            x = ids[tt, j]
            if x >= 0:
                ref[tt] = (ref[tt] + wts[tt, j] * swiglu(xf[tt:tt + 1], gd[x], gs[x], ud[x], us[x], dd[x], ds[x])[0]).astype(F32)
        if shared_i:
            ref[tt] = (ref[tt] + swiglu(xf[tt:tt + 1], sgd[0], sgs[0], sud[0], sus[0], sdd[0], sds[0])[0]).astype(F32)
    ref = bf16_round(ref)
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    rep(err <= 1 / 16 and np.all(np.isfinite(got)),
        f"moe.experts t{t} h{h} i{i} e{e} top{top_k} shared_i {shared_i} (one id -1): max |dev - model| = {err:.4f} of "
        "max |model| (<= 1/16; bf16 and e4m3 roundings of h may flip, a wrong layout gives ~1)")


def check_route(d, mem, rep, rng, t, h, e, top_k):
    hidden = bf16_bits(rng.standard_normal((t, h)).astype(F32))
    gate = bf16_bits((rng.standard_normal((e, h)) * 0.1).astype(F32))
    bias = (rng.standard_normal(e) * 0.01).astype(F32)
    ids, wts = mem.empty(t * top_k * 4), mem.empty(t * top_k * 4)
    a = A.MoeRouteArgs(mem.put(hidden), mem.put(gate), A.DT_BF16, A.DT_BF16, mem.put(bias), t, h, e, top_k, 1, 1, 1, 2.5, 0,
                       ids, wts)
    d.call("moe_route", a)
    gi, gw = mem.get(ids, (t, top_k), np.int32), mem.get(wts, (t, top_k), F32)
    logits = bf16_f32(hidden).astype(np.float64) @ bf16_f32(gate).astype(np.float64).T
    p = 1 / (1 + np.exp(-logits))
    ri = np.argsort(-(p + bias), axis=1, kind="stable")[:, :top_k]
    pw = np.take_along_axis(p, ri, 1)
    rw = pw / (pw.sum(1, keepdims=True) + 1e-20) * 2.5
    rep(np.array_equal(gi, ri) and np.allclose(gw, rw, rtol=1e-5, atol=0),
        f"moe.route t{t} h{h} e{e} top{top_k} (bias, normTopkProb, scaling 2.5): ids == numpy, weights within 1e-5")


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lib", nargs="?", default=os.path.join(here, "../../build-plugins/libglmk-cuda-sim.so"))
    ap.add_argument("--size", choices=["tiny", "large"], default="tiny")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rep = Report()
    t0 = time.time()
    check_offsets(rep)
    d = A.Glmk(args.lib, sim_seed=args.seed)
    info = d.info()
    print(f"device: {info['kind']} ({info['name']}), {args.lib}, ABI {A.ABI_VERSION}, size {args.size}, seed {args.seed}", flush=True)
    mem, rng = Mem(d), np.random.default_rng(args.seed)
    large = args.size == "large"
    check_topk(d, mem, rep, rng, *((4, 5000, 100) if large else (3, 50, 7)))
    for group, levels, w_f32 in ((32, 15, False), (128, 16, True)):
        check_int4_matmul(d, mem, rep, rng, *((17, 200, 6144) if large else (3, 72, 256)), group, levels, w_f32)
    for block_n in (128, 1):
        check_fp8(d, mem, rep, rng, *((17, 300, 6144) if large else (3, 160, 256)), block_n)
    if large:
        check_fp8(d, mem, rep, rng, 5, 130, 1000, 128, batch=1)
    check_route(d, mem, rep, rng, *((9, 2048, 64, 8) if large else (3, 256, 8, 2)))
    for shared_i in (0, 256 if large else 128):
        check_moe(d, mem, rep, rng, *((9, 2048, 768, 6, 4) if large else (3, 256, 128, 4, 2)), shared_i)
    mem.free_all()
    d.close()
    print(f"abi_selftest: {'passed' if rep.failures == 0 else f'{rep.failures} check(s) FAILED'} ({time.time() - t0:.1f} s)")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
