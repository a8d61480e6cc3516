// The cuda device's deferred uploads and idle pool trim (devices/cuda/upload.hpp), straight through the
// device ABI (no Node). Built as upload-sim-check, linked with the cuda-sim plugin's sources (and
// upload-sim-check-asan with GLMK_SIM_ASAN; test/cuda-sim.test.ts runs it), and as upload-check, which
// dlopens the plugin named by its argument (bench/gpu/acceptance.sh: `upload-check .../libglmk-cuda.so`).
// Checks: the bytes arrive (odd sizes, chunk tails, many
// uploads in a row through the 4 staging slots, an empty one); a top-k enqueued right after the upload
// sees the data; release is called exactly once, from another thread, and only after the source was read
// (the source is overwritten right after release and the device must still hold the old bytes); close()
// with uploads in flight calls every release before it returns; the pool's cached bytes go back after a
// second idle.
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "glmk/device.h"

extern "C" const glmk_device_api* glmk_plugin_entry(uint32_t) __attribute__((weak));  // linked: upload-sim-check

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                             \
  do {                                               \
    if (!(cond)) {                                   \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      std::printf(__VA_ARGS__);                      \
      std::printf("\n");                             \
      g_failures++;                                  \
    }                                                \
  } while (0)

struct Release {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0, code = -1;
  std::thread::id thread;
  std::vector<unsigned char>* src = nullptr;  // overwritten at release: the device must be done with it
  bool wait(int n, int ms = 5000) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::milliseconds(ms), [&] { return calls >= n; });
  }
};

void on_release(void* user, int code, const char*) {
  Release* r = static_cast<Release*>(user);
  std::lock_guard<std::mutex> l(r->mu);
  r->calls++, r->code = code, r->thread = std::this_thread::get_id();
  if (r->src) std::memset(r->src->data(), 0xEE, r->src->size());
  r->cv.notify_all();
}

unsigned char byte_at(size_t i, int salt) { return static_cast<unsigned char>((i * 131 + salt * 7 + (i >> 13)) & 0xFF); }

}  // namespace

