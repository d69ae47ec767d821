// A typed face on the CARP half of the WebAssembly core. Every offset, code and counter name used here is
// read from the core's own exported globals (host/core/abi.ts), never written as a number.
import { CoreError, instantiateCore, wasmPath } from './wasm.js';
import { coreAbi, denseNames, group, readAbi, type Abi } from './abi.js';
import { isIPv6 } from 'node:net';
import { bytesToIp6, ip6Bytes } from '../config/net.js';

export { CoreError, wasmPath };

const A = coreAbi();
export const State = { INIT: A.STATE_INIT, BACKUP: A.STATE_BACKUP, MASTER: A.STATE_MASTER } as const;
export type StateName = 'INIT' | 'BACKUP' | 'MASTER';
export const STATE_NAMES = denseNames(A, 'STATE_').map((n) => n.toUpperCase()) as StateName[];
/** How logs and telemetry say why a state changed, per WHY_* code of the core (test/unit/abi.test.ts checks both ways). */
export const WHY_TEXT: Record<string, string> = {
  start: 'start', master_down: 'master-down timer expired', preempt: 'preempted a worse master',
  better_master: 'a better master was heard', bow_out: 'the master bowed out', link_down: 'link down', link_up: 'link up',
  shutdown: 'shutdown', demoted_peer: 'the master is more demoted', removed: 'removed from the config',
  stalled: 'this node stalled (frozen or starved) and the peer took over meanwhile',
};
export const WHY_NAMES: Record<number, string> = Object.fromEntries(group(A, 'WHY_').map((m) => [m.value, WHY_TEXT[m.name] ?? m.name]));
/** Why a vhid changed state, as a code (Transition.reason): features decide on these, never on WHY_NAMES' wording. */
export const Why = {
  START: A.WHY_START, MASTER_DOWN: A.WHY_MASTER_DOWN, PREEMPT: A.WHY_PREEMPT, BETTER_MASTER: A.WHY_BETTER_MASTER,
  BOW_OUT: A.WHY_BOW_OUT, LINK_DOWN: A.WHY_LINK_DOWN, LINK_UP: A.WHY_LINK_UP, SHUTDOWN: A.WHY_SHUTDOWN,
  DEMOTED_PEER: A.WHY_DEMOTED_PEER, REMOVED: A.WHY_REMOVED, STALLED: A.WHY_STALLED,
} as const;
export type WhyCode = number;
export const Demote = {
  LINK_DOWN: A.DEMOTE_LINK_DOWN, MAINTENANCE: A.DEMOTE_MAINTENANCE, BULK_SYNC: A.DEMOTE_BULK_SYNC,
  SEND_ERRORS: A.DEMOTE_SEND_ERRORS, USER: A.DEMOTE_USER, STALLED: A.DEMOTE_STALLED, STARTING: A.DEMOTE_STARTING,
} as const;
/** Stats block names by index: handleCarp's result codes ('ok', drop reasons) and events. */
export const STAT_NAMES: readonly string[] = denseNames(A, 'CARP_STAT_');
/** Every drop reason, in stats order. */
export const DROP_NAMES: readonly string[] = STAT_NAMES.filter((_n, i) => (A.CARP_DROP_MASK >>> i) & 1);
const VHID_ERRORS: Record<number, string> = {
  [A.VHID_ERR_ARG]: 'bad vhid, link, advbase or advskew', [A.VHID_ERR_VIP_COUNT]: `between 1 and ${A.CONFIG_VIPS_MAX} VIPs`,
  [A.VHID_ERR_FULL]: 'too many vhids', [A.VHID_ERR_DUPLICATE]: 'vhid already on this link',
};

export type Action =
  /** `family` 4: to 224.0.0.18 over IPv4; 6: to ff02::12 over IPv6 from the link's link-local address. */
  | { type: 'advert'; vhid: number; link: number; bowOut: boolean; family: 4 | 6; payload: Uint8Array }
  | { type: 'take'; vhid: number; link: number }
  | { type: 'release'; vhid: number; link: number }
  | { type: 'announce'; vhid: number; link: number }
  | { type: 'state'; vhid: number; link: number; from: StateName; to: StateName; reason: WhyCode; why: string };

export interface VhidStatus {
  vhid: number; link: number; state: StateName; advbase: number; advskew: number; advertisedSkew: number;
  demote: number; masterSrc: string | null; masterSrc6: string | null; rxAccepted: number; txAdverts: number; transitions: number;
  lastChangeAt: number; masterHeardAt: number;
}

