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
import ctypes as C
import os
import re
import statistics
import sys
import time

import torch

I32, I64, U32, U64, P = C.c_int32, C.c_int64, C.c_uint32, C.c_uint64, C.c_void_p
# The structs below mirror native/include/glmk/device.h (ABI 3); the version is read from that header.
ABI_VERSION = int(re.search(r"#define GLMK_ABI_VERSION (\d+)u", open(os.path.join(os.path.dirname(__file__), "../../native/include/glmk/device.h")).read()).group(1))


class Status(C.Structure):
    _fields_ = [("code", I32), ("message", C.c_char * 508)]


class OpenOptions(C.Structure):
    _fields_ = [("ordinal", I32), ("threads", I32), ("sim_seed", U64), ("isa", C.c_char_p), ("spin_us", I32),
                ("reserved", I32)]


class TopkArgs(C.Structure):
    _fields_ = [("scores", P), ("dtype", I32), ("reserved", I32), ("rows", I64), ("cols", I64), ("k", I64),
                ("lengths", P), ("row_starts", P), ("indices", P), ("values", P)]


S = C.POINTER(Status)


class Api(C.Structure):
    _fields_ = [
        ("abi_version", U32), ("struct_size", U32), ("kind", C.c_char_p),
        ("device_count", C.CFUNCTYPE(C.c_int, C.POINTER(I32), S)),
        ("open", C.CFUNCTYPE(C.c_int, C.POINTER(OpenOptions), C.POINTER(P), S)),
        ("close", C.CFUNCTYPE(None, P)),
        ("info", C.CFUNCTYPE(C.c_int, P, P, S)),
        ("alloc", C.CFUNCTYPE(C.c_int, P, C.c_size_t, C.POINTER(P), S)),
        ("free", C.CFUNCTYPE(C.c_int, P, P, S)),
        ("upload", C.CFUNCTYPE(C.c_int, P, P, P, C.c_size_t, S)),
        ("download", C.CFUNCTYPE(C.c_int, P, P, P, C.c_size_t, S)),
        ("sync", C.CFUNCTYPE(C.c_int, P, S)),
        ("sync_notify", P),
        ("topk", C.CFUNCTYPE(C.c_int, P, C.POINTER(TopkArgs), S)),
        ("memory_stats", P), ("empty_cache", P), ("upload_deferred", P), ("sync_poll", P),  # ABI 3, unused here
    ]


DTYPE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


class Glmk:
    def __init__(self, path):
        lib = C.CDLL(path)
        lib.glmk_plugin_entry.restype = C.POINTER(Api)
        lib.glmk_plugin_entry.argtypes = [U32]
        api = lib.glmk_plugin_entry(ABI_VERSION)
        if not api or api.contents.abi_version != ABI_VERSION or api.contents.struct_size < C.sizeof(Api):
            raise RuntimeError(f"{path}: not a glm-kernels plugin of ABI {ABI_VERSION} (native/include/glmk/device.h)")
        self.api = api.contents
        self.st = Status()
        self.dev = P()
        self.check(self.api.open(C.byref(OpenOptions(0, 1, 1, b"auto", 0, 0)), C.byref(self.dev), C.byref(self.st)))

    def check(self, rc):
        if rc != 0:
            raise RuntimeError(f"glm-kernels error {self.st.code}: {self.st.message.decode()}")

    def topk_into(self, scores, k, idx, val):
        a = TopkArgs(scores.data_ptr(), DTYPE[scores.dtype], 0, scores.shape[0], scores.shape[1], k, None, None,
                     idx.data_ptr(), val.data_ptr())
        self.check(self.api.topk(self.dev, C.byref(a), C.byref(self.st)))

    def sync(self):
        self.check(self.api.sync(self.dev, C.byref(self.st)))

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
