/*
 * glm-kernels device ABI.
 *
 * A device is a plain C table of function pointers. The CPU device lives inside the Node addon; accelerator
 * devices (cuda, cuda-sim, ascend) are shared libraries named libglmk-<kind>.so that export one symbol,
 * GLMK_PLUGIN_ENTRY. The host calls it with its own GLMK_ABI_VERSION and refuses any table whose
 * abi_version differs or whose struct_size is smaller than the host's, before touching another member.
 *
 * Rules every implementation follows:
 * - Nothing aborts. Every call returns a glmk_code and fills the glmk_status it was given (code + message,
 *   the vendor's own error text included) when it fails.
 * - A device is one in-order stream. upload/free/download and every op are enqueued in call order and
 *   return at once; sync() waits for everything enqueued before it and reports the first execution
 *   failure since the previous sync (the message starts with the failing op's name), then clears it.
 * - Device pointers are opaque to the host; it only hands them back to the same device.
 */
#ifndef GLMK_DEVICE_H
#define GLMK_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GLMK_ABI_VERSION 3u
#define GLMK_PLUGIN_ENTRY "glmk_plugin_entry"

#if defined(_WIN32)
#define GLMK_EXPORT __declspec(dllexport)
#else
#define GLMK_EXPORT __attribute__((visibility("default")))
#endif

/* Stable error codes; the JS layer maps them to GlmKernelsError.code ("E_ARG", ...). */
typedef enum glmk_code {
  GLMK_OK = 0,
  GLMK_E_ARG = 1,
  GLMK_E_DTYPE = 2,
  GLMK_E_SHAPE = 3,
  GLMK_E_DEVICE = 4,
  GLMK_E_OOM = 5,
  GLMK_E_UNSUPPORTED = 6,
  GLMK_E_PLUGIN = 7
} glmk_code;

typedef struct glmk_status {
  int32_t code;       /* glmk_code */
  char message[508];  /* NUL-terminated, truncated if longer */
} glmk_status;

typedef enum glmk_dtype {
  GLMK_F32 = 0,
  GLMK_F16 = 1,
  GLMK_BF16 = 2,
  GLMK_F8E4M3 = 3,
  GLMK_I32 = 4,
  GLMK_U8 = 5
} glmk_dtype;

typedef struct glmk_device glmk_device; /* opaque, defined by each implementation */

typedef struct glmk_open_options {
  int32_t ordinal;   /* cuda:N / ascend:N; 0 otherwise */
  int32_t threads;   /* CPU worker threads (>= 1) */
  uint64_t sim_seed; /* cuda-sim schedule seed */
  const char* isa;   /* CPU: "auto" | "avx512" | "avx2" | "scalar" (highest allowed) */
  int32_t spin_us;   /* CPU: how long an idle worker or stream thread polls for work before it sleeps */
  int32_t reserved;
} glmk_open_options;

typedef struct glmk_device_info {
  char kind[16];           /* "cpu", "cuda", "cuda-sim", "ascend" */
  char name[128];          /* e.g. CPU model or "NVIDIA H100 80GB HBM3" */
  char isa[16];            /* CPU: the instruction set in use; cuda: "<fp8 mma>/<int4 decode>" ("e4m3/fma"); else "" */
  char build[128];         /* compiler and toolkit the plugin was built with */
  char capabilities[256];  /* comma-separated ops, e.g. "topk" */
  uint64_t memory_bytes;   /* device memory (CPU: physical RAM) */
  int32_t threads;         /* CPU worker threads; accelerators: multiprocessors */
  int32_t ordinal;
} glmk_device_info;

/* topk: SPEC section 3. All pointers are device pointers of this device. */
typedef struct glmk_topk_args {
  const void* scores;         /* [rows, cols] of dtype */
  int32_t dtype;              /* GLMK_F32 | GLMK_F16 | GLMK_BF16 */
  int32_t reserved;
  int64_t rows, cols, k;      /* 1 <= k <= cols */
  const int32_t* lengths;     /* [rows] or NULL (cols - rowStarts[r]) */
  const int32_t* row_starts;  /* [rows] or NULL (0) */
  int32_t* indices;           /* [rows, k] out */
  float* values;              /* [rows, k] out */
} glmk_topk_args;

