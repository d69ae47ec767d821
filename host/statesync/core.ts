// Typed face of the core's state-sync exports (assembly/index.ts, "State sync" section). Each SyncCore
// is its own WebAssembly instance, so the state table never shares memory with CARP's core.
import { readFileSync } from 'node:fs';
import { wasmPath, CoreError } from '../core/core.js';

/** Counter names, in the order of assembly/statesync/stats.ts. */
export const SYNC_STAT_NAMES = [
  'nl_msgs', 'own_echo', 'filtered', 'unsupported', 'malformed', 'table_full', 'queued', 'tx_upserts', 'tx_deletes',
  'rx_upserts', 'rx_deletes', 'rx_bad_items', 'kernel_creates', 'kernel_updates', 'kernel_deletes', 'kernel_errors',
  'kernel_eexist_fixed', 'kernel_enoent_fixed', 'dump_entries', 'swept', 'events', 'last_errno',
  'rx_to_self', 'rx_zone', 'rx_mark', 'rx_snat', 'rx_dnat', 'rx_timeout_clamped',
] as const;

/** What a state received from the peer may be (assembly/statesync/policy.ts); addresses dotted quads. */
export interface RxPolicy {
  /** Seconds, the kernel's bound per protocol state: TCP states 0..9, UDP, ICMP (12 values; 0 = no bound). */
  timeoutMax: number[];
  zones: number[]; marks: number[];
  /** Addresses the pair owns and may source-NAT to. */
  snat: string[];
  /** The CARP VIPs: traffic ending at one without DNAT is the node's own. */
  vips: string[];
  /** Internal networks, destination NAT may only lead into them: [network, prefix]. */
  dnatNets: [string, number][];
}
export type SyncStats = Record<typeof SYNC_STAT_NAMES[number], number>;

interface Exports {
  memory: WebAssembly.Memory;
  ssInit(cap: number): number; ssClear(): void;
  ssNlRxPtr(): number; ssNlRxCap(): number; ssNlTxPtr(): number; ssNlTxLen(): number; ssNlTxReset(): void;
  ssPeerPtr(): number; ssPeerCap(): number; ssTxPtr(): number; ssTxLen(): number; ssIgnPtr(): number;
  ssEntPtr(): number; ssRecSize(): number; ssStatsPtr(): number; ssStatsCount(): number;
  ssSetOwnPid(pid: number): void; ssSetIgnore(n: number, subnet: number, mask: number): void;
  ssPolicyPtr(): number; ssSetPolicy(zones: number, marks: number, snat: number, vips: number, nets: number): void;
  ssHandleNetlink(now: number, len: number, queue: number, dump: number): number;
  ssFlags(): number; ssResetFlags(): void; ssDumpBegin(): void; ssDumpEnd(queue: number): number;
  ssPollBatch(now: number, maxBytes: number): number; ssQueueAll(): number; ssDropQueue(): void; ssQueueLen(): number;
  ssApply(now: number, len: number, liberal: number): number; ssBarrier(): void; ssLiberalPass(start: number, on: number): number; ssReinjectPass(start: number, now: number): number;
  ssCount(): number; ssCapacity(): number; ssSpan(): number; ssBytesPerSlot(): number;
  ssReadRecord(i: number): number; ssLookup(): number;
  __collect(): void;
}

/** One state entry as the table holds it (for tests and `duogate statesync dump`). */
export interface CtEntry {
  proto: number; zone: number; src: string; dst: string; sport: number; dport: number;
  replySrc: string; replyDst: string; replySport: number; replyDport: number;
  status: number; timeout: number; mark: number;
  tcp: { state: number; wscaleOrig: number; wscaleReply: number; flagsOrig: number; flagsReply: number };
  live: number;
}

const modules = new Map<string, WebAssembly.Module>();
const ip = (b: Uint8Array, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const port = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];

export class SyncCore {
  readonly x: Exports;
  private u8!: Uint8Array;
  private dv!: DataView;

  constructor(capacity: number, opts: { debug?: boolean } = {}) {
    const file = wasmPath(opts.debug ? 'core.debug.wasm' : 'core.wasm');
    let mod = modules.get(file);
    if (!mod) { mod = new WebAssembly.Module(readFileSync(file)); modules.set(file, mod); }
    const inst = new WebAssembly.Instance(mod, {
      env: { abort: (_m: number, _f: number, line: number, col: number) => { throw new CoreError('DG_ERR_CORE_TRAP', `state sync core aborted at ${line}:${col}`); } },
    });
    this.x = inst.exports as unknown as Exports;
    if (typeof this.x.ssInit !== 'function') throw new CoreError('DG_ERR_CORE_OLD', 'core.wasm has no state sync exports: run "npm run build:core"');
    this.x.ssInit(capacity);
    this.refresh();
  }

  /** Views are rebuilt when memory grew (the table is heap-allocated at init; a grow detaches old views). */
  refresh(): void {
    if (this.u8?.buffer === this.x.memory.buffer) return;
    this.u8 = new Uint8Array(this.x.memory.buffer);
    this.dv = new DataView(this.x.memory.buffer);
  }
  get mem(): Uint8Array { this.refresh(); return this.u8; }
  get view(): DataView { this.refresh(); return this.dv; }

