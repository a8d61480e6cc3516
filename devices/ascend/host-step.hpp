// Steps of an op that the ascend device computes on the host, in stream order, on the queue thread:
// inputs are copied back (device -> host) after everything launched before them, the host computes with
// the shared definitions (glmk/*-arith.h, the same code the CPU device runs), and the outputs are copied
// to the device from staging buffers that stay alive until the next drain. Used where SPEC 4 / 5 want the
// same bits on every device and no aclnn op is known to give them (see the README's "ascend (CANN)").
#pragma once

#include <cstdint>
#include <string>

#include "glmk/device.h"
#include "glmk/fp-env.hpp"
#include "glmk/host-rows.hpp"
#include "glmk/int4-arith.h"

struct glmk_device;

namespace glmk::ascend {

// Round to nearest even, subnormals kept while the host computes, whatever the thread inherited.
using HostFpEnv = glmk::DefaultFpEnv;

// Element i of a bf16 / f16 / f32 host array as an f32 (exact): glmk/host-rows.hpp's.
using glmk::widen;

// A host buffer of `bytes` that the device keeps alive until its next drain (which first waits for the
// stream), so that a copy queued into or out of it can never outlive it, whatever fails later.
// nullptr (and msg "<op>: cannot allocate ...") when the host is out of memory.
char* stage(glmk_device* d, const char* op, size_t bytes, std::string& msg);

// Queues the copy of device [src, src + bytes) into staged host dst; the values are there after the
// stream wait that follows (stream_wait in device.hpp). "<op>: reading an input (aclrtMemcpyAsync): ...".
int fetch(glmk_device* d, const char* op, void* dst, const void* src, size_t bytes, std::string& msg);

// Queues the copy of staged host src (bytes) to device dst.
int put(glmk_device* d, const char* op, void* dst, const void* src, size_t bytes, std::string& msg);

// The stream wait between fetch and the host computation.
int wait_inputs(glmk_device* d, std::string& msg);

}  // namespace glmk::ascend