int main(int argc, char** argv) {
  glmk_plugin_entry_fn entry = glmk_plugin_entry;
  if (argc > 1) {
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    entry = lib ? reinterpret_cast<glmk_plugin_entry_fn>(dlsym(lib, GLMK_PLUGIN_ENTRY)) : nullptr;
    if (!entry) {
      std::printf("FAIL: cannot load %s: %s\n", argv[1], dlerror());
      return 1;
    }
  }
  if (!entry) {
    std::printf("usage: upload-check path/to/libglmk-<kind>.so\n");
    return 2;
  }
  const glmk_device_api* api = entry(GLMK_ABI_VERSION);
  glmk_status st{};
  glmk_open_options o{};
  o.sim_seed = 1;
  glmk_device* d = nullptr;
  if (api->open(&o, &d, &st) != GLMK_OK || !api->upload_deferred) {
    std::printf("FAIL: open: %s (upload_deferred %s)\n", st.message, api->upload_deferred ? "set" : "missing");
    return 1;
  }
  glmk_device_info info{};
  api->info(d, &info, &st);
  const bool sim = std::strcmp(info.kind, "cuda-sim") == 0;

  // cuda-sim with GLMK_SIM_HOSTFN_FAIL_AT=3: the first upload's third gate cannot be enqueued. The call
  // fails (release never called), the next sync reports it, the gates already enqueued do not hang the
  // stream, and the next upload works.
  if (sim && std::getenv("GLMK_SIM_HOSTFN_FAIL_AT")) {
    std::vector<unsigned char> src(size_t{20} << 20), back(src.size());
    for (size_t j = 0; j < src.size(); j++) src[j] = byte_at(j, 3);
    Release r1, r2;
    void* p = nullptr;
    api->alloc(d, src.size(), &p, &st);
    CHECK(api->upload_deferred(d, p, src.data(), src.size(), on_release, &r1, &st) != GLMK_OK, "the failed enqueue returned OK");
    std::printf("upload_deferred: %s\n", st.message);
    CHECK(api->sync(d, &st) != GLMK_OK && std::strstr(st.message, "upload"), "sync after a failed upload: %s", st.message);
    std::printf("sync: %s\n", st.message);
    CHECK(api->sync(d, &st) == GLMK_OK, "the sync after: %s", st.message);
    CHECK(api->upload_deferred(d, p, src.data(), src.size(), on_release, &r2, &st) == GLMK_OK, "%s", st.message);
    api->download(d, back.data(), p, back.size(), &st);
    CHECK(api->sync(d, &st) == GLMK_OK, "sync: %s", st.message);
    CHECK(back == src, "the upload after a failed one: wrong bytes");
    CHECK(r2.wait(1), "release never called");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(r1.calls == 0 && r2.calls == 1, "release calls: %d (failed upload), %d", r1.calls, r2.calls);
    api->free(d, p, &st);
    api->close(d);
    std::printf(g_failures ? "%d check(s) failed\n" : "upload-check on cuda-sim (a failed enqueue): ok\n", g_failures);
    return g_failures ? 1 : 0;
  }

  // 1. Sizes around the 4 MiB chunks, many in a row (slots reused across uploads), each read back.
  const size_t sizes[] = {0, 1, (size_t{4} << 20) - 1, size_t{4} << 20, (size_t{4} << 20) + 1, (size_t{21} << 20) + 77,
                          size_t{3} << 20, (size_t{9} << 20) + 5};
  for (int round = 0; round < 2; round++) {
    std::vector<std::vector<unsigned char>> src, back;
    std::vector<void*> dst;
    std::vector<Release> rel(sizeof sizes / sizeof *sizes);
    src.reserve(rel.size()), back.reserve(rel.size());  // rel[i].src points into src
    for (size_t i = 0; i < rel.size(); i++) {
      const size_t n = sizes[i];
      src.emplace_back(n);
      for (size_t j = 0; j < n; j++) src[i][j] = byte_at(j, static_cast<int>(i + round));
      rel[i].src = &src[i];
      void* p = nullptr;
      CHECK(api->alloc(d, n, &p, &st) == GLMK_OK, "alloc %zu: %s", n, st.message);
      dst.push_back(p);
      CHECK(api->upload_deferred(d, p, src[i].data(), n, on_release, &rel[i], &st) == GLMK_OK, "upload_deferred: %s",
            st.message);
    }
    for (size_t i = 0; i < rel.size(); i++) {  // downloads enqueued behind the uploads, without a sync between
      back.emplace_back(sizes[i]);
      if (sizes[i]) CHECK(api->download(d, back[i].data(), dst[i], sizes[i], &st) == GLMK_OK, "download: %s", st.message);
    }
    CHECK(api->sync(d, &st) == GLMK_OK, "sync: %s", st.message);
    for (size_t i = 0; i < rel.size(); i++) {
      CHECK(rel[i].wait(1), "release %zu never called", i);
      size_t bad = sizes[i];
      for (size_t j = 0; j < sizes[i] && bad == sizes[i]; j++)
        if (back[i][j] != byte_at(j, static_cast<int>(i + round))) bad = j;
      CHECK(bad == sizes[i], "upload %zu (%zu bytes): wrong byte at %zu", i, sizes[i], bad);
      CHECK(rel[i].code == GLMK_OK, "release %zu code %d", i, rel[i].code);
      CHECK(rel[i].thread != std::this_thread::get_id(), "release %zu called on the calling thread", i);
      api->free(d, dst[i], &st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (size_t i = 0; i < rel.size(); i++) CHECK(rel[i].calls == 1, "release %zu called %d times", i, rel[i].calls);
  }

  // 2. A top-k enqueued right after a 32 MiB upload (no sync between) sees the uploaded scores.
  {
    const int64_t rows = 4, cols = (int64_t{8} << 20) / rows;
    std::vector<float> scores(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < scores.size(); i++) scores[i] = static_cast<float>((i * 7919) % 1000003) * 1e-6f;
    int64_t want[4];
    for (int64_t r = 0; r < rows; r++) {
      int64_t best = 0;
      for (int64_t c = 1; c < cols; c++)
        if (scores[r * cols + c] > scores[r * cols + best]) best = c;
      want[r] = best;
    }
    std::vector<unsigned char> bytes(scores.size() * 4);
    std::memcpy(bytes.data(), scores.data(), bytes.size());
    Release rel;
    rel.src = &bytes;
    void *s = nullptr, *idx = nullptr, *val = nullptr;
    api->alloc(d, bytes.size(), &s, &st);
    api->alloc(d, rows * 4, &idx, &st);
    api->alloc(d, rows * 4, &val, &st);
    CHECK(api->upload_deferred(d, s, bytes.data(), bytes.size(), on_release, &rel, &st) == GLMK_OK, "%s", st.message);
    glmk_topk_args a{};
    a.scores = s, a.dtype = GLMK_F32, a.rows = rows, a.cols = cols, a.k = 1;
    a.indices = static_cast<int32_t*>(idx), a.values = static_cast<float*>(val);
    CHECK(api->topk(d, &a, &st) == GLMK_OK, "topk: %s", st.message);
    int32_t got[4] = {};
    api->download(d, got, idx, sizeof got, &st);
    CHECK(api->sync(d, &st) == GLMK_OK, "sync: %s", st.message);
    for (int r = 0; r < rows; r++) CHECK(got[r] == want[r], "topk row %d: %d, want %lld", r, got[r], static_cast<long long>(want[r]));
    CHECK(rel.wait(1) && rel.calls == 1, "release: %d calls", rel.calls);
    for (void* p : {s, idx, val}) api->free(d, p, &st);
  }

  // 3. The pool keeps freed blocks, gives them back after a second idle; emptyCache at once.
  if (api->memory_stats) {
    glmk_memory_stats m{};
    void* p = nullptr;
    api->sync(d, &st);
    api->alloc(d, size_t{8} << 20, &p, &st);
    api->free(d, p, &st);
    api->sync(d, &st);
    api->memory_stats(d, &m, &st);
    CHECK(m.cached_bytes >= (size_t{8} << 20), "cached after free: %llu", static_cast<unsigned long long>(m.cached_bytes));
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    api->memory_stats(d, &m, &st);
    // (on a GPU the pool maps in granules: what top-k's live workspace shares one with may stay)
    CHECK(sim ? m.cached_bytes == 0 : m.cached_bytes < (size_t{8} << 20), "cached after a second idle: %llu",
          static_cast<unsigned long long>(m.cached_bytes));
    api->alloc(d, size_t{8} << 20, &p, &st);
    api->free(d, p, &st);
    api->sync(d, &st);
    api->memory_stats(d, &m, &st);
    CHECK(m.cached_bytes >= (size_t{8} << 20), "cached again: %llu", static_cast<unsigned long long>(m.cached_bytes));
    api->empty_cache(d, &st);
    api->memory_stats(d, &m, &st);
    CHECK(sim ? m.cached_bytes == 0 : m.cached_bytes < (size_t{8} << 20), "cached after empty_cache: %llu",
          static_cast<unsigned long long>(m.cached_bytes));
  }

  // 4. close() with uploads in flight: every release is called before close returns.
  {
    std::vector<unsigned char> big(size_t{24} << 20, 0x5A);
    Release rel[3];
    void* p[3];
    for (int i = 0; i < 3; i++) {
      api->alloc(d, big.size(), &p[i], &st);
      CHECK(api->upload_deferred(d, p[i], big.data(), big.size(), on_release, &rel[i], &st) == GLMK_OK, "%s", st.message);
    }
    for (int i = 0; i < 3; i++) api->free(d, p[i], &st);
    api->close(d);
    for (int i = 0; i < 3; i++) CHECK(rel[i].calls == 1 && rel[i].code == GLMK_OK, "release %d at close: %d calls, code %d", i,
                                      rel[i].calls, rel[i].code);
  }

  if (g_failures) {
    std::printf("%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("upload-check on %s: ok\n", info.kind);
  return 0;
}
