// Freed host blocks kept for reuse, so that op outputs of a recurring shape do not fault fresh pages on
// every call (glibc hands big blocks back to the kernel on free). Bounded; thread-safe (alloc runs on the
// JS thread, free on the stream thread). The device empties it once it has been idle for a while.
#pragma once
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace glmk::cpu {

class BlockCache {
 public:
  static constexpr size_t kMinCached = 64 * 1024;  // smaller blocks go straight to malloc/free
  static constexpr size_t kHugePage = 2 * 1024 * 1024;  // blocks this big get transparent huge pages
  // Blocks of kSlabMin .. kSlabMax bytes take a slot of 256 KiB, 512 KiB or 1 MiB (the next power of two)
  // in a 2 MiB chunk on a huge page, so that they get one too (see alloc_slot).
  static constexpr size_t kSlabMin = 256 * 1024, kSlabMax = 1024 * 1024;
  explicit BlockCache(size_t capacity) : capacity_(capacity) {}
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // A 64-byte aligned block of at least `bytes` (a cached one of up to 1.25x when there is one; from kSlabMin
  // to kSlabMax bytes a slot of the next power of two), or nullptr.
  void* alloc(size_t bytes);
  // Keeps p for reuse while the cache holds less than its capacity, else frees it.
  void free(void* p);
  // Returns every cached block to the system, then asks glibc to hand its free heap back too.
  void empty();
  size_t live_bytes();
  size_t cached_bytes();

 private:
  static void* alloc_huge(size_t size);
  void* alloc_slot(size_t slot);  // (mu_ held)
  void free_slot(void* p, size_t slot);  // (mu_ held)
  void release_free_chunks(std::vector<void*>* chunks);  // (mu_ held) unlinks chunks with no slot in use
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;  // block -> its size (a slot's: the slot's)
  std::multimap<size_t, void*> idle_;       // size -> cached block (not slots)
  std::unordered_map<void*, int> chunk_used_;  // 2 MiB chunk -> its slots in use
  std::vector<void*> free_slots_[3];           // per slot size (256 KiB << i): free slots
  size_t idle_bytes_ = 0;
  size_t live_bytes_ = 0;
  const size_t capacity_;
};

}  // namespace glmk::cpu
