// Record (entry.ts layout) → ctnetlink requests for the local kernel: create, update, delete, and the
// barrier that tells the host when every earlier request has been processed. The traps of
// statesync.md §0 are handled here: the reply tuple is the plain inverse of the original (NAT is
// expressed with CTA_NAT_SRC/DST, never by a pre-NATed reply tuple), CONFIRMED is always in the
// status, TCP flag words carry flags = mask, and an update never carries NAT attributes.
import {
  NLMSG_HDRLEN, NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLA_F_NESTED, AF_INET, AF_INET6, CT_NEW, CT_GET, CT_DELETE,
  CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_NAT_SRC, CTA_NAT_DST, CTA_TIMEOUT, CTA_MARK, CTA_ZONE,
  CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST,
  CTA_PROTO_ICMPV6_ID, CTA_PROTO_ICMPV6_TYPE, CTA_PROTO_ICMPV6_CODE, IPPROTO_ICMPV6, CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT,
  CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE,
  CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, CTA_PROTOINFO_TCP_WSCALE_REPLY, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
  CTA_PROTOINFO_TCP_FLAGS_REPLY, CTA_NAT_V4_MINIP, CTA_NAT_PROTO, CTA_PROTONAT_PORT_MIN, CTA_PROTONAT_PORT_MAX,
  IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED, IPS_SRC_NAT, IPS_DST_NAT, IPPROTO_TCP, IPPROTO_ICMP,
  TCP_FLAGS_SYNCED, TCP_FLAG_BE_LIBERAL,
} from './constants';
import {
  O_PROTO, O_ZONE, O_OSRC, O_ODST, O_OSPORT, O_ODPORT, O_RSRC, O_RDST, O_RSPORT, O_RDPORT, O_STATUS, O_MARK,
  O_TCPSTATE, O_WSO, O_WSR, O_FLO, O_FLR, O6_OSRC, O6_ODST,
} from './entry';
import { icmpReplyType, icmp6ReplyType } from './parse';
import { putU32 } from '../util/bytes';

/** Largest request any builder writes (bytes); callers keep this much room. */
export const MAX_REQUEST: u32 = 320;
export const SEQ_BARRIER: u32 = 0xffffffff;

// ---- attribute writers: each returns the position after what it wrote ----
// @ts-ignore: decorator
@inline function attrU8(p: usize, type: u16, v: u8): usize { store<u16>(p, 5); store<u16>(p, type, 2); store<u32>(p, <u32>v, 4); return p + 8; }
// @ts-ignore: decorator
@inline function attrRaw16(p: usize, type: u16, v: u16): usize { store<u16>(p, 6); store<u16>(p, type, 2); store<u32>(p, <u32>v, 4); return p + 8; }
// @ts-ignore: decorator
@inline function attrRaw32(p: usize, type: u16, v: u32): usize { store<u16>(p, 8); store<u16>(p, type, 2); store<u32>(p, v, 4); return p + 8; }
// @ts-ignore: decorator
@inline function attrBE32(p: usize, type: u16, v: u32): usize { store<u16>(p, 8); store<u16>(p, type, 2); putU32(p + 4, v); return p + 8; }
// @ts-ignore: decorator
@inline function attrBytes2(p: usize, type: u16, a: u8, b: u8): usize { store<u16>(p, 6); store<u16>(p, type, 2); store<u32>(p, <u32>a | (<u32>b << 8), 4); return p + 8; }
// @ts-ignore: decorator
@inline function nestOpen(p: usize, type: u16): usize { store<u16>(p, type | NLA_F_NESTED, 2); return p + 4; }
// @ts-ignore: decorator
@inline function nestClose(start: usize, p: usize): void { store<u16>(start, <u16>(p - start)); }

function header(p: usize, type: u16, flags: u16, seq: u32, family: u8 = AF_INET): usize {
  store<u16>(p, type, 4); store<u16>(p, flags, 6); store<u32>(p, seq, 8); store<u32>(p, 0, 12);
  store<u32>(p, <u32>family, NLMSG_HDRLEN); // nfgenmsg: family, version 0, res_id 0
  return p + NLMSG_HDRLEN + 4;
}

