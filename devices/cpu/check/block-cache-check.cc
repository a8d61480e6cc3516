// The CPU device's block cache (devices/cpu/block-cache.cc): blocks of every size class (small, general,
// 256 KiB .. 1 MiB slots in 2 MiB chunks, huge) never overlap, are 64-byte aligned, keep their bytes while
// others come and go, and the cache's counts and capacity hold; under AddressSanitizer (CI) also no block
// is used after it went back to the system, and a cache closed with blocks live frees them.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../block-cache.hpp"

using glmk::cpu::BlockCache;

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok && failures++ < 20) std::printf("FAIL %s\n", what);
}

struct Block {
  uint8_t* p;
  size_t bytes;
  uint8_t tag;
};

void fill(const Block& b) { std::memset(b.p, b.tag, b.bytes); }
bool intact(const Block& b) {
  for (size_t i = 0; i < b.bytes; i += 4093)
    if (b.p[i] != b.tag) return false;
  return b.p[b.bytes - 1] == b.tag;
}

}  // namespace

int main() {
  const size_t sizes[] = {100, 70 << 10, 200 << 10, 256 << 10, 300 << 10, 512 << 10, 700 << 10, 1 << 20, (1 << 20) + 64, 3 << 20};
  std::mt19937 rng(5);
  {
    BlockCache cache(size_t{64} << 20);
    std::vector<Block> live;
    uint8_t tag = 1;
    for (int round = 0; round < 2000; round++) {
      if (live.size() < 40 && (live.empty() || rng() % 3 != 0)) {
        const size_t bytes = sizes[rng() % (sizeof sizes / sizeof sizes[0])];
        Block b{static_cast<uint8_t*>(cache.alloc(bytes)), bytes, tag++};
        if (!tag) tag = 1;
        expect(b.p != nullptr, "alloc returns a block");
        if (!b.p) continue;
        expect(reinterpret_cast<uintptr_t>(b.p) % 64 == 0, "64-byte aligned");
        fill(b);
        live.push_back(b);
      } else {
        const size_t i = rng() % live.size();
        expect(intact(live[i]), "a block keeps its bytes while others come and go (no overlap)");
        cache.free(live[i].p);
        live[i] = live.back();
        live.pop_back();
      }
      expect(cache.cached_bytes() <= (size_t{64} << 20) + BlockCache::kHugePage, "cached bytes within the capacity");
    }
    for (const Block& b : live) expect(intact(b), "every live block intact at the end");
    const size_t half = live.size() / 2;
    for (size_t i = 0; i < half; i++) cache.free(live[i].p);
    cache.empty();
    for (size_t i = half; i < live.size(); i++) expect(intact(live[i]), "empty() leaves live blocks alone");
    for (size_t i = half; i < live.size(); i++) cache.free(live[i].p);
    cache.empty();
    expect(cache.cached_bytes() == 0 && cache.live_bytes() == 0, "nothing cached or live after all frees and empty()");
  }
  {  // a small capacity: freed slots beyond it go back with their chunks
    BlockCache cache(size_t{4} << 20);
    std::vector<void*> blocks;
    for (int i = 0; i < 40; i++) blocks.push_back(cache.alloc(512 << 10));
    expect(cache.live_bytes() == size_t{40} * (512 << 10), "40 slots of 512 KiB live");
    for (void* p : blocks) cache.free(p);
    expect(cache.cached_bytes() <= (size_t{4} << 20) + BlockCache::kHugePage, "a small capacity bounds what stays cached");
    void* again = cache.alloc(400 << 10);  // (a 512 KiB slot)
    expect(again != nullptr, "a slot again after the chunks went back");
    std::memset(again, 7, 400 << 10);
    // the cache closes with `again` live: its destructor frees it (LeakSanitizer under ASan)
  }
  if (failures) {
    std::printf("block-cache-check: %d failures\n", failures);
    return 1;
  }
  std::printf("block-cache-check: ok (every size class, 2000 random allocs and frees, capacity, empty())\n");
  return 0;
}
