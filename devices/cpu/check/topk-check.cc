// cpu-topk-check: the CPU device's top-k on one long row (f32, bf16 and f16 scores, with inf, NaN and -0), split
// over a 2- and a 3-thread pool, alone on one thread and as the tuner picks, against a plain sort of (key descending,
// index ascending), bit for bit after every call; and the split tuner's choices on made-up timings.
// Built by CMakeLists.txt (with AddressSanitizer too), run by CI.
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "../topk.hpp"
#include "glmk/score-key.h"

using namespace glmk::cpu;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    failures++;
  }
}

// Scores of one kind, as f32 bits: uniform (with a rare huge value, -0, +-inf or a NaN of either sign and
// any payload), ties, constant, or against the sample: uniform, but the blocks the threshold sample reads
// (topk.cc's sample_plan: min(64, n / 512) blocks of 16, n / blocks apart) hold the row's largest
// scores, so that fewer than k survive the sample's threshold for most k (the pass that keeps everything).
std::vector<uint32_t> make_row(std::mt19937& rng, int64_t n, int gen) {
  std::vector<uint32_t> bits(static_cast<size_t>(n));
  std::uniform_real_distribution<float> u(-1, 1);
  const int64_t stride = gen == 3 ? n / std::min<int64_t>(64, n / 512) : 1;
  for (int64_t i = 0; i < n; i++) {
    float f = gen == 0 ? u(rng) : gen == 1 ? static_cast<float>(rng() % 97) : gen == 2 ? 0.5f
              : i % stride < 16 ? 2 + u(rng) : u(rng);  // uniform, ties, constant, against the sample
    std::memcpy(&bits[static_cast<size_t>(i)], &f, 4);
    if (gen == 0 && rng() % 20000 == 0) {
      const uint32_t special[] = {0x7149F2CAu, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00001u, 0xFFA00000u};
      bits[static_cast<size_t>(i)] = special[rng() % 6];
    }
  }
  return bits;
}

// f32 bits to f16 bits, rounded to nearest even (NaN stays a NaN; too large: inf).
uint16_t f16_from_f32_bits(uint32_t b) {
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  const uint32_t abs = b & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x1FFu));
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // (65520 and up round to inf)
  if (abs < 0x38800000u) {  // f16 subnormal or zero: a multiple of 2^-24, exactly scaled, rounded to even
    float f;
    std::memcpy(&f, &abs, 4);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(f * 16777216.0f)));
  }
  const uint32_t r = abs - 0x38000000u;  // (exponent bias 127 -> 15)
  return static_cast<uint16_t>(sign | ((r + 0xFFFu + ((r >> 13) & 1u)) >> 13));
}

// The reference: every (key, index) sorted, the first min(k, n); -1 / -inf after.
void reference(const std::vector<uint32_t>& f32_bits, int64_t k, std::vector<int32_t>& idx, std::vector<uint32_t>& val) {
  const int64_t n = static_cast<int64_t>(f32_bits.size());
  std::vector<uint64_t> items(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) items[i] = item_of(glmk_key_from_f32_bits(f32_bits[i]), static_cast<int32_t>(i));
  std::sort(items.begin(), items.end());
  idx.assign(static_cast<size_t>(k), -1);
  val.assign(static_cast<size_t>(k), GLMK_F32_NEG_INF_BITS);
  for (int64_t j = 0; j < std::min(k, n); j++) {
    idx[j] = static_cast<int32_t>(items[j] & 0xFFFFFFFFu);
    uint32_t b = f32_bits[static_cast<size_t>(idx[j])];
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) b = 0x7FC00000u;  // NaN canonical
    val[j] = b;
  }
}

