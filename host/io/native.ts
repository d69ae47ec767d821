/**
 * Typed wrapper over the duogate native addon (`build/Release/duogate.node`, sources in host/addon/).
 *
 * The addon gives Node what it lacks for a CARP gateway: raw IPv4, AF_PACKET and netlink sockets,
 * interface facts, and readiness callbacks for those fds (Node's net/dgram refuse such fds).
 *
 * Contract shared by every function:
 * - All calls are synchronous; every socket is non-blocking and close-on-exec.
 * - A failed syscall throws an Error shaped like Node's system errors: `code` ('ENODEV'),
 *   `errno` (negative, -19), `syscall` ('setsockopt(SO_BINDTODEVICE)') and a message naming
 *   the interface/address involved. A constructor that fails part-way closes its fd first.
 * - Bad argument types throw a TypeError before any syscall.
 * - "Would block" is not an error: send/recv functions return -1 instead.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A system error thrown by the addon (the same shape as Node's own, e.g. from fs). */
export interface NativeError extends Error {
  /** Symbolic errno name, e.g. 'ENODEV', 'EPERM', 'EBADF'. */
  code: string;
  /** Negated errno, as in Node (ENODEV -> -19). */
  errno: number;
  /** The failed call, e.g. 'socket(AF_INET, SOCK_RAW)' or 'setsockopt(IP_ADD_MEMBERSHIP)'. */
  syscall: string;
}

/** Facts about one network interface, read with SIOCGIF* ioctls. */
export interface IfInfo {
  /** Kernel interface index (for sockaddr_ll, ip_mreqn, netlink ifinfomsg). */
  index: number;
  /** Hardware address, 6 bytes (all zero for interfaces without one, such as lo). */
  mac: Uint8Array;
  /** IFF_UP: administratively up. */
  up: boolean;
  /** IFF_RUNNING: operationally up, i.e. carrier present (for veth: the peer end is up). */
  running: boolean;
  /** MTU in bytes. */
  mtu: number;
}

/** Options for {@link NativeApi.openRawIp}. */
export interface RawIpOptions {
  /** IP protocol number: 112 for CARP/VRRP, 1 for ICMP. */
  proto: number;
  /** SO_BINDTODEVICE: only this interface's traffic is received; also the multicast interface. */
  ifname?: string;
  /** IPv4 multicast group to join on `ifname` (IP_ADD_MEMBERSHIP); requires `ifname`. */
  group?: string;
  /** Source address for outgoing multicast (IP_MULTICAST_IF by address). */
  srcAddr?: string;
  /** IP_TTL and IP_MULTICAST_TTL (CARP: 255; receivers drop anything else). */
  ttl?: number;
  /** IP_TOS byte (CARP: 0x10). */
  tos?: number;
  /** IP_MULTICAST_LOOP; default false so we never hear our own advertisements. */
  loop?: boolean;
  /** SO_RCVBUF in bytes. */
  rcvbuf?: number;
}

/** An opaque readiness registration returned by {@link NativeApi.watch}. */
export type WatchHandle = object;

