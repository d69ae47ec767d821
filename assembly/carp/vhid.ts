// One virtual host (vhid): the INIT/BACKUP/MASTER state machine, its timers and the election rules
// (carp.md §4). Timers are data, re-armed in one place (setrun, as ip_carp.c's carp_setrun); handlers
// change state and then call setrun. Time is an argument in milliseconds; the core never reads a clock.
import { HmacKey } from '../crypto/hmac';
import { NO_VIPS6, SRC4, buildAdvert, copyAdvert } from './advert';
import { FAMILY_V4, FAMILY_V6, cmp16, eq16 } from './ipv6';
import {
  ACT_ANNOUNCE, ACT_RELEASE_VIPS, ACT_SEND_ADVERT, ACT_STATE, ACT_TAKE_VIPS, ANNOUNCE_AGAIN_AFTER, BACKUP,
  BOW_OUT_ADVBASE, BOW_OUT_ADVSKEW, CARP_MAXSKEW, INIT, MASTER, MASTER_DOWN_MULTIPLIER,
  STAT_SENT, STAT_TRANSITIONS, WHY_BETTER_MASTER, WHY_BOW_OUT, WHY_DEMOTED_PEER, WHY_MASTER_DOWN, WHY_PREEMPT, WHY_STALLED,
  DEMOTE_STALLED,
} from './constants';
import { A_LEN, A_PAYLOAD, push } from './actions';
import { bumpStat } from './stats';
import { putU32 } from '../util/bytes';
import { nextRandom, node } from './node';

/** Interval of (advbase s, skew/256 s) in ms, as the BSDs compute it: advbase s + floor(skew*1e6/256) µs. */
export function intervalMs(advbase: u32, skew: u32): f64 {
  return <f64>advbase * 1000.0 + Math.floor(<f64>skew * 1000000.0 / 256.0) / 1000.0;
}

/** Compare two priorities, lower is better: demote first (OpenBSD), then advbase, then advskew. */
export function comparePriority(d1: u32, b1: u32, s1: u32, d2: u32, b2: u32, s2: u32): i32 {
  if (d1 != d2) return d1 < d2 ? -1 : 1;
  if (b1 != b2) return b1 < b2 ? -1 : 1;
  if (s1 != s2) return s1 < s2 ? -1 : 1;
  return 0;
}

export class Vhid {
  // ---- configuration ----
  vhid: u8;
  link: u32;
  advbase: u8;
  advskew: u8;
  key: HmacKey;
  /** IPv4 VIPs ascending (host order numbers), the HMAC input. */
  vips: StaticArray<u32>;
  /** IPv6 VIPs, 16 bytes each, as the HMAC hashes them (node.ts sortedVips6). Adverts go out in every family with a VIP. */
  vips6: StaticArray<u8> = NO_VIPS6;
  /** Some IPv6 VIP is link-local: adverts also verify without them (advert.ts verifyAdvert). */
  linkLocal: bool = false;
  /** Pair authentication (constants.ts, PAIR_*): the key for the trailer, null for plain CARP. */
  pairKey: HmacKey | null = null;
  /** The peer's address on this link (host order); 0 = not configured (adverts from any source). */
  peerAddr: u32 = 0;
  /** The peer's IPv6 (link-local) address on this link, when `peer6Set`. */
  peerAddr6: StaticArray<u8> = new StaticArray<u8>(16);
  peer6Set: bool = false;

  // ---- runtime ----
  state: u8 = INIT;
  /** Last counter seen or sent; adverts carry a fresh random one until a peer's has been accepted (carp.md §3). */
  counter: u64 = 0;
  counterAdopted: bool = false;
  lastSentCounter: u64 = 0;
  lastSentDemote: u32 = 0;
  lastSentBase: u32 = 0;
  lastSentSkew: u32 = 0;
  /** Paired: the highest counter accepted from the peer; anything not above it is a replay. */
  peerCounter: u64 = 0;
  peerCounterSeen: bool = false;
  /** The family the last accepted advert came in (a dual-stack peer's other copy carries the same counter). */
  peerCounterFamily: u32 = 0;
  advertAt: f64 = -1; // MASTER: next advert
  masterDownAt: f64 = -1; // BACKUP: declare the master dead
  preemptAt: f64 = -1; // BACKUP: preempt handshake deadline (see onAdvert)
  announceLeft: u32 = 0; // adverts until the extra gratuitous ARP
  /** MASTER: until then, a worse master heard took over while we were silent (see silentTooLong). */
  returningUntil: f64 = -1;
  // The master we last heard (BACKUP) or the peer that displaced us: its source per family (a dual-stack master
  // advertises in both), then its priority.
  masterSrc: u32 = 0;
  masterSrc6: StaticArray<u8> = new StaticArray<u8>(16);
  masterDemote: u32 = 0;
  masterAdvbase: u32 = 0;
  masterSkew: u32 = 0;
  masterHeardAt: f64 = -1;
  masterCounter: u64 = 0;
  // Per-vhid figures for status.
  rxAccepted: u32 = 0;
  txAdverts: u32 = 0;
  transitions: u32 = 0;
  lastChangeAt: f64 = -1;