/** Tuple nest from raw src/dst/ports; ICMP ports are (id, type|code). */
function tuple(p: usize, type: u16, proto: u8, src: u32, dst: u32, sport: u16, dport: u16): usize {
  const t = p; p = nestOpen(p, type);
  const ip = p; p = nestOpen(p, CTA_TUPLE_IP);
  p = attrRaw32(p, CTA_IP_V4_SRC, src); p = attrRaw32(p, CTA_IP_V4_DST, dst);
  nestClose(ip, p);
  const pr = p; p = nestOpen(p, CTA_TUPLE_PROTO);
  p = attrU8(p, CTA_PROTO_NUM, proto);
  if (proto == IPPROTO_ICMP) {
    p = attrRaw16(p, CTA_PROTO_ICMP_ID, sport);
    p = attrU8(p, CTA_PROTO_ICMP_TYPE, <u8>(dport & 0xff));
    p = attrU8(p, CTA_PROTO_ICMP_CODE, <u8>(dport >> 8));
  } else {
    p = attrRaw16(p, CTA_PROTO_SRC_PORT, sport); p = attrRaw16(p, CTA_PROTO_DST_PORT, dport);
  }
  nestClose(pr, p);
  nestClose(t, p);
  return p;
}

/** IPv6 tuple nest: addresses are the 16 bytes at `src`/`dst`; ICMPv6 ports are (id, type|code). */
function tuple6(p: usize, type: u16, proto: u8, src: usize, dst: usize, sport: u16, dport: u16): usize {
  const t = p; p = nestOpen(p, type);
  const ip = p; p = nestOpen(p, CTA_TUPLE_IP);
  store<u16>(p, 20); store<u16>(p, CTA_IP_V6_SRC, 2); memory.copy(p + 4, src, 16); p += 20;
  store<u16>(p, 20); store<u16>(p, CTA_IP_V6_DST, 2); memory.copy(p + 4, dst, 16); p += 20;
  nestClose(ip, p);
  const pr = p; p = nestOpen(p, CTA_TUPLE_PROTO);
  p = attrU8(p, CTA_PROTO_NUM, proto);
  if (proto == IPPROTO_ICMPV6) {
    p = attrRaw16(p, CTA_PROTO_ICMPV6_ID, sport);
    p = attrU8(p, CTA_PROTO_ICMPV6_TYPE, <u8>(dport & 0xff));
    p = attrU8(p, CTA_PROTO_ICMPV6_CODE, <u8>(dport >> 8));
  } else {
    p = attrRaw16(p, CTA_PROTO_SRC_PORT, sport); p = attrRaw16(p, CTA_PROTO_DST_PORT, dport);
  }
  nestClose(pr, p);
  nestClose(t, p);
  return p;
}

function origTuple(p: usize, r: usize, v6: bool): usize {
  if (v6) return tuple6(p, CTA_TUPLE_ORIG, load<u8>(r + O_PROTO), r + O6_OSRC, r + O6_ODST, load<u16>(r + O_OSPORT), load<u16>(r + O_ODPORT));
  return tuple(p, CTA_TUPLE_ORIG, load<u8>(r + O_PROTO), load<u32>(r + O_OSRC), load<u32>(r + O_ODST),
    load<u16>(r + O_OSPORT), load<u16>(r + O_ODPORT));
}

function zone(p: usize, r: usize): usize {
  const z = load<u16>(r + O_ZONE);
  if (z == 0) return p;
  store<u16>(p, 6); store<u16>(p, CTA_ZONE, 2); store<u32>(p, <u32>bswap<u16>(z), 4);
  return p + 8;
}

/** Status a write may carry: only SEEN_REPLY/ASSURED are settable, CONFIRMED must match the entry (EBUSY otherwise). */
// @ts-ignore: decorator
@inline function writableStatus(r: usize): u32 { return (load<u32>(r + O_STATUS) & (IPS_SEEN_REPLY | IPS_ASSURED)) | IPS_CONFIRMED; }

