// Loads the WebAssembly core and gives it a typed face. The ABI is numbers only (pointer + length into
// fixed regions of the core's memory), so no generated bindings or loader are needed: see README
// "Why no @assemblyscript/loader".
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Finds dist/wasm/<name> from host/core (tsx) and from dist/host/core (compiled). */
export function wasmPath(name = 'core.wasm'): string {
  for (const rel of ['../../dist/wasm', '../../wasm', '../../../dist/wasm']) {
    const p = path.resolve(here, rel, name);
    try { readFileSync(p, { flag: 'r' }).length; return p; } catch { /* try the next */ }
  }
  throw new CoreError('DG_ERR_CORE_MISSING', `core module ${name} not found next to ${here}: run "npm run build:core"`);
}

export class CoreError extends Error {
  constructor(readonly code: string, message: string) { super(message); this.name = 'CoreError'; }
}

// Mirrors assembly/carp/constants.ts.
export const State = { INIT: 0, BACKUP: 1, MASTER: 2 } as const;
export const STATE_NAMES = ['INIT', 'BACKUP', 'MASTER'] as const;
export type StateName = typeof STATE_NAMES[number];
export const WHY_NAMES: Record<number, string> = {
  1: 'start', 2: 'master-down timer expired', 3: 'preempted a worse master', 4: 'a better master was heard',
  5: 'the master bowed out', 6: 'link down', 7: 'link up', 8: 'shutdown', 9: 'the master is more demoted',
  10: 'removed from the config',
};
export const Demote = { LINK_DOWN: 0, MAINTENANCE: 1, BULK_SYNC: 2, SEND_ERRORS: 3, USER: 4 } as const;
/** Stats block indexes (assembly/carp/constants.ts). */
export const STAT_NAMES = [
  'ok', 'short', 'bad_ip', 'bad_ttl', 'bad_checksum', 'bad_version', 'unknown_vhid', 'own_packet', 'bad_hmac',
  'not_ready', 'accepted', 'sent', 'transitions', 'queue_overflow', 'not_peer', 'no_pair_auth', 'bad_pair_auth',
  'replay',
] as const;
/** Every drop reason, in stats order (the events 'accepted' … 'queue_overflow' sit between the two runs). */
export const DROP_NAMES: readonly string[] = [...STAT_NAMES.slice(1, 10), ...STAT_NAMES.slice(14)];

export type Action =
  | { type: 'advert'; vhid: number; link: number; bowOut: boolean; payload: Uint8Array }
  | { type: 'take'; vhid: number; link: number }
  | { type: 'release'; vhid: number; link: number }
  | { type: 'announce'; vhid: number; link: number }
  | { type: 'state'; vhid: number; link: number; from: StateName; to: StateName; why: string };

export interface VhidStatus {
  vhid: number; link: number; state: StateName; advbase: number; advskew: number; advertisedSkew: number;
  demote: number; masterSrc: string | null; rxAccepted: number; txAdverts: number; transitions: number;
  lastChangeAt: number; masterHeardAt: number;
}

interface Exports {
  memory: WebAssembly.Memory;
  rxPtr(): number; rxCap(): number; configPtr(): number; actionPtr(): number; statsPtr(): number;
  statsCount(): number; statusPtr(): number;
  carpReset(): void; carpSeed(hi: number, lo: number): void; carpSetPreempt(on: number): void;
  carpSetLinkAddr(link: number, addr: number): void;
  carpSetPair(slot: number, peerAddr: number, keyLen: number): number; carpSetEpoch(epoch: number): void;
  carpAddVhid(vhid: number, link: number, advbase: number, advskew: number, keyLen: number, vipCount: number): number;
  carpRemoveVhid(now: number, vhid: number, link: number): number;
  carpStart(now: number): void; carpShutdown(now: number): void; carpSetLink(now: number, link: number, up: number): void;
  carpSetDemotion(now: number, mask: number, extra: number): void; carpDemotion(): number;
  carpSetPeerLost(now: number, lost: number): void;
  handleCarp(now: number, link: number, len: number): number; handleTimeout(now: number): void;
  pollAction(): number; pollTimeout(): number; carpVhidCount(): number; carpStatus(i: number): number;
  arpBuildGarp(ip: number): number;
  __collect(): void;
}

const modules = new Map<string, WebAssembly.Module>();