  constructor(vhid: u8, link: u32, advbase: u8, advskew: u8, key: HmacKey, vips: StaticArray<u32>) {
    this.vhid = vhid; this.link = link; this.advbase = advbase; this.advskew = advskew;
    this.key = key; this.vips = vips;
  }

  /** Skew as advertised and compared: configured skew plus demotion, clamped to 240 (FreeBSD). */
  advertisedSkew(): u32 {
    const s = <u32>this.advskew + node.demotion();
    return s > CARP_MAXSKEW ? CARP_MAXSKEW : s;
  }

  demoteByte(): u32 { const d = node.demotion(); return d > 255 ? 255 : d; }

  advertIntervalMs(): f64 { return intervalMs(this.advbase, this.advertisedSkew()); }

  /** Master-down interval: 3 x advbase + own configured skew/256 (carp.md §4.1), not demoted. */
  masterDownMs(): f64 {
    if (this.advbase == 0) return intervalMs(0, 3 * <u32>this.advskew);
    return intervalMs(MASTER_DOWN_MULTIPLIER * <u32>this.advbase, this.advskew);
  }

  /** Arm the timers the current state needs, and only those. */
  setrun(now: f64): void {
    switch (this.state) {
      case MASTER:
        this.masterDownAt = -1; this.preemptAt = -1;
        if (this.advertAt < 0) this.advertAt = now + this.advertIntervalMs();
        break;
      case BACKUP:
        this.advertAt = -1;
        this.masterDownAt = now + this.masterDownMs();
        this.applyPeerLost(now);
        break;
      default:
        this.advertAt = -1; this.masterDownAt = -1; this.preemptAt = -1;
    }
  }

  /**
   * Fast failover. When the dedicated sync link loses carrier, the peer may have lost power: waiting 3 x advbase
   * for its silence is then needless. The master's adverts still arrive on this vhid's own link if only the sync
   * cable was pulled, so a BACKUP may declare the master down after 1.5 of its advert intervals without an
   * advert instead. A single lost advert while the sync link is down costs a short double master, which the
   * preempt handshake resolves within a round trip.
   */
  applyPeerLost(now: f64): void {
    if (this.state != BACKUP || !node.peerLost || this.masterHeardAt < 0) return;
    let fast = this.masterHeardAt + 1.5 * intervalMs(this.masterAdvbase, this.masterSkew);
    if (fast < now) fast = now;
    if (this.masterDownAt < 0 || fast < this.masterDownAt) this.masterDownAt = fast;
  }

  nextDeadline(): f64 {
    let t: f64 = -1;
    if (this.advertAt >= 0) t = this.advertAt;
    if (this.masterDownAt >= 0 && (t < 0 || this.masterDownAt < t)) t = this.masterDownAt;
    if (this.preemptAt >= 0 && (t < 0 || this.preemptAt < t)) t = this.preemptAt;
    return t;
  }

  changeState(now: f64, to: u8, why: u8): void {
    if (this.state == to) return;
    push(ACT_STATE, this.vhid, this.link, this.state, to, why);
    this.state = to;
    this.transitions++;
    this.lastChangeAt = now;
    bumpStat(STAT_TRANSITIONS);
  }

