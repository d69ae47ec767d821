// Socket constructors and datagram I/O. Every fd is SOCK_NONBLOCK|SOCK_CLOEXEC: reads are driven
// by watch() and drained until EAGAIN, and the daemon's children must not inherit raw sockets.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <string.h>

#include <vector>

#include "common.h"

namespace duogate {

static constexpr int kSockFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;

static void SetOpt(Napi::Env env, int fd, int level, int opt, const void* val, socklen_t len, const char* syscall,
                   const std::string& what = "") {
  if (setsockopt(fd, level, opt, val, len) < 0) ThrowSys(env, errno, syscall, what);
}

static void SetInt(Napi::Env env, int fd, int level, int opt, int val, const char* syscall) {
  SetOpt(env, fd, level, opt, &val, sizeof val, syscall);
}

static in_addr ParseIPv4(Napi::Env env, const std::string& s, const char* fn, const char* name) {
  in_addr a;
  if (inet_pton(AF_INET, s.c_str(), &a) != 1)
    throw Napi::TypeError::New(env, std::string(fn) + ": " + name + " '" + s + "' is not a dotted IPv4 address");
  return a;
}

// Optional integer field of an options object; returns false when absent/undefined.
static bool OptInt(Napi::Object o, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return false;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1e300;
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::TypeError::New(o.Env(), std::string("openRawIp: ") + key + " must be an integer in [" +
                                            std::to_string(lo) + ", " + std::to_string(hi) + "]");
  *out = static_cast<int64_t>(d);
  return true;
}

static bool OptString(Napi::Object o, const char* key, std::string* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("openRawIp: ") + key + " must be a string");
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

// openRawIp({proto, ifname?, group?, srcAddr?, ttl?, tos?, loop?, rcvbuf?}) -> fd
// Raw IPv4 socket; the kernel writes the IP header on send, and received datagrams include it (raw(7)).
static Napi::Value OpenRawIp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "openRawIp: options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  int64_t proto, ttl, tos, rcvbuf;
  if (!OptInt(o, "proto", 0, 255, &proto)) throw Napi::TypeError::New(env, "openRawIp: proto is required");
  std::string ifname, group, src;
  bool hasIf = OptString(o, "ifname", &ifname);
  bool hasGroup = OptString(o, "group", &group);
  bool hasSrc = OptString(o, "srcAddr", &src);
  bool hasTtl = OptInt(o, "ttl", 1, 255, &ttl);
  bool hasTos = OptInt(o, "tos", 0, 255, &tos);
  bool hasRcvbuf = OptInt(o, "rcvbuf", 1, 0x7fffffff, &rcvbuf);
  Napi::Value loopV = o.Get("loop");
  bool loop = loopV.IsBoolean() && loopV.As<Napi::Boolean>().Value();
  // Parse everything before socket() so argument errors never need a cleanup path.
  in_addr groupAddr{}, srcAddr{};
  if (hasGroup) groupAddr = ParseIPv4(env, group, "openRawIp", "group");
  if (hasSrc) srcAddr = ParseIPv4(env, src, "openRawIp", "srcAddr");
  if (hasGroup && !hasIf) throw Napi::TypeError::New(env, "openRawIp: group requires ifname (membership is per interface)");
  if (hasIf && (ifname.empty() || ifname.size() >= IFNAMSIZ))
    throw Napi::TypeError::New(env, "openRawIp: ifname '" + ifname + "' is empty or longer than 15 bytes");

  FdGuard fd(socket(AF_INET, SOCK_RAW | kSockFlags, static_cast<int>(proto)));
  if (fd.get() < 0) ThrowSys(env, errno, "socket(AF_INET, SOCK_RAW)", "protocol " + std::to_string(proto));
  std::string what = hasIf ? "interface '" + ifname + "'" : "";

  int ifindex = 0;
  if (hasIf) {
    // Bind first: a missing interface fails here with ENODEV, and the socket then only sees that
    // interface's traffic (two CARP instances on two LANs must not hear each other).
    SetOpt(env, fd.get(), SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), ifname.size() + 1,
           "setsockopt(SO_BINDTODEVICE)", what);
    ifindex = static_cast<int>(IfIndex(env, ifname));
  }
  if (hasGroup) {
    ip_mreqn m{};
    m.imr_multiaddr = groupAddr;
    m.imr_address = srcAddr;  // INADDR_ANY unless given; the ifindex decides the interface
    m.imr_ifindex = ifindex;
    SetOpt(env, fd.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m, "setsockopt(IP_ADD_MEMBERSHIP)",
           group + " on " + what);
  }
  if (hasIf || hasSrc) {
    // Outgoing multicast would otherwise follow the routing table, which may pick another LAN.
    ip_mreqn m{};
    m.imr_address = srcAddr;
    m.imr_ifindex = ifindex;
    SetOpt(env, fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m, "setsockopt(IP_MULTICAST_IF)", what);
  }
  if (hasTtl) {
    // CARP receivers drop TTL != 255 (a packet that crossed a router), for unicast and multicast alike.
    SetInt(env, fd.get(), IPPROTO_IP, IP_TTL, static_cast<int>(ttl), "setsockopt(IP_TTL)");
    SetInt(env, fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, static_cast<int>(ttl), "setsockopt(IP_MULTICAST_TTL)");
  }
  if (hasTos) SetInt(env, fd.get(), IPPROTO_IP, IP_TOS, static_cast<int>(tos), "setsockopt(IP_TOS)");
  // Default off: our own advertisements looped back would look like a peer with our vhid.
  SetInt(env, fd.get(), IPPROTO_IP, IP_MULTICAST_LOOP, loop ? 1 : 0, "setsockopt(IP_MULTICAST_LOOP)");
  if (hasRcvbuf) SetInt(env, fd.get(), SOL_SOCKET, SO_RCVBUF, static_cast<int>(rcvbuf), "setsockopt(SO_RCVBUF)");
  return Napi::Number::New(env, fd.release());
}

