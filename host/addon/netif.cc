// Interface facts (index, MAC, flags, MTU) and the daemon's monotonic clock.
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>

#include "common.h"

namespace duogate {

// ifInfo(name) -> { index, mac, up, running, mtu }. One throwaway datagram socket serves all four
// ioctls; `running` is IFF_RUNNING, which the kernel sets from carrier (peer veth up, cable in).
static Napi::Value IfInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "ifInfo", "name");
  if (name.empty() || name.size() >= IFNAMSIZ)
    throw Napi::TypeError::New(env, "ifInfo: interface name '" + name + "' is empty or longer than 15 bytes");
  FdGuard fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) ThrowSys(env, errno, "socket(AF_INET, SOCK_DGRAM)");
  std::string what = "interface '" + name + "'";

  struct ifreq ifr;
  auto reset = [&] {
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, name.data(), name.size());
  };
  reset();
  if (ioctl(fd.get(), SIOCGIFINDEX, &ifr) < 0) ThrowSys(env, errno, "ioctl(SIOCGIFINDEX)", what);
  int index = ifr.ifr_ifindex;
  reset();
  if (ioctl(fd.get(), SIOCGIFHWADDR, &ifr) < 0) ThrowSys(env, errno, "ioctl(SIOCGIFHWADDR)", what);
  Napi::Uint8Array mac = Napi::Uint8Array::New(env, 6);
  memcpy(mac.Data(), ifr.ifr_hwaddr.sa_data, 6);
  reset();
  if (ioctl(fd.get(), SIOCGIFFLAGS, &ifr) < 0) ThrowSys(env, errno, "ioctl(SIOCGIFFLAGS)", what);
  unsigned flags = static_cast<unsigned short>(ifr.ifr_flags);
  reset();
  if (ioctl(fd.get(), SIOCGIFMTU, &ifr) < 0) ThrowSys(env, errno, "ioctl(SIOCGIFMTU)", what);
  int mtu = ifr.ifr_mtu;

  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, index));
  o.Set("mac", mac);
  o.Set("up", Napi::Boolean::New(env, (flags & IFF_UP) != 0));
  o.Set("running", Napi::Boolean::New(env, (flags & IFF_RUNNING) != 0));
  o.Set("mtu", Napi::Number::New(env, mtu));
  return o;
}

// nowMs() -> CLOCK_MONOTONIC in milliseconds. Not wall time: NTP steps must not skew CARP timers.
static Napi::Value NowMs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6);
}

void InitNetif(Napi::Env env, Napi::Object exports) {
  exports.Set("ifInfo", Napi::Function::New(env, IfInfo, "ifInfo"));
  exports.Set("nowMs", Napi::Function::New(env, NowMs, "nowMs"));
}

}  // namespace duogate