/* int4 (SPEC 4): symmetric int4 codes in groups of group_size along K (compressed-tensors pack-quantized).
 * All pointers are device pointers of this device. */
typedef struct glmk_int4_args {
  const void* w;       /* quantize, fake_quant_grad: the weights [n, k] of w_dtype (GLMK_F32 | GLMK_BF16) */
  int32_t w_dtype;
  int32_t levels;      /* 15: codes -7..7, s = bf16(amax / 7); 16: codes -8..7, s = bf16(amax / 7.5) */
  int64_t n, k;        /* k a multiple of 8 and of group_size */
  int64_t group_size;  /* 32, 64 or 128 */
  int32_t* packed;     /* [n, k / 8]: code q as the nibble q + 8, element i of a word at bits 4i..4i+3 */
  uint16_t* scales;    /* [n, k / group_size] bf16 */
  void* out;           /* dequantize: [n, k] of out_dtype (bf16, or f32: the bf16 values widened);
                        * fake_quant_grad: [n, k] of out_dtype (the gradient's dtype) */
  int32_t out_dtype;
  int32_t clip;        /* fake_quant_grad: 0 = grad passes unchanged; 1 = zero where the code was clamped */
  const void* grad;    /* fake_quant_grad: [n, k] of out_dtype */
} glmk_int4_args;

/* matmul (SPEC 4): y[m, n] = sum over k of x[m, k] * w[n, k], f32 accumulation in one written-down order
 * (per output: 16 partial sums over k mod 16, each a chain of fma in increasing k, then the fixed tree
 * ((p0+p8)+(p4+p12))+((p2+p10)+(p6+p14)) + ... (see devices/cpu/gemm.hpp)), output in x's dtype.
 * w is dense ([n, k] of w_dtype: GLMK_F32 | GLMK_F16 | GLMK_BF16) or int4 (w_dtype GLMK_W_INT4: packed and
 * scales as in glmk_int4_args, each weight decoded to bf16(q * s) exactly as int4 dequantize gives it). */
#define GLMK_W_INT4 100
typedef struct glmk_matmul_args {
  const void* x;         /* [m, k] of x_dtype (GLMK_F32 | GLMK_F16 | GLMK_BF16) */
  int32_t x_dtype;
  int32_t w_dtype;       /* GLMK_F32 | GLMK_F16 | GLMK_BF16 | GLMK_W_INT4 */
  int64_t m, n, k;
  const void* w;         /* dense weights */
  const int32_t* packed; /* int4: [n, k / 8] */
  const uint16_t* scales;/* int4: [n, k / group_size] bf16 */
  int64_t group_size;
  void* y;               /* [m, n] of x_dtype */
} glmk_matmul_args;

/* fp8 (SPEC 5): E4M3FN weights with one f32 scaleInv per block of the last two dims (glmk/fp8-arith.h). */
typedef struct glmk_fp8_args {
  const void* w;        /* quantize: [batch, n, k] of w_dtype (GLMK_F32 | GLMK_F16 | GLMK_BF16) */
  int32_t w_dtype;
  int32_t out_dtype;    /* dequantize: GLMK_F32 | GLMK_F16 | GLMK_BF16 */
  int64_t batch, n, k;  /* batch: the product of the leading dims */
  int64_t block_n, block_k;
  uint8_t* data;        /* [batch, n, k] e4m3 codes */
  float* scale_inv;     /* [batch, ceil(n / block_n), ceil(k / block_k)] */
  void* out;            /* dequantize: [batch, n, k] of out_dtype */
} glmk_fp8_args;

/* fp8.matmul (SPEC 5): y[m, n] = sum over 128-K blocks j of (p(m, n, j) * sa[m, j]) * scale_inv[n / block_n, j],
 * added in increasing j from +0, where x row m is quantized per 128 channels on the fly (sa = the row block's
 * scaleInv, a8 = e4m3(x / sa)) and p is the block's dot product of a8 and the weight codes in the matmul
 * order (16 partial fma chains over k mod 16, the fixed tree); y rounded once to y_dtype (bf16 per SPEC 5;
 * f32 keeps the accumulator's bits). */
