"""The glm-kernels device ABI (native/include/glmk/device.h) from Python, with ctypes and nothing else.

Shared by the GPU scripts here (torch_peer.py, matmul_peer.py, abi_selftest.py). It imports neither torch nor
numpy: pointers are plain ints (a torch tensor's data_ptr(), or what Glmk.alloc returned), so the same code
drives libglmk-cuda.so on a GPU and libglmk-cuda-sim.so on a machine without one. abi_selftest.py proves
the struct mirrors below against the header (offsets and sizes, when a C compiler is at hand) and every op
against numpy references on cuda-sim.

Every struct mirrors the header field for field, in order; ctypes pads as the C compiler does on x86-64 and
aarch64 Linux. The api table mirrors every member up to moe_experts (ABI 3); GLMK_ABI_VERSION is read from
the header itself, so a bump there makes the loader refuse a stale plugin rather than misread it.
"""
import ctypes as C
import os
import re

HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../native/include/glmk/device.h")
ABI_VERSION = int(re.search(r"#define GLMK_ABI_VERSION (\d+)u", open(HEADER).read()).group(1))

I32, I64, U32, U64, P, FLT = C.c_int32, C.c_int64, C.c_uint32, C.c_uint64, C.c_void_p, C.c_float

# glmk_dtype, and matmul's int4 weight marker (GLMK_W_INT4)
DT_F32, DT_F16, DT_BF16, DT_F8E4M3, DT_I32, DT_U8 = 0, 1, 2, 3, 4, 5
DT_W_INT4 = 100


class Status(C.Structure):
    _fields_ = [("code", I32), ("message", C.c_char * 508)]


class OpenOptions(C.Structure):
    _fields_ = [("ordinal", I32), ("threads", I32), ("sim_seed", U64), ("isa", C.c_char_p), ("spin_us", I32),
                ("reserved", I32)]


class DeviceInfo(C.Structure):
    _fields_ = [("kind", C.c_char * 16), ("name", C.c_char * 128), ("isa", C.c_char * 16), ("build", C.c_char * 128),
                ("capabilities", C.c_char * 256), ("memory_bytes", U64), ("threads", I32), ("ordinal", I32)]


class TopkArgs(C.Structure):
    _fields_ = [("scores", P), ("dtype", I32), ("reserved", I32), ("rows", I64), ("cols", I64), ("k", I64),
                ("lengths", P), ("row_starts", P), ("indices", P), ("values", P)]


class Int4Args(C.Structure):
    _fields_ = [("w", P), ("w_dtype", I32), ("levels", I32), ("n", I64), ("k", I64), ("group_size", I64),
                ("packed", P), ("scales", P), ("out", P), ("out_dtype", I32), ("clip", I32), ("grad", P)]


class MatmulArgs(C.Structure):
    _fields_ = [("x", P), ("x_dtype", I32), ("w_dtype", I32), ("m", I64), ("n", I64), ("k", I64), ("w", P),
                ("packed", P), ("scales", P), ("group_size", I64), ("y", P)]


class Fp8Args(C.Structure):
    _fields_ = [("w", P), ("w_dtype", I32), ("out_dtype", I32), ("batch", I64), ("n", I64), ("k", I64),
                ("block_n", I64), ("block_k", I64), ("data", P), ("scale_inv", P), ("out", P)]


class Fp8MatmulArgs(C.Structure):
    _fields_ = [("x", P), ("m", I64), ("n", I64), ("k", I64), ("data", P), ("scale_inv", P), ("block_n", I64),
                ("y", P), ("y_dtype", I32), ("reserved", I32)]


class MoeRouteArgs(C.Structure):
    _fields_ = [("hidden", P), ("gate", P), ("hidden_dtype", I32), ("gate_dtype", I32), ("bias", P), ("t", I64),
                ("h", I64), ("e", I64), ("top_k", I32), ("n_group", I32), ("topk_group", I32),
                ("norm_topk_prob", I32), ("routed_scaling_factor", FLT), ("reserved", I32), ("ids", P),
                ("weights", P)]


class Fp8Stack(C.Structure):
    _fields_ = [("data", P), ("scale_inv", P), ("block_n", I64)]


class MoeExpertsArgs(C.Structure):
    _fields_ = [("hidden", P), ("t", I64), ("h", I64), ("i", I64), ("e", I64), ("top_k", I64), ("ids", P),
                ("weights", P), ("gate", Fp8Stack), ("up", Fp8Stack), ("down", Fp8Stack), ("shared_i", I64),
                ("shared_gate", Fp8Stack), ("shared_up", Fp8Stack), ("shared_down", Fp8Stack), ("out", P)]


