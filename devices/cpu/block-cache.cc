#include "block-cache.hpp"

#include <cstdint>
#include <cstdlib>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace glmk::cpu {

namespace {
int slot_class(size_t slot) { return slot == BlockCache::kSlabMin ? 0 : slot == 2 * BlockCache::kSlabMin ? 1 : 2; }
// Whether a live block of this size is a slot: every request in the range gets one, and a general block
// (reused for up to 1.25x its request) is never in it.
bool is_slot(size_t size) { return size >= BlockCache::kSlabMin && size <= BlockCache::kSlabMax; }
}  // namespace

BlockCache::~BlockCache() {
  for (auto& kv : idle_) std::free(kv.second);
  for (auto& kv : live_)  // blocks never freed by the host (the device is closing); slots go with their chunk
    if (!is_slot(kv.second)) std::free(kv.first);
  for (auto& kv : chunk_used_) std::free(kv.first);
}

// NOTE: a 512 KiB block on 4 KiB pages costs a TLB miss per 4 KiB on a cold pass: a top-k of one 1 x 131072
// f32 row (512 KiB) took 26.5-28.4 us on 4 KiB pages and 23.6-25.2 us on a huge page (split over 2
// threads; alone 29.9-31.6 against 27.5-28.4; a C++ harness, 256 rows cold). So blocks of 256 KiB to 1 MiB
// take a slot of the next power of two in a 2 MiB chunk that asks for a huge page: a block costs up to 2x
// its size (a 1 x 131072 f32 or bf16 row: none), and a chunk goes back to the system once none of its
// slots is in use and the cache is over its capacity or emptied.
void* BlockCache::alloc_slot(size_t slot) {
  std::vector<void*>& list = free_slots_[slot_class(slot)];
  if (list.empty()) {
    char* chunk = static_cast<char*>(alloc_huge(kHugePage));
    if (!chunk) return nullptr;
    chunk_used_[chunk] = 0;
    idle_bytes_ += kHugePage;
    for (size_t off = kHugePage; off > 0; off -= slot) list.push_back(chunk + off - slot);  // (first slot last)
  }
  void* p = list.back();
  list.pop_back();
  idle_bytes_ -= slot;
  chunk_used_[reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(kHugePage - 1))]++;
  return p;
}

void BlockCache::free_slot(void* p, size_t slot) {
  free_slots_[slot_class(slot)].push_back(p);
  idle_bytes_ += slot;
  chunk_used_[reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(kHugePage - 1))]--;
}

void BlockCache::release_free_chunks(std::vector<void*>* chunks) {
  for (auto it = chunk_used_.begin(); it != chunk_used_.end();) {
    if (it->second != 0) {
      ++it;
      continue;
    }
    const uintptr_t base = reinterpret_cast<uintptr_t>(it->first);
    for (std::vector<void*>& list : free_slots_)
      for (size_t i = 0; i < list.size();)
        if ((reinterpret_cast<uintptr_t>(list[i]) & ~(kHugePage - 1)) == base) {
          list[i] = list.back();
          list.pop_back();
        } else {
          i++;
        }
    chunks->push_back(it->first);
    idle_bytes_ -= kHugePage;
    it = chunk_used_.erase(it);
  }
}

void* BlockCache::alloc(size_t bytes) {
  size_t size = ((bytes ? bytes : 1) + 63) & ~static_cast<size_t>(63);
  std::lock_guard<std::mutex> lock(mu_);
  if (size >= kMinCached) {
    auto it = idle_.lower_bound(size);
    if (it != idle_.end() && it->first <= size + size / 4) {
      void* p = it->second;
      size = it->first;
      idle_bytes_ -= size;
      idle_.erase(it);
      live_[p] = size;
      live_bytes_ += size;
      return p;
    }
  }
  if (is_slot(size)) {
    size_t slot = kSlabMin;
    while (slot < size) slot *= 2;
    void* p = alloc_slot(slot);
    if (p) {
      live_[p] = slot;
      live_bytes_ += slot;
    }
    return p;
  }
  void* p = size >= kHugePage ? alloc_huge(size) : std::aligned_alloc(64, size);
  if (p) {
    live_[p] = size;
    live_bytes_ += size;
  }
  return p;
}

// Big blocks start on a 2 MiB boundary and ask for transparent huge pages over their whole 2 MiB pages
// (the tail keeps 4 KiB pages, so no memory is spent beyond the block): a cold pass over a big tensor then
// takes one TLB entry per 2 MiB instead of 512 (measured: top-k on 64 MiB of scores 2.5-4% faster). A
// hint: where THP is off or unknown, madvise fails and nothing changes.
void* BlockCache::alloc_huge(size_t size) {
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, size) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, size & ~(kHugePage - 1), MADV_HUGEPAGE);
#endif
  return p;
}

void BlockCache::free(void* p) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;  // not ours: never free what we did not allocate
  size_t size = it->second;
  live_.erase(it);
  live_bytes_ -= size;
  if (is_slot(size)) {
    free_slot(p, size);
    if (idle_bytes_ > capacity_) {
      std::vector<void*> chunks;
      release_free_chunks(&chunks);
      for (void* c : chunks) std::free(c);
    }
    return;
  }
  if (size >= kMinCached && idle_bytes_ + size <= capacity_) {
    idle_.emplace(size, p);
    idle_bytes_ += size;
  } else {
    std::free(p);
  }
}


void BlockCache::empty() {
  std::vector<void*> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : idle_) blocks.push_back(kv.second);
    idle_.clear();
    release_free_chunks(&blocks);
    idle_bytes_ = 0;  // what stays cached: the free slots of chunks still in use
    for (int i = 0; i < 3; i++) idle_bytes_ += free_slots_[i].size() * (kSlabMin << i);
  }
  for (void* p : blocks) std::free(p);
#if defined(__GLIBC__)
  malloc_trim(0);  // glibc keeps freed small blocks (and the top of its heaps) otherwise
#endif
}

size_t BlockCache::live_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return live_bytes_;
}

size_t BlockCache::cached_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return idle_bytes_;
}

}  // namespace glmk::cpu