function tcpInfo(p: usize, r: usize, liberal: bool, withState: bool): usize {
  const lib: u8 = liberal ? TCP_FLAG_BE_LIBERAL : 0;
  const mask: u8 = TCP_FLAGS_SYNCED | TCP_FLAG_BE_LIBERAL;
  const fo = (load<u8>(r + O_FLO) & TCP_FLAGS_SYNCED) | lib;
  const fr = (load<u8>(r + O_FLR) & TCP_FLAGS_SYNCED) | lib;
  const pi = p; p = nestOpen(p, CTA_PROTOINFO);
  const tc = p; p = nestOpen(p, CTA_PROTOINFO_TCP);
  if (withState) {
    p = attrU8(p, CTA_PROTOINFO_TCP_STATE, load<u8>(r + O_TCPSTATE));
    p = attrU8(p, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, load<u8>(r + O_WSO));
    p = attrU8(p, CTA_PROTOINFO_TCP_WSCALE_REPLY, load<u8>(r + O_WSR));
  }
  p = attrBytes2(p, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, fo, mask);
  p = attrBytes2(p, CTA_PROTOINFO_TCP_FLAGS_REPLY, fr, mask);
  nestClose(tc, p); nestClose(pi, p);
  return p;
}

function natNest(p: usize, type: u16, ip: u32, port: u16, withPort: bool): usize {
  const n = p; p = nestOpen(p, type);
  p = attrRaw32(p, CTA_NAT_V4_MINIP, ip);
  if (withPort) {
    const pr = p; p = nestOpen(p, CTA_NAT_PROTO);
    p = attrRaw16(p, CTA_PROTONAT_PORT_MIN, port); p = attrRaw16(p, CTA_PROTONAT_PORT_MAX, port);
    nestClose(pr, p);
  }
  nestClose(n, p);
  return p;
}

/**
 * CT_NEW create (REQUEST|CREATE|EXCL, no ACK: only failures answer, matched by `seq`). `timeout` in
 * seconds. Returns the position after the message, or `out` if the entry cannot be expressed.
 */
export function buildCreate(out: usize, r: usize, seq: u32, timeout: u32, liberal: bool): usize {
  const proto = load<u8>(r + O_PROTO);
  const osrc = load<u32>(r + O_OSRC); const odst = load<u32>(r + O_ODST);
  const osp = load<u16>(r + O_OSPORT); const odp = load<u16>(r + O_ODPORT);
  let rsp = odp; let rdp = osp;
  if (proto == IPPROTO_ICMP) {
    const rt = icmpReplyType(<u8>(odp & 0xff));
    if (rt == 0xff) return out;
    rsp = osp; rdp = <u16>rt | (odp & 0xff00); // same id; reply type, same code
  }
  let p = header(out, CT_NEW, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, seq);
  p = origTuple(p, r, false);
  p = tuple(p, CTA_TUPLE_REPLY, proto, odst, osrc, rsp, rdp);
  p = zone(p, r);
  p = attrBE32(p, CTA_STATUS, writableStatus(r));
  p = attrBE32(p, CTA_TIMEOUT, timeout);
  const mark = load<u32>(r + O_MARK);
  if (mark != 0) p = attrBE32(p, CTA_MARK, mark);
  if (proto == IPPROTO_TCP) p = tcpInfo(p, r, liberal, true);
  const st = load<u32>(r + O_STATUS);
  const ported = proto != IPPROTO_ICMP;
  // SNAT: the reply's destination is the translated source. ICMP: the id plays the port's part.
  if (st & IPS_SRC_NAT) p = natNest(p, CTA_NAT_SRC, load<u32>(r + O_RDST), ported ? load<u16>(r + O_RDPORT) : load<u16>(r + O_RSPORT), true);
  if (st & IPS_DST_NAT) p = natNest(p, CTA_NAT_DST, load<u32>(r + O_RSRC), load<u16>(r + O_RSPORT), ported);
  store<u32>(out, <u32>(p - out));
  return p;
}

/**
 * CT_NEW create of an IPv6 record (entry.ts): as buildCreate, without NAT (IPv6 entries are replicated only
 * when their reply tuple is the plain inverse). Returns `out` if the entry cannot be expressed.
 */