export function ipToNum(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new CoreError('DG_ERR_BAD_ADDRESS', `not an IPv4 address: ${ip}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
export function numToIp(n: number): string { return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'); }

export interface VhidConfig {
  vhid: number; link: number; advbase: number; advskew: number; password: string; vips: string[];
  /** The peer's address on the link: adverts from any other source are dropped (not_peer). */
  peer?: string;
  /** Pair authentication key (docs/security.md): adverts carry and need the pair trailer. */
  pairKey?: Uint8Array;
}

/** One instance of the core. Cheap: tests create several in one process to simulate a cluster. */
export class Core {
  readonly x: Exports;
  private u8!: Uint8Array;
  private dv!: DataView;
  private rx!: Uint8Array;

  constructor(opts: { debug?: boolean } = {}) {
    const file = wasmPath(opts.debug ? 'core.debug.wasm' : 'core.wasm');
    let mod = modules.get(file);
    if (!mod) { mod = new WebAssembly.Module(readFileSync(file)); modules.set(file, mod); }
    const inst = new WebAssembly.Instance(mod, {
      env: {
        // A trap inside the core is a bug: surface it; the host drops the instance and rebuilds (style.md 7).
        abort: (_m: number, _f: number, line: number, col: number) => {
          throw new CoreError('DG_ERR_CORE_TRAP', `core aborted at ${line}:${col}`);
        },
      },
    });
    this.x = inst.exports as unknown as Exports;
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
  /** The receive buffer as a view on core memory: read a datagram straight into it, then call handleCarp. */
  /** Re-used across calls (no allocation per packet); a new one only after memory grew. */
  rxView(): Uint8Array { this.refresh(); return this.rx; }

  reset(seed: [number, number]): void { this.x.carpReset(); this.x.carpSeed(seed[0] >>> 0, seed[1] >>> 0); }
  setPreempt(on: boolean): void { this.x.carpSetPreempt(on ? 1 : 0); }
  setLinkAddr(link: number, addr: string): void { this.x.carpSetLinkAddr(link, ipToNum(addr)); }
  /** Paired adverts count from epoch << 32: give a value that grows across restarts (host/daemon/pair.ts). */
  setEpoch(epoch: number): void { this.x.carpSetEpoch(epoch >>> 0); }

  addVhid(c: VhidConfig): number {
    this.refresh();
    const key = Buffer.from(c.password, 'utf8').subarray(0, 19);
    const base = this.x.configPtr();
    this.u8.fill(0, base, base + 64);
    this.u8.set(key, base);
    c.vips.forEach((ip, i) => this.dv.setUint32(base + 64 + i * 4, ipToNum(ip), true));
    const slot = this.x.carpAddVhid(c.vhid, c.link, c.advbase, c.advskew, key.length, c.vips.length);
    if (slot < 0) {
      const why = { [-1]: 'bad vhid, link, advbase or advskew', [-2]: 'between 1 and 16 VIPs', [-3]: 'too many vhids', [-4]: 'vhid already on this link' }[slot];
      throw new CoreError('DG_ERR_VHID', `vhid ${c.vhid}: ${why}`);
    }
    if (c.peer || c.pairKey) {
      const k = c.pairKey ?? new Uint8Array(0);
      if (k.length > 64) throw new CoreError('DG_ERR_VHID', `vhid ${c.vhid}: pair key longer than 64 bytes`);
      this.refresh();
      this.u8.set(k, base);
      this.x.carpSetPair(slot, c.peer ? ipToNum(c.peer) : 0, k.length);
    }
    return slot;
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
    const t = this.x.pollAction();
    if (t === 0) return null;
    this.refresh();
    const p = this.x.actionPtr();
    const vhid = this.dv.getUint32(p + 4, true);
    const link = this.dv.getUint32(p + 8, true);
    const a0 = this.dv.getUint32(p + 12, true);
    switch (t) {
      case 1: {
        const len = this.dv.getUint32(p + 24, true);
        return { type: 'advert', vhid, link, bowOut: a0 === 1, payload: this.u8.slice(p + 28, p + 28 + len) };
      }
      case 2: return { type: 'take', vhid, link };
      case 3: return { type: 'release', vhid, link };
      case 4: return { type: 'announce', vhid, link };
      case 5: return {
        type: 'state', vhid, link, from: STATE_NAMES[a0], to: STATE_NAMES[this.dv.getUint32(p + 16, true)],
        why: WHY_NAMES[this.dv.getUint32(p + 20, true)] ?? 'unknown',
      };
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
      const w = (k: number) => this.dv.getUint32(p + k * 4, true);
      out.push({
        vhid: w(0), link: w(1), state: STATE_NAMES[w(2)], advbase: w(3), advskew: w(4), advertisedSkew: w(5),
        demote: w(6), masterSrc: w(7) ? numToIp(w(7)) : null, rxAccepted: w(8), txAdverts: w(9), transitions: w(10),
        lastChangeAt: this.dv.getFloat64(p + 48, true), masterHeardAt: this.dv.getFloat64(p + 56, true),
      });
    }
    return out;
  }

  /** 28-byte gratuitous ARP payload for `ip` from `mac` (a copy). */
  garp(mac: Uint8Array, ip: string): Uint8Array {
    this.refresh();
    this.u8.set(mac.subarray(0, 6), this.x.configPtr());
    const p = this.x.arpBuildGarp(ipToNum(ip));
    return this.u8.slice(p, p + 28);
  }

  /** Reclaim garbage left by configuration (the minimal runtime collects only when asked, between calls). */
  collect(): void { this.x.__collect(); }
}
