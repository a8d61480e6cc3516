// Self-tests of the SIMT emulator: does it have teeth? Prints one line per check, exits 1 on any failure.
// Built as simt-selftest (and simt-selftest-asan with AddressSanitizer); test/cuda-sim.test.ts runs it.
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "../cuda-compat.h"

namespace {

int g_failed = 0;
void check(bool ok, const std::string& what, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  if (!ok) g_failed++;
}

// Outputs placed by an atomic counter: the value set is right, the order depends on the schedule.
__global__ void place_by_atomic(unsigned* counter, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[atomicAdd(counter, 1u)] = static_cast<unsigned>(i) * 2654435761u;
}

// The same compaction with positions from a block scan (ballot + popc + a shared scan over warps).
__global__ void place_by_scan(unsigned* out, unsigned* count, int n) {
  GLMK_SHARED(unsigned[32], warp_base);
  GLMK_SHARED(unsigned, running);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (threadIdx.x == 0) running = 0;
  __syncthreads();
  for (int base = 0; base < n; base += blockDim.x) {
    int i = base + threadIdx.x;
    unsigned v = static_cast<unsigned>(i) * 2654435761u;
    bool keep = i < n && (v >> 7) % 3 == 0;
    unsigned b = __ballot_sync(0xFFFFFFFFu, keep);
    if (lane == 0) warp_base[warp] = __popc(b);
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned s = running;
      for (int w = 0; w < warps; w++) {
        unsigned c = warp_base[w];
        warp_base[w] = s;
        s += c;
      }
      running = s;
    }
    __syncthreads();
    if (keep) out[warp_base[warp] + __popc(b & ((1u << lane) - 1u))] = v;
    __syncthreads();
  }
  if (threadIdx.x == 0) *count = running;
}