  /**
   * Queue an advert. Bow-out adverts say "I am leaving": advbase 255, advskew 255. An offer carries the
   * highest demote count, so a peer that is better anyway takes the vhid over now (see offerToPeer).
   */
  sendAdvert(bowOut: bool, offer: bool = false): void {
    if (this.pairKey != null) {
      // Paired: our own strictly growing counter, never the peer's, so the peer can refuse replays.
      const base = <u64>node.epoch << 32;
      this.counter = this.counter < base ? base + 1 : this.counter + 1;
    } else if (this.counterAdopted) this.counter = this.counter + 1;
    else this.counter = nextRandom();
    this.lastSentCounter = this.counter;
    this.lastSentSkew = bowOut ? BOW_OUT_ADVSKEW : this.advertisedSkew();
    this.lastSentDemote = offer ? 255 : this.demoteByte();
    this.lastSentBase = bowOut ? BOW_OUT_ADVBASE : this.advbase;
    // One advert per family with a VIP, as the BSDs send them; the header and HMAC are the same in both.
    let first: usize = 0;
    if (this.vips.length > 0) {
      first = push(ACT_SEND_ADVERT, this.vhid, this.link, bowOut ? 1 : 0, FAMILY_V4, 0);
      putU32(SRC4, node.linkAddr(this.link));
      store<u32>(first, buildAdvert(first + A_PAYLOAD, this.vhid, <u8>this.lastSentSkew, <u8>this.lastSentDemote,
        <u8>this.lastSentBase, this.counter, this.key, this.vips, this.vips6, this.pairKey, SRC4, 4), A_LEN);
      bumpStat(STAT_SENT);
    }
    if (this.vips6.length > 0) {
      const r = push(ACT_SEND_ADVERT, this.vhid, this.link, bowOut ? 1 : 0, FAMILY_V6, 0);
      const src = node.linkAddr6(this.link);
      store<u32>(r, first != 0
        ? copyAdvert(r + A_PAYLOAD, first + A_PAYLOAD, this.pairKey, src, 16)
        : buildAdvert(r + A_PAYLOAD, this.vhid, <u8>this.lastSentSkew, <u8>this.lastSentDemote, <u8>this.lastSentBase,
          this.counter, this.key, this.vips, this.vips6, this.pairKey, src, 16), A_LEN);
      bumpStat(STAT_SENT);
    }
    this.txAdverts++;
  }

  /** The advert came from the master we follow (its address in the advert's family). */
  fromMaster(family: u32, src4: u32, src6: usize): bool {
    return family == FAMILY_V6 ? eq16(src6, changetype<usize>(this.masterSrc6)) : src4 == this.masterSrc;
  }

  /** Remember the master heard: its source in this family, its priority, when, and the advert's counter. */
  noteMaster(now: f64, family: u32, src4: u32, src6: usize, demote: u32, advbase: u32, skew: u32, counter: u64): void {
    this.noteSource(family, src4, src6);
    this.masterDemote = demote; this.masterAdvbase = advbase; this.masterSkew = skew;
    this.masterHeardAt = now;
    this.masterCounter = counter;
  }

  noteSource(family: u32, src4: u32, src6: usize): void {
    if (family == FAMILY_V6) memory.copy(changetype<usize>(this.masterSrc6), src6, 16);
    else this.masterSrc = src4;
  }

  /** The other family's copy of an advert already accepted: learn the master's address in that family too. */
  onOtherFamilyCopy(family: u32, src4: u32, src6: usize, counter: u64): void {
    if (this.masterHeardAt >= 0 && counter == this.masterCounter) this.noteSource(family, src4, src6);
  }

  becomeMaster(now: f64, why: u8): void {
    if (this.state == MASTER) return;
    this.changeState(now, MASTER, why);
    this.returningUntil = -1;
    // Address first, then the advert: the peer may yield the moment it hears us.
    push(ACT_TAKE_VIPS, this.vhid, this.link, 0, 0, 0);
    this.sendAdvert(false);
    this.announceLeft = ANNOUNCE_AGAIN_AFTER;
    this.advertAt = -1;
    this.setrun(now);
  }

  /**
   * Leave for BACKUP (yielding, or starting) or INIT (link down, shutdown). A master releases its VIPs, then
   * bows out where it may, so the winner need not wait; `bowOut` only where the link can still carry it.
   */
  becomeBackup(now: f64, why: u8, bowOut: bool): void { this.leave(now, BACKUP, why, bowOut); }
  becomeInit(now: f64, why: u8, bowOut: bool): void { this.leave(now, INIT, why, bowOut); }

  private leave(now: f64, to: u8, why: u8, bowOut: bool): void {
    const wasMaster = this.state == MASTER;
    // The state record goes first so the host logs the change before the VIPs move (no apparent overlap).
    this.changeState(now, to, why);
    if (wasMaster) {
      push(ACT_RELEASE_VIPS, this.vhid, this.link, 0, 0, 0);
      if (bowOut) this.sendAdvert(true);
    }
    this.preemptAt = -1;
    this.setrun(now);
  }

