// Memory bandwidth of this machine, measured beside the benchmarks (bench/): a streaming read over a
// buffer far larger than the L3 cache, split over `threads` threads, and a memcpy.
#include <napi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace glmk::addon {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A plain loop that the compiler vectorizes; the AVX2 clone is taken where the CPU has it.
__attribute__((target_clones("avx2", "default"))) uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0;
  for (size_t i = 0; i < n; i++) a += p[i];
  return a;
}

// Reads src[0..words) split over `threads` threads (this one among them); returns the GB/s. The clock
// starts once every thread is up (so thread start-up is not counted) and stops when the last is done.
double read_pass(const uint64_t* src, size_t words, int threads, volatile uint64_t* sink) {
  std::vector<uint64_t> partial(static_cast<size_t>(threads));
  std::atomic<int> up{0};
  std::atomic<bool> go{false};
  auto part = [&](int t) {
    size_t b = words * t / threads, e = words * (t + 1) / threads;
    partial[t] = sum_words(src + b, e - b);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; t++)
    pool.emplace_back([&, t] {
      up.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      part(t);
    });
  while (up.load() < threads - 1) std::this_thread::yield();
  const double t0 = now_s();
  go.store(true, std::memory_order_release);
  part(0);
  for (auto& th : pool) th.join();
  const double t1 = now_s();
  for (auto v : partial) *sink = *sink + v;
  return static_cast<double>(words * 8) / (t1 - t0) / 1e9;
}

}  // namespace

// measureBandwidth(megabytes, threads, repeats) -> { readGBs, copyGBs } (best of repeats)
// NOTE: a pass that follows writes (the buffer's fill, a copy) also pays for writing the dirty lines still
// in the caches back to memory: a read pass over 128 MiB right after a copy ran at about a third less, and
// so did whatever ran next (a benchmark's calls). So the copies run first, then one untimed read pass that
// evicts their dirty lines, then the timed read passes: the caches are left holding clean lines only.
Napi::Value MeasureBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t bytes = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value()) << 20;
  int threads = info[1].As<Napi::Number>().Int32Value();
  int repeats = info[2].As<Napi::Number>().Int32Value();
  size_t words = bytes / 8;
  std::vector<uint64_t> src(words, 1);
  volatile uint64_t sink = 0;
  double best_read = 0, best_copy = 0;
  {
    std::vector<uint64_t> dst(words / 2);
    read_pass(src.data(), words, threads, &sink);
    for (int r = 0; r < repeats; r++) {
      double t2 = now_s();
      std::memcpy(dst.data(), src.data() + (r % 2) * (words / 2), dst.size() * 8);
      double t3 = now_s();
      best_copy = std::max(best_copy, 2.0 * static_cast<double>(dst.size() * 8) / (t3 - t2) / 1e9);
    }
    sink = sink + dst[dst.size() / 2];  // (the copies are used)
  }
  read_pass(src.data(), words, threads, &sink);
  for (int r = 0; r < repeats; r++) best_read = std::max(best_read, read_pass(src.data(), words, threads, &sink));
  auto o = Napi::Object::New(env);
  o.Set("readGBs", best_read);
  o.Set("copyGBs", best_copy);
  return o;
}

}  // namespace glmk::addon

namespace glmk::addon {

// readPass(buffer, threads) -> GB/s: one timed read of an ArrayBuffer (or a view's bytes) that the caller
// keeps between passes, for measurements interleaved with other work (bench/: top-k's paired windows).
Napi::Value ReadPass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* data;
  size_t bytes;
  if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(ab.Data());
    bytes = ab.ByteLength();
  } else {
    auto ta = info[0].As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    bytes = ta.ByteLength();
  }
  const int threads = info[1].As<Napi::Number>().Int32Value();
  if (threads < 1 || bytes < 8 * static_cast<size_t>(threads) || reinterpret_cast<uintptr_t>(data) % 8)
    throw Napi::RangeError::New(env, "readPass: expected an 8-byte aligned buffer of at least 8 bytes per thread");
  volatile uint64_t sink = 0;
  return Napi::Number::New(env, read_pass(reinterpret_cast<const uint64_t*>(data), bytes / 8, threads, &sink));
}

}  // namespace glmk::addon
