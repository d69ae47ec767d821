// Module entry and the shared error/argument helpers declared in common.h.
#include <net/if.h>
#include <string.h>
#include <uv.h>

#include <cmath>

#include "common.h"

namespace duogate {

void ThrowSys(Napi::Env env, int err, const char* syscall, const std::string& what) {
  // uv_err_name maps a negated errno to its symbolic name, the same table Node uses.
  const char* code = uv_err_name(-err);
  std::string msg = std::string(syscall) + " failed";
  if (!what.empty()) msg += " for " + what;
  msg += ": " + std::string(strerror(err)) + " (" + code + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));  // negative, like Node's system errors
  e.Set("syscall", Napi::String::New(env, syscall));
  throw e;
}

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": fd must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 0x7fffffff) || d != std::floor(d))
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": fd must be a non-negative integer");
  return static_cast<int>(d);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != std::floor(d))
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be an unsigned 32-bit integer");
  return static_cast<uint32_t>(d);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name + " must be a Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

unsigned IfIndex(Napi::Env env, const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    throw Napi::TypeError::New(env, "interface name '" + name + "' is empty or longer than 15 bytes");
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) ThrowSys(env, errno, "if_nametoindex", "interface '" + name + "'");
  return idx;
}

}  // namespace duogate

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  duogate::InitNetif(env, exports);
  duogate::InitSockets(env, exports);
  duogate::InitPoll(env, exports);
  duogate::InitCarp6(env, exports);
  return exports;
}

NODE_API_MODULE(duogate, Init)
