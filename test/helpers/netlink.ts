// A tiny netlink writer for tests: attributes in host order headers with big-endian payload integers, as
// ctnetlink writes them, and conntrack tuples. Used by the fake kernel (syncpair.ts) and the codec tests.
import { ip6Bytes } from '../../host/config/net.js';
export type Attr = { type: number; nested?: Attr[]; data?: Buffer };
export const u8 = (type: number, v: number): Attr => ({ type, data: Buffer.from([v]) });
export const be16 = (type: number, v: number): Attr => { const b = Buffer.alloc(2); b.writeUInt16BE(v); return { type, data: b }; };
export const be32 = (type: number, v: number): Attr => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return { type, data: b }; };
export const ip4 = (type: number, a: string): Attr => ({ type, data: Buffer.from(a.split('.').map(Number)) });
export const nest = (type: number, nested: Attr[]): Attr => ({ type: type | 0x8000, nested });

/** One attribute (nested ones recursively), padded to 4 bytes. */
export function enc(a: Attr): Buffer {
  const body = a.nested ? Buffer.concat(a.nested.map(enc)) : a.data!;
  const h = Buffer.alloc(4); h.writeUInt16LE(4 + body.length, 0); h.writeUInt16LE(a.type, 2);
  return Buffer.concat([h, body, Buffer.alloc((4 - ((4 + body.length) % 4)) % 4)]);
}

/** A netlink message: the 16-byte header, then `body`. */
export function nlmsg(type: number, flags: number, seq: number, pid: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16); h.writeUInt32LE(16 + body.length, 0); h.writeUInt16LE(type, 4); h.writeUInt16LE(flags, 6); h.writeUInt32LE(seq >>> 0, 8); h.writeUInt32LE(pid >>> 0, 12);
  return Buffer.concat([h, body]);
}

/** CTA_TUPLE_ORIG (1) or CTA_TUPLE_REPLY (2) of an IPv4 flow. */
export const tuple = (type: number, src: string, dst: string, sp: number, dp: number, proto = 6): Attr =>
  nest(type, [nest(1, [ip4(1, src), ip4(2, dst)]), nest(2, [u8(1, proto), be16(2, sp), be16(3, dp)])]);

/** CTA_IP_V6_SRC (3) / CTA_IP_V6_DST (4): the 16 address bytes. */
export const ip6 = (type: number, a: string): Attr => ({ type, data: Buffer.from(ip6Bytes(a)) });

/** CTA_TUPLE_ORIG (1) or CTA_TUPLE_REPLY (2) of an IPv6 flow (ICMPv6 58: sp is the id, dp the type). */
export const tuple6 = (type: number, src: string, dst: string, sp: number, dp: number, proto = 6): Attr =>
  nest(type, [nest(1, [ip6(3, src), ip6(4, dst)]),
    nest(2, proto === 58 ? [u8(1, proto), be16(7, sp), u8(8, dp), u8(9, 0)] : [u8(1, proto), be16(2, sp), be16(3, dp)])]);
