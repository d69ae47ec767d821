// Readiness for fds Node cannot wrap itself (raw, packet and netlink sockets make net.Socket and
// dgram fail with ERR_INVALID_FD_TYPE): a libuv poll handle on Node's own loop, calling back into JS.
#include <fcntl.h>
#include <string.h>
#include <uv.h>

#include <unordered_set>

#include "common.h"

namespace duogate {

struct Watch;

// Live watches per env, so an env teardown (worker exit) can close them: a worker's loop refuses
// to close with active handles, and the callback references must be released while env is valid.
struct EnvWatches {
  std::unordered_set<Watch*> live;
};

struct Watch {
  uv_poll_t poll;  // first member is not required; poll.data points back here
  napi_env env;
  int fd;
  bool closing = false;
  Napi::FunctionReference cb;  // keeps the JS callback alive until unwatched
  EnvWatches* owner;
};

// What JS holds. It only points at the Watch, so dropping the handle without unwatch() leaves the
// watch running (the loop owns it); unwatch clears the pointer, which makes a second call a no-op.
struct WatchHandle {
  Watch* w;
};

// Tags the External so unwatch() can reject any other object instead of dereferencing it.
static const napi_type_tag kWatchTag = {0x6475'6f67'6174'6521ULL, 0x7761'7463'685f'7631ULL};

static void FreeOnClose(uv_handle_t* h) { delete static_cast<Watch*>(h->data); }

static void CloseWatch(Watch* w) {
  if (w->closing) return;
  w->closing = true;
  w->owner->live.erase(w);
  uv_poll_stop(&w->poll);
  w->cb.Reset();
  // Freed only in the close callback: libuv still owns the handle until then.
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), FreeOnClose);
}

static void OnPoll(uv_poll_t* h, int status, int /*events*/) {
  Watch* w = static_cast<Watch*>(h->data);
  if (w->closing) return;
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  // No JS frame sits above a libuv callback, so an exception escaping here would terminate the
  // process. Hand it to Node instead: it surfaces as process 'uncaughtException' (style.md 2b).
  try {
    if (status < 0) {
      // libuv reports any POLLERR as EBADF and stops the handle. A socket with a pending error (a netlink
      // socket that overran its buffer: ENOBUFS) is still good: restart polling and let the callback read,
      // so recvInto returns the error (-2 for ENOBUFS) and the caller resyncs. Only a really closed fd is fatal.
      if (fcntl(w->fd, F_GETFD) != -1 && uv_poll_start(&w->poll, UV_READABLE, OnPoll) == 0) {
        w->cb.MakeCallback(env.Global(), {});
        return;
      }
      uv_poll_stop(&w->poll);
      ThrowSys(env, -status, "uv_poll", "watched fd " + std::to_string(w->fd));
    }
    // MakeCallback (not Call) runs async hooks and drains nextTick/microtasks afterwards, as for
    // any other I/O callback. The callback may unwatch its own handle: w stays valid until uv_close.
    w->cb.MakeCallback(env.Global(), {});
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

// watch(fd, onReadable) -> handle. onReadable is called with no arguments whenever fd is readable
// and should drain it with recvInto until -1. libuv polls level-triggered, so an undrained fd is
// not lost, it just calls back again on the next loop turn (one datagram per turn is slow).
static Napi::Value WatchFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "watch");
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "watch: onReadable must be a function");
  EnvWatches* owner = nullptr;
  napi_get_instance_data(env, reinterpret_cast<void**>(&owner));
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    throw Napi::Error::New(env, "watch: napi_get_uv_event_loop failed");

  Watch* w = new Watch();
  w->env = env;
  w->fd = fd;
  w->owner = owner;
  w->poll.data = w;
  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc < 0) {
    delete w;  // not yet registered with the loop, so a plain delete is correct
    ThrowSys(env, -rc, "uv_poll_init", "fd " + std::to_string(fd));
  }
  rc = uv_poll_start(&w->poll, UV_READABLE, OnPoll);
  if (rc < 0) {
    w->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), FreeOnClose);
    ThrowSys(env, -rc, "uv_poll_start", "fd " + std::to_string(fd));
  }
  w->cb = Napi::Persistent(info[1].As<Napi::Function>());
  owner->live.insert(w);

  auto handle = Napi::External<WatchHandle>::New(env, new WatchHandle{w},
                                                 [](Napi::Env, WatchHandle* h) { delete h; });
  handle.TypeTag(&kWatchTag);
  return handle;
}

// unwatch(handle): stop polling and release the callback. Idempotent.
static Napi::Value Unwatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsExternal() || !info[0].As<Napi::External<WatchHandle>>().CheckTypeTag(&kWatchTag))
    throw Napi::TypeError::New(env, "unwatch: argument is not a handle returned by watch()");
  WatchHandle* h = info[0].As<Napi::External<WatchHandle>>().Data();
  if (h->w != nullptr) {
    Watch* w = h->w;
    h->w = nullptr;
    CloseWatch(w);  // no-op if env teardown already closed it
  }
  return env.Undefined();
}

static void CleanupEnv(void* arg) {
  EnvWatches* ew = static_cast<EnvWatches*>(arg);
  while (!ew->live.empty()) CloseWatch(*ew->live.begin());
}

void InitPoll(Napi::Env env, Napi::Object exports) {
  EnvWatches* ew = new EnvWatches();
  // Instance data owns the registry (freed at env teardown); the cleanup hook runs first and
  // closes whatever is still watched.
  napi_set_instance_data(
      env, ew, [](napi_env, void* d, void*) { delete static_cast<EnvWatches*>(d); }, nullptr);
  napi_add_env_cleanup_hook(env, CleanupEnv, ew);
  exports.Set("watch", Napi::Function::New(env, WatchFd, "watch"));
  exports.Set("unwatch", Napi::Function::New(env, Unwatch, "unwatch"));
}

}  // namespace duogate
