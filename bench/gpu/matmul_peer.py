"""int4.matmul, fp8.matmul and moe.experts beside torch on the GPU machine (issue 21 item 4; bench/gpu/acceptance.sh).

Calls libglmk-cuda.so through its C device ABI (glmk_abi.py, the ctypes mirror shared with torch_peer.py) on
tensors torch allocated (the same CUDA context), and times ours and the peers the same way: back-to-back
calls over rotating copies of the weights (at least 256 MB, so the L2 is cold; MoE rotates 4 routings over
weights of 2.4-9.7 GB), one synchronize, median of --rounds such rounds, wall clock per call (a kernel
shorter than the host's launch cost reads as that cost: the "launch floor" line says how much that is).
  int4.matmul (SPEC 4 weights from our own int4_quantize, levels 15) vs torch._weight_int4pack_mm (tinygemm,
    the same codes and scales, zero 0) and bf16 x @ w.t() (cuBLAS, w = our int4_dequantize), plus our
    bf16 matmul; M = 1, 16, 64, 256; N x K = 6144 x 6144, 24576 x 6144; group 32 and 128.
  fp8.matmul ([128, 128] weight blocks from our fp8_quantize) vs torch._scaled_mm with DeepSeek block scales
    (1x128 activations quantized in torch with SPEC 5's formula, 128x128 weights: the same numbers as ours;
    timed with and without that quantization), falling back to M padded to 16, then to row-wise scales; and
    bf16 x @ w.t().
  moe.experts at GLM-5 shapes (H 6144, I 2048, top-8, 64 and 256 experts, T = 1, 8, 32, 128; seeded random
    routing; shared expert OFF) vs torch._scaled_grouped_mm (fp8 e4m3, row-wise scales, gate and up fused:
    sort, quantize, gate+up, SwiGLU, quantize, down, weighted combine with index_add_: all of it timed), a
    bf16 loop of per-expert matmuls (one host sync per call for the counts, as an eager MoE needs), and
    torch._grouped_mm in bf16. The weights are the same numbers for every peer (e4m3 codes with one scale per
    128 rows, constant along K, so a row-wise scale represents them exactly).
Every row also checks that the peers compute the same product as ours (within the tests' bound where the
inputs are the same numbers; for moe.experts a relative error against the bf16 loop, since the peers quantize
differently). A peer that fails on
this torch prints `peer <name> unavailable: <exception>` and the run goes on. Then the targets of issue 21
as PASS / MISS lines: int4 at M <= 16 at least 3x bf16; moe.experts at decode (T = 1, 8) at least the
grouped fp8 peer. Exit status 1 when one of our ops fails or a check finds a different product; a MISS
alone does not fail.

  python3 bench/gpu/matmul_peer.py path/to/libglmk-cuda.so [--quick] [--only int4,fp8,moe] [--rounds N]
  python3 bench/gpu/matmul_peer.py --selftest [path/to/libglmk-cuda-sim.so] [--size tiny|large]
  python3 bench/gpu/matmul_peer.py --dry-run [path/to/libglmk-cuda-sim.so]
--selftest runs abi_selftest.py (no torch, no GPU needed): every op through the same ctypes mirrors against
numpy models of SPEC.md, so the mirrors are proven before they meet a GPU. --dry-run runs this script's own
paths with torch on the CPU and cuda-sim (whose device pointers are host memory) on tiny shapes: the
CUDA-only peers say unavailable, the timings mean nothing, the checks and the table are real.
"""
import argparse
import math
import os
import statistics
import sys
import time

import glmk_abi as A

torch = None  # imported in main() (the self-test needs no torch)
DEV = "cuda"  # "cpu" with --dry-run
MB = 1 << 20
PEAKS = {"H200": (4.8e12, 989e12, 1979e12), "H100": (3.35e12, 989e12, 1979e12)}  # HBM B/s, dense bf16, fp8 FLOP/s


def tsync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def empty_cache():
    if DEV == "cuda":
        torch.cuda.empty_cache()


