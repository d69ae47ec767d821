// The IPv6 CARP socket (docs/carp.md "CARP over IPv6"). A raw IPv6 socket delivers only the payload, so the
// receive call lays the 40-byte IPv6 header out in front of it from the address data the kernel hands over
// (source, destination, hop limit): the core then checks an IPv6 advert as it checks an IPv4 one, in place.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <string.h>

#include "common.h"

namespace duogate {

static constexpr int kSockFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;
static constexpr size_t kIp6Header = 40;

static in6_addr ParseIPv6(Napi::Env env, const std::string& s, const char* fn, const char* name) {
  in6_addr a;
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1)
    throw Napi::TypeError::New(env, std::string(fn) + ": " + name + " '" + s + "' is not an IPv6 address");
  return a;
}

static void SetInt6(Napi::Env env, int fd, int opt, int val, const char* syscall) {
  if (setsockopt(fd, IPPROTO_IPV6, opt, &val, sizeof val) < 0) ThrowSys(env, errno, syscall);
}

// openRawIp6(proto, ifname, group, icmp6Types?) -> fd. Bound to the device, joined to `group` there, multicast out of it with
// hop limit 255 (receivers drop anything else) and no loopback of our own adverts; asks for each datagram's hop
// limit and destination. Not bound to an address: a raw IPv6 socket bound to one sees only datagrams to it.
static Napi::Value OpenRawIp6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t proto = ArgU32(info, 0, "openRawIp6", "proto");
  if (proto > 255) throw Napi::TypeError::New(env, "openRawIp6: proto must be 0-255");
  std::string ifname = ArgString(info, 1, "openRawIp6", "ifname");
  std::string group = ArgString(info, 2, "openRawIp6", "group");
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    throw Napi::TypeError::New(env, "openRawIp6: ifname '" + ifname + "' is empty or longer than 15 bytes");
  in6_addr g = ParseIPv6(env, group, "openRawIp6", "group");
  bool filter = info.Length() > 3 && !info[3].IsUndefined();
  icmp6_filter f;
  ICMP6_FILTER_SETBLOCKALL(&f);
  if (filter) {
    if (proto != IPPROTO_ICMPV6 || !info[3].IsArray()) throw Napi::TypeError::New(env, "openRawIp6: icmp6Types is an array, for proto 58 only");
    Napi::Array types = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < types.Length(); i++) {
      Napi::Value v = types.Get(i);
      uint32_t ty = v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 256;
      if (ty > 255) throw Napi::TypeError::New(env, "openRawIp6: icmp6Types must be 0-255");
      ICMP6_FILTER_SETPASS(ty, &f);
    }
  }
  unsigned ifindex = IfIndex(env, ifname);
  FdGuard fd(socket(AF_INET6, SOCK_RAW | kSockFlags, static_cast<int>(proto)));
  if (fd.get() < 0) ThrowSys(env, errno, "socket(AF_INET6, SOCK_RAW)", "protocol " + std::to_string(proto));
  std::string what = "interface '" + ifname + "'";
  // Before anything can queue: the socket never holds a message type it was not opened for.
  if (filter && setsockopt(fd.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f) < 0) ThrowSys(env, errno, "setsockopt(ICMP6_FILTER)", what);
  if (setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), ifname.size() + 1) < 0)
    ThrowSys(env, errno, "setsockopt(SO_BINDTODEVICE)", what);
  ipv6_mreq m{};
  m.ipv6mr_multiaddr = g;
  m.ipv6mr_interface = ifindex;
  if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_JOIN_GROUP, &m, sizeof m) < 0)
    ThrowSys(env, errno, "setsockopt(IPV6_JOIN_GROUP)", group + " on " + what);
  int idx = static_cast<int>(ifindex);
  if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx) < 0)
    ThrowSys(env, errno, "setsockopt(IPV6_MULTICAST_IF)", what);
  SetInt6(env, fd.get(), IPV6_MULTICAST_HOPS, 255, "setsockopt(IPV6_MULTICAST_HOPS)");
  SetInt6(env, fd.get(), IPV6_UNICAST_HOPS, 255, "setsockopt(IPV6_UNICAST_HOPS)");
  SetInt6(env, fd.get(), IPV6_MULTICAST_LOOP, 0, "setsockopt(IPV6_MULTICAST_LOOP)");
  SetInt6(env, fd.get(), IPV6_RECVHOPLIMIT, 1, "setsockopt(IPV6_RECVHOPLIMIT)");
  SetInt6(env, fd.get(), IPV6_RECVPKTINFO, 1, "setsockopt(IPV6_RECVPKTINFO)");
  return Napi::Number::New(env, fd.release());
}