class MemoryStats(C.Structure):
    _fields_ = [("live_bytes", U64), ("cached_bytes", U64)]


S = C.POINTER(Status)


def _op(args_type):
    return C.CFUNCTYPE(C.c_int, P, C.POINTER(args_type), S)


DONE_FN = C.CFUNCTYPE(None, P, C.c_int, C.c_char_p)


class Api(C.Structure):
    _fields_ = [
        ("abi_version", U32), ("struct_size", U32), ("kind", C.c_char_p),
        ("device_count", C.CFUNCTYPE(C.c_int, C.POINTER(I32), S)),
        ("open", C.CFUNCTYPE(C.c_int, C.POINTER(OpenOptions), C.POINTER(P), S)),
        ("close", C.CFUNCTYPE(None, P)),
        ("info", C.CFUNCTYPE(C.c_int, P, C.POINTER(DeviceInfo), S)),
        ("alloc", C.CFUNCTYPE(C.c_int, P, C.c_size_t, C.POINTER(P), S)),
        ("free", C.CFUNCTYPE(C.c_int, P, P, S)),
        ("upload", C.CFUNCTYPE(C.c_int, P, P, P, C.c_size_t, S)),
        ("download", C.CFUNCTYPE(C.c_int, P, P, P, C.c_size_t, S)),
        ("sync", C.CFUNCTYPE(C.c_int, P, S)),
        ("sync_notify", C.CFUNCTYPE(C.c_int, P, DONE_FN, P, S)),  # optional (NULL on cuda): unused here
        ("topk", _op(TopkArgs)),
        # ABI 3
        ("memory_stats", C.CFUNCTYPE(C.c_int, P, C.POINTER(MemoryStats), S)),
        ("empty_cache", C.CFUNCTYPE(C.c_int, P, S)),
        ("upload_deferred", C.CFUNCTYPE(C.c_int, P, P, P, C.c_size_t, DONE_FN, P, S)),  # unused here
        ("sync_poll", C.CFUNCTYPE(C.c_int, P, C.POINTER(I32), S)),  # optional (NULL on cuda): unused here
        ("int4_quantize", _op(Int4Args)),
        ("int4_dequantize", _op(Int4Args)),
        ("int4_fake_quant_grad", _op(Int4Args)),
        ("matmul", _op(MatmulArgs)),
        ("fp8_quantize", _op(Fp8Args)),
        ("fp8_dequantize", _op(Fp8Args)),
        ("fp8_matmul", _op(Fp8MatmulArgs)),
        ("moe_route", _op(MoeRouteArgs)),
        ("moe_experts", _op(MoeExpertsArgs)),
    ]


# The structs above with their C names, for abi_selftest.py's offsetof comparison.
STRUCTS = {"glmk_status": Status, "glmk_open_options": OpenOptions, "glmk_device_info": DeviceInfo,
           "glmk_topk_args": TopkArgs, "glmk_int4_args": Int4Args, "glmk_matmul_args": MatmulArgs,
           "glmk_fp8_args": Fp8Args, "glmk_fp8_matmul_args": Fp8MatmulArgs, "glmk_moe_route_args": MoeRouteArgs,
           "glmk_fp8_stack": Fp8Stack, "glmk_moe_experts_args": MoeExpertsArgs, "glmk_memory_stats": MemoryStats,
           "glmk_device_api": Api}


class GlmkError(RuntimeError):
    pass


