// ctnetlink message → ENT (entry.ts layout). Sans allocation: walks the attribute tree in place.
// Attributes the entry does not carry are skipped; anything that runs past its parent is malformed.
import {
  NLMSG_HDRLEN, NFGEN_HDRLEN, NLA_TYPE_MASK, AF_INET, CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO,
  CTA_TIMEOUT, CTA_MARK, CTA_ZONE, CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT, CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE,
  CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, CTA_PROTOINFO_TCP_WSCALE_REPLY,
  CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY,
} from './constants';
import {
  ENT, REC, O_PROTO, O_ZONE, O_OSRC, O_RSRC, O_STATUS, O_TIMEOUT, O_MARK, O_TCPSTATE, O_WSO, O_WSR, O_FLO, O_FLR,
  O_PRESENT, PRESENT_TCP, PRESENT_MARK, PRESENT_TIMEOUT, PRESENT_ORIG, PRESENT_REPLY, PRESENT_STATUS,
} from './entry';
import { getU16, getU32 } from '../util/bytes';

export const PARSE_OK: u32 = 0;
export const PARSE_FAMILY: u32 = 1;   // not IPv4 (IPv6 is not replicated yet)
export const PARSE_MALFORMED: u32 = 2;
export const PARSE_INCOMPLETE: u32 = 3; // no original tuple, or no IPv4 addresses in it

// Per-tuple scratch: proto number seen in the tuple (to check both tuples agree).
let tupleProto: u8 = 0;
let tupleAddrs: u32 = 0;

/** Parse the ctnetlink message at `msg` (nlmsghdr included, `len` = nlmsg_len) into ENT. */
export function parseCt(msg: usize, len: u32): u32 {
  memory.fill(ENT, 0, REC);
  if (len < NLMSG_HDRLEN + NFGEN_HDRLEN) return PARSE_MALFORMED;
  if (load<u8>(msg + NLMSG_HDRLEN) != AF_INET) return PARSE_FAMILY;
  const end = msg + len;
  let p = msg + NLMSG_HDRLEN + NFGEN_HDRLEN;
  let present: u8 = 0;
  while (p + 4 <= end) {
    const alen = <u32>load<u16>(p);
    const type = load<u16>(p, 2) & NLA_TYPE_MASK;
    if (alen < 4 || p + alen > end) return PARSE_MALFORMED;
    const v = p + 4; const vlen = alen - 4;
    if (type == CTA_TUPLE_ORIG || type == CTA_TUPLE_REPLY) {
      const r = parseTuple(v, vlen, ENT + (type == CTA_TUPLE_ORIG ? O_OSRC : O_RSRC));
      if (r != PARSE_OK) return r;
      if (type == CTA_TUPLE_ORIG) {
        if (tupleAddrs != 3) return PARSE_INCOMPLETE;
        store<u8>(ENT + O_PROTO, tupleProto);
        present |= PRESENT_ORIG;
      } else if (tupleAddrs == 3) present |= PRESENT_REPLY;
    } else if (type == CTA_STATUS && vlen >= 4) {
      store<u32>(ENT + O_STATUS, getU32(v)); present |= PRESENT_STATUS;
    } else if (type == CTA_TIMEOUT && vlen >= 4) {
      store<u32>(ENT + O_TIMEOUT, getU32(v)); present |= PRESENT_TIMEOUT;
    } else if (type == CTA_MARK && vlen >= 4) {
      store<u32>(ENT + O_MARK, getU32(v)); present |= PRESENT_MARK;
    } else if (type == CTA_ZONE && vlen >= 2) {
      store<u16>(ENT + O_ZONE, <u16>getU16(v));
    } else if (type == CTA_PROTOINFO) {
      const r = parseProtoinfo(v, vlen);
      if (r > 1) return PARSE_MALFORMED;
      if (r == 1) present |= PRESENT_TCP;
    }
    p += (alen + 3) & ~3;
  }
  store<u8>(ENT + O_PRESENT, present);
  if (!(present & PRESENT_ORIG)) return PARSE_INCOMPLETE;
  return PARSE_OK;
}

