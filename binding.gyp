{
  "targets": [
    {
      "target_name": "glm_kernels",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/device-wrap.cc",
        "native/addon/ops-wrap.cc",
        "native/addon/plugin-loader.cc",
        "native/addon/membw.cc",
        "native/addon/clock.cc",
        "native/addon/sync-hub.cc",
        "native/addon/moe-wrap.cc",
        "devices/cpu/device.cc",
        "devices/cpu/block-cache.cc",
        "devices/cpu/stream.cc",
        "devices/cpu/isa.cc",
        "devices/cpu/int4.cc",
        "devices/cpu/fp8.cc",
        "devices/cpu/moe.cc",
        "devices/cpu/gemm.cc",
        "devices/cpu/gemm-simd.cc",
        "devices/cpu/gemm-int4-avx2.cc",
        "devices/cpu/gemm-int4-avx512.cc",
        "devices/cpu/gemm-int4-vbmi.cc",
        "devices/cpu/gemm-int4-bf16.cc",
        "devices/cpu/fp8-matmul-avx512.cc",
        "devices/cpu/fp8-matmul-bf16.cc",
        "devices/cpu/topk.cc",
        "devices/cpu/topk-simd.cc",
        "devices/cpu/topk-order.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "devices/cpu"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-ffp-contract=off", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-maybe-uninitialized"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
