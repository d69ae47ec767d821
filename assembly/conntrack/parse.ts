// ctnetlink message → ENT (entry.ts layout). Sans allocation: walks the attribute tree in place.
// Attributes the entry does not carry are skipped; anything that runs past its parent is malformed.
import {
  NLMSG_HDRLEN, NFGEN_HDRLEN, NLA_TYPE_MASK, AF_INET, AF_INET6, CTA_IP_V6_SRC, CTA_IP_V6_DST,
  CTA_PROTO_ICMPV6_ID, CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE, CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO,
  CTA_TIMEOUT, CTA_MARK, CTA_ZONE, CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_PROTO_NUM,
  CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT, CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE,
  CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, CTA_PROTOINFO_TCP_WSCALE_REPLY,
  CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY,
} from './constants';
import {
  ENT, REC, REC6, O6_OSRC, O6_RSRC, fold6, O_PROTO, O_ZONE, O_OSRC, O_RSRC, O_STATUS, O_TIMEOUT, O_MARK, O_TCPSTATE, O_WSO, O_WSR, O_FLO, O_FLR,
  O_PRESENT, PRESENT_TCP, PRESENT_MARK, PRESENT_TIMEOUT, PRESENT_ORIG, PRESENT_REPLY, PRESENT_STATUS,
} from './entry';
import { getU16, getU32 } from '../util/bytes';

export const PARSE_OK: u32 = 0;
export const PARSE_FAMILY: u32 = 1;   // neither IPv4 nor IPv6
export const PARSE_MALFORMED: u32 = 2;
export const PARSE_INCOMPLETE: u32 = 3; // no original tuple, or no addresses of its family in it

/** The last parseCt that returned PARSE_OK read an IPv6 entry (ENT is then an IPv6 record, entry.ts). */
export let parsedV6: bool = false;

// Per-tuple scratch: proto number seen in the tuple (to check both tuples agree).
let tupleProto: u8 = 0;
let tupleAddrs: u32 = 0;

/** Parse the ctnetlink message at `msg` (nlmsghdr included, `len` = nlmsg_len) into ENT. */
export function parseCt(msg: usize, len: u32): u32 {
  if (len < NLMSG_HDRLEN + NFGEN_HDRLEN) { memory.fill(ENT, 0, REC); return PARSE_MALFORMED; }
  const fam = load<u8>(msg + NLMSG_HDRLEN);
  if (fam == AF_INET) { parsedV6 = false; memory.fill(ENT, 0, REC); }
  else if (fam == AF_INET6) { parsedV6 = true; memory.fill(ENT, 0, REC6); }
  else { memory.fill(ENT, 0, REC); return PARSE_FAMILY; }
  const end = msg + len;
  let p = msg + NLMSG_HDRLEN + NFGEN_HDRLEN;
  let present: u8 = 0;
  while (p + 4 <= end) {
    const alen = <u32>load<u16>(p);
    const type = load<u16>(p, 2) & NLA_TYPE_MASK;
    if (alen < 4 || p + alen > end) return PARSE_MALFORMED;
    const v = p + 4; const vlen = alen - 4;
    if (type == CTA_TUPLE_ORIG || type == CTA_TUPLE_REPLY) {
      const orig = type == CTA_TUPLE_ORIG;
      const r = parseTuple(v, vlen, ENT + (orig ? O_OSRC : O_RSRC), ENT + (orig ? O6_OSRC : O6_RSRC));
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

/**
 * CTA_TUPLE_* → 12 bytes at `out`: src u32, dst u32, sport u16, dport u16 (ICMP: id, type, code). IPv6: the
 * addresses go to `out6` (src, then dst) and their folds to the address words at `out`.
 */
function parseTuple(p: usize, len: u32, out: usize, out6: usize): u32 {
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
        if (parsedV6) {
          if (t == CTA_IP_V6_SRC && l >= 20) { memory.copy(out6, q + 4, 16); store<u32>(out, fold6(out6)); tupleAddrs |= 1; }
          else if (t == CTA_IP_V6_DST && l >= 20) { memory.copy(out6 + 16, q + 4, 16); store<u32>(out, fold6(out6 + 16), 4); tupleAddrs |= 2; }
        } else if (t == CTA_IP_V4_SRC && l >= 8) { store<u32>(out, load<u32>(q + 4)); tupleAddrs |= 1; }
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
        else if ((t == CTA_PROTO_SRC_PORT || t == CTA_PROTO_ICMP_ID || t == CTA_PROTO_ICMPV6_ID) && l >= 6) store<u16>(out, load<u16>(w), 8);
        else if (t == CTA_PROTO_DST_PORT && l >= 6) store<u16>(out, load<u16>(w), 10);
        else if ((t == CTA_PROTO_ICMP_TYPE || t == CTA_PROTO_ICMPV6_TYPE) && l >= 5) store<u8>(out, load<u8>(w), 10);
        else if ((t == CTA_PROTO_ICMP_CODE || t == CTA_PROTO_ICMPV6_CODE) && l >= 5) store<u8>(out, load<u8>(w), 11);
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

/** ICMPv6 echo and node information query: the reply type (0xff = none; the kernel's invmap). */
export function icmp6ReplyType(t: u8): u8 {
  if (t == 128) return 129;
  if (t == 139) return 140;
  return 0xff;
}

/** ICMP echo and friends: the reply tuple's type for an original type (0xff = no reply type). */
export function icmpReplyType(t: u8): u8 {
  if (t == 8) return 0;
  if (t == 13) return 14;
  if (t == 15) return 16;
  if (t == 17) return 18;
  return 0xff;
}
