// Deterministic top-k on the CPU device (SPEC 3).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "glmk/device.h"
#include "isa.hpp"
#include "stream.hpp"

namespace glmk::cpu {

// Appends (key, index) of every score in window[begin, end) whose key is >= t, in index order.
// Returns how many were appended. t = 0 keeps everything.
size_t topk_filter(Isa isa, const void* window, int dtype, int64_t begin, int64_t end, uint32_t t,
                   uint32_t* keys, int32_t* idx);

// Per-worker buffers, kept between calls so that big rows do not fault fresh pages every time.
struct TopkScratch {
  std::vector<uint32_t> keys;
  std::vector<int32_t> idx;
  std::vector<uint32_t> select_buf;
  std::vector<uint64_t> items, items2;
};

// Runs on the stream thread. Checks lengths/rowStarts values (they live in device memory).
int topk_execute(Pool& pool, Isa isa, std::vector<TopkScratch>& scratch, const glmk_topk_args& a,
                 glmk_status* st);

}  // namespace glmk::cpu
