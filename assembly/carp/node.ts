// The node: its vhids, links, demotion and the receive pipeline. Receive checks run in verify-then-act
// order (carp.md §1.5) and every drop has its own counter; nothing on the wire can trap the module. Adverts
// arrive in IPv4 or IPv6 (carp/ipv6.ts); after the IP header both take the same path.
import { VHID_ERR_ARG, VHID_ERR_VIP_COUNT, VHID_ERR_FULL, VHID_ERR_DUPLICATE } from './layout';
import { getU16, getU32, getU64, putU32 } from '../util/bytes';
import { inetChecksum } from '../util/checksum';
import { HmacKey } from '../crypto/hmac';
import {
  OFF_ADVBASE, OFF_ADVSKEW, OFF_COUNTER, OFF_DEMOTE, OFF_VERSION_TYPE, OFF_VHID, SRC4, hasLinkLocal, hasPairTrailer,
  verifyAdvert, verifyPair,
} from './advert';
import { FAMILY_V4, FAMILY_V6, IPV6_HEADER_LEN, cmp16, eq16, isScopeEmbedded, isZero16 } from './ipv6';
import {
  BACKUP, CARP_HEADER_LEN, CARP_PROTO, CARP_TTL, CARP_TYPE_ADVERTISEMENT, CARP_VERSION, DEMOTE_FACTOR,
  DEMOTE_LINK_DOWN, DROP_BAD_CHECKSUM, DROP_BAD_HMAC, DROP_BAD_IP, DROP_BAD_PAIR_AUTH, DROP_BAD_TTL, DROP_BAD_VERSION,
  DROP_NO_PAIR_AUTH, DROP_NOT_PEER, DROP_NOT_READY, DROP_OWN_PACKET, DROP_REPLAY, DROP_SHORT, DROP_UNKNOWN_VHID, INIT, MASTER, MAX_VHIDS, MAX_VIPS_PER_VHID,
  RX_OK, STAT_ACCEPTED, STAT_OTHER_FAMILY_COPY, WHY_LINK_DOWN, WHY_LINK_UP, WHY_REMOVED, WHY_SHUTDOWN, WHY_START,
} from './constants';
import { bumpStat } from './stats';
import { Vhid } from './vhid';

export const MAX_LINKS: u32 = 8;

export class CarpNode {
  vhids: Array<Vhid> = new Array<Vhid>();
  preempt: bool = true;
  /** The sync link lost carrier (see Vhid.applyPeerLost). */
  peerLost: bool = false;
  started: bool = false;
  /** Active demotion reasons (bit per DEMOTE_*), each worth DEMOTE_FACTOR, plus a free amount set by the host. */
  demoteMask: u32 = 0;
  demoteExtra: u32 = 0;
  linkUp: StaticArray<bool> = new StaticArray<bool>(MAX_LINKS);
  linkAddrs: StaticArray<u32> = new StaticArray<u32>(MAX_LINKS);
  /** The node's IPv6 link-local address per link (16 bytes each, zero = none): the source of its IPv6 adverts. */
  linkAddrs6: StaticArray<u8> = new StaticArray<u8>(MAX_LINKS * 16);
  /**
   * Paired counters start at epoch << 32. The host makes the epoch grow across restarts (persisted, never
   * below the wall clock's seconds), so the peer, which refuses counters it has passed, accepts a restarted node.
   */
  epoch: u32 = 0;

  constructor() { for (let i: u32 = 0; i < MAX_LINKS; i++) this.linkUp[i] = true; }

  demotion(): u32 { return <u32>popcnt<u32>(this.demoteMask) * DEMOTE_FACTOR + this.demoteExtra; }
  linkAddr(link: u32): u32 { return link < MAX_LINKS ? unchecked(this.linkAddrs[link]) : 0; }
  /** Address of the link's 16-byte IPv6 source (all zero when unset); `link` must be < MAX_LINKS. */
  linkAddr6(link: u32): usize { return changetype<usize>(this.linkAddrs6) + <usize>(link << 4); }

  find(link: u32, vhid: u8): Vhid | null {
    for (let i = 0; i < this.vhids.length; i++) {
      const v = unchecked(this.vhids[i]);
      if (v.vhid == vhid && v.link == link) return v;
    }
    return null;
  }

  /** Change demotion; every vhid reacts (MASTERs advertise at once). */
  setDemotion(now: f64, mask: u32, extra: u32): void {
    const before = this.demotion();
    this.demoteMask = mask; this.demoteExtra = extra;
    if (this.demotion() == before) return;
    for (let i = 0; i < this.vhids.length; i++) unchecked(this.vhids[i]).onDemotionChange(now);
  }