typedef struct glmk_fp8_matmul_args {
  const uint16_t* x;       /* [m, k] bf16 */
  int64_t m, n, k;
  const uint8_t* data;     /* [n, k] e4m3 */
  const float* scale_inv;  /* [ceil(n / block_n), ceil(k / 128)] */
  int64_t block_n;         /* 1 or 128 (the weight blocks' rows; their columns are 128) */
  void* y;                 /* [m, n] of y_dtype */
  int32_t y_dtype;         /* GLMK_BF16 | GLMK_F32 */
  int32_t reserved;
} glmk_fp8_matmul_args;

/* moe (SPEC 5). route: per token, logits[e] = the f32 dot product of hidden row t and gate row e in the
 * matmul order above (inputs widened exactly), then glmk_moe_select (glmk/moe-arith.h). */
typedef struct glmk_moe_route_args {
  const void* hidden;       /* [t, h] of hidden_dtype (GLMK_BF16 | GLMK_F16 | GLMK_F32) */
  const void* gate;         /* [e, h] of gate_dtype (GLMK_BF16 | GLMK_F16 | GLMK_F32) */
  int32_t hidden_dtype, gate_dtype;
  const float* bias;        /* [e] f32, or NULL (zeros) */
  int64_t t, h, e;
  int32_t top_k, n_group, topk_group, norm_topk_prob;
  float routed_scaling_factor;
  int32_t reserved;
  int32_t* ids;             /* [t, top_k] out */
  float* weights;           /* [t, top_k] out */
} glmk_moe_route_args;

/* One stack of fp8 weights: data [e, n, k] e4m3, scale_inv [e, ceil(n / block_n), ceil(k / 128)] f32. */
typedef struct glmk_fp8_stack {
  const uint8_t* data;
  const float* scale_inv;
  int64_t block_n;          /* 1 or 128 */
} glmk_fp8_stack;

/* moe.experts: per (token t, slot j) with expert x = ids[t, j] (x == -1: the slot adds nothing; any other
 * id outside [0, e) fails the op), g = fp8.matmul(hidden[t], gate[x]), u = fp8.matmul(hidden[t], up[x])
 * (bf16 out), h = bf16(silu(f32(g)) * f32(u)), y = fp8.matmul(h, down[x]) (bf16 out);
 * out[t] = bf16(((+0 + w0 * y0) + w1 * y1) + ... (slot order, each product rounded) + f32(shared(hidden[t])))
 * where shared is the same SwiGLU on the shared stacks (e = 1) when shared_i > 0. */
typedef struct glmk_moe_experts_args {
  const uint16_t* hidden;   /* [t, h] bf16 */
  int64_t t, h, i, e, top_k;
  const int32_t* ids;       /* [t, top_k] */
  const float* weights;     /* [t, top_k] */
  glmk_fp8_stack gate, up;  /* [e, i, h] */
  glmk_fp8_stack down;      /* [e, h, i] */
  int64_t shared_i;         /* 0: no shared expert */
  glmk_fp8_stack shared_gate, shared_up; /* [1, shared_i, h] */
  glmk_fp8_stack shared_down;            /* [1, h, shared_i] */
  uint16_t* out;            /* [t, h] bf16 */
} glmk_moe_experts_args;

/* sync_notify's callback: what sync() would have returned (code GLMK_OK and message "" when all went well). */
typedef void (*glmk_done_fn)(void* user, int code, const char* message);

/* What a device holds (memory_stats). */
typedef struct glmk_memory_stats {
  uint64_t live_bytes;    /* allocated and not yet freed (stream-ordered frees count once they ran) */
  uint64_t cached_bytes;  /* freed, kept by the device for reuse, not yet returned to the system */
} glmk_memory_stats;