// sendTo(fd, data, dst) -> bytes sent, or -1 when the send buffer is full (EAGAIN).
static Napi::Value SendTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "sendTo");
  Napi::Uint8Array data = ArgBytes(info, 1, "sendTo", "data");
  std::string dst = ArgString(info, 2, "sendTo", "dst");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr = ParseIPv4(env, dst, "sendTo", "dst");
  ssize_t n;
  do n = sendto(fd, data.Data(), data.ByteLength(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowSys(env, errno, "sendto", dst);
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// recvInto(fd, view) -> datagram length (> view.length means truncated), -1 on EAGAIN, -2 on ENOBUFS
// from a netlink socket. The view is usually a window on WASM memory: recv writes straight into it.
static Napi::Value RecvInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "recvInto");
  Napi::Uint8Array view = ArgBytes(info, 1, "recvInto", "view");
  if (view.ByteLength() == 0)
    // recv into 0 bytes would silently consume and discard a datagram. A 0-length view almost
    // always means WebAssembly memory grew and detached the buffer: re-create the view.
    throw Napi::Error::New(env, "recvInto: view has length 0 (detached by WebAssembly memory.grow?); re-create it");
  ssize_t n;
  // MSG_TRUNC: return the real datagram length so the caller can tell a truncated read.
  do n = recv(fd, view.Data(), view.ByteLength(), MSG_TRUNC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return Napi::Number::New(env, -1);
    if (err == ENOBUFS) {
      // Netlink reports a receive-queue overrun this way (netlink(7)); events were lost and the
      // only fix is a full re-dump, which is the caller's job. The socket itself stays usable.
      int domain = 0;
      socklen_t len = sizeof domain;
      if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_NETLINK)
        return Napi::Number::New(env, -2);
    }
    ThrowSys(env, err, "recv");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// openPacket(ifname, ethertype, raw?) -> fd. SOCK_DGRAM: the kernel adds/strips the Ethernet header;
// SOCK_RAW: frames include it (needed to send from the CARP virtual MAC, or to see the source MAC).
static Napi::Value OpenPacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = ArgString(info, 0, "openPacket", "ifname");
  uint32_t ethertype = ArgU32(info, 1, "openPacket", "ethertype");
  if (ethertype > 0xffff) throw Napi::TypeError::New(env, "openPacket: ethertype must fit in 16 bits");
  bool raw = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  unsigned ifindex = IfIndex(env, ifname);
  FdGuard fd(socket(AF_PACKET, (raw ? SOCK_RAW : SOCK_DGRAM) | kSockFlags, htons(ethertype)));
  if (fd.get() < 0) ThrowSys(env, errno, raw ? "socket(AF_PACKET, SOCK_RAW)" : "socket(AF_PACKET, SOCK_DGRAM)");
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ethertype);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) < 0)
    ThrowSys(env, errno, "bind(AF_PACKET)", "interface '" + ifname + "'");
  return Napi::Number::New(env, fd.release());
}

