#include "block-cache.hpp"

#include <cstdlib>

namespace glmk::cpu {

BlockCache::~BlockCache() {
  for (auto& kv : idle_) std::free(kv.second);
  for (auto& kv : live_) std::free(kv.first);  // blocks never freed by the host (the device is closing)
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
      return p;
    }
  }
  void* p = std::aligned_alloc(64, size);
  if (p) live_[p] = size;
  return p;
}

void BlockCache::free(void* p) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) return;  // not ours: never free what we did not allocate
  size_t size = it->second;
  live_.erase(it);
  if (size >= kMinCached && idle_bytes_ + size <= capacity_) {
    idle_.emplace(size, p);
    idle_bytes_ += size;
  } else {
    std::free(p);
  }
}

}  // namespace glmk::cpu
