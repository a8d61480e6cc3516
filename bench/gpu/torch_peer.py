"""The cuda top-k beside torch.topk on the GPU machine (bench/gpu/acceptance.sh runs it).

Calls libglmk-cuda.so through its C device ABI (native/include/glmk/device.h) with ctypes, on tensors that
torch allocated (the same CUDA context), and checks:
  - bit equality with torch.topk(sorted=True) (indices and values) on inputs without NaN and signed zeros,
    random normal and bf16-rounded (many ties: torch orders them by ascending index, and so do we);
  - 100 repeated runs of a tied input give identical bits;
  - timings: both measured the same way, back-to-back calls over rotating copies of the input (more than
    200 MB, so the L2 is cold) then one synchronize, median of 7 such rounds; torch also with triton's
    do_bench as in ../shared/PEERS.md.
Usage: python3 bench/gpu/torch_peer.py path/to/libglmk-cuda.so
"""
import statistics
import sys
import time

import torch

import glmk_abi  # the device ABI's ctypes mirror (native/include/glmk/device.h), shared with matmul_peer.py

DTYPE = {torch.float32: glmk_abi.DT_F32, torch.float16: glmk_abi.DT_F16, torch.bfloat16: glmk_abi.DT_BF16}


class Glmk(glmk_abi.Glmk):
    def topk_into(self, scores, k, idx, val):
        self.call("topk", glmk_abi.topk_args(scores.data_ptr(), DTYPE[scores.dtype], scores.shape[0], scores.shape[1], k,
                                             idx.data_ptr(), val.data_ptr()))

    def topk(self, scores, k):
        rows = scores.shape[0]
        idx = torch.empty(rows, k, dtype=torch.int32, device="cuda")
        val = torch.empty(rows, k, dtype=torch.float32, device="cuda")
        torch.cuda.synchronize()  # our stream is not torch's
        self.topk_into(scores, k, idx, val)
        self.sync()
        return idx, val


def same_as_torch(g, x, k):
    idx, val = g.topk(x, k)
    tv, ti = torch.topk(x.float(), k, dim=1, largest=True, sorted=True)
    bad_rows = ((idx.long() != ti) | (val.view(torch.int32) != tv.view(torch.int32))).any(dim=1)
    return int(bad_rows.sum()), x.shape[0]


def wall_us(fn, copies, rounds=7):
    fn(copies[0])
    torch.cuda.synchronize()
    per = []
    for _ in range(rounds):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for c in copies:
            fn(c)
        fn.sync()
        per.append((time.perf_counter() - t0) / len(copies) * 1e6)
    return statistics.median(per)


def main():
    g = Glmk(sys.argv[1])
    torch.manual_seed(0)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    k = 2048
    failures = 0

    print("== bit equality with torch.topk(sorted=True)")
    for rows, cols in [(1, 32768), (1, 131072), (32, 131072), (64, 131072), (128, 65536), (7, 1000003), (300, 5000)]:
        for kind in ["randn", "bf16-rounded ties"]:
            x = torch.randn(rows, cols, device="cuda")
            if kind != "randn":
                x = x.bfloat16().float()
            x[x == 0] = 1.0  # no signed zeros (the one case where torch's order is not ours)
            bad, n = same_as_torch(g, x, min(k, cols))
            failures += bad > 0
            print(f"{'ok  ' if bad == 0 else 'FAIL'} {rows} x {cols} {kind}: {n - bad}/{n} rows bit-identical")

    print("== 100 repeats, bf16-rounded ties, 64 x 131072")
    x = torch.randn(64, 131072, device="cuda").bfloat16().float()
    first, _ = g.topk(x, k)
    same = sum(int(torch.equal(g.topk(x, k)[0], first)) for _ in range(99))
    failures += same != 99
    print(f"{'ok  ' if same == 99 else 'FAIL'} {same + 1}/100 runs identical")

    print("== timings, k = 2048, f32, cold L2 (us per call)")
    print(f"{'rows x cols':>14} {'ours':>9} {'torch sorted':>13} {'x torch':>8} {'torch do_bench':>15}")
    for rows, cols in [(1, 32768), (1, 131072), (32, 131072), (64, 131072), (128, 65536), (512, 131072), (2048, 32768)]:
        n_copies = max(2, (256 << 20) // (rows * cols * 4))
        copies = [torch.randn(rows, cols, device="cuda") for _ in range(n_copies)]
        idx = torch.empty(rows, k, dtype=torch.int32, device="cuda")
        val = torch.empty(rows, k, dtype=torch.float32, device="cuda")

        def ours(c):
            g.topk_into(c, k, idx, val)
        ours.sync = g.sync

        def theirs(c):
            torch.topk(c, k, dim=1, sorted=True)
        theirs.sync = torch.cuda.synchronize

        t_ours = wall_us(ours, copies)
        t_torch = wall_us(theirs, copies)
        try:
            import triton.testing
            db = triton.testing.do_bench(lambda: torch.topk(copies[0], k, dim=1, sorted=True)) * 1000
        except Exception:  # noqa: BLE001 - triton is optional here
            db = float("nan")
        print(f"{rows:>6} x {cols:<7} {t_ours:9.1f} {t_torch:13.1f} {t_torch / t_ours:7.2f}x {db:15.1f}")
        del copies
        torch.cuda.empty_cache()
    print("torch_peer: " + ("passed" if failures == 0 else f"{failures} check(s) FAILED"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