  /** Timers due at `now`. */
  onTimeout(now: f64): void {
    if (this.state == MASTER && this.advertAt >= 0 && this.advertAt <= now) {
      // An advert more than an interval late: the peer may be taking over right now; its advert may still come.
      if (now - this.advertAt > this.advertIntervalMs()) this.returningUntil = now + this.advertIntervalMs();
      this.sendAdvert(false);
      if (this.announceLeft > 0) {
        this.announceLeft--;
        if (this.announceLeft == 0) push(ACT_ANNOUNCE, this.vhid, this.link, 0, 0, 0);
      }
      // Schedule from the due time, not from `now`, so a late host does not drift the cadence;
      // but never schedule into the past after a long stall.
      let next = this.advertAt + this.advertIntervalMs();
      if (next <= now) next = now + this.advertIntervalMs();
      this.advertAt = next;
    }
    if (this.state == BACKUP) {
      if (this.preemptAt >= 0 && this.preemptAt <= now) {
        // The worse master neither bowed out nor went quiet in time: take over as classic CARP would.
        this.becomeMaster(now, WHY_PREEMPT);
      } else if (this.masterDownAt >= 0 && this.masterDownAt <= now) {
        this.becomeMaster(now, WHY_MASTER_DOWN);
      }
    }
  }

  /**
   * We went silent for more than an advert interval (the process frozen or starved: our advert is that overdue,
   * or was just sent that late), so a worse master now is one that took over because of it, not a partition.
   */
  silentTooLong(now: f64): bool {
    return (this.advertAt >= 0 && now - this.advertAt > this.advertIntervalMs()) || now < this.returningUntil;
  }

  /**
   * The peer took over while we were silent and has forwarded since: reasserting at once (as after a healed
   * partition) would move the flows back to a node whose state lags the peer's (its conntrack windows are stale,
   * so established sessions stall). Yield without a bow-out (the peer is already master) and demote the node,
   * so the peer keeps every VIP until the host clears the demotion (after state sync has caught up); then the
   * preempt handshake moves them back as after any failback.
   */
  yieldAfterStall(now: f64): void {
    this.returningUntil = -1;
    // The siblings were silent just as long: the peer's adverts for them may come later (their own master-down
    // timers), and the demotion below makes them advertise afresh, which would hide how long they were silent.
    for (let i = 0; i < node.vhids.length; i++) {
      const v = unchecked(node.vhids[i]);
      if (v !== this && v.state == MASTER && v.silentTooLong(now)) v.returningUntil = now + v.masterDownMs();
    }
    this.becomeBackup(now, WHY_STALLED, false);
    node.setDemotion(now, node.demoteMask | (<u32>1 << DEMOTE_STALLED), node.demoteExtra);
  }

  /** True when our priority (demote, advbase, advertised skew) beats the master we last heard. */
  betterThanKnownMaster(now: f64): bool {
    if (this.masterHeardAt < 0 || now - this.masterHeardAt > this.masterDownMs()) return false;
    return comparePriority(this.demoteByte(), this.advbase, this.advertisedSkew(),
      this.masterDemote, this.masterAdvbase, this.masterSkew) < 0;
  }

  /**
   * Preempt handshake. Instead of becoming MASTER at once (two masters until the old one hears us), a
   * preempting BACKUP sends its better advert first; our MASTER yields on it, releases the VIPs and bows
   * out, and the bow-out makes us MASTER within a round trip: no moment with two masters. A master that
   * does not bow out (a BSD or ucarp peer) is taken over after one advert interval, as classic CARP would.
   */
  startPreempt(now: f64): void {
    if (this.preemptAt >= 0) return;
    this.sendAdvert(false);
    this.preemptAt = now + this.advertIntervalMs();
  }

  /**
   * We just yielded a sibling vhid to a better peer: if that peer's priority beats ours here too, offer it this
   * vhid now instead of at its next advert (up to advbase later), so the pair does not sit split, LAN on one
   * node and WAN on the other, with sessions' two directions through different nodes. One advert, with the
   * highest demote count: the peer's BACKUP preempts with its handshake (its advert, our yield and bow-out);
   * a peer that cannot take it (link down) does nothing and we simply stay MASTER.
   */
  offerToPeer(now: f64, demote: u32, advbase: u32, skew: u32): void {
    if (this.state != MASTER) return;
    if (comparePriority(demote, advbase, skew, this.demoteByte(), this.advbase, this.advertisedSkew()) >= 0) return;
    this.sendAdvert(false, true);
  }