  /** LINK_DOWN demotion holds while any link that carries a vhid has no carrier (a node must not keep the WAN VIP without its LAN). */
  refreshLinkDemotion(now: f64): void {
    let down = false;
    for (let i = 0; i < this.vhids.length; i++) {
      if (!this.linkUp[unchecked(this.vhids[i]).link]) { down = true; break; }
    }
    const bit: u32 = 1 << DEMOTE_LINK_DOWN;
    this.setDemotion(now, down ? (this.demoteMask | bit) : (this.demoteMask & ~bit), this.demoteExtra);
  }
}

export let node = new CarpNode();

// xorshift64* seeded by the host: the core draws advert counters from it and never reads entropy itself.
let rngState: u64 = 0x9e3779b97f4a7c15;
export function seedRandom(hi: u32, lo: u32): void {
  rngState = (<u64>hi << 32) | <u64>lo;
  if (rngState == 0) rngState = 0x9e3779b97f4a7c15;
}
export function nextRandom(): u64 {
  let x = rngState;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  rngState = x;
  return x * 0x2545f4914f6cdd1d;
}

export function resetNode(): void { node = new CarpNode(); }

/**
 * Add a vhid. Key bytes at `key` (already truncated to 19 by the caller's validation), `vipCount` IPv4 addresses
 * (host-order words) at `vips`, `vip6Count` IPv6 addresses (16 bytes each, network order) at `vips6`.
 */
export function addVhid(vhid: u8, link: u32, advbase: u8, advskew: u8, key: usize, keyLen: u32, vips: usize, vipCount: u32,
  vips6: usize = 0, vip6Count: u32 = 0): i32 {
  if (vhid == 0 || link >= MAX_LINKS) return VHID_ERR_ARG;
  if (vipCount + vip6Count == 0 || vipCount > <u32>MAX_VIPS_PER_VHID || vip6Count > <u32>MAX_VIPS_PER_VHID) return VHID_ERR_VIP_COUNT;
  if (node.vhids.length >= MAX_VHIDS) return VHID_ERR_FULL;
  if (node.find(link, vhid) != null) return VHID_ERR_DUPLICATE;
  const v = new Vhid(vhid, link, advbase, advskew, new HmacKey(key, keyLen), sortedVips(vips, vipCount));
  if (vip6Count > 0) {
    v.vips6 = sortedVips6(vips6, vip6Count);
    v.linkLocal = hasLinkLocal(v.vips6);
  }
  node.vhids.push(v);
  return node.vhids.length - 1;
}

/**
 * Replace a vhid's VIP list in place (a WAN address leased by DHCP moved): its state, timers and counter stay,
 * and its next advert's HMAC covers the new list. Returns a VHID_ERR_* code, or the vhid's slot.
 */
export function setVips(vhid: u8, link: u32, vips: usize, vipCount: u32): i32 {
  if (vipCount == 0 || vipCount > <u32>MAX_VIPS_PER_VHID) return VHID_ERR_VIP_COUNT;
  for (let s = 0; s < node.vhids.length; s++) {
    const v = unchecked(node.vhids[s]);
    if (v.vhid != vhid || v.link != link) continue;
    v.vips = sortedVips(vips, vipCount);
    return s;
  }
  return VHID_ERR_ARG;
}

function sortedVips(vips: usize, vipCount: u32): StaticArray<u32> {
  const list = new StaticArray<u32>(vipCount);
  for (let i: u32 = 0; i < vipCount; i++) list[i] = load<u32>(vips + (<usize>i << 2));
  // Sorted ascending as unsigned numbers: the HMAC input order every implementation uses.
  for (let i: i32 = 1; i < <i32>vipCount; i++) {
    const x = list[i]; let j = i - 1;
    while (j >= 0 && list[j] > x) { list[j + 1] = list[j]; j--; }
    list[j + 1] = x;
  }
  return list;
}

/** The IPv6 VIPs as the HMAC hashes them: scope id (bytes 2-3) of link-local ones cleared, memcmp-ascending. */
function sortedVips6(src: usize, count: u32): StaticArray<u8> {
  const list = new StaticArray<u8>(count << 4);
  const a = changetype<usize>(list);
  memory.copy(a, src, count << 4);
  for (let i: u32 = 0; i < count; i++) if (isScopeEmbedded(a + (<usize>i << 4))) store<u16>(a + (<usize>i << 4), 0, 2);
  const tmp = memory.data(16, 8);
  for (let i: i32 = 1; i < <i32>count; i++) {
    memory.copy(tmp, a + (<usize>i << 4), 16);
    let j = i - 1;
    while (j >= 0 && cmp16(a + (<usize>j << 4), tmp) > 0) { memory.copy(a + (<usize>(j + 1) << 4), a + (<usize>j << 4), 16); j--; }
    memory.copy(a + (<usize>(j + 1) << 4), tmp, 16);
  }
  return list;
}