class Glmk:
    """One open device of a plugin. Every method enqueues on the device's own stream (not torch's): call
    sync() before the host or another stream reads what an op wrote, and make the other stream's work
    finish (torch.cuda.synchronize()) before an op reads what it wrote."""

    def __init__(self, path, sim_seed=1, ordinal=0):
        self.lib = C.CDLL(os.path.abspath(path))
        self.lib.glmk_plugin_entry.restype = C.POINTER(Api)
        self.lib.glmk_plugin_entry.argtypes = [U32]
        api = self.lib.glmk_plugin_entry(ABI_VERSION)
        if not api or api.contents.abi_version != ABI_VERSION or api.contents.struct_size < C.sizeof(Api):
            raise GlmkError(f"{path}: not a glm-kernels plugin of ABI {ABI_VERSION} (native/include/glmk/device.h)")
        self.api = api.contents
        self.kind = self.api.kind.decode()
        self.st = Status()
        self.dev = P()
        self._opts = OpenOptions(ordinal, 1, sim_seed, b"auto", 0, 0)
        self.check(self.api.open(C.byref(self._opts), C.byref(self.dev), C.byref(self.st)), "open")

    def check(self, rc, what="call"):
        if rc != 0:
            raise GlmkError(f"glm-kernels {what} failed, error {self.st.code}: {self.st.message.decode(errors='replace')}")

    def close(self):
        if self.dev:
            self.api.close(self.dev)
            self.dev = P()

    def info(self):
        out = DeviceInfo()
        self.check(self.api.info(self.dev, C.byref(out), C.byref(self.st)), "info")
        return {f: getattr(out, f).decode() if isinstance(getattr(out, f), bytes) else getattr(out, f)
                for f, _ in DeviceInfo._fields_}

    def sync(self):
        self.check(self.api.sync(self.dev, C.byref(self.st)), "sync")

    def empty_cache(self):
        self.check(self.api.empty_cache(self.dev, C.byref(self.st)), "empty_cache")

    def memory_stats(self):
        out = MemoryStats()
        self.check(self.api.memory_stats(self.dev, C.byref(out), C.byref(self.st)), "memory_stats")
        return out.live_bytes, out.cached_bytes

    # Section: memory (the host side of abi_selftest.py; torch callers allocate with torch)
    def alloc(self, nbytes):
        p = P()
        self.check(self.api.alloc(self.dev, nbytes, C.byref(p), C.byref(self.st)), "alloc")
        return p.value

    def free(self, ptr):
        self.check(self.api.free(self.dev, ptr, C.byref(self.st)), "free")

    def upload(self, dst, src_addr, nbytes):
        self.check(self.api.upload(self.dev, dst, src_addr, nbytes, C.byref(self.st)), "upload")

    def download(self, dst_addr, src, nbytes):
        """Enqueued: dst must stay valid until the next sync() returns."""
        self.check(self.api.download(self.dev, dst_addr, src, nbytes, C.byref(self.st)), "download")

    # Section: ops. call() for one call; prepare() builds the args once and returns a function that only
    # calls, for timing loops (one ctypes call per op, no struct building).
    def call(self, op, args):
        fn = getattr(self.api, op)
        if not fn:
            raise GlmkError(f"{op} is not supported by this {self.kind} device")
        self.check(fn(self.dev, C.byref(args), C.byref(self.st)), op)

    def prepare(self, op, args):
        fn = getattr(self.api, op)
        if not fn:
            raise GlmkError(f"{op} is not supported by this {self.kind} device")
        dev, ref, st = self.dev, C.byref(args), C.byref(self.st)

        def run():
            if fn(dev, ref, st) != 0:
                self.check(1, op)
        run.args = args  # keeps the struct alive as long as the function
        return run


# Section: argument builders (pointers are ints; None is NULL)

def topk_args(scores, dtype, rows, cols, k, indices, values, lengths=None, row_starts=None):
    return TopkArgs(scores, dtype, 0, rows, cols, k, lengths, row_starts, indices, values)


def int4_args(n, k, group_size, packed, scales, w=None, w_dtype=DT_BF16, levels=15, out=None, out_dtype=DT_BF16):
    return Int4Args(w, w_dtype, levels, n, k, group_size, packed, scales, out, out_dtype, 0, None)


def matmul_args(x, m, n, k, y, w=None, w_dtype=DT_BF16, x_dtype=DT_BF16, packed=None, scales=None, group_size=0):
    return MatmulArgs(x, x_dtype, w_dtype, m, n, k, w, packed, scales, group_size, y)


def fp8_args(batch, n, k, data, scale_inv, w=None, w_dtype=DT_BF16, out=None, out_dtype=DT_BF16, block=(128, 128)):
    return Fp8Args(w, w_dtype, out_dtype, batch, n, k, block[0], block[1], data, scale_inv, out)


def fp8_matmul_args(x, m, n, k, data, scale_inv, y, block_n=128, y_dtype=DT_BF16):
    return Fp8MatmulArgs(x, m, n, k, data, scale_inv, block_n, y, y_dtype, 0)


def moe_experts_args(hidden, t, h, i, e, top_k, ids, weights, gate, up, down, out, shared_i=0, shared=None):
    """gate, up, down, and shared's three: (data, scale_inv, block_n) tuples."""
    sg, su, sd = shared if shared else ((None, None, 128),) * 3
    return MoeExpertsArgs(hidden, t, h, i, e, top_k, ids, weights, Fp8Stack(*gate), Fp8Stack(*up), Fp8Stack(*down),
                          shared_i, Fp8Stack(*sg), Fp8Stack(*su), Fp8Stack(*sd), out)