typedef struct glmk_device_api {
  /* Checked by the loader before anything else. */
  uint32_t abi_version;
  uint32_t struct_size;
  const char* kind;

  /* Number of devices of this kind (0 when no driver / no hardware: not an error). */
  int (*device_count)(int32_t* count, glmk_status* st);
  /* Open device options->ordinal. */
  int (*open)(const glmk_open_options* options, glmk_device** out, glmk_status* st);
  /* Waits for the stream, releases everything. */
  void (*close)(glmk_device* dev);
  int (*info)(glmk_device* dev, glmk_device_info* out, glmk_status* st);

  /* Memory. alloc is immediate; free is stream-ordered (after all work enqueued before it). */
  int (*alloc)(glmk_device* dev, size_t bytes, void** out, glmk_status* st);
  int (*free)(glmk_device* dev, void* ptr, glmk_status* st);
  /* Host -> device, enqueued; src may be reused as soon as the call returns. */
  int (*upload)(glmk_device* dev, void* dst, const void* src, size_t bytes, glmk_status* st);
  /* Device -> host, enqueued; dst must stay valid until a sync() returns. */
  int (*download)(glmk_device* dev, void* dst, const void* src, size_t bytes, glmk_status* st);
  /* Waits for all work enqueued before this call; returns the first execution failure since last sync. */
  int (*sync)(glmk_device* dev, glmk_status* st);
  /* Optional (NULL: the host waits in sync() on a thread of its own). Returns at once; once all work
   * enqueued before this call is done, calls done(user, ...) once, from a thread of the device, with what
   * sync() would return then (and clears that failure, as sync() does). done must not call into the device.
   * Saves the host a thread that only waits, and one thread wake-up per sync. */
  int (*sync_notify)(glmk_device* dev, glmk_done_fn done, void* user, glmk_status* st);

  /* Ops (optional: NULL means E_UNSUPPORTED on this device). */
  int (*topk)(glmk_device* dev, const glmk_topk_args* args, glmk_status* st);

  /* ABI 3. Memory (optional). */
  int (*memory_stats)(glmk_device* dev, glmk_memory_stats* out, glmk_status* st);
  /* Returns every cached block to the system now (blocks still in use stay). */
  int (*empty_cache)(glmk_device* dev, glmk_status* st);
  /* Optional. Host -> device like upload, but src is read in stream order instead of during the call (so a
   * big copy leaves the calling thread): src must stay valid, and should stay unchanged, until the device
   * calls release(user, code, message) once, from a thread of its own, when it no longer reads src. release
   * does not take a pending failure (unlike sync_notify's done) and must not call into the device. */
  int (*upload_deferred)(glmk_device* dev, void* dst, const void* src, size_t bytes, glmk_done_fn release,
                         void* user, glmk_status* st);
  /* Optional. sync() without waiting: when nothing enqueued is still queued or running, sets *done = 1 and
   * returns what sync() would (clearing that failure); otherwise sets *done = 0 and returns GLMK_OK. Lets
   * the host settle a read() at once when the device already got there. */
  int (*sync_poll)(glmk_device* dev, int32_t* done, glmk_status* st);

  /* ABI 3. int4 (optional ops). quantize: w -> packed, scales; dequantize: packed, scales -> out;
   * fake_quant_grad: grad -> out (see glmk_int4_args). */
  int (*int4_quantize)(glmk_device* dev, const glmk_int4_args* args, glmk_status* st);
  int (*int4_dequantize)(glmk_device* dev, const glmk_int4_args* args, glmk_status* st);
  int (*int4_fake_quant_grad)(glmk_device* dev, const glmk_int4_args* args, glmk_status* st);
  /* ABI 3. Dense and int4 matmul (optional). */
  int (*matmul)(glmk_device* dev, const glmk_matmul_args* args, glmk_status* st);
  /* ABI 3. fp8 block quantization (optional). */
  int (*fp8_quantize)(glmk_device* dev, const glmk_fp8_args* args, glmk_status* st);
  int (*fp8_dequantize)(glmk_device* dev, const glmk_fp8_args* args, glmk_status* st);
  int (*fp8_matmul)(glmk_device* dev, const glmk_fp8_matmul_args* args, glmk_status* st);
  /* ABI 3. MoE (optional). */
  int (*moe_route)(glmk_device* dev, const glmk_moe_route_args* args, glmk_status* st);
  int (*moe_experts)(glmk_device* dev, const glmk_moe_experts_args* args, glmk_status* st);
} glmk_device_api;

typedef const glmk_device_api* (*glmk_plugin_entry_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* GLMK_DEVICE_H */
