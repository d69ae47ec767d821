// The node: its vhids, links, demotion and the receive pipeline. Receive checks run in verify-then-act
// order (carp.md §1.5) and every drop has its own counter; nothing on the wire can trap the module.
import { VHID_ERR_ARG, VHID_ERR_VIP_COUNT, VHID_ERR_FULL, VHID_ERR_DUPLICATE } from './layout';
import { getU16, getU32, getU64 } from '../util/bytes';
import { inetChecksum } from '../util/checksum';
import { HmacKey } from '../crypto/hmac';
import {
  OFF_ADVBASE, OFF_ADVSKEW, OFF_COUNTER, OFF_DEMOTE, OFF_VERSION_TYPE, OFF_VHID, hasPairTrailer, verifyAdvert, verifyPair,
} from './advert';
import {
  BACKUP, CARP_HEADER_LEN, CARP_PROTO, CARP_TTL, CARP_TYPE_ADVERTISEMENT, CARP_VERSION, DEMOTE_FACTOR,
  DEMOTE_LINK_DOWN, DROP_BAD_CHECKSUM, DROP_BAD_HMAC, DROP_BAD_IP, DROP_BAD_PAIR_AUTH, DROP_BAD_TTL, DROP_BAD_VERSION,
  DROP_NO_PAIR_AUTH, DROP_NOT_PEER, DROP_NOT_READY, DROP_OWN_PACKET, DROP_REPLAY, DROP_SHORT, DROP_UNKNOWN_VHID, INIT, MASTER, MAX_VHIDS, MAX_VIPS_PER_VHID,
  RX_OK, STAT_ACCEPTED, WHY_LINK_DOWN, WHY_LINK_UP, WHY_REMOVED, WHY_SHUTDOWN, WHY_START,
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
  /**
   * Paired counters start at epoch << 32. The host makes the epoch grow across restarts (persisted, never
   * below the wall clock's seconds), so the peer, which refuses counters it has passed, accepts a restarted node.
   */
  epoch: u32 = 0;

  constructor() { for (let i: u32 = 0; i < MAX_LINKS; i++) this.linkUp[i] = true; }

  demotion(): u32 { return <u32>popcnt<u32>(this.demoteMask) * DEMOTE_FACTOR + this.demoteExtra; }
  linkAddr(link: u32): u32 { return link < MAX_LINKS ? unchecked(this.linkAddrs[link]) : 0; }

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

/** Add a vhid. Key bytes at `key` (already truncated to 19 by the caller's validation), `vipCount` IPv4 addresses at `vips`. */
export function addVhid(vhid: u8, link: u32, advbase: u8, advskew: u8, key: usize, keyLen: u32, vips: usize, vipCount: u32): i32 {
  if (vhid == 0 || link >= MAX_LINKS) return VHID_ERR_ARG;
  if (vipCount == 0 || vipCount > <u32>MAX_VIPS_PER_VHID) return VHID_ERR_VIP_COUNT;
  if (node.vhids.length >= MAX_VHIDS) return VHID_ERR_FULL;
  if (node.find(link, vhid) != null) return VHID_ERR_DUPLICATE;
  const list = new StaticArray<u32>(vipCount);
  for (let i: u32 = 0; i < vipCount; i++) list[i] = load<u32>(vips + (<usize>i << 2));
  // Sorted ascending as unsigned numbers: the HMAC input order every implementation uses.
  for (let i: i32 = 1; i < <i32>vipCount; i++) {
    const x = list[i]; let j = i - 1;
    while (j >= 0 && list[j] > x) { list[j + 1] = list[j]; j--; }
    list[j + 1] = x;
  }
  node.vhids.push(new Vhid(vhid, link, advbase, advskew, new HmacKey(key, keyLen), list));
  return node.vhids.length - 1;
}

/**
 * Pair authentication for the vhid in `slot`: the trailer key (`keyLen` bytes at `key`, 0 = plain CARP) and the
 * peer's address on the link (0 = any source). Returns false for a bad slot.
 */
export function setPair(slot: i32, peerAddr: u32, key: usize, keyLen: u32): bool {
  if (slot < 0 || slot >= node.vhids.length) return false;
  const v = unchecked(node.vhids[slot]);
  v.peerAddr = peerAddr;
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
 * An IPv4 datagram as a raw socket delivers it (header included) at `pkt`, `len` bytes, received on `link`.
 * Returns RX_OK or the DROP_* reason (also counted).
 */
export function handleCarp(now: f64, link: u32, pkt: usize, len: u32): u32 {
  const r = receive(now, link, pkt, len);
  bumpStat(r == RX_OK ? STAT_ACCEPTED : r);
  return r;
}

function receive(now: f64, link: u32, pkt: usize, len: u32): u32 {
  if (len < 20) return DROP_SHORT;
  const vihl = <u32>load<u8>(pkt);
  if ((vihl >> 4) != 4) return DROP_BAD_IP;
  const ihl = (vihl & 0xf) << 2;
  if (ihl < 20 || ihl > len) return DROP_BAD_IP;
  if (<u32>load<u8>(pkt, 9) != <u32>CARP_PROTO) return DROP_BAD_IP;
  if (<u32>load<u8>(pkt, 8) != <u32>CARP_TTL) return DROP_BAD_TTL;
  const total = getU16(pkt + 2);
  if (total > len || total < ihl + CARP_HEADER_LEN || len < ihl + CARP_HEADER_LEN) return DROP_SHORT;
  const carp = pkt + ihl;
  const plen = total - ihl;
  // The whole payload, as OpenBSD and Wireshark check it (a plain advert is exactly the 36-byte header).
  if (inetChecksum(carp, plen) != 0) return DROP_BAD_CHECKSUM;
  const vt = <u32>load<u8>(carp, OFF_VERSION_TYPE);
  if ((vt >> 4) != <u32>CARP_VERSION || (vt & 0xf) != <u32>CARP_TYPE_ADVERTISEMENT) return DROP_BAD_VERSION;
  const v = node.find(link, load<u8>(carp, OFF_VHID));
  if (v == null) return DROP_UNKNOWN_VHID;
  const src = getU32(pkt + 12);
  const counter = getU64(carp + OFF_COUNTER);
  // Our own advert looped back (a switch echoing multicast): same source, or exactly the advert we last sent
  // (counter, demote, advbase, advskew). The counter alone is not enough: both nodes adopt each other's counter
  // and count up from it, so a peer's preempting advert can carry the counter of our own last one.
  if (src == node.linkAddr(link) || (v.txAdverts > 0 && counter == v.lastSentCounter
    && <u32>load<u8>(carp, OFF_DEMOTE) == v.lastSentDemote && <u32>load<u8>(carp, OFF_ADVBASE) == v.lastSentBase
    && <u32>load<u8>(carp, OFF_ADVSKEW) == v.lastSentSkew)) return DROP_OWN_PACKET;
  // A pair has exactly one other member: an advert from any other address is not part of the election.
  if (v.peerAddr != 0 && src != v.peerAddr) return DROP_NOT_PEER;
  const pair = v.pairKey;
  if (pair != null && !hasPairTrailer(carp, plen)) return DROP_NO_PAIR_AUTH;
  if (!verifyAdvert(carp, v.key, v.vips)) return DROP_BAD_HMAC;
  if (pair != null) {
    if (!verifyPair(carp, src, pair)) return DROP_BAD_PAIR_AUTH;
    if (v.peerCounterSeen && counter <= v.peerCounter) return DROP_REPLAY;
  }
  if (v.state == INIT) return DROP_NOT_READY;
  v.peerCounter = counter;
  v.peerCounterSeen = true;
  v.onAdvert(now, src, <u32>load<u8>(carp, OFF_DEMOTE), <u32>load<u8>(carp, OFF_ADVBASE),
    <u32>load<u8>(carp, OFF_ADVSKEW), counter);
  return RX_OK;
}

// Re-exported for index.ts status.
export { BACKUP, MASTER };