/**
 * Pair authentication for the vhid in `slot`: the trailer key (`keyLen` bytes at `key`, 0 = plain CARP) and the
 * peer's addresses on the link: IPv4 (0 = none) and IPv6 (16 bytes at `peer6`, 0 or all zero = none). With either
 * set, an advert is accepted only from the peer's address of its own family. Returns false for a bad slot.
 */
export function setPair(slot: i32, peerAddr: u32, key: usize, keyLen: u32, peer6: usize = 0): bool {
  if (slot < 0 || slot >= node.vhids.length) return false;
  const v = unchecked(node.vhids[slot]);
  v.peerAddr = peerAddr;
  v.peer6Set = peer6 != 0 && !isZero16(peer6);
  if (v.peer6Set) memory.copy(changetype<usize>(v.peerAddr6), peer6, 16);
  v.pairKey = keyLen > 0 ? new HmacKey(key, keyLen) : null;
  return true;
}

/**
 * Remove a vhid (live reconfiguration). A MASTER releases its VIPs and bows out first, so the peer takes
 * over at once instead of waiting for the master-down timer. Returns false if the vhid is not on `link`.
 */
export function removeVhid(now: f64, vhid: u8, link: u32): bool {
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    if (v.vhid != vhid || v.link != link) continue;
    v.becomeInit(now, WHY_REMOVED, link < MAX_LINKS && node.linkUp[link]);
    node.vhids.splice(i, 1);
    // A vhid gone from a dead link may end the LINK_DOWN demotion of the others.
    node.refreshLinkDemotion(now);
    return true;
  }
  return false;
}

/** Start: every vhid whose link has carrier goes INIT → BACKUP and waits one master-down interval. */
export function start(now: f64): void {
  node.started = true;
  node.refreshLinkDemotion(now);
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    if (v.state == INIT && node.linkUp[v.link]) v.becomeBackup(now, WHY_START, false);
  }
}

/** Graceful stop: every MASTER releases its VIPs and bows out; everything goes to INIT. */
export function shutdown(now: f64): void {
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    v.becomeInit(now, WHY_SHUTDOWN, node.linkUp[v.link]);
  }
  node.started = false;
}

export function setLink(now: f64, link: u32, up: bool): void {
  if (link >= MAX_LINKS || node.linkUp[link] == up) return;
  node.linkUp[link] = up;
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    if (v.link != link) continue;
    if (!up) v.becomeInit(now, WHY_LINK_DOWN, false);
    else if (node.started && v.state == INIT) v.becomeBackup(now, WHY_LINK_UP, false);
  }
  node.refreshLinkDemotion(now);
}

/** Carrier of the dedicated sync link to the peer: lost → BACKUPs use the short master-down (Vhid.applyPeerLost). */
export function setPeerLost(now: f64, lost: bool): void {
  if (node.peerLost == lost) return;
  node.peerLost = lost;
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    if (lost) v.applyPeerLost(now);
    else if (v.state == BACKUP && v.masterDownAt >= 0 && v.masterHeardAt >= 0) v.masterDownAt = v.masterHeardAt + v.masterDownMs();
  }
}

export function handleTimeout(now: f64): void {
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    const t = v.nextDeadline();
    if (t >= 0 && t <= now) v.onTimeout(now);
  }
}

export function nextTimeout(): f64 {
  let t: f64 = -1;
  for (let i = 0; i < node.vhids.length; i++) {
    const d = unchecked(node.vhids[i]).nextDeadline();
    if (d >= 0 && (t < 0 || d < t)) t = d;
  }
  return t;
}

/**
 * An IPv4 datagram as a raw socket delivers it (header included), or an IPv6 one with its 40-byte header (the
 * host lays it out from the raw socket's source, destination and hop limit), at `pkt`, `len` bytes, received on
 * `link`. Returns RX_OK or the DROP_* reason (also counted).
 */
export function handleCarp(now: f64, link: u32, pkt: usize, len: u32): u32 {
  const r = receive(now, link, pkt, len);
  bumpStat(r == RX_OK ? STAT_ACCEPTED : r);
  return r;
}

function receive(now: f64, link: u32, pkt: usize, len: u32): u32 {
  if (len == 0) return DROP_SHORT;
  if ((<u32>load<u8>(pkt) >> 4) == 6) return receive6(now, link, pkt, len);
  if (len < 20) return DROP_SHORT;
  const vihl = <u32>load<u8>(pkt);
  if ((vihl >> 4) != 4) return DROP_BAD_IP;
  const ihl = (vihl & 0xf) << 2;
  if (ihl < 20 || ihl > len) return DROP_BAD_IP;
  if (<u32>load<u8>(pkt, 9) != <u32>CARP_PROTO) return DROP_BAD_IP;
  if (<u32>load<u8>(pkt, 8) != <u32>CARP_TTL) return DROP_BAD_TTL;
  const total = getU16(pkt + 2);
  if (total > len || total < ihl + CARP_HEADER_LEN || len < ihl + CARP_HEADER_LEN) return DROP_SHORT;
  putU32(SRC4, getU32(pkt + 12));
  return receiveCarp(now, link, pkt + ihl, total - ihl, FAMILY_V4, getU32(pkt + 12), SRC4);
}

