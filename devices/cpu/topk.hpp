// Deterministic top-k on the CPU device (SPEC 3).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "glmk/device.h"
#include "glmk/score-key.h"
#include "isa.hpp"
#include "stream.hpp"

namespace glmk::cpu {

// Score i of a window, widened to f32 bits (exact).
inline uint32_t score_bits(const void* w, int dtype, int64_t i) {
  switch (dtype) {
    case GLMK_F32: {
      uint32_t b;
      std::memcpy(&b, static_cast<const char*>(w) + 4 * i, 4);
      return b;
    }
    case GLMK_BF16: return glmk_bf16_to_f32_bits(static_cast<const uint16_t*>(w)[i]);
    default: return glmk_f16_to_f32_bits(static_cast<const uint16_t*>(w)[i]);
  }
}

// Appends (key, index) of every score in window[begin, end) whose key is >= t, in index order.
// Returns how many were appended. t = 0 keeps everything. keys and idx need kFilterSlack entries of room
// past the last survivor (the vector paths store whole vectors).
constexpr size_t kFilterSlack = 16;
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
