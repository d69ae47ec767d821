// Wire items of the duogate state sync protocol (version 1; docs/statesync.md "Wire protocol").
// A data message's payload is a run of items, back to back, all integers big-endian:
//
//   upsert (48 bytes)                               delete (16 bytes)
//    0 u8  op = 1                                    0 u8  op = 2
//    1 u8  proto (6 TCP, 17 UDP, 1 ICMP)             1..15 as upsert (the key)
//    2 u16 zone
//    4 u32 orig src   8 u32 orig dst   (raw address bytes)
//   12 u16 orig sport 14 u16 orig dport (ICMP: id, then type and code bytes)
//   16 u32 reply src 20 u32 reply dst 24 u16 reply sport 26 u16 reply dport (NAT applied, as on the sender)
//   28 u32 status (IPS_*)  32 u32 timeout (s remaining)  36 u32 mark
//   40 u8 TCP state 41 u8 wscale orig 42 u8 wscale reply 43 u8 flags orig 44 u8 flags reply 45..47 zero
//
// The layout mirrors the table record (conntrack/entry.ts) so encoding is a copy plus a few swaps.
//
// IPv6 (sent only to a peer whose HELLO carried CAP_V6; docs/statesync.md "IPv6 entries"):
//
//   upsert6 (96 bytes)                              delete6 (40 bytes)
//    0 u8 op = 3, 1 u8 proto (6, 17, 58 ICMPv6)      0 u8 op = 4
//    2 u16 zone                                      1..39 as upsert6 (the key)
//    4 orig src[16]  20 orig dst[16]  36 u16 orig sport  38 u16 orig dport (ICMPv6: id, type, code)
//   40 reply src[16] 56 reply dst[16] 72 u16 reply sport 74 u16 reply dport
//   76..95: bytes 28..47 of an upsert (status, timeout, mark, TCP fields, zero)
import {
  REC, REC6, O6_OSRC, O6_RSRC, fold6, O_OSRC, O_ODST, O_RSRC, O_RDST, O_OSPORT, O_RSPORT, O_PROTO, O_ZONE, O_STATUS, O_TIMEOUT, O_MARK, O_TCPSTATE, O_WSO, O_WSR,
} from '../conntrack/entry';
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, TCP_CONNTRACK_MAX } from '../conntrack/constants';

export const OP_UPSERT: u8 = 1;
export const OP_DELETE: u8 = 2;
export const UPSERT_LEN: u32 = 48;
export const DELETE_LEN: u32 = 16;
export const OP_UPSERT6: u8 = 3;
export const OP_DELETE6: u8 = 4;
export const UPSERT6_LEN: u32 = 96;
export const DELETE6_LEN: u32 = 40;
/** Wire offset of an IPv6 item's fields from the status on, minus the record's (28 → 76). */
const D6: u32 = 48;

/** Encode IPv6 record `r` as an upsert6 at `out`. */
export function encodeUpsert6(out: usize, r: usize, timeout: u32): void {
  store<u32>(out, load<u32>(r)); store<u8>(out, OP_UPSERT6);
  store<u16>(out + O_ZONE, bswap<u16>(load<u16>(r + O_ZONE)));
  memory.copy(out + 4, r + O6_OSRC, 32);
  store<u32>(out, load<u32>(r + O_OSPORT), 36);
  memory.copy(out + 40, r + O6_RSRC, 32);
  store<u32>(out, load<u32>(r + O_RSPORT), 72);
  store<u32>(out + D6 + O_STATUS, bswap<u32>(load<u32>(r + O_STATUS)));
  store<u32>(out + D6 + O_TIMEOUT, bswap<u32>(timeout));
  store<u32>(out + D6 + O_MARK, bswap<u32>(load<u32>(r + O_MARK)));
  store<u32>(out + D6, load<u32>(r + O_TCPSTATE), O_TCPSTATE);
  store<u32>(out + D6, 0, 44); store<u8>(out + D6, load<u8>(r + 44), 44);
}

export function encodeDelete6(out: usize, r: usize): void {
  store<u32>(out, load<u32>(r)); store<u8>(out, OP_DELETE6);
  store<u16>(out + O_ZONE, bswap<u16>(load<u16>(r + O_ZONE)));
  memory.copy(out + 4, r + O6_OSRC, 32);
  store<u32>(out, load<u32>(r + O_OSPORT), 36);
}

/** The last decodeItem that returned an item read an IPv6 one (`ent` is then an IPv6 record). */
export let decodedV6: bool = false;