  /** Demotion changed. MASTERs advertise at once so a better backup can preempt within one packet (carp.md §5.2). */
  onDemotionChange(now: f64): void {
    if (this.state == MASTER) {
      this.sendAdvert(false);
      this.advertAt = now + this.advertIntervalMs();
    } else if (this.state == BACKUP && node.preempt && this.betterThanKnownMaster(now)) {
      this.startPreempt(now);
    }
  }

  /**
   * A verified advert from `src4` (IPv4, host order) or the 16 bytes at `src6` (IPv6), per `family`.
   * carp.md §4.4 (BACKUP) and §4.5 (MASTER).
   */
  onAdvert(now: f64, family: u32, src4: u32, src6: usize, demote: u32, advbase: u32, skew: u32, counter: u64): void {
    this.rxAccepted++;
    if (this.pairKey == null) {
      // Plain CARP: carry on from the peer's counter, as ucarp does (the captured vectors expect it).
      this.counter = counter;
      this.counterAdopted = true;
    }
    const myDemote = this.demoteByte();
    const mySkew = this.advertisedSkew();
    const cmp = comparePriority(demote, advbase, skew, myDemote, this.advbase, mySkew);
    const bowOut = advbase == BOW_OUT_ADVBASE && skew == BOW_OUT_ADVSKEW;

    if (this.state == MASTER) {
      // Yield to a better peer. On an exact tie the BSDs both yield and race again; we break it by
      // address instead: the higher source address (compared with ours in the advert's family) keeps the role.
      const higher = family == FAMILY_V6 ? cmp16(src6, node.linkAddr6(this.link)) > 0 : src4 > node.linkAddr(this.link);
      if (cmp < 0 || (cmp == 0 && higher)) {
        this.noteMaster(now, family, src4, src6, demote, advbase, skew, counter);
        this.becomeBackup(now, demote < myDemote ? WHY_DEMOTED_PEER : WHY_BETTER_MASTER, true);
        if (cmp < 0) offerSiblings(now, this, demote, advbase, skew);
      } else if (!bowOut && this.silentTooLong(now)) {
        this.noteMaster(now, family, src4, src6, demote, advbase, skew, counter);
        this.yieldAfterStall(now);
      } else {
        // A worse master is (or was, if this is its bow-out) active too: a healed partition. It yields when
        // it hears us, but it may have taken the neighbours' ARP caches meanwhile, so announce again
        // (ucarp's "reasserting control").
        push(ACT_ANNOUNCE, this.vhid, this.link, 0, 0, 0);
      }
      return;
    }
    if (this.state != BACKUP) return;

    if (bowOut || comparePriority(0, advbase, skew, 0, MASTER_DOWN_MULTIPLIER * <u32>this.advbase, mySkew) > 0) {
      // The master is leaving, or advertises too slowly to ever keep the role. Take over now, unless the
      // bow-out comes from someone other than the master we follow (a better backup is preempting it), or this
      // node has heard no master since it started: until then its replay floor for the peer's counter is empty,
      // so a recorded bow-out would pass; its master-down timer takes over soon enough if the bow-out was real.
      if (this.masterHeardAt >= 0 && (this.fromMaster(family, src4, src6) || now - this.masterHeardAt > this.masterDownMs())) {
        this.becomeMaster(now, this.preemptAt >= 0 ? WHY_PREEMPT : WHY_BOW_OUT);
      }
      return;
    }
    this.noteMaster(now, family, src4, src6, demote, advbase, skew, counter);
    if (demote > myDemote) {
      // OpenBSD: a more demoted master always loses, whatever the preempt setting.
      this.startPreempt(now);
      this.masterDownAt = now + this.masterDownMs();
      return;
    }
    if (node.preempt && cmp > 0) {
      this.startPreempt(now);
      this.masterDownAt = now + this.masterDownMs();
      return;
    }
    // A master at least as good as us: follow it.
    this.preemptAt = -1;
    this.setrun(now);
  }
}

/** Offer every other MASTER vhid of this node to the peer that just displaced `from` (Vhid.offerToPeer). */
function offerSiblings(now: f64, from: Vhid, demote: u32, advbase: u32, skew: u32): void {
  for (let i = 0; i < node.vhids.length; i++) {
    const v = unchecked(node.vhids[i]);
    if (v !== from) v.offerToPeer(now, demote, advbase, skew);
  }
}