  nlRx(): Uint8Array { this.refresh(); return new Uint8Array(this.x.memory.buffer, this.x.ssNlRxPtr(), this.x.ssNlRxCap()); }
  peerRx(): Uint8Array { this.refresh(); return new Uint8Array(this.x.memory.buffer, this.x.ssPeerPtr(), this.x.ssPeerCap()); }
  /** Pending kernel requests (a view; valid until the next core call). */
  nlTx(): Uint8Array { this.refresh(); return new Uint8Array(this.x.memory.buffer, this.x.ssNlTxPtr(), this.x.ssNlTxLen()); }
  /** The last batch of wire items (a view). */
  txBatch(): Uint8Array { this.refresh(); return new Uint8Array(this.x.memory.buffer, this.x.ssTxPtr(), this.x.ssTxLen()); }

  /** Entries to or from these addresses, or inside subnet/prefix, are not replicated (the gateway's own traffic). */
  setIgnore(addrs: string[], subnet: string | null, prefix: number): void {
    this.refresh();
    const p = this.x.ssIgnPtr();
    // Raw words: the four network-order bytes read as a little-endian u32, as the core loads them.
    const raw = (bytes: number[]) => new DataView(Uint8Array.from(bytes).buffer).getUint32(0, true);
    const rawIp = (a: string) => raw(a.split('.').map(Number));
    const m = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(32, prefix))) >>> 0;
    addrs.slice(0, 64).forEach((a, i) => this.dv.setUint32(p + i * 4, rawIp(a), true));
    this.x.ssSetIgnore(Math.min(addrs.length, 64), subnet ? rawIp(subnet) : 0, raw([m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255]));
  }

  /** Bound what the peer may send (without it, every well-formed item is applied). Lists longer than the block are cut. */
  setPolicy(p: RxPolicy): void {
    this.refresh();
    const base = this.x.ssPolicyPtr();
    this.u8.fill(0, base, base + 640);
    const raw = (a: string) => new DataView(Uint8Array.from(a.split('.').map(Number)).buffer).getUint32(0, true);
    const maskRaw = (prefix: number) => { const m = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(32, prefix))) >>> 0; return raw(`${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}`); };
    p.timeoutMax.slice(0, 12).forEach((v, i) => this.dv.setUint32(base + i * 4, v >>> 0, true));
    const zones = p.zones.slice(0, 8); const marks = p.marks.slice(0, 8);
    const snat = p.snat.slice(0, 64); const vips = p.vips.slice(0, 32); const nets = p.dnatNets.slice(0, 16);
    zones.forEach((v, i) => this.dv.setUint32(base + 64 + i * 4, v >>> 0, true));
    marks.forEach((v, i) => this.dv.setUint32(base + 96 + i * 4, v >>> 0, true));
    snat.forEach((a, i) => this.dv.setUint32(base + 128 + i * 4, raw(a), true));
    vips.forEach((a, i) => this.dv.setUint32(base + 384 + i * 4, raw(a), true));
    nets.forEach(([a, prefix], i) => { const m = maskRaw(prefix); this.dv.setUint32(base + 512 + i * 8, raw(a) & m, true); this.dv.setUint32(base + 516 + i * 8, m, true); });
    this.x.ssSetPolicy(zones.length, marks.length, snat.length, vips.length, nets.length);
  }

  stats(): SyncStats {
    this.refresh();
    const p = this.x.ssStatsPtr();
    const o = {} as SyncStats;
    SYNC_STAT_NAMES.forEach((n, i) => { o[n] = this.dv.getUint32(p + i * 4, true); });
    return o;
  }

  private entAt(p: number): CtEntry {
    const b = this.u8; const d = this.dv;
    const proto = b[p + 1];
    return {
      live: b[p], proto, zone: d.getUint16(p + 2, true), src: ip(b, p + 4), dst: ip(b, p + 8),
      sport: port(b, p + 12), dport: proto === 1 ? b[p + 14] : port(b, p + 14),
      replySrc: ip(b, p + 16), replyDst: ip(b, p + 20), replySport: port(b, p + 24), replyDport: port(b, p + 26),
      status: d.getUint32(p + 28, true), timeout: d.getUint32(p + 32, true), mark: d.getUint32(p + 36, true),
      tcp: { state: b[p + 40], wscaleOrig: b[p + 41], wscaleReply: b[p + 42], flagsOrig: b[p + 43], flagsReply: b[p + 44] },
    };
  }

  /** Every live state in the table (copies; for tests and diagnostics, not the hot path). */
  entries(): CtEntry[] {
    const out: CtEntry[] = [];
    const n = this.x.ssSpan();
    for (let i = 0; i < n; i++) {
      if (!this.x.ssReadRecord(i)) continue;
      this.refresh();
      const e = this.entAt(this.x.ssEntPtr());
      if (e.live === 1) out.push(e);
    }
    return out;
  }

  /** Find a state by its original tuple. */
  lookup(proto: number, src: string, dst: string, sport: number, dport: number, zone = 0): CtEntry | null {
    this.refresh();
    const p = this.x.ssEntPtr();
    this.u8.fill(0, p, p + 64);
    this.u8[p + 1] = proto; this.dv.setUint16(p + 2, zone, true);
    this.u8.set(src.split('.').map(Number), p + 4); this.u8.set(dst.split('.').map(Number), p + 8);
    this.dv.setUint16(p + 12, sport); this.dv.setUint16(p + 14, dport);
    if (this.x.ssLookup() < 0) return null;
    this.refresh();
    return this.entAt(p);
  }
}