/** upsert6/delete6 at `p` → IPv6 record `ent`. Returns the item's length, 0 if invalid. */
function decodeItem6(p: usize, avail: u32, ent: usize, op: u8): u32 {
  const proto = load<u8>(p + O_PROTO);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6) return 0;
  const len = op == OP_DELETE6 ? DELETE6_LEN : UPSERT6_LEN;
  if (avail < len) return 0;
  memory.fill(ent, 0, REC6);
  store<u8>(ent + O_PROTO, proto);
  store<u16>(ent + O_ZONE, bswap<u16>(load<u16>(p + O_ZONE)));
  memory.copy(ent + O6_OSRC, p + 4, 32);
  store<u32>(ent + O_OSPORT, load<u32>(p, 36));
  store<u32>(ent + O_OSRC, fold6(ent + O6_OSRC)); store<u32>(ent + O_ODST, fold6(ent + O6_OSRC + 16));
  if (op == OP_UPSERT6) {
    memory.copy(ent + O6_RSRC, p + 40, 32);
    store<u32>(ent + O_RSPORT, load<u32>(p, 72));
    store<u32>(ent + O_RSRC, fold6(ent + O6_RSRC)); store<u32>(ent + O_RDST, fold6(ent + O6_RSRC + 16));
    store<u32>(ent + O_STATUS, bswap<u32>(load<u32>(p + D6 + O_STATUS)));
    store<u32>(ent + O_TIMEOUT, bswap<u32>(load<u32>(p + D6 + O_TIMEOUT)));
    store<u32>(ent + O_MARK, bswap<u32>(load<u32>(p + D6 + O_MARK)));
    memory.copy(ent + O_TCPSTATE, p + D6 + O_TCPSTATE, 5);
    if (load<u8>(ent + O_TCPSTATE) >= TCP_CONNTRACK_MAX || load<u8>(ent + O_WSO) > 14 || load<u8>(ent + O_WSR) > 14) return 0;
  }
  decodedV6 = true;
  return len;
}

/** Encode record `r` as an upsert at `out` with `timeout` seconds remaining. */
export function encodeUpsert(out: usize, r: usize, timeout: u32): void {
  memory.copy(out, r, UPSERT_LEN);
  store<u8>(out, OP_UPSERT);
  store<u16>(out + O_ZONE, bswap<u16>(load<u16>(r + O_ZONE)));
  store<u32>(out + O_STATUS, bswap<u32>(load<u32>(r + O_STATUS)));
  store<u32>(out + O_TIMEOUT, bswap<u32>(timeout));
  store<u32>(out + O_MARK, bswap<u32>(load<u32>(r + O_MARK)));
  store<u32>(out, 0, 44); store<u8>(out, load<u8>(r + 44), 44);
}

export function encodeDelete(out: usize, r: usize): void {
  memory.copy(out, r, DELETE_LEN);
  store<u8>(out, OP_DELETE);
  store<u16>(out + O_ZONE, bswap<u16>(load<u16>(r + O_ZONE)));
}

/**
 * Decode the item at `p` (at most `avail` bytes) into the record-shaped `ent`. Returns the item's
 * length, 0 for an invalid item (unknown op, protocol or TCP state, or truncated).
 */
export function decodeItem(p: usize, avail: u32, ent: usize): u32 {
  if (avail < DELETE_LEN) return 0;
  const op = load<u8>(p);
  if (op == OP_UPSERT6 || op == OP_DELETE6) return decodeItem6(p, avail, ent, op);
  decodedV6 = false;
  const proto = load<u8>(p + O_PROTO);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) return 0;
  memory.fill(ent, 0, REC);
  if (op == OP_DELETE) {
    memory.copy(ent, p, DELETE_LEN);
  } else if (op == OP_UPSERT) {
    if (avail < UPSERT_LEN) return 0;
    memory.copy(ent, p, UPSERT_LEN);
    store<u32>(ent + O_STATUS, bswap<u32>(load<u32>(p + O_STATUS)));
    store<u32>(ent + O_TIMEOUT, bswap<u32>(load<u32>(p + O_TIMEOUT)));
    store<u32>(ent + O_MARK, bswap<u32>(load<u32>(p + O_MARK)));
    if (load<u8>(ent + O_TCPSTATE) >= TCP_CONNTRACK_MAX || load<u8>(ent + O_WSO) > 14 || load<u8>(ent + O_WSR) > 14) return 0;
    store<u32>(ent, 0, 44); store<u8>(ent, load<u8>(p + 44), 44);
  } else return 0;
  store<u8>(ent, 0);
  store<u16>(ent + O_ZONE, bswap<u16>(load<u16>(p + O_ZONE)));
  return op == OP_DELETE ? DELETE_LEN : UPSERT_LEN;
}