class Bench:
    def __init__(self, g, rounds, failures=0):
        self.g, self.rounds, self.failures, self.targets = g, rounds, failures, []
        name = torch.cuda.get_device_name() if DEV == "cuda" else "cpu (--dry-run)"
        key = next((k for k in PEAKS if k in name), "H200")
        self.hbm, self.bf16_peak, self.fp8_peak = PEAKS[key]
        self.peak_name = key if key in name else f"H200 (assumed: {name} is not in the table)"
        self.device_name = name

    def sync_all(self):
        tsync()
        self.g.sync()

    def wall_us(self, fns, ours):
        """Median over rounds of (back-to-back calls of every fn, then one sync) / calls, in microseconds."""
        sync = self.g.sync if ours else tsync
        fns[0]()
        self.sync_all()
        per = []
        for _ in range(self.rounds):
            self.sync_all()
            t0 = time.perf_counter()
            for f in fns:
                f()
            sync()
            per.append((time.perf_counter() - t0) / len(fns) * 1e6)
        return statistics.median(per)

    def peer(self, name, build_and_time):
        """build_and_time() -> result; any exception: `peer <name> unavailable: ...` and None."""
        try:
            return build_and_time()
        except Exception as e:  # noqa: BLE001 - a peer that this torch lacks must not stop the run
            msg = " ".join(str(e).split())
            print(f"peer {name} unavailable: {type(e).__name__}: {msg[:600]}", flush=True)
            try:
                tsync()
            except Exception:  # noqa: BLE001
                pass
            return None

    def target(self, ok, line):
        self.targets.append(f"{'PASS' if ok else 'MISS'} {line}")

    def launch_floor(self):
        x = torch.randn(1, 64, device=DEV, dtype=torch.bfloat16)
        w = torch.randn(64, 64, device=DEV, dtype=torch.bfloat16)
        y = torch.empty(1, 64, device=DEV, dtype=torch.bfloat16)
        ours = [self.g.prepare("matmul", A.matmul_args(x.data_ptr(), 1, 64, 64, y.data_ptr(), w=w.data_ptr()))] * 200
        theirs = [lambda: x @ w.t()] * 200
        print(f"launch floor (a 1 x 64 x 64 bf16 matmul, back-to-back): ours {self.wall_us(ours, True):.1f} us, "
              f"torch {self.wall_us(theirs, False):.1f} us per call; rows near these are host-bound, not GPU-bound")


# Section: checks

def within(a, b, tsum, k):
    """Outputs outside |a - b| <= 2^-7 max(|a|, |b|) + 2 K 2^-22 tsum: a and b products of the same numbers,
    each rounded once to bf16 (or b in f32) after an f32 sum (the tests' bound, on both sides); returns
    (count, worst ratio to the bound)."""
    a, b = a.float(), b.float()
    r = (a - b).abs() / (2.0 ** -7 * torch.maximum(a.abs(), b.abs()) + 2 * k * 2.0 ** -22 * tsum + 1e-30)
    return int((r > 1).sum()) + int((~torch.isfinite(a)).sum()), float(r.nan_to_num(1e9).max())


def rel_err(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-30))


def fmt(v, spec="9.1f", none="-"):
    return format(v, spec) if v is not None else f"{none:>{int(spec.split('.')[0])}}"


def ratio(a, b):
    return f"{a / b:6.2f}x" if a is not None and b is not None else f"{'-':>7}"


def copies_for(nbytes):
    return max(2, math.ceil(256 * MB / max(nbytes, 1)))


# Section: int4.matmul