/** An IPv6 advert: next header 112 right after the fixed header (CARP senders add no extension header), hop limit 255. */
function receive6(now: f64, link: u32, pkt: usize, len: u32): u32 {
  if (len < IPV6_HEADER_LEN) return DROP_SHORT;
  if (<u32>load<u8>(pkt, 6) != <u32>CARP_PROTO) return DROP_BAD_IP;
  if (<u32>load<u8>(pkt, 7) != <u32>CARP_TTL) return DROP_BAD_TTL;
  const plen = getU16(pkt + 4);
  if (plen < CARP_HEADER_LEN || IPV6_HEADER_LEN + plen > len) return DROP_SHORT;
  return receiveCarp(now, link, pkt + IPV6_HEADER_LEN, plen, FAMILY_V6, 0, pkt + 8);
}

/**
 * The CARP payload at `carp` (`plen` bytes) from `src` (IPv4: `src4` host order, and `srcPtr` its 4 bytes;
 * IPv6: `srcPtr` its 16 bytes).
 */
function receiveCarp(now: f64, link: u32, carp: usize, plen: u32, family: u32, src4: u32, srcPtr: usize): u32 {
  const v6 = family == FAMILY_V6;
  // The whole payload, as OpenBSD and Wireshark check it (a plain advert is exactly the 36-byte header).
  if (inetChecksum(carp, plen) != 0) return DROP_BAD_CHECKSUM;
  const vt = <u32>load<u8>(carp, OFF_VERSION_TYPE);
  if ((vt >> 4) != <u32>CARP_VERSION || (vt & 0xf) != <u32>CARP_TYPE_ADVERTISEMENT) return DROP_BAD_VERSION;
  const v = node.find(link, load<u8>(carp, OFF_VHID));
  if (v == null) return DROP_UNKNOWN_VHID;
  const counter = getU64(carp + OFF_COUNTER);
  // Our own advert looped back (a switch echoing multicast): same source, or exactly the advert we last sent
  // (counter, demote, advbase, advskew). The counter alone is not enough: both nodes adopt each other's counter
  // and count up from it, so a peer's preempting advert can carry the counter of our own last one.
  const own = v6 ? !isZero16(node.linkAddr6(link)) && eq16(srcPtr, node.linkAddr6(link)) : src4 == node.linkAddr(link);
  if (own || (v.txAdverts > 0 && counter == v.lastSentCounter
    && <u32>load<u8>(carp, OFF_DEMOTE) == v.lastSentDemote && <u32>load<u8>(carp, OFF_ADVBASE) == v.lastSentBase
    && <u32>load<u8>(carp, OFF_ADVSKEW) == v.lastSentSkew)) return DROP_OWN_PACKET;
  // A pair has exactly one other member: an advert from any other address is not part of the election.
  // An address of either family makes the vhid paired with it: an advert of a family without one has no peer.
  if (v.peerAddr != 0 || v.peer6Set) {
    if (v6 ? !(v.peer6Set && eq16(srcPtr, changetype<usize>(v.peerAddr6))) : (v.peerAddr == 0 || src4 != v.peerAddr)) return DROP_NOT_PEER;
  }
  const pair = v.pairKey;
  if (pair != null && !hasPairTrailer(carp, plen)) return DROP_NO_PAIR_AUTH;
  if (!verifyAdvert(carp, v.key, v.vips, v.vips6, v.linkLocal)) return DROP_BAD_HMAC;
  if (pair != null && !verifyPair(carp, srcPtr, v6 ? 16 : 4, pair)) return DROP_BAD_PAIR_AUTH;
  if (v.peerCounterSeen && counter == v.peerCounter && family != v.peerCounterFamily) {
    v.onOtherFamilyCopy(family, src4, srcPtr, counter);
    return STAT_OTHER_FAMILY_COPY;
  }
  if (pair != null && v.peerCounterSeen && counter <= v.peerCounter) return DROP_REPLAY;
  if (v.state == INIT) return DROP_NOT_READY;
  v.peerCounter = counter;
  v.peerCounterSeen = true;
  v.peerCounterFamily = family;
  v.onAdvert(now, family, src4, srcPtr, <u32>load<u8>(carp, OFF_DEMOTE), <u32>load<u8>(carp, OFF_ADVBASE),
    <u32>load<u8>(carp, OFF_ADVSKEW), counter);
  return RX_OK;
}

// Re-exported for index.ts status.
export { BACKUP, MASTER };