// recvIp6Into(fd, view) -> 40 + payload length (more than view.length means truncated), or -1 on EAGAIN. The
// payload lands at view[40..] and the IPv6 header the kernel consumed is written at view[0..40]: version 6,
// payload length, next header = the socket's protocol, the datagram's hop limit (0 if the kernel gave none),
// source and destination.
static Napi::Value RecvIp6Into(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "recvIp6Into");
  Napi::Uint8Array view = ArgBytes(info, 1, "recvIp6Into", "view");
  if (view.ByteLength() <= kIp6Header)
    throw Napi::Error::New(env, "recvIp6Into: view shorter than an IPv6 header (detached by WebAssembly memory.grow?); re-create it");
  uint8_t* out = view.Data();
  sockaddr_in6 src{};
  iovec iov{out + kIp6Header, view.ByteLength() - kIp6Header};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(in6_pktinfo))];
  msghdr msg{};
  msg.msg_name = &src;
  msg.msg_namelen = sizeof src;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowSys(env, errno, "recvmsg");
  }
  int hops = 0;
  in6_addr dst{};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != IPPROTO_IPV6) continue;
    if (c->cmsg_type == IPV6_HOPLIMIT) memcpy(&hops, CMSG_DATA(c), sizeof hops);
    else if (c->cmsg_type == IPV6_PKTINFO) dst = reinterpret_cast<in6_pktinfo*>(CMSG_DATA(c))->ipi6_addr;
  }
  int proto = 0;
  socklen_t plen = sizeof proto;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) < 0) ThrowSys(env, errno, "getsockopt(SO_PROTOCOL)");
  uint32_t vtf = htonl(6u << 28);
  uint16_t len = htons(static_cast<uint16_t>(n > 0xffff ? 0xffff : n));
  memcpy(out, &vtf, 4);
  memcpy(out + 4, &len, 2);
  out[6] = static_cast<uint8_t>(proto);
  out[7] = static_cast<uint8_t>(hops < 0 || hops > 255 ? 0 : hops);
  memcpy(out + 8, &src.sin6_addr, 16);
  memcpy(out + 24, &dst, 16);
  return Napi::Number::New(env, static_cast<double>(kIp6Header + n));
}

// sendIp6(fd, data, dst, ifindex, src) -> bytes sent, or -1 when the send buffer is full (EAGAIN). `src` is the
// source address (IPV6_PKTINFO), so a link-local source is exactly the one the pair trailer was signed for.
static Napi::Value SendIp6(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "sendIp6");
  Napi::Uint8Array data = ArgBytes(info, 1, "sendIp6", "data");
  std::string dstS = ArgString(info, 2, "sendIp6", "dst");
  uint32_t ifindex = ArgU32(info, 3, "sendIp6", "ifindex");
  std::string srcS = ArgString(info, 4, "sendIp6", "src");
  sockaddr_in6 dst{};
  dst.sin6_family = AF_INET6;
  dst.sin6_addr = ParseIPv6(env, dstS, "sendIp6", "dst");
  dst.sin6_scope_id = ifindex;
  iovec iov{data.Data(), data.ByteLength()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))]{};
  msghdr msg{};
  msg.msg_name = &dst;
  msg.msg_namelen = sizeof dst;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
  in6_pktinfo pi{};
  pi.ipi6_addr = ParseIPv6(env, srcS, "sendIp6", "src");
  pi.ipi6_ifindex = ifindex;
  memcpy(CMSG_DATA(c), &pi, sizeof pi);
  ssize_t n;
  do n = sendmsg(fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowSys(env, errno, "sendmsg", dstS);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

void InitCarp6(Napi::Env env, Napi::Object exports) {
  exports.Set("openRawIp6", Napi::Function::New(env, OpenRawIp6, "openRawIp6"));
  exports.Set("recvIp6Into", Napi::Function::New(env, RecvIp6Into, "recvIp6Into"));
  exports.Set("sendIp6", Napi::Function::New(env, SendIp6, "sendIp6"));
}

}  // namespace duogate