interface Exports {
  memory: WebAssembly.Memory;
  rxPtr(): number; rxCap(): number; configPtr(): number; actionPtr(): number; statsPtr(): number;
  statsCount(): number; statusPtr(): number;
  carpReset(): void; carpSeed(hi: number, lo: number): void; carpSetPreempt(on: number): void;
  carpSetLinkAddr(link: number, addr: number): void; carpSetLinkAddr6(link: number): void;
  carpSetPair(slot: number, peerAddr: number, keyLen: number, peer6: number): number; carpSetEpoch(epoch: number): void;
  carpAddVhid(vhid: number, link: number, advbase: number, advskew: number, keyLen: number, vipCount: number, vip6Count: number): number;
  carpRemoveVhid(now: number, vhid: number, link: number): number;
  carpSetVips(vhid: number, link: number, vipCount: number): number;
  carpStart(now: number): void; carpShutdown(now: number): void; carpSetLink(now: number, link: number, up: number): void;
  carpSetDemotion(now: number, mask: number, extra: number): void; carpDemotion(): number;
  carpSetPeerLost(now: number, lost: number): void;
  handleCarp(now: number, link: number, len: number): number; handleTimeout(now: number): void;
  pollAction(): number; pollTimeout(): number; carpVhidCount(): number; carpStatus(i: number): number;
  arpBuildGarp(ip: number): number; ndBuildNa(): number;
  __collect(): void;
}