// Neighbour exchange through shared memory; `barrier` false leaves out the __syncthreads (a race).
__global__ void rotate(const unsigned* in, unsigned* out, bool barrier) {
  GLMK_SHARED(unsigned[256], s);
  s[threadIdx.x] = in[threadIdx.x];
  if (barrier) __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

__global__ void divergent_barrier(unsigned* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void early_exit(unsigned* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void warp_waits_for_barrier(unsigned* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_sync(0xFFFFFFFFu, threadIdx.x, 0);
  }
}

__global__ void read_poison(unsigned* out) {
  GLMK_SHARED(unsigned[4], s);
  out[threadIdx.x] = s[threadIdx.x % 4];
}

__global__ void warp_ops(unsigned* out) {
  const unsigned t = threadIdx.x, lane = t & 31;
  unsigned v = t * 7u + 3u;
  unsigned* o = out + t * 16;
  o[0] = __shfl_sync(0xFFFFFFFFu, v, 5);
  o[1] = __shfl_sync(0xFFFFFFFFu, v, lane + 3, 16);
  o[2] = __shfl_up_sync(0xFFFFFFFFu, v, 3);
  o[3] = __shfl_up_sync(0xFFFFFFFFu, v, 2, 8);
  o[4] = __shfl_down_sync(0xFFFFFFFFu, v, 4);
  o[5] = __shfl_down_sync(0xFFFFFFFFu, v, 1, 4);
  o[6] = __shfl_xor_sync(0xFFFFFFFFu, v, 9);
  o[7] = __shfl_xor_sync(0xFFFFFFFFu, v, 1, 2);
  o[8] = __ballot_sync(0xFFFFFFFFu, (v % 3) == 0);
  o[9] = __any_sync(0xFFFFFFFFu, t == 37);
  o[10] = __all_sync(0xFFFFFFFFu, t < 40);
  o[11] = __popc(v) + 100u * __clz(v) + 10000u * __ffs(v);
  if (lane < 16) o[12] = __shfl_xor_sync(0x0000FFFFu, v, 3);
  else o[12] = __shfl_xor_sync(0xFFFF0000u, v, 5);
  __syncwarp();
  o[13] = static_cast<unsigned>(__shfl_sync(0xFFFFFFFFu, static_cast<unsigned long long>(v) << 33, 31) >> 33);
  o[14] = __syncthreads_count(t % 5 == 0);
  o[15] = __syncthreads_or(t == 63) + 2u * __syncthreads_and(t < 64);
}

__global__ void dyn_sum(const unsigned* in, unsigned* out) {
  unsigned* s = glmk_dyn_smem<unsigned>();
  s[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  __syncthreads();
  for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
    if (threadIdx.x < h) s[threadIdx.x] += s[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = s[0];
}

// Expected warp_ops results, from CUDA's definitions.
std::vector<unsigned> warp_ops_expected(unsigned threads) {
  std::vector<unsigned> e(threads * 16, 0);
  auto val = [](unsigned t) { return t * 7u + 3u; };
  for (unsigned t = 0; t < threads; t++) {
    unsigned lane = t & 31, w0 = t - lane, v = val(t), *o = &e[t * 16];
    auto at = [&](unsigned l) { return val(w0 + l); };
    o[0] = at(5);
    o[1] = at((lane & ~15u) + ((lane + 3) & 15u));
    o[2] = lane >= 3 ? at(lane - 3) : v;
    o[3] = (lane & 7u) >= 2 ? at(lane - 2) : v;
    o[4] = lane + 4 < 32 ? at(lane + 4) : v;
    o[5] = (lane & 3u) + 1 < 4 ? at(lane + 1) : v;
    o[6] = at(lane ^ 9);
    o[7] = at(lane ^ 1);
    unsigned b = 0;
    for (unsigned l = 0; l < 32; l++) b |= (at(l) % 3 == 0 ? 1u : 0u) << l;
    o[8] = b;
    o[9] = (w0 <= 37 && 37 < w0 + 32) ? 1u : 0u;
    o[10] = w0 + 31 < 40 ? 1u : 0u;
    o[11] = static_cast<unsigned>(__builtin_popcount(v) + 100 * __builtin_clz(v) + 10000 * (__builtin_ctz(v) + 1));
    o[12] = lane < 16 ? at(lane ^ 3) : at(16 + ((lane - 16) ^ 5));
    o[13] = at(31);
    unsigned cnt = 0;
    for (unsigned u = 0; u < threads; u++) cnt += u % 5 == 0;
    o[14] = cnt;
    o[15] = (threads > 63 ? 1u : 0u) + 2u * (threads <= 64 ? 1u : 0u);
  }
  return e;
}

struct Dev {
  cudaStream_t s;
  std::vector<void*> owned;
  Dev() { cudaStreamCreate(&s); }
  ~Dev() {
    cudaStreamDestroy(s);
    for (void* p : owned) cudaFree(p);
  }
  template <class T>
  T* alloc(size_t n) {
    void* p = nullptr;
    cudaMalloc(&p, n * sizeof(T));
    owned.push_back(p);
    cudaMemsetAsync(p, 0, n * sizeof(T), s);
    return static_cast<T*>(p);
  }
  template <class T>
  std::vector<T> read(const T* p, size_t n) {
    std::vector<T> v(n);
    cudaMemcpyAsync(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost, s);
    cudaStreamSynchronize(s);
    return v;
  }
  // Synchronizes; returns the emulator's failure text ("" when the launch ran clean).
  std::string finish() {
    cudaError_t e = cudaStreamSynchronize(s);
    return e == cudaSuccess ? "" : simt::stream_error_detail(s);
  }
};

uint64_t hash(const std::vector<unsigned>& v) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned x : v) h = (h ^ x) * 1099511628211ull;
  return h;
}

}  // namespace

int main() {
  const int n = 3000;
  {  // an atomic counter that places outputs: a different order under different seeds, same value set
    std::set<uint64_t> hashes;
    std::multiset<unsigned> first;
    bool same_values = true;
    for (uint64_t seed = 1; seed <= 8; seed++) {
      Dev d;
      simt::set_stream_seed(d.s, seed);
      unsigned* c = d.alloc<unsigned>(1);
      unsigned* out = d.alloc<unsigned>(n);
      GLMK_LAUNCH(place_by_atomic, (n + 127) / 128, 128, 0, d.s, c, out, n);
      auto v = d.read(out, n);
      hashes.insert(hash(v));
      std::multiset<unsigned> vs(v.begin(), v.end());
      if (seed == 1) first = vs;
      same_values = same_values && vs == first;
    }
    check(hashes.size() >= 7, "atomic-counter placement differs between seeds",
          std::to_string(hashes.size()) + " distinct outputs of 8");
    check(same_values, "atomic-counter placement keeps the value set");
  }
  {  // the same seed replays the same schedule
    std::set<uint64_t> hashes;
    for (int rep = 0; rep < 3; rep++) {
      Dev d;
      simt::set_stream_seed(d.s, 42);
      unsigned* c = d.alloc<unsigned>(1);
      unsigned* out = d.alloc<unsigned>(n);
      GLMK_LAUNCH(place_by_atomic, (n + 127) / 128, 128, 0, d.s, c, out, n);
      hashes.insert(hash(d.read(out, n)));
    }
    check(hashes.size() == 1, "one seed replays one schedule");
  }
  {  // scan placement: one output for every seed and block size
    std::set<uint64_t> hashes;
    unsigned want = 0;
    for (int i = 0; i < n; i++) want += ((static_cast<unsigned>(i) * 2654435761u) >> 7) % 3 == 0;
    bool counts = true;
    for (uint64_t seed = 1; seed <= 8; seed++)
      for (int threads : {64, 256, 1024}) {
        Dev d;
        simt::set_stream_seed(d.s, seed);
        unsigned* out = d.alloc<unsigned>(n);
        unsigned* cnt = d.alloc<unsigned>(1);
        GLMK_LAUNCH(place_by_scan, 1, threads, 0, d.s, out, cnt, n);
        hashes.insert(hash(d.read(out, n)));
        counts = counts && d.read(cnt, 1)[0] == want;
      }
    check(hashes.size() == 1 && counts, "scan placement is the same under 8 seeds x 3 block sizes");
  }
  {  // a missing __syncthreads is caught by some seed; with it, every seed agrees
    std::vector<unsigned> in(256);
    for (unsigned i = 0; i < 256; i++) in[i] = i * 31u + 7u;
    std::set<uint64_t> racy, fixed;
    for (uint64_t seed = 1; seed <= 8; seed++)
      for (bool barrier : {false, true}) {
        Dev d;
        simt::set_stream_seed(d.s, seed);
        unsigned* din = d.alloc<unsigned>(256);
        unsigned* out = d.alloc<unsigned>(256);
        cudaMemcpyAsync(din, in.data(), 256 * 4, cudaMemcpyHostToDevice, d.s);
        GLMK_LAUNCH(rotate, 1, 256, 0, d.s, din, out, barrier);
        (barrier ? fixed : racy).insert(hash(d.read(out, 256)));
      }
    check(racy.size() > 1, "a missing __syncthreads changes the output between seeds",
          std::to_string(racy.size()) + " distinct outputs of 8");
    check(fixed.size() == 1, "with the barrier every seed agrees");
  }
  auto expect_error = [](const char* what, const std::string& detail, const char* needle) {
    check(detail.find(needle) != std::string::npos, what, detail.empty() ? "no error reported" : detail);
  };
  {
    Dev d;
    unsigned* out = d.alloc<unsigned>(64);
    GLMK_LAUNCH(divergent_barrier, 1, 64, 0, d.s, out);
    expect_error("a divergent __syncthreads is reported", d.finish(), "divergent __syncthreads");
    GLMK_LAUNCH(early_exit, 1, 64, 0, d.s, out);
    expect_error("a barrier after some threads exit is reported", d.finish(), "reached by part of the block");
    GLMK_LAUNCH(warp_waits_for_barrier, 1, 32, 0, d.s, out);
    expect_error("a warp collective waiting on a barrier is a reported deadlock", d.finish(), "deadlock");
    GLMK_LAUNCH(read_poison, 1, 4, 0, d.s, out);
    auto v = d.read(out, 4);
    check(d.finish().empty() && v[0] == 0xFFFFFFFFu && v[3] == 0xFFFFFFFFu, "shared memory starts poisoned (0xFF)");
    GLMK_LAUNCH(place_by_scan, 1, 48, 0, d.s, out, out, 10);
    expect_error("a full-mask ballot in a partial warp is reported", d.finish(), "the warp has only lanes");
    GLMK_LAUNCH(rotate, 1, 2048, 0, d.s, out, out, true);
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block of 2048 threads is refused at launch");
    GLMK_LAUNCH(dyn_sum, 1, 64, 64 * 1024, d.s, out, out);
    check(cudaGetLastError() == cudaErrorInvalidValue, "64 KiB of dynamic shared memory without the opt-in is refused");
  }
  for (unsigned threads : {64u, 96u}) {  // warp collectives against CUDA's definitions
    Dev d;
    simt::set_stream_seed(d.s, 7 + threads);
    unsigned* out = d.alloc<unsigned>(threads * 16);
    GLMK_LAUNCH(warp_ops, 1, threads, 0, d.s, out);
    auto got = d.read(out, threads * 16);
    auto want = warp_ops_expected(threads);
    std::string err = d.finish();
    size_t bad = 0;
    while (bad < got.size() && got[bad] == want[bad]) bad++;
    check(err.empty() && bad == got.size(), "shuffles, ballots, votes and barrier counts match CUDA (" +
          std::to_string(threads) + " threads)",
          err.empty() && bad < got.size() ? "thread " + std::to_string(bad / 16) + " result " + std::to_string(bad % 16) +
                                                ": got " + std::to_string(got[bad]) + " want " + std::to_string(want[bad])
                                          : err);
  }
  {  // extern __shared__, several blocks
    Dev d;
    std::vector<unsigned> in(4 * 128);
    for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<unsigned>(i);
    unsigned* din = d.alloc<unsigned>(in.size());
    unsigned* out = d.alloc<unsigned>(4);
    cudaMemcpyAsync(din, in.data(), in.size() * 4, cudaMemcpyHostToDevice, d.s);
    GLMK_LAUNCH(dyn_sum, 4, 128, 128 * sizeof(unsigned), d.s, din, out);
    auto v = d.read(out, 4);
    bool ok = true;
    for (unsigned b = 0; b < 4; b++) ok = ok && v[b] == 128 * 128 * b + 127 * 128 / 2;
    check(ok && d.finish().empty(), "extern __shared__ is per block and sized by the launch");
  }
  std::printf("%s\n", g_failed ? "simt self-test FAILED" : "simt self-test passed");
  return g_failed ? 1 : 0;
}