/** The addon's exports. */
export interface NativeApi {
  /** Index, MAC, flags and MTU of interface `name`. Throws ENODEV if it does not exist. */
  ifInfo(name: string): IfInfo;
  /**
   * Opens a raw IPv4 socket (socket(AF_INET, SOCK_RAW, proto)) and returns its fd. The kernel
   * writes the IP header on send; received datagrams start with the IP header (parse IHL).
   */
  openRawIp(opts: RawIpOptions): number;
  /** sendto() a datagram to a dotted IPv4 address. Returns bytes sent, or -1 if it would block. */
  sendTo(fd: number, data: Uint8Array, dst: string): number;
  /**
   * Opens a raw IPv6 socket for `proto` bound to `ifname`, joined to multicast `group` there, sending with hop
   * limit 255 and no multicast loopback; receives report each datagram's hop limit and destination. For ICMPv6
   * (proto 58), `icmp6Types` is the only message types the socket receives (ICMP6_FILTER).
   */
  openRawIp6(proto: number, ifname: string, group: string, icmp6Types?: number[]): number;
  /**
   * Receives one datagram into `view` behind a 40-byte IPv6 header written from the kernel's address data (source,
   * destination, hop limit; next header = the socket's protocol). Returns 40 + payload length (more than
   * `view.length` if truncated), or -1 if nothing is queued.
   */
  recvIp6Into(fd: number, view: Uint8Array): number;
  /** Sends `data` to IPv6 `dst` out of `ifindex` from source `src` (IPV6_PKTINFO). Bytes sent, or -1 if it would block. */
  sendIp6(fd: number, data: Uint8Array, dst: string, ifindex: number, src: string): number;
  /**
   * Receives one datagram directly into `view` (which may be a window on WebAssembly memory; no
   * copy is made). Returns the datagram's full length, which exceeds `view.length` if it was
   * truncated; -1 if nothing is queued (EAGAIN); -2 on a netlink socket whose receive queue
   * overflowed (ENOBUFS: events were lost, re-dump kernel state). Other errors throw. A
   * zero-length view throws: it usually means memory.grow detached the buffer.
   */
  recvInto(fd: number, view: Uint8Array): number;
  /**
   * Opens an AF_PACKET socket bound to `ifname` and `ethertype`. SOCK_DGRAM by default (the
   * kernel writes/strips the Ethernet header using the interface MAC); `raw` gives SOCK_RAW,
   * whose frames include the Ethernet header (to send from the CARP virtual MAC).
   */
  openPacket(ifname: string, ethertype: number, raw?: boolean): number;
  /**
   * Sends `payload` to `dstMac` on interface `ifindex` (sockaddr_ll). On a SOCK_DGRAM packet
   * socket the kernel prepends the Ethernet header. Returns bytes sent, or -1 if it would block.
   */
  sendPacket(fd: number, ifindex: number, dstMac: Uint8Array, ethertype: number, payload: Uint8Array): number;
  /**
   * Opens an AF_NETLINK socket for `protocol` (NETLINK_ROUTE=0, NETLINK_NETFILTER=12) bound to the
   * `groups` bitmask (RTMGRP_LINK=1). `rcvbuf` uses SO_RCVBUFFORCE, falling back to SO_RCVBUF.
   * Overruns are reported, not hidden: recvInto returns -2 (ENOBUFS) and the caller resyncs.
   */
  openNetlink(protocol: number, groups: number, rcvbuf?: number): number;
  /** Joins netlink multicast group number `group` (NETLINK_ADD_MEMBERSHIP; for groups > 32). */
  netlinkAddMembership(fd: number, group: number): void;
  /** send() on a connected or netlink socket (requests to the kernel). Bytes sent, or -1 if it would block. */
  send(fd: number, data: Uint8Array): number;
  /**
   * Calls `onReadable` (no arguments) from the event loop whenever `fd` is readable; drain with
   * recvInto until -1. Polling is level-triggered. The handle keeps the callback alive and keeps
   * the event loop running until {@link NativeApi.unwatch}. An exception thrown by the callback
   * surfaces as process 'uncaughtException' (it does not abort the process). Unwatch before close.
   */
  watch(fd: number, onReadable: () => void): WatchHandle;
  /** Stops a watch and releases its callback. Calling it twice is harmless. */
  unwatch(handle: WatchHandle): void;
  /**
   * Attaches a classic BPF program (SO_ATTACH_FILTER; 8 bytes per instruction: code u16, jt u8, jf u8, k u32, host
   * order): the kernel drops what it rejects before the socket is readable.
   */
  attachFilter(fd: number, program: Uint8Array): void;
  /** Closes an fd returned by this addon. Throws EBADF if it is not open. */
  close(fd: number): void;
  /**
   * CLOCK_MONOTONIC in milliseconds (fractional), the daemon's clock. Unaffected by wall-clock
   * steps; its origin (boot) differs from performance.now(), so do not mix the two.
   */
  nowMs(): number;
}

/**
 * Finds build/Release/duogate.node by walking up from this module: two levels from
 * host/io/native.ts (run via tsx), three from dist/host/io/native.js (compiled).
 */
function addonPath(): string {
  const rel = join('build', 'Release', 'duogate.node');
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, rel))) return join(dir, rel);
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`duogate native addon not found (${rel} above ${fileURLToPath(import.meta.url)}); run "npm run install" to build it`);
}

const path = addonPath();
// createRequire anchored at the package root: ESM cannot import a .node file directly.
export const native: NativeApi = createRequire(join(dirname(dirname(dirname(path))), 'package.json'))(path) as NativeApi;