// sendPacket(fd, ifindex, dstMac, ethertype, payload) -> bytes sent or -1 on EAGAIN.
static Napi::Value SendPacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "sendPacket");
  uint32_t ifindex = ArgU32(info, 1, "sendPacket", "ifindex");
  Napi::Uint8Array mac = ArgBytes(info, 2, "sendPacket", "dstMac");
  uint32_t ethertype = ArgU32(info, 3, "sendPacket", "ethertype");
  Napi::Uint8Array payload = ArgBytes(info, 4, "sendPacket", "payload");
  if (mac.ByteLength() != 6) throw Napi::TypeError::New(env, "sendPacket: dstMac must be 6 bytes");
  if (ethertype > 0xffff) throw Napi::TypeError::New(env, "sendPacket: ethertype must fit in 16 bits");
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ethertype);
  sll.sll_ifindex = static_cast<int>(ifindex);
  sll.sll_halen = 6;
  memcpy(sll.sll_addr, mac.Data(), 6);
  ssize_t n;
  do n = sendto(fd, payload.Data(), payload.ByteLength(), 0, reinterpret_cast<sockaddr*>(&sll), sizeof sll);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowSys(env, errno, "sendto(AF_PACKET)", "ifindex " + std::to_string(ifindex));
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// openNetlink(protocol, groups, rcvbuf?) -> fd bound to the multicast groups bitmask.
static Napi::Value OpenNetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t protocol = ArgU32(info, 0, "openNetlink", "protocol");
  uint32_t groups = ArgU32(info, 1, "openNetlink", "groups");
  bool hasRcvbuf = !info[2].IsUndefined();
  uint32_t rcvbuf = hasRcvbuf ? ArgU32(info, 2, "openNetlink", "rcvbuf") : 0;
  if (rcvbuf > 0x7fffffff) throw Napi::TypeError::New(env, "openNetlink: rcvbuf too large");
  FdGuard fd(socket(AF_NETLINK, SOCK_RAW | kSockFlags, static_cast<int>(protocol)));
  if (fd.get() < 0) ThrowSys(env, errno, "socket(AF_NETLINK)", "protocol " + std::to_string(protocol));
  if (hasRcvbuf) {
    // Event bursts (conntrack floods) overrun the default queue; FORCE ignores rmem_max but needs
    // CAP_NET_ADMIN, so fall back to the capped SO_RCVBUF rather than fail.
    int v = static_cast<int>(rcvbuf);
    if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
      SetInt(env, fd.get(), SOL_SOCKET, SO_RCVBUF, v, "setsockopt(SO_RCVBUF)");
  }
  sockaddr_nl snl{};
  snl.nl_family = AF_NETLINK;
  snl.nl_groups = groups;  // nl_pid 0: the kernel assigns a unique port id
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&snl), sizeof snl) < 0)
    ThrowSys(env, errno, "bind(AF_NETLINK)", "groups " + std::to_string(groups));
  return Napi::Number::New(env, fd.release());
}

// netlinkAddMembership(fd, group): join a group by number (groups above 32 do not fit nl_groups).
static Napi::Value NetlinkAddMembership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "netlinkAddMembership");
  int group = static_cast<int>(ArgU32(info, 1, "netlinkAddMembership", "group"));
  SetOpt(env, fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group,
         "setsockopt(NETLINK_ADD_MEMBERSHIP)", "group " + std::to_string(group));
  return env.Undefined();
}

// send(fd, data) -> bytes sent or -1 on EAGAIN. For netlink requests (the kernel is the default peer).
static Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "send");
  Napi::Uint8Array data = ArgBytes(info, 1, "send", "data");
  ssize_t n;
  do n = send(fd, data.Data(), data.ByteLength(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowSys(env, errno, "send");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// attachFilter(fd, program): a classic BPF program (8 bytes per instruction: code u16, jt u8, jf u8, k u32, host
// order) as SO_ATTACH_FILTER, so the kernel drops what the socket does not want before it wakes the event loop.
static Napi::Value AttachFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "attachFilter");
  Napi::Uint8Array prog = ArgBytes(info, 1, "attachFilter", "program");
  size_t n = prog.ByteLength() / sizeof(sock_filter);
  if (n == 0 || n * sizeof(sock_filter) != prog.ByteLength() || n > BPF_MAXINSNS)
    throw Napi::TypeError::New(env, "attachFilter: program must be 1 to 4096 instructions of 8 bytes");
  std::vector<sock_filter> insns(n);
  memcpy(insns.data(), prog.Data(), prog.ByteLength());
  sock_fprog fp{};
  fp.len = static_cast<unsigned short>(n);
  fp.filter = insns.data();
  SetOpt(env, fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp, "setsockopt(SO_ATTACH_FILTER)");
  return env.Undefined();
}

// close(fd). EINTR is not retried: on Linux the fd is already gone and may have been reused.
static Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "close");
  if (::close(fd) < 0 && errno != EINTR) ThrowSys(env, errno, "close", "fd " + std::to_string(fd));
  return env.Undefined();
}

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("openRawIp", Napi::Function::New(env, OpenRawIp, "openRawIp"));
  exports.Set("sendTo", Napi::Function::New(env, SendTo, "sendTo"));
  exports.Set("recvInto", Napi::Function::New(env, RecvInto, "recvInto"));
  exports.Set("openPacket", Napi::Function::New(env, OpenPacket, "openPacket"));
  exports.Set("sendPacket", Napi::Function::New(env, SendPacket, "sendPacket"));
  exports.Set("openNetlink", Napi::Function::New(env, OpenNetlink, "openNetlink"));
  exports.Set("netlinkAddMembership", Napi::Function::New(env, NetlinkAddMembership, "netlinkAddMembership"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("attachFilter", Napi::Function::New(env, AttachFilter, "attachFilter"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
}

}  // namespace duogate
