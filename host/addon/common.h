// Shared helpers for the duogate addon: Node-style system errors, argument checks and an fd guard.
#pragma once

#include <napi.h>
#include <unistd.h>

#include <string>

namespace duogate {

// Throws a JS Error shaped like Node's own system errors (code/errno/syscall), so callers can
// switch on err.code exactly as they would for fs or net errors. `what` names the object that
// failed (an interface, an address) because "ENODEV" alone does not say which device.
[[noreturn]] void ThrowSys(Napi::Env env, int err, const char* syscall, const std::string& what = "");

// Argument readers: throw a TypeError naming the function and argument on a wrong type, so a
// bad call fails at the boundary instead of as an odd errno later.
int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn);
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name);
// Returns the interface index of `name`, throwing ENODEV (syscall if_nametoindex) if it is absent.
unsigned IfIndex(Napi::Env env, const std::string& name);

// Closes the fd on scope exit unless release()d: a socket whose setup fails part-way must not leak.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

void InitNetif(Napi::Env env, Napi::Object exports);
void InitSockets(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitCarp6(Napi::Env env, Napi::Object exports);

}  // namespace duogate
