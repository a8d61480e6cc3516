#include "sync-hub.hpp"

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "errors.hpp"

namespace glmk::addon {

namespace {

void call_js(Napi::Env env, Napi::Function, SyncHub::State* state, void*);
using HubFn = Napi::TypedThreadSafeFunction<SyncHub::State, void, call_js>;

struct Settled {
  uint64_t id;
  int code;
  std::string message;
};

struct Pending {
  Napi::Promise::Deferred deferred;
  Napi::ObjectReference owner;
  Napi::Reference<Napi::ArrayBuffer> buffer;
};

// What the device thread holds for one sync_notify until it calls back.
struct Token {
  std::shared_ptr<SyncHub::State> state;
  uint64_t id;
};

}  // namespace

struct SyncHub::State {
  std::mutex mu;
  bool open = true;              // false once the thread-safe function is released or finalized
  std::vector<Settled> settled;  // handed over by the device, not yet seen by JS
  HubFn fn;
  // JS thread only.
  std::unordered_map<uint64_t, Pending> pending;
  uint64_t next_id = 1;
};

namespace {

// Device thread: never touches JS; drops the result once the hub is closed (the env is going away).
void on_done(void* user, int code, const char* message) {
  std::unique_ptr<Token> token(static_cast<Token*>(user));
  SyncHub::State& s = *token->state;
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.open) return;
  s.settled.push_back(Settled{token->id, code, message ? message : ""});
  s.fn.NonBlockingCall();  // (an unbounded queue: never blocks; a closing function just drops the call)
}

void call_js(Napi::Env env, Napi::Function, SyncHub::State* s, void*) {
  if (!env) return;  // the env is being torn down: the finalizer clears what is pending
  std::vector<Settled> batch;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    batch.swap(s->settled);
  }
  for (const Settled& r : batch) {
    auto it = s->pending.find(r.id);
    if (it == s->pending.end()) continue;  // (already settled by an earlier batch)
    Pending p = std::move(it->second);
    s->pending.erase(it);
    if (r.code != GLMK_OK) p.deferred.Reject(make_error(env, r.code, r.message));
    else p.deferred.Resolve(p.buffer.IsEmpty() ? Napi::ArrayBuffer::New(env, 0) : p.buffer.Value());
    if (s->pending.empty()) s->fn.Unref(env);
  }
}

}  // namespace

SyncHub::SyncHub(Napi::Env env) : state_(std::make_shared<State>()) {
  // NOTE: the finalizer runs on the JS thread when the function is released (our destructor) or when the
  // env is torn down first; either way the device thread must stop calling it, hence `open`.
  State* s = state_.get();
  s->fn = HubFn::New(env, "glm-kernels sync", 0, 1, s, [](Napi::Env, void*, State* st) {
    {
      std::lock_guard<std::mutex> lock(st->mu);
      st->open = false;
    }
    st->pending.clear();  // (while the env can still delete references)
  });
  s->fn.Unref(env);  // idle: let the process exit
}

SyncHub::~SyncHub() {
  // The device was closed before this (its stream drained): no call can come any more.
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->open) {
    state_->open = false;
    state_->fn.Release();
  }
}

Napi::Promise SyncHub::Start(Napi::Env env, Napi::Object owner, Napi::ArrayBuffer buffer, const Arm& arm) {
  State& s = *state_;
  const uint64_t id = s.next_id++;
  Pending p{Napi::Promise::Deferred::New(env), Napi::Persistent(owner), {}};
  if (!buffer.IsEmpty()) p.buffer = Napi::Persistent(buffer);
  Napi::Promise promise = p.deferred.Promise();
  auto token = std::make_unique<Token>(Token{state_, id});
  glmk_status st{};
  if (s.pending.empty()) s.fn.Ref(env);
  auto& slot = s.pending.emplace(id, std::move(p)).first->second;
  if (arm(on_done, token.get(), &st) != GLMK_OK) {
    slot.deferred.Reject(make_error(env, st.code, st.message));
    s.pending.erase(id);
    if (s.pending.empty()) s.fn.Unref(env);
    return promise;
  }
  token.release();  // the device owns it now (on_done deletes it)
  return promise;
}

}  // namespace glmk::addon