export function ipToNum(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new CoreError('DG_ERR_BAD_ADDRESS', `not an IPv4 address: ${ip}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
export function numToIp(n: number): string { return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'); }

/** The 16 bytes of an IPv6 address; refused with DG_ERR_BAD_ADDRESS if it is not one (or carries a zone). */
export function ip6Checked(ip: string): Uint8Array {
  if (!isIPv6(ip) || ip.includes('%')) throw new CoreError('DG_ERR_BAD_ADDRESS', `not an IPv6 address: ${ip}`);
  return ip6Bytes(ip);
}


export interface VhidConfig {
  /** `vips`: IPv4 and IPv6 addresses (no prefix length); a family with a VIP gets adverts of its own. */
  vhid: number; link: number; advbase: number; advskew: number; password: string; vips: string[];
  /** The peer's address on the link: adverts from any other source are dropped (not_peer). */
  peer?: string;
  /** The peer's IPv6 link-local address on the link, for IPv6 adverts (same rule). */
  peer6?: string;
  /** Pair authentication key (docs/security.md): adverts carry and need the pair trailer. */
  pairKey?: Uint8Array;
}

/** One instance of the core. Cheap: tests create several in one process to simulate a cluster. */
export class Core {
  readonly x: Exports;
  readonly abi: Abi;
  private u8!: Uint8Array;
  private dv!: DataView;
  private rx!: Uint8Array;

  constructor(opts: { debug?: boolean } = {}) {
    const exports = instantiateCore({ debug: opts.debug, what: 'core' });
    this.abi = readAbi(exports);
    this.x = exports as unknown as Exports;
    this.refresh();
  }

  /** Views are re-created only when memory grew (a grow detaches the old ArrayBuffer; undici's guard). */
  private refresh(): void {
    if (this.u8?.buffer === this.x.memory.buffer) return;
    this.u8 = new Uint8Array(this.x.memory.buffer);
    this.dv = new DataView(this.x.memory.buffer);
    this.rx = new Uint8Array(this.x.memory.buffer, this.x.rxPtr(), this.x.rxCap());
  }
  get memory(): Uint8Array { this.refresh(); return this.u8; }
  /**
   * The receive buffer as a view on core memory: read a datagram straight into it, then call handleCarp.
   * Re-used across calls (no allocation per packet); a new one only after memory grew.
   */
  rxView(): Uint8Array { this.refresh(); return this.rx; }

  reset(seed: [number, number]): void { this.x.carpReset(); this.x.carpSeed(seed[0] >>> 0, seed[1] >>> 0); }
  setPreempt(on: boolean): void { this.x.carpSetPreempt(on ? 1 : 0); }
  setLinkAddr(link: number, addr: string): void { this.x.carpSetLinkAddr(link, ipToNum(addr)); }
  /** The node's IPv6 link-local address on `link`: the source of its IPv6 adverts. */
  setLinkAddr6(link: number, addr: string): void {
    const b = ip6Checked(addr);
    this.refresh();
    this.u8.set(b, this.x.configPtr() + this.abi.CONFIG_ADDR6);
    this.x.carpSetLinkAddr6(link);
  }
  /** Paired adverts count from epoch << 32: give a value that grows across restarts (host/daemon/pair.ts). */
  setEpoch(epoch: number): void { this.x.carpSetEpoch(epoch >>> 0); }

  addVhid(c: VhidConfig): number {
    this.refresh();
    const a = this.abi;
    const key = Buffer.from(c.password, 'utf8').subarray(0, a.CONFIG_PASSWORD_MAX);
    const base = this.x.configPtr();
    const v4 = c.vips.filter((ip) => !isIPv6(ip));
    const v6 = c.vips.filter((ip) => isIPv6(ip));
    if (v4.length > a.CONFIG_VIPS_MAX || v6.length > a.CONFIG_VIPS_MAX) throw new CoreError('DG_ERR_VHID', `vhid ${c.vhid}: ${VHID_ERRORS[a.VHID_ERR_VIP_COUNT]}`);
    this.u8.fill(0, base + a.CONFIG_KEY, base + a.CONFIG_KEY + a.CONFIG_KEY_MAX);
    this.u8.set(key, base + a.CONFIG_KEY);
    v4.forEach((ip, i) => this.dv.setUint32(base + a.CONFIG_VIPS + i * 4, ipToNum(ip), true));
    const at6 = base + this.abi.CONFIG_VIPS6;
    v6.forEach((ip, i) => this.u8.set(ip6Checked(ip), at6 + i * 16));
    const slot = this.x.carpAddVhid(c.vhid, c.link, c.advbase, c.advskew, key.length, v4.length, v6.length);
    if (slot < 0) throw new CoreError('DG_ERR_VHID', `vhid ${c.vhid}: ${VHID_ERRORS[slot] ?? `refused (${slot})`}`);
    if (c.peer || c.peer6 || c.pairKey) {
      const k = c.pairKey ?? new Uint8Array(0);
      if (k.length > a.CONFIG_KEY_MAX) throw new CoreError('DG_ERR_VHID', `vhid ${c.vhid}: pair key longer than ${a.CONFIG_KEY_MAX} bytes`);
      this.refresh();
      this.u8.set(k, base + a.CONFIG_KEY);
      if (c.peer6) this.u8.set(ip6Checked(c.peer6), base + this.abi.CONFIG_ADDR6);
      this.x.carpSetPair(slot, c.peer ? ipToNum(c.peer) : 0, k.length, c.peer6 ? 1 : 0);
    }
    return slot;
  }

  /** Replace a vhid's VIPs in place: its state and timers stay, its next advert's HMAC covers the new list. */
  setVips(vhid: number, link: number, vips: string[]): void {
    this.refresh();
    const a = this.abi;
    if (vips.length > a.CONFIG_VIPS_MAX) throw new CoreError('DG_ERR_VHID', `vhid ${vhid}: ${VHID_ERRORS[a.VHID_ERR_VIP_COUNT]}`);
    const base = this.x.configPtr();
    vips.forEach((ip, i) => this.dv.setUint32(base + a.CONFIG_VIPS + i * 4, ipToNum(ip), true));
    const r = this.x.carpSetVips(vhid, link, vips.length);
    if (r < 0) throw new CoreError('DG_ERR_VHID', `vhid ${vhid}: ${VHID_ERRORS[r] ?? `refused (${r})`}`);
  }

  /** Remove a vhid (a MASTER releases its VIPs and bows out first); false if it is not on `link`. */
  removeVhid(now: number, vhid: number, link: number): boolean { return this.x.carpRemoveVhid(now, vhid, link) !== 0; }
  start(now: number): void { this.x.carpStart(now); }
  shutdown(now: number): void { this.x.carpShutdown(now); }
  setLink(now: number, link: number, up: boolean): void { this.x.carpSetLink(now, link, up ? 1 : 0); }
  setDemotion(now: number, reasons: number[], extra = 0): void {
    this.x.carpSetDemotion(now, reasons.reduce((m, r) => m | (1 << r), 0), extra);
  }
  demotion(): number { return this.x.carpDemotion(); }
  /** Carrier of the sync link to the peer changed (lost = no carrier). */
  setPeerLost(now: number, lost: boolean): void { this.x.carpSetPeerLost(now, lost ? 1 : 0); }

  /** Feed one IPv4 datagram (header included). Returns 'ok' or the drop reason. */
  handleCarp(now: number, link: number, datagram: Uint8Array): string {
    const rx = this.rxView();
    const n = Math.min(datagram.length, rx.length);
    rx.set(datagram.subarray(0, n));
    return STAT_NAMES[this.x.handleCarp(now, link, n)];
  }
  /** Same, for a datagram already read into rxView() (the zero-copy path). */
  handleCarpInPlace(now: number, link: number, len: number): number { return this.x.handleCarp(now, link, len); }
  handleTimeout(now: number): void { this.x.handleTimeout(now); }
  pollTimeout(): number { return this.x.pollTimeout(); }

  pollAction(): Action | null {
    const a = this.abi;
    const t = this.x.pollAction();
    if (t === a.ACT_NONE) return null;
    this.refresh();
    const p = this.x.actionPtr();
    const word = (off: number) => this.dv.getUint32(p + off, true);
    const vhid = word(a.ACTION_VHID);
    const link = word(a.ACTION_LINK);
    const a0 = word(a.ACTION_ARG0);
    switch (t) {
      case a.ACT_SEND_ADVERT: {
        const at = p + a.ACTION_PAYLOAD;
        const family = word(a.ACTION_ARG1) === a.CARP_FAMILY_V6 ? 6 : 4;
        return { type: 'advert', vhid, link, bowOut: a0 === 1, family, payload: this.u8.slice(at, at + word(a.ACTION_LEN)) };
      }
      case a.ACT_TAKE_VIPS: return { type: 'take', vhid, link };
      case a.ACT_RELEASE_VIPS: return { type: 'release', vhid, link };
      case a.ACT_ANNOUNCE: return { type: 'announce', vhid, link };
      case a.ACT_STATE: {
        const reason = word(a.ACTION_ARG2);
        return { type: 'state', vhid, link, from: STATE_NAMES[a0], to: STATE_NAMES[word(a.ACTION_ARG1)], reason, why: WHY_NAMES[reason] ?? 'unknown' };
      }
      default: throw new CoreError('DG_ERR_CORE_ACTION', `unknown action type ${t}`);
    }
  }

  drain(): Action[] {
    const out: Action[] = [];
    for (let a = this.pollAction(); a; a = this.pollAction()) out.push(a);
    return out;
  }

  stats(): Record<string, number> {
    this.refresh();
    const p = this.x.statsPtr();
    const o: Record<string, number> = {};
    STAT_NAMES.forEach((n, i) => { if (i > 0) o[n] = this.dv.getUint32(p + i * 4, true); });
    return o;
  }

  vhidStatus(): VhidStatus[] {
    const out: VhidStatus[] = [];
    const n = this.x.carpVhidCount();
    for (let i = 0; i < n; i++) {
      this.x.carpStatus(i);
      this.refresh();
      const p = this.x.statusPtr();
      const a = this.abi;
      const w = (off: number) => this.dv.getUint32(p + off, true);
      const src = w(a.STATUS_MASTER_SRC);
      const src6 = this.u8.slice(p + a.STATUS_MASTER_SRC6, p + a.STATUS_MASTER_SRC6 + 16);
      out.push({
        vhid: w(a.STATUS_VHID), link: w(a.STATUS_LINK), state: STATE_NAMES[w(a.STATUS_STATE)], advbase: w(a.STATUS_ADVBASE),
        advskew: w(a.STATUS_ADVSKEW), advertisedSkew: w(a.STATUS_ADVERTISED_SKEW), demote: w(a.STATUS_DEMOTE),
        masterSrc: src ? numToIp(src) : null, masterSrc6: src6.some((x) => x !== 0) ? bytesToIp6(src6) : null, rxAccepted: w(a.STATUS_RX_ACCEPTED), txAdverts: w(a.STATUS_TX_ADVERTS),
        transitions: w(a.STATUS_TRANSITIONS), lastChangeAt: this.dv.getFloat64(p + a.STATUS_LAST_CHANGE_AT, true),
        masterHeardAt: this.dv.getFloat64(p + a.STATUS_MASTER_HEARD_AT, true),
      });
    }
    return out;
  }

  /** Gratuitous ARP payload (28 bytes) for `ip` from `mac` (a copy). */
  garp(mac: Uint8Array, ip: string): Uint8Array {
    this.refresh();
    this.u8.set(mac.subarray(0, 6), this.x.configPtr() + this.abi.CONFIG_MAC);
    const p = this.x.arpBuildGarp(ipToNum(ip));
    return this.u8.slice(p, p + this.abi.GARP_LEN);
  }

  /** Unsolicited neighbour advertisement for the IPv6 `vip` from `mac`: the whole IPv6 packet (a copy). */
  unsolicitedNa(mac: Uint8Array, vip: string): Uint8Array {
    this.refresh();
    const base = this.x.configPtr();
    this.u8.set(mac.subarray(0, 6), base + this.abi.CONFIG_MAC);
    this.u8.set(ip6Checked(vip), base + this.abi.CONFIG_ADDR6);
    const p = this.x.ndBuildNa();
    return this.u8.slice(p, p + this.abi.NA_LEN);
  }

  /** Reclaim garbage left by configuration (the minimal runtime collects only when asked, between calls). */
  collect(): void { this.x.__collect(); }
}