export function buildCreate6(out: usize, r: usize, seq: u32, timeout: u32, liberal: bool): usize {
  const proto = load<u8>(r + O_PROTO);
  const osp = load<u16>(r + O_OSPORT); const odp = load<u16>(r + O_ODPORT);
  let rsp = odp; let rdp = osp;
  if (proto == IPPROTO_ICMPV6) {
    const rt = icmp6ReplyType(<u8>(odp & 0xff));
    if (rt == 0xff) return out;
    rsp = osp; rdp = <u16>rt | (odp & 0xff00);
  }
  let p = header(out, CT_NEW, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, seq, AF_INET6);
  p = origTuple(p, r, true);
  p = tuple6(p, CTA_TUPLE_REPLY, proto, r + O6_ODST, r + O6_OSRC, rsp, rdp);
  p = zone(p, r);
  p = attrBE32(p, CTA_STATUS, writableStatus(r));
  p = attrBE32(p, CTA_TIMEOUT, timeout);
  const mark = load<u32>(r + O_MARK);
  if (mark != 0) p = attrBE32(p, CTA_MARK, mark);
  if (proto == IPPROTO_TCP) p = tcpInfo(p, r, liberal, true);
  store<u32>(out, <u32>(p - out));
  return p;
}

/** CT_NEW update of an existing entry (no CREATE): status, timeout, mark, TCP state/flags; never NAT. */
export function buildUpdate(out: usize, r: usize, seq: u32, timeout: u32, liberal: bool, v6: bool = false): usize {
  let p = header(out, CT_NEW, NLM_F_REQUEST, seq, v6 ? AF_INET6 : AF_INET);
  p = origTuple(p, r, v6);
  p = zone(p, r);
  p = attrBE32(p, CTA_STATUS, writableStatus(r));
  p = attrBE32(p, CTA_TIMEOUT, timeout);
  p = attrBE32(p, CTA_MARK, load<u32>(r + O_MARK));
  if (load<u8>(r + O_PROTO) == IPPROTO_TCP) p = tcpInfo(p, r, liberal, true);
  store<u32>(out, <u32>(p - out));
  return p;
}

/** Update that only sets or clears BE_LIBERAL in both TCP flag words (strict tracking after takeover). */
export function buildLiberal(out: usize, r: usize, seq: u32, liberal: bool, v6: bool = false): usize {
  let p = header(out, CT_NEW, NLM_F_REQUEST, seq, v6 ? AF_INET6 : AF_INET);
  p = origTuple(p, r, v6);
  p = zone(p, r);
  const lib: u8 = liberal ? TCP_FLAG_BE_LIBERAL : 0;
  const pi = p; p = nestOpen(p, CTA_PROTOINFO);
  const tc = p; p = nestOpen(p, CTA_PROTOINFO_TCP);
  p = attrBytes2(p, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, lib, TCP_FLAG_BE_LIBERAL);
  p = attrBytes2(p, CTA_PROTOINFO_TCP_FLAGS_REPLY, lib, TCP_FLAG_BE_LIBERAL);
  nestClose(tc, p); nestClose(pi, p);
  store<u32>(out, <u32>(p - out));
  return p;
}

/** CT_DELETE by original tuple (+ zone). Always with a tuple: a tuple-less delete flushes the table. */
export function buildDelete(out: usize, r: usize, seq: u32, v6: bool = false): usize {
  let p = header(out, CT_DELETE, NLM_F_REQUEST, seq, v6 ? AF_INET6 : AF_INET);
  p = origTuple(p, r, v6);
  p = zone(p, r);
  store<u32>(out, <u32>(p - out));
  return p;
}

/**
 * Barrier: a CT_GET with ACK and no tuple, answered at once with EINVAL carrying SEQ_BARRIER. Netlink
 * handles one socket's requests in order, so its answer means every earlier request was processed.
 */
export function buildBarrier(out: usize): usize {
  const p = header(out, CT_GET, NLM_F_REQUEST | NLM_F_ACK, SEQ_BARRIER);
  store<u32>(out, <u32>(p - out));
  return p;
}

/** Dump request: CT_GET with REQUEST|DUMP, family AF_INET. */
export function buildDump(out: usize, seq: u32): usize {
  const p = header(out, CT_GET, NLM_F_REQUEST | 0x300, seq);
  store<u32>(out, <u32>(p - out));
  return p;
}
