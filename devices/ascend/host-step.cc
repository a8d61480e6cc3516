#include "host-step.hpp"

#include <memory>
#include <new>

#include "device.hpp"

namespace glmk::ascend {

char* stage(glmk_device* d, const char* op, size_t bytes, std::string& msg) {
  std::unique_ptr<char[]> b(new (std::nothrow) char[bytes ? bytes : 1]);
  if (!b) {
    msg = std::string(op) + ": cannot allocate " + std::to_string(bytes) + " bytes on the host";
    return nullptr;
  }
  char* p = b.get();
  d->keep_alive.push_back(std::move(b));
  d->held_bytes += bytes;
  return p;
}

int fetch(glmk_device* d, const char* op, void* dst, const void* src, size_t bytes, std::string& msg) {
  if (!bytes) return GLMK_OK;
  const int e = d->acl->aclrtMemcpyAsync(dst, bytes, src, bytes, kDeviceToHost, d->stream);
  return e == kAclSuccess ? GLMK_OK : acl_error(d, msg, GLMK_E_DEVICE, std::string(op) + ": reading an input (aclrtMemcpyAsync)", e);
}

int put(glmk_device* d, const char* op, void* dst, const void* src, size_t bytes, std::string& msg) {
  if (!bytes) return GLMK_OK;
  const int e = d->acl->aclrtMemcpyAsync(dst, bytes, src, bytes, kHostToDevice, d->stream);
  return e == kAclSuccess ? GLMK_OK : acl_error(d, msg, GLMK_E_DEVICE, std::string(op) + ": writing the output (aclrtMemcpyAsync)", e);
}

int wait_inputs(glmk_device* d, std::string& msg) { return stream_wait(d, msg, "execution failed (aclrtSynchronizeStream)"); }

}  // namespace glmk::ascend