/** CTA_TUPLE_* → 12 bytes at `out`: src u32, dst u32, sport u16, dport u16 (ICMP: id, type, code). */
function parseTuple(p: usize, len: u32, out: usize): u32 {
  tupleProto = 0; tupleAddrs = 0;
  const end = p + len;
  while (p + 4 <= end) {
    const alen = <u32>load<u16>(p);
    const type = load<u16>(p, 2) & NLA_TYPE_MASK;
    if (alen < 4 || p + alen > end) return PARSE_MALFORMED;
    const v = p + 4; const vend = p + alen;
    if (type == CTA_TUPLE_IP) {
      let q = v;
      while (q + 4 <= vend) {
        const l = <u32>load<u16>(q); const t = load<u16>(q, 2) & NLA_TYPE_MASK;
        if (l < 4 || q + l > vend) return PARSE_MALFORMED;
        if (t == CTA_IP_V4_SRC && l >= 8) { store<u32>(out, load<u32>(q + 4)); tupleAddrs |= 1; }
        else if (t == CTA_IP_V4_DST && l >= 8) { store<u32>(out, load<u32>(q + 4), 4); tupleAddrs |= 2; }
        q += (l + 3) & ~3;
      }
    } else if (type == CTA_TUPLE_PROTO) {
      let q = v;
      while (q + 4 <= vend) {
        const l = <u32>load<u16>(q); const t = load<u16>(q, 2) & NLA_TYPE_MASK;
        if (l < 4 || q + l > vend) return PARSE_MALFORMED;
        const w = q + 4;
        if (t == CTA_PROTO_NUM && l >= 5) tupleProto = load<u8>(w);
        else if ((t == CTA_PROTO_SRC_PORT || t == CTA_PROTO_ICMP_ID) && l >= 6) store<u16>(out, load<u16>(w), 8);
        else if (t == CTA_PROTO_DST_PORT && l >= 6) store<u16>(out, load<u16>(w), 10);
        else if (t == CTA_PROTO_ICMP_TYPE && l >= 5) store<u8>(out, load<u8>(w), 10);
        else if (t == CTA_PROTO_ICMP_CODE && l >= 5) store<u8>(out, load<u8>(w), 11);
        q += (l + 3) & ~3;
      }
    }
    p += (alen + 3) & ~3;
  }
  return PARSE_OK;
}

/** CTA_PROTOINFO → TCP fields of ENT. Returns 0 no TCP info, 1 TCP info read, 2 malformed. */
function parseProtoinfo(p: usize, len: u32): u32 {
  const end = p + len;
  let got: u32 = 0;
  while (p + 4 <= end) {
    const alen = <u32>load<u16>(p);
    const type = load<u16>(p, 2) & NLA_TYPE_MASK;
    if (alen < 4 || p + alen > end) return 2;
    if (type == CTA_PROTOINFO_TCP) {
      let q = p + 4; const qend = p + alen;
      while (q + 4 <= qend) {
        const l = <u32>load<u16>(q); const t = load<u16>(q, 2) & NLA_TYPE_MASK;
        if (l < 4 || q + l > qend) return 2;
        const w = q + 4;
        if (t == CTA_PROTOINFO_TCP_STATE && l >= 5) { store<u8>(ENT + O_TCPSTATE, load<u8>(w)); got = 1; }
        else if (t == CTA_PROTOINFO_TCP_WSCALE_ORIGINAL && l >= 5) store<u8>(ENT + O_WSO, load<u8>(w));
        else if (t == CTA_PROTOINFO_TCP_WSCALE_REPLY && l >= 5) store<u8>(ENT + O_WSR, load<u8>(w));
        else if (t == CTA_PROTOINFO_TCP_FLAGS_ORIGINAL && l >= 6) store<u8>(ENT + O_FLO, load<u8>(w));
        else if (t == CTA_PROTOINFO_TCP_FLAGS_REPLY && l >= 6) store<u8>(ENT + O_FLR, load<u8>(w));
        q += (l + 3) & ~3;
      }
    }
    p += (alen + 3) & ~3;
  }
  return got;
}

/** ICMP echo and friends: the reply tuple's type for an original type (0xff = no reply type). */
export function icmpReplyType(t: u8): u8 {
  if (t == 8) return 0;
  if (t == 13) return 14;
  if (t == 15) return 16;
  if (t == 17) return 18;
  return 0xff;
}
