// The cuda device's host-side helper thread (one per device): deferred uploads (the ABI's upload_deferred)
// and the idle trim of the stream-ordered memory pool.
//
// Deferred upload. cudaMemcpyAsync from pageable memory may block the caller (the driver stages it, and
// may wait for the stream to do so), so a big dev.tensor() would block the JS thread. Instead the calling
// thread only enqueues, per 4 MiB chunk i of the source: a host function `gate(i)`, then a cudaMemcpyAsync
// from pinned staging slot i % kSlots to the destination (from pinned memory: truly asynchronous). The
// helper thread copies chunk i of the source into its slot (plain memcpy, no CUDA call) once the copy that
// last used the slot has run, and opens gate i; the gate (on CUDA's callback thread, no CUDA call in it)
// waits for that. Every later op is enqueued behind the copies, so stream order holds as for upload(); the
// gate waits only for host work that does not depend on later stream work (the slot it waits for was
// consumed by copies enqueued before it), as CUDA's rule for host functions asks. When the last chunk is
// in staging the helper calls release(): the source is not read any more.
//
// Without pinned memory (cudaMallocHost fails) the call copies from the source at once, as upload() does.
// An upload that fails to enqueue returns the error and keeps it for the next sync() too (dev.tensor()
// leaves its promise to that): no silent loss. The chunks already enqueued have their gates opened.
//
// If the stream dies (a sticky CUDA error, so that gates may never run), the helper finds it by
// cudaStreamQuery while it waits, opens every gate, calls release with the error and keeps the failure for
// the next sync().
//
// Idle trim: touch() (alloc, free, uploads) restarts a 1 s clock; when it runs out and the stream has
// nothing left to run, the helper returns the pool's cached memory to the driver (cudaMemPoolTrimTo 0).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cuda-compat.h"
#include "glmk/device.h"

namespace glmk::cuda {

class Uploader {
 public:
  static constexpr size_t kChunk = size_t{4} << 20;
  static constexpr int kSlots = 4;

  Uploader(int ordinal, cudaStream_t stream);
  ~Uploader();  // stops the thread (call after the stream drained: see stop())
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // Any thread: enqueues the upload in stream order and returns. On failure nothing will read src and
  // release is not called; on success release(user, code, message) is called once from the helper thread.
  int upload(void* dst, const void* src, size_t bytes, glmk_done_fn release, void* user, glmk_status* st);
  // Stream activity (alloc, free, upload): the idle trim waits 1 s from the latest.
  void touch();
  // A failure of a deferred upload since the last call (the source could not be copied): returns GLMK_OK
  // when there is none.
  int take_failure(glmk_status* st);
  // Waits for pending uploads (the stream must have drained, or be dead), stops the thread, frees staging.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> s_;
};

}  // namespace glmk::cuda
