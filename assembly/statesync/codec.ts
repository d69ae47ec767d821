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
import {
  REC, O_PROTO, O_ZONE, O_STATUS, O_TIMEOUT, O_MARK, O_TCPSTATE, O_WSO, O_WSR,
} from '../conntrack/entry';
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, TCP_CONNTRACK_MAX } from '../conntrack/constants';

export const OP_UPSERT: u8 = 1;
export const OP_DELETE: u8 = 2;
export const UPSERT_LEN: u32 = 48;
export const DELETE_LEN: u32 = 16;

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