void check_rows(Isa isa) {
  std::mt19937 rng(7);
  Pool alone(1, 0), pair(2, 200), trio(3, 200);
  std::vector<TopkScratch> scratch;
  TopkSplitTuner tuner;
  const int64_t lens[] = {65536, 100003, 131072};
  const int64_t ks[] = {1, 16, 300, 2048, 5000};
  int cases = 0;
  for (int dtype : {GLMK_F32, GLMK_BF16, GLMK_F16})
    for (int64_t n : lens)
      for (int gen = 0; gen < 4; gen++)
        for (int64_t k : ks) {
          std::vector<uint32_t> row = make_row(rng, n, gen);
          std::vector<uint16_t> row16(static_cast<size_t>(n));
          if (dtype == GLMK_BF16)
            for (int64_t i = 0; i < n; i++) {  // (the scores are bf16: the reference sees them widened)
              row16[i] = static_cast<uint16_t>(row[i] >> 16);
              row[i] = uint32_t{row16[i]} << 16;
            }
          if (dtype == GLMK_F16)
            for (int64_t i = 0; i < n; i++) {
              row16[i] = f16_from_f32_bits(row[i]);
              row[i] = glmk_f16_to_f32_bits(row16[i]);
            }
          std::vector<int32_t> want_idx;
          std::vector<uint32_t> want_val;
          reference(row, k, want_idx, want_val);
          for (int way = 0; way < 4; way++)  // alone, split, tuned (over the 2-thread pool: both ways in turn),
            for (int rep = 0; rep < (way == 2 ? 12 : 1); rep++) {  // split over 3 threads
              std::vector<int32_t> idx(static_cast<size_t>(k), 12345);
              std::vector<uint32_t> val(static_cast<size_t>(k), 12345);
              glmk_topk_args a{};
              a.scores = dtype != GLMK_F32 ? static_cast<const void*>(row16.data()) : row.data();
              a.dtype = dtype;
              a.rows = 1;
              a.cols = n;
              a.k = k;
              a.indices = idx.data();
              a.values = reinterpret_cast<float*>(val.data());
              glmk_status st{};
              topk_execute(way == 0 ? alone : way == 3 ? trio : pair, isa, scratch, a, &st, way == 2 ? &tuner : nullptr);
              char what[160];
              std::snprintf(what, sizeof what, "isa %s dtype %d n %lld gen %d k %lld way %d call %d", isa_name(isa), dtype,
                            static_cast<long long>(n), gen, static_cast<long long>(k), way, rep);
              expect(idx == want_idx && val == want_val, what);
              cases++;
            }
        }
  std::printf("ok   top-k of one long row, alone / split (2, 3 threads) / tuned against a plain sort (isa %s, f32, bf16 and f16, "
              "with inf, NaN, -0, and rows against the sample): %d calls\n", isa_name(isa), cases);
}

// Feeds the tuner made-up timings (ns per score) of each way; returns how many of the last `count` calls
// it sent the split way.
int run_tuner(TopkSplitTuner& t, double alone_ns, double split_ns, int count, int outlier_every = 0) {
  int split_calls = 0;
  for (int i = 0; i < count; i++) {
    const bool split = t.pick();
    double ns = split ? split_ns : alone_ns;
    if (outlier_every && i % outlier_every == 5) ns *= 100;  // a call that lost its core
    t.record(ns);
    split_calls += split;
  }
  return split_calls;
}

void check_tuner() {
  TopkSplitTuner t;
  run_tuner(t, 0.25, 0.19, 64);  // one period to measure both
  int s = run_tuner(t, 0.25, 0.19, 640);
  expect(s > 600, "tuner: split when split is faster");
  run_tuner(t, 0.25, 0.33, 64);  // the machine changes: split is now slower
  s = run_tuner(t, 0.25, 0.33, 640);
  expect(s <= 640 / 64 * 6, "tuner: alone (but for its tries) when split is slower");
  run_tuner(t, 0.25, 0.19, 64);
  s = run_tuner(t, 0.25, 0.19, 640, 7);
  expect(s > 600, "tuner: a call in seven a hundred times too slow does not change the choice");
  std::printf("ok   split tuner on made-up timings: follows the faster way, ignores outliers\n");
}

}  // namespace

int main() {
  check_tuner();
  const Isa best = isa_detect();
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512vbmi})
    if (isa <= best) check_rows(isa);
  if (failures) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  return 0;
}