def int4_weights(g, n, k, group):
    w = torch.randn(n, k, device=DEV, dtype=torch.bfloat16) * 0.02
    packed = torch.empty(n, k // 8, device=DEV, dtype=torch.int32)
    scales = torch.empty(n, k // group, device=DEV, dtype=torch.bfloat16)
    deq = torch.empty(n, k, device=DEV, dtype=torch.bfloat16)
    tsync()
    g.call("int4_quantize", A.int4_args(n, k, group, packed.data_ptr(), scales.data_ptr(), w=w.data_ptr(), levels=15))
    g.call("int4_dequantize", A.int4_args(n, k, group, packed.data_ptr(), scales.data_ptr(), out=deq.data_ptr(), levels=15))
    g.sync()
    return packed, scales, deq


def tinygemm_weights(packed, scales, n, k, inner_k_tiles=8):
    # torch 2.11 CUDA (aten/src/ATen/native/cuda/int4mm.cu): _convert_weight_to_int4pack(uint8 [N, K/2],
    # innerKTiles) with element 2j in the HIGH nibble of byte j (ours: low), codes u = q + 8 as ours; the
    # kernel dequantizes (u - 8) * scale + zero by one bf16 fma: with zero 0 that is bf16(q s), ours exactly.
    b = packed.view(torch.uint8).view(n, k // 2)
    b = (((b & 0x0F) << 4) | (b >> 4)).contiguous()
    w = torch._convert_weight_to_int4pack(b, inner_k_tiles)
    sz = torch.stack([scales, torch.zeros_like(scales)], dim=-1).transpose(0, 1).contiguous()  # [K/group, N, 2]
    return w, sz


def bench_int4(b, shapes, ms, groups):
    g = b.g
    for n, k in shapes:
        for group in groups:
            packed, scales, deq = int4_weights(g, n, k, group)
            w_bytes = n * k // 2 + n * (k // group) * 2
            ours_w = [(packed, scales)] + [(packed.clone(), scales.clone()) for _ in range(copies_for(w_bytes) - 1)]
            bf16_w = [deq] + [deq.clone() for _ in range(copies_for(n * k * 2) - 1)]
            tg = b.peer("torch._weight_int4pack_mm", lambda: [tinygemm_weights(p, s, n, k) for p, s in ours_w])
            print(f"\n== int4.matmul {n} x {k}, group {group}: ours vs torch._weight_int4pack_mm (tinygemm), bf16 x @ w.t() "
                  f"(cuBLAS) and our bf16 matmul; cold L2, us per call; GB/s of int4 weights and scales ({w_bytes / 1e6:.1f} MB)")
            print(f"{'M':>4} | {'ours int4':>9} {'tinygemm':>9} {'torch bf16':>10} {'ours bf16':>9} | {'x tinyg':>7} "
                  f"{'x t.bf16':>8} {'x o.bf16':>8} | {'GB/s':>6} {'%HBM':>5} {'TFLOP/s':>7} {'%bf16':>6} | "
                  f"{'cuBLAS GB/s':>11} | check")
            for m in ms:
                x = torch.randn(m, k, device=DEV, dtype=torch.bfloat16)
                y4 = torch.empty(m, n, device=DEV, dtype=torch.bfloat16)
                yb = torch.empty(m, n, device=DEV, dtype=torch.bfloat16)
                a4 = [A.matmul_args(x.data_ptr(), m, n, k, y4.data_ptr(), w_dtype=A.DT_W_INT4, packed=p.data_ptr(),
                                    scales=s.data_ptr(), group_size=group) for p, s in ours_w]
                ab = [A.matmul_args(x.data_ptr(), m, n, k, yb.data_ptr(), w=w.data_ptr()) for w in bf16_w]
                tsync()
                g.call("matmul", a4[0])
                g.call("matmul", ab[0])
                g.sync()
                # the reference in f32 (a bf16 cuBLAS product may reduce split-K partial sums in bf16)
                ref = x.float() @ deq.float().t()
                tsum = x.abs().float() @ deq.abs().float().t()
                notes = []

                def check(name, y, ours):
                    bad, worst = within(y, ref, tsum, k)
                    if bad:
                        b.failures += 1
                        notes.append(f"{name} MISMATCH {bad}/{m * n} (worst {worst:.2f} of the bound)")
                check("ours int4 vs x @ dequant(w)^T", y4, True)
                check("ours bf16 vs x @ dequant(w)^T", yb, True)
                t4 = b.wall_us([g.prepare("matmul", a) for a in a4], True)
                tb = b.wall_us([g.prepare("matmul", a) for a in ab], True)
                ttb = b.peer("torch bf16 x @ w.t()", lambda: b.wall_us([lambda w=w: x @ w.t() for w in bf16_w], False))
                ttg = None
                if tg:
                    def tiny():
                        yt = torch._weight_int4pack_mm(x, tg[0][0], group, tg[0][1])
                        check("tinygemm vs x @ dequant(w)^T", yt, False)
                        return b.wall_us([lambda w=w, sz=sz: torch._weight_int4pack_mm(x, w, group, sz) for w, sz in tg], False)
                    ttg = b.peer("torch._weight_int4pack_mm", tiny)
                gbs = w_bytes / t4 / 1e3
                tfl = 2 * m * n * k / t4 / 1e6
                print(f"{m:>4} | {t4:9.1f} {fmt(ttg)} {fmt(ttb, '10.1f')} {tb:9.1f} | {ratio(ttg, t4)} {ratio(ttb, t4):>8} "
                      f"{ratio(tb, t4):>8} | {gbs:6.0f} {gbs * 1e9 / b.hbm:5.0%} {tfl:7.1f} {tfl * 1e12 / b.bf16_peak:6.1%} | "
                      f"{fmt(n * k * 2 / ttb / 1e3 if ttb else None, '11.0f')} | {'; '.join(notes) or 'same product'}", flush=True)
                if m <= 16:
                    line = f"int4.matmul M={m} {n}x{k} group {group}: ours {t4:.1f} us"
                    if ttb:
                        b.target(ttb / t4 >= 3, f"{line} = {ttb / t4:.2f}x torch bf16 x @ w.t() ({ttb:.1f} us) (target >= 3x)")
                    b.target(tb / t4 >= 3, f"{line} = {tb / t4:.2f}x our bf16 matmul ({tb:.1f} us) (target >= 3x)")
            del ours_w, bf16_w, tg, packed, scales, deq
            empty_cache()


# Section: fp8.matmul

def act_quant_1x128(x):
    """SPEC 5's activation quantization in torch: s = f32(max(amax, 1e-4) / 448) per row and 128 channels,
    x8 = e4m3(x / s); s in the layout torch._scaled_mm wants for BlockWise1x128 (shape [M, K/128], strides
    (1, M): ScaledBlas.cpp, is_blockwise_1x128_scaling)."""
    m, k = x.shape
    xb = x.float().view(m, k // 128, 128)
    s = xb.abs().amax(-1).clamp(min=1e-4) / 448.0
    x8 = (xb / s[..., None]).view(m, k).to(torch.float8_e4m3fn)
    return x8, s.t().contiguous().t()


def bench_fp8(b, shapes, ms):
    g = b.g
    for n, k in shapes:
        w = torch.randn(n, k, device=DEV, dtype=torch.bfloat16) * 0.02
        data = torch.empty(n, k, device=DEV, dtype=torch.uint8)
        si = torch.empty(-(-n // 128), -(-k // 128), device=DEV, dtype=torch.float32)
        tsync()
        g.call("fp8_quantize", A.fp8_args(1, n, k, data.data_ptr(), si.data_ptr(), w=w.data_ptr()))
        g.sync()
        w_bytes = n * k + si.numel() * 4
        ours_w = [(data, si)] + [(data.clone(), si.clone()) for _ in range(copies_for(w_bytes) - 1)]
        bf16_w = [w] + [w.clone() for _ in range(copies_for(n * k * 2) - 1)]
        # the peer gets the same numbers as ours: w8 [N, K] e4m3 (a view of our codes) and scale_b = si.t() (for
        # b = w8.t() [K, N], BlockWise128x128 wants scale_b.t() = si [N/128, K/128] contiguous: ScaledBlas.cpp)
        wdeq = torch.empty(n, k, device=DEV, dtype=torch.float32)  # f32(code) x scaleInv, for the checks' bound
        g.call("fp8_dequantize", A.fp8_args(1, n, k, data.data_ptr(), si.data_ptr(), out=wdeq.data_ptr(), out_dtype=A.DT_F32))
        g.sync()
        print(f"\n== fp8.matmul {n} x {k}, [128, 128] weight blocks: ours vs torch._scaled_mm (1x128 x 128x128 block "
              f"scales; 'gemm' without, 'q+gemm' with the activations' quantization in torch) and bf16 x @ w.t(); cold L2, "
              f"us per call; GB/s of e4m3 weights and scales ({w_bytes / 1e6:.1f} MB)")
        print(f"{'M':>4} | {'ours':>8} {'q+gemm':>8} {'gemm':>8} {'bf16':>8} | {'x q+gemm':>8} {'x gemm':>7} {'x bf16':>7} | "
              f"{'GB/s':>6} {'%HBM':>5} {'TFLOP/s':>7} {'%fp8':>6} | check")
        for m in ms:
            x = torch.randn(m, k, device=DEV, dtype=torch.bfloat16)
            y = torch.empty(m, n, device=DEV, dtype=torch.bfloat16)
            args = [A.fp8_matmul_args(x.data_ptr(), m, n, k, d.data_ptr(), s.data_ptr(), y.data_ptr()) for d, s in ours_w]
            tsync()
            g.call("fp8_matmul", args[0])
            g.sync()
            y0 = y.clone()  # ours, for the checks (y is the timing's output buffer: it stays alive)
            notes = []
            tsum = x.abs().float() @ wdeq.abs().t()
            notes.append(f"vs bf16 x @ w.t(): rel. error {rel_err(y0, x @ w.t()):.3f} (fp8 quantization)")
            t_ours = b.wall_us([g.prepare("fp8_matmul", a) for a in args], True)
            t_bf16 = b.peer("torch bf16 x @ w.t()", lambda: b.wall_us([lambda w=w: x @ w.t() for w in bf16_w], False))
            t_q = t_gemm = None
            for pad in (False, True) if m % 16 else (False,):
                def blockwise():
                    mp = -(-m // 16) * 16 if pad else m

                    def padded(v):
                        return torch.cat([v, v.new_zeros(mp - m, k)]) if mp > m else v

                    def quant_gemm(d, s):  # what a user runs: (pad,) quantize x, then the GEMM
                        q8, qs = act_quant_1x128(padded(x))
                        return torch._scaled_mm(q8, d.view(torch.float8_e4m3fn).t(), qs, s.t(), out_dtype=torch.bfloat16)
                    x8, sa = act_quant_1x128(padded(x))
                    yt = quant_gemm(*ours_w[0])
                    bad, worst = within(y0, yt[:m], tsum, k)
                    b.failures += bad > 0
                    notes.insert(0, ("M padded to 16; " if pad else "") +
                                 (f"_scaled_mm MISMATCH {bad}/{m * n} (worst {worst:.2f})" if bad else "same product as _scaled_mm"))
                    gemm = [lambda d=d, s=s: torch._scaled_mm(x8, d.view(torch.float8_e4m3fn).t(), sa, s.t(), out_dtype=torch.bfloat16)
                            for d, s in ours_w]
                    return b.wall_us([lambda d=d, s=s: quant_gemm(d, s) for d, s in ours_w], False), b.wall_us(gemm, False)
                r = b.peer(f"torch._scaled_mm block-wise{' (M padded to 16)' if pad else ''}", blockwise)
                if r:
                    t_q, t_gemm = r
                    break
            if t_q is None:
                def rowwise():
                    # no block-wise scaling on this torch: row-wise scales (timing only; the weights then differ)
                    sb = si.repeat_interleave(128, 0)[:n, :1].t().contiguous()  # [1, N]
                    xa = x.float().abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448.0
                    x8 = (x.float() / xa).to(torch.float8_e4m3fn)
                    notes.insert(0, "ROW-WISE _scaled_mm peer (block-wise unavailable; timing only)")
                    gemm = [lambda d=d: torch._scaled_mm(x8, d.view(torch.float8_e4m3fn).t(), xa, sb, out_dtype=torch.bfloat16)
                            for d, _ in ours_w]
                    return b.wall_us(gemm, False)
                t_gemm = b.peer("torch._scaled_mm row-wise", rowwise)
            gbs, tfl = w_bytes / t_ours / 1e3, 2 * m * n * k / t_ours / 1e6
            print(f"{m:>4} | {t_ours:8.1f} {fmt(t_q, '8.1f')} {fmt(t_gemm, '8.1f')} {fmt(t_bf16, '8.1f')} | {ratio(t_q, t_ours):>8} "
                  f"{ratio(t_gemm, t_ours)} {ratio(t_bf16, t_ours)} | {gbs:6.0f} {gbs * 1e9 / b.hbm:5.0%} {tfl:7.1f} "
                  f"{tfl * 1e12 / b.fp8_peak:6.1%} | {'; '.join(notes)}", flush=True)
        del ours_w, bf16_w, w, data, si, wdeq
        empty_cache()


# Section: moe.experts

def codes(shape):
    """Random e4m3 codes of magnitude 2^-3 .. 30 (exponent fields 4..11), either sign: no NaN, no zeros."""
    return (torch.randint(0, 2, shape, device=DEV, dtype=torch.uint8) * 128) | \
        torch.randint(0x20, 0x60, shape, device=DEV, dtype=torch.uint8)


def moe_weights(g, e, h, i):
    """Ours: gate, up [E, I, H], down [E, H, I] codes + scaleInv per [128, 128] block, constant along K (one
    value per 128 rows); rows: those scales per row ([E, N]). bf16: our fp8.dequantize of the same (f32(code)
    x scale, one rounding), gate and up fused [E, 2I, H]."""
    ours, rows = {}, {}
    for name, n, k in (("gate", i, h), ("up", i, h), ("down", h, i)):
        d = torch.empty(e, n, k, device=DEV, dtype=torch.uint8)
        for c in range(0, e, 16):
            d[c:c + 16] = codes((min(16, e - c), n, k))
        rs = (torch.rand(e, n // 128, device=DEV) * 0.5 + 0.5) * 2.0 ** -8
        ours[name] = (d, rs[..., None].expand(e, n // 128, k // 128).contiguous())
        rows[name] = rs.repeat_interleave(128, dim=1).contiguous()
    w13_bf = torch.empty(e, 2 * i, h, device=DEV, dtype=torch.bfloat16)
    w2_bf = torch.empty(e, h, i, device=DEV, dtype=torch.bfloat16)
    tmp = torch.empty(min(e, 16), i, h, device=DEV, dtype=torch.bfloat16)
    for c in range(0, e, 16):
        cnt = min(16, e - c)
        for j, name in enumerate(("gate", "up")):
            d, s = ours[name]
            tsync()  # torch's copy out of tmp is done before we write it again
            g.call("fp8_dequantize", A.fp8_args(cnt, i, h, d[c].data_ptr(), s[c].data_ptr(), out=tmp.data_ptr()))
            g.sync()
            w13_bf[c:c + cnt, j * i:(j + 1) * i] = tmp[:cnt]
        d, s = ours["down"]
        g.call("fp8_dequantize", A.fp8_args(cnt, h, i, d[c].data_ptr(), s[c].data_ptr(), out=w2_bf[c].data_ptr()))
    g.sync()
    tsync()
    return ours, rows, (w13_bf, w2_bf)


def fp8_peer_weights(ours, rows):
    """The same numbers for torch._scaled_grouped_mm: gate and up fused e4m3 [E, 2I, H] with row scales
    [E, 2I], down [E, H, I] (a view of ours) with [E, H]."""
    w13 = torch.cat([ours["gate"][0], ours["up"][0]], dim=1).view(torch.float8_e4m3fn)
    s13 = torch.cat([rows["gate"], rows["up"]], dim=1).contiguous()
    return w13, s13, ours["down"][0].view(torch.float8_e4m3fn), rows["down"]


def route_plan(ids, e):
    flat = ids.reshape(-1).long()
    order = torch.argsort(flat, stable=True)
    counts = torch.zeros(e, device=DEV, dtype=torch.int32).scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))
    return order, order // ids.shape[1], torch.cumsum(counts, 0, dtype=torch.int32), counts


def combine(y, tok, order, wts, t, h):
    out = torch.zeros(t, h, device=DEV, dtype=torch.float32)
    return out.index_add_(0, tok, y.float() * wts.reshape(-1)[order][:, None]).to(torch.bfloat16)


def fp8_grouped_peer(hidden, ids, wts, w13, s13, w2, s2, e, i):
    """DeepSeek-style MoE with torch._scaled_grouped_mm (2d x 3d, row-wise scales, int32 end offsets)."""
    t, h = hidden.shape
    order, tok, offs, _ = route_plan(ids, e)
    sx = hidden.abs().amax(-1, keepdim=True).float().clamp(min=1e-4) / 448.0
    x8 = (hidden.float() / sx).to(torch.float8_e4m3fn)
    x8 = x8.view(torch.uint8)[tok].view(torch.float8_e4m3fn)  # the gather on bytes (index ops may lack float8)
    gu = torch._scaled_grouped_mm(x8, w13.transpose(-2, -1), sx.view(-1)[tok], s13, offs=offs, out_dtype=torch.bfloat16)
    hh = torch.nn.functional.silu(gu[:, :i]) * gu[:, i:]
    sh = hh.abs().amax(-1, keepdim=True).float().clamp(min=1e-4) / 448.0
    h8 = (hh.float() / sh).to(torch.float8_e4m3fn)
    y = torch._scaled_grouped_mm(h8, w2.transpose(-2, -1), sh.view(-1), s2, offs=offs, out_dtype=torch.bfloat16)
    return combine(y, tok, order, wts, t, h)


def bf16_loop_peer(hidden, ids, wts, w13_bf, w2_bf, e, i):
    t, h = hidden.shape
    order, tok, _, counts = route_plan(ids, e)
    xs, y = hidden[tok], torch.empty(tok.numel(), h, device=DEV, dtype=torch.bfloat16)
    start = 0
    for x, c in enumerate(counts.tolist()):  # one device-to-host sync, as an eager per-expert loop needs
        if c:
            gu = xs[start:start + c] @ w13_bf[x].t()
            y[start:start + c] = (torch.nn.functional.silu(gu[:, :i]) * gu[:, i:]) @ w2_bf[x].t()
            start += c
    return combine(y, tok, order, wts, t, h)


def bf16_grouped_peer(hidden, ids, wts, w13_bf, w2_bf, e, i):
    t, h = hidden.shape
    order, tok, offs, _ = route_plan(ids, e)
    gu = torch._grouped_mm(hidden[tok], w13_bf.transpose(-2, -1), offs=offs, out_dtype=torch.bfloat16)
    y = torch._grouped_mm(torch.nn.functional.silu(gu[:, :i]) * gu[:, i:], w2_bf.transpose(-2, -1), offs=offs,
                          out_dtype=torch.bfloat16)
    return combine(y, tok, order, wts, t, h)


def bench_moe(b, experts, tokens, h=6144, i=2048, top_k=8, sets=4):
    g = b.g
    for e in experts:
        ours, rows, bfw = moe_weights(g, e, h, i)
        fp8w = b.peer("torch._scaled_grouped_mm fp8 (its weights)", lambda: fp8_peer_weights(ours, rows))
        stacks = [(ours[n][0].data_ptr(), ours[n][1].data_ptr(), 128) for n in ("gate", "up", "down")]
        print(f"\n== moe.experts H {h}, I {i}, {e} experts, top-{top_k}, shared expert OFF: ours vs torch._scaled_grouped_mm "
              f"(fp8 row-wise, all steps), a bf16 per-expert loop and torch._grouped_mm bf16; {sets} routings rotated, "
              f"us per call; GB/s of the distinct experts' weights ({3 * i * h / 1e6:.1f} MB each)")
        print(f"{'T':>4} {'experts':>7} | {'ours':>8} {'fp8 grp':>8} {'bf16 loop':>9} {'bf16 grp':>8} | {'x fp8':>7} "
              f"{'x loop':>7} {'x bf16g':>7} | {'GB/s':>6} {'%HBM':>5} {'TFLOP/s':>7} {'%fp8':>6} | check (rel. error vs the bf16 loop)")
        for t in tokens:
            gen = torch.Generator(device=DEV).manual_seed(1000 * e + t)
            inputs = []
            for _ in range(sets):
                hid = torch.randn(t, h, device=DEV, dtype=torch.bfloat16, generator=gen)
                ids = torch.rand(t, e, device=DEV, generator=gen).argsort(dim=1)[:, :top_k].to(torch.int32).contiguous()
                wts = torch.rand(t, top_k, device=DEV, generator=gen) + 0.1
                inputs.append((hid, ids, (wts / wts.sum(1, keepdim=True) * 2.5).contiguous()))
            distinct = statistics.mean(int(torch.unique(ids).numel()) for _, ids, _ in inputs)
            out = torch.empty(t, h, device=DEV, dtype=torch.bfloat16)
            args = [A.moe_experts_args(hid.data_ptr(), t, h, i, e, top_k, ids.data_ptr(), wts.data_ptr(), *stacks, out.data_ptr())
                    for hid, ids, wts in inputs]
            tsync()
            g.call("moe_experts", args[0])
            g.sync()
            out0 = out.clone()  # the timing below leaves the last routing's output in out
            notes, ref = [], None
            ref = b.peer("bf16 per-expert loop", lambda: bf16_loop_peer(*inputs[0], *bfw, e, i))
            t_ours = b.wall_us([g.prepare("moe_experts", a) for a in args], True)
            if ref is not None:
                r = rel_err(out0, ref)
                if not r < 0.1:
                    b.failures += 1
                notes.append(f"ours {r:.3f}{'' if r < 0.1 else ' MISMATCH'}")

            def timed(name, fn, check):
                def run():
                    if check and ref is not None:
                        r = rel_err(fn(*inputs[0]), ref)
                        if not r < 0.1:
                            b.failures += 1
                        notes.append(f"{name} {r:.3f}{'' if r < 0.1 else ' MISMATCH'}")
                    return b.wall_us([lambda s=s: fn(*s) for s in inputs], False)
                return b.peer(name, run)
            t_fp8 = timed("torch._scaled_grouped_mm fp8", lambda *s: fp8_grouped_peer(*s, *fp8w, e, i), True) if fp8w else None
            t_loop = timed("bf16 per-expert loop", lambda *s: bf16_loop_peer(*s, *bfw, e, i), False)
            t_bfg = timed("torch._grouped_mm bf16", lambda *s: bf16_grouped_peer(*s, *bfw, e, i), True)
            w_bytes = distinct * (3 * i * h + 3 * (i // 128) * (h // 128) * 4)
            gbs, tfl = w_bytes / t_ours / 1e3, 6 * t * top_k * i * h / t_ours / 1e6
            print(f"{t:>4} {distinct:7.1f} | {t_ours:8.1f} {fmt(t_fp8, '8.1f')} {fmt(t_loop)} {fmt(t_bfg, '8.1f')} | "
                  f"{ratio(t_fp8, t_ours)} {ratio(t_loop, t_ours)} {ratio(t_bfg, t_ours)} | {gbs:6.0f} {gbs * 1e9 / b.hbm:5.0%} "
                  f"{tfl:7.1f} {tfl * 1e12 / b.fp8_peak:6.1%} | {', '.join(notes)}", flush=True)
            if t <= 8 and t_fp8:
                b.target(t_ours <= t_fp8, f"moe.experts E={e} T={t}: ours {t_ours:.1f} us vs torch grouped fp8 {t_fp8:.1f} us "
                         f"(= {t_fp8 / t_ours:.2f}x; target: at least the peer, SwiGLU and combine included)")
        del ours, rows, fp8w, bfw, stacks
        empty_cache()
        g.empty_cache()


# The shapes of each mode: int4 / fp8 (N, K) and M, int4 groups, MoE (experts, tokens, H, I, top-k, routings)
MODES = {
    "full": dict(shapes=[(6144, 6144), (24576, 6144)], ms=[1, 16, 64, 256], groups=[32, 128],
                 moe=dict(experts=[64, 256], tokens=[1, 8, 32, 128])),
    "quick": dict(shapes=[(6144, 6144)], ms=[1, 16], groups=[32], moe=dict(experts=[64], tokens=[1, 8])),
    "dry-run": dict(shapes=[(256, 512)], ms=[1, 17], groups=[32, 128],
                    moe=dict(experts=[6], tokens=[1, 3], h=256, i=256, top_k=4, sets=2)),
}


def main(argv=None):
    global torch, DEV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lib", nargs="?", help="libglmk-cuda.so (--selftest, --dry-run: libglmk-cuda-sim.so by default)")
    ap.add_argument("--selftest", action="store_true", help="abi_selftest.py: no torch, no GPU needed")
    ap.add_argument("--size", choices=["tiny", "large"], default="tiny", help="--selftest's shapes")
    ap.add_argument("--quick", action="store_true", help="6144 x 6144, M 1 and 16, group 32, 64 experts, T 1 and 8")
    ap.add_argument("--dry-run", action="store_true",
                    help="torch on the CPU with cuda-sim (its device pointers are host memory), tiny shapes: this "
                         "script's own code paths without a GPU; CUDA-only peers say unavailable; timings mean nothing")
    ap.add_argument("--only", default="int4,fp8,moe")
    ap.add_argument("--rounds", type=int, default=None, help="7 (quick: 3, dry run: 1)")
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    sim = os.path.join(here, "../../build-plugins/libglmk-cuda-sim.so")
    if args.selftest:
        import abi_selftest
        return abi_selftest.main([args.lib or sim, "--size", args.size])
    if not args.lib and not args.dry_run:
        ap.error("the path of libglmk-cuda.so is needed")
    import torch as torch_module
    torch = torch_module
    torch.manual_seed(0)
    mode = MODES["dry-run" if args.dry_run else "quick" if args.quick else "full"]
    DEV = "cpu" if args.dry_run else "cuda"
    g = A.Glmk(args.lib or sim)
    info = g.info()
    b = Bench(g, args.rounds or (1 if args.dry_run else 3 if args.quick else 7))
    print(f"device: {b.device_name} ({info['name']}, {info['build']}), torch {torch.__version__}; "
          f"peaks of the {b.peak_name}: {b.hbm / 1e12:.2f} TB/s, {b.bf16_peak / 1e12:.0f} bf16 / {b.fp8_peak / 1e12:.0f} fp8 "
          f"dense TFLOP/s; {b.rounds} round(s)", flush=True)
    b.launch_floor()
    only = set(args.only.split(","))
    try:
        if "int4" in only:
            bench_int4(b, mode["shapes"], mode["ms"], mode["groups"])
        if "fp8" in only:
            bench_fp8(b, mode["shapes"], mode["ms"])
        if "moe" in only:
            bench_moe(b, **mode["moe"])
    except A.GlmkError as e:  # one of our ops failed: the run stops here
        print(f"FAILED: {e}")
        b.failures += 1
    print("\n== targets (issue 21 item 4; in the kernel headers' model until measured)")
    for line in b.targets:
        print(line)
    n_pass = sum(t.startswith("PASS") for t in b.targets)
    print(f"matmul_peer: {n_pass} PASS, {len(b.targets) - n_pass} MISS; "
          + ("checks passed" if b.failures == 0 else f"{b.failures} check(s) FAILED"))
    g.close()
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
