// What the C++ reference checks share (fp8-moe-check.cc, matmul-check.cc): a hash for seeded inputs, device
// buffers held for one check run, and a bitwise comparison.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "glmk/device.h"

namespace glmk_check {

inline uint32_t mix32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x ^ (x >> 29));
}

// An open device, the buffers put on it (freed at the end) and whether every check so far passed.
struct Ctx {
  const glmk_device_api* api;
  glmk_device* d;
  glmk_status st{};
  std::vector<void*> held;
  bool ok = true;
  void* put(const void* src, size_t bytes) {
    void* p = nullptr;
    if (api->alloc(d, bytes, &p, &st) != GLMK_OK) return nullptr;
    if (src) api->upload(d, p, src, bytes, &st);
    held.push_back(p);
    return p;
  }
  template <class T>
  std::vector<T> get(const void* p, size_t n) {
    std::vector<T> out(n);
    api->download(d, out.data(), p, n * sizeof(T), &st);
    return out;
  }
  void report(bool good, const char* what, uint64_t seed) {
    std::printf("%s %s seed %llu%s%s\n", good ? "ok  " : "FAIL", what, static_cast<unsigned long long>(seed), st.code ? ": " : "", st.code ? st.message : "");
    ok = ok && good;
  }
  ~Ctx() {
    for (void* p : held) api->free(d, p, &st);
    api->sync(d, &st);
  }
};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace glmk_check
