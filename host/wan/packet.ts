// The WAN DHCP client's frames: until it holds an address the node has no IP source on the ISP's subnet, so the
// client sends and receives whole Ethernet frames on an AF_PACKET socket (Ethernet from the virtual MAC, IPv4,
// UDP 68 → 67), and a classic BPF filter lets only IPv4 UDP to port 68 wake the event loop.

import { endianness } from 'node:os';

const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const BROADCAST_MAC = Buffer.from([255, 255, 255, 255, 255, 255]);

const ipBuf = (ip: string) => Buffer.from(ip.split('.').map(Number));

/** The Internet checksum (RFC 1071) of `b`, folded. */
function csum(b: Buffer, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** One Ethernet frame carrying a UDP datagram from port 68 to port 67. */
export function dhcpFrame(srcMac: Buffer, dstMac: Buffer, srcIp: string, dstIp: string, payload: Buffer): Buffer {
  const f = Buffer.alloc(ETH_HLEN + 20 + 8 + payload.length);
  dstMac.copy(f, 0); srcMac.copy(f, 6); f.writeUInt16BE(ETH_P_IP, 12);
  const ip = f.subarray(ETH_HLEN, ETH_HLEN + 20);
  ip[0] = 0x45; ip[1] = 0x10; // TOS: low delay, as ISC dhclient sends
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64; ip[9] = 17;
  ipBuf(srcIp).copy(ip, 12); ipBuf(dstIp).copy(ip, 16);
  ip.writeUInt16BE(~csum(ip) & 0xffff, 10);
  const udp = f.subarray(ETH_HLEN + 20);
  udp.writeUInt16BE(68, 0); udp.writeUInt16BE(67, 2); udp.writeUInt16BE(8 + payload.length, 4);
  payload.copy(udp, 8);
  const pseudo = Buffer.concat([ip.subarray(12, 20), Buffer.from([0, 17]), udp.subarray(4, 6)]);
  const c = ~csum(udp, csum(pseudo)) & 0xffff;
  udp.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  return f;
}

/** A received frame's UDP payload (to port 68) and Ethernet source, or why it is not one. */
export function parseDhcpFrame(f: Uint8Array): { ok: true; srcMac: Buffer; payload: Buffer } | { ok: false; why: string } {
  const b = Buffer.from(f.buffer, f.byteOffset, f.byteLength);
  if (b.length < ETH_HLEN + 20 + 8) return { ok: false, why: 'short' };
  if (b.readUInt16BE(12) !== ETH_P_IP) return { ok: false, why: 'not_ipv4' };
  const ihl = (b[ETH_HLEN] & 0x0f) * 4;
  if (b[ETH_HLEN] >> 4 !== 4 || ihl < 20 || b.length < ETH_HLEN + ihl + 8) return { ok: false, why: 'bad_ip' };
  if (b[ETH_HLEN + 9] !== 17) return { ok: false, why: 'not_udp' };
  if (b.readUInt16BE(ETH_HLEN + 6) & 0x3fff) return { ok: false, why: 'fragment' };
  const total = b.readUInt16BE(ETH_HLEN + 2);
  // The IP header's own checksum (the kernel always fills it; UDP's may be left to offload on a local path, so
  // it is not checked here: the DHCP payload is parsed strictly anyway).
  if (total < ihl + 8 || ETH_HLEN + total > b.length || csum(b.subarray(ETH_HLEN, ETH_HLEN + ihl)) !== 0xffff) return { ok: false, why: 'bad_ip' };
  const udp = ETH_HLEN + ihl;
  if (b.readUInt16BE(udp + 2) !== 68) return { ok: false, why: 'port' };
  const ulen = b.readUInt16BE(udp + 4);
  if (ulen < 8 || udp + ulen > b.length || ihl + ulen > total) return { ok: false, why: 'bad_udp' };
  return { ok: true, srcMac: Buffer.from(b.subarray(6, 12)), payload: Buffer.from(b.subarray(udp + 8, udp + ulen)) };
}

/** Classic BPF on a SOCK_RAW packet socket: IPv4, UDP, not a fragment, destination port 68; all else dropped. */
export function dhcpClientFilter(): Uint8Array {
  const insns: [number, number, number, number][] = [
    [0x28, 0, 0, 12],      // 0 ldh [12]            ethertype
    [0x15, 0, 8, 0x0800],  // 1 jeq IPv4 else drop
    [0x30, 0, 0, 23],      // 2 ldb [23]            protocol
    [0x15, 0, 6, 17],      // 3 jeq UDP else drop
    [0x28, 0, 0, 20],      // 4 ldh [20]            flags + fragment offset
    [0x45, 4, 0, 0x1fff],  // 5 jset offset → drop
    [0xb1, 0, 0, 14],      // 6 ldxb 4*([14]&0xf)   IP header length
    [0x48, 0, 0, 16],      // 7 ldh [x+16]          UDP destination port
    [0x15, 0, 1, 68],      // 8 jeq 68 else drop
    [0x06, 0, 0, 0xffff],  // 9 ret accept
    [0x06, 0, 0, 0],       // 10 ret drop
  ];
  const out = Buffer.alloc(insns.length * 8);
  const le = endianness() === 'LE'; // struct sock_filter is in host byte order
  insns.forEach(([code, jt, jf, k], i) => {
    if (le) { out.writeUInt16LE(code, i * 8); out.writeUInt32LE(k, i * 8 + 4); } else { out.writeUInt16BE(code, i * 8); out.writeUInt32BE(k, i * 8 + 4); }
    out[i * 8 + 2] = jt; out[i * 8 + 3] = jf;
  });
  return out;
}
