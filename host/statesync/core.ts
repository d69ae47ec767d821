// Typed face of the core's state-sync exports (assembly/index.ts, "State sync" section). Each SyncCore
// is its own WebAssembly instance, so the state table never shares memory with CARP's core. Offsets,
// limits and counter names come from the core's exported globals (host/core/abi.ts).
import { CoreError, instantiateCore } from '../core/wasm.js';
import { coreAbi, denseNames, readAbi, type Abi } from '../core/abi.js';
import { bytesToIp6, ip6Bytes } from '../config/net.js';

/** Counter names by index: the core's SYNC_STAT_* globals, lower-cased. */
export const SYNC_STAT_NAMES: readonly string[] = denseNames(coreAbi(), 'SYNC_STAT_');

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
  /** The pair's own IPv6 addresses (IPv6 VIPs, link-locals): entries to or from them are neither sent nor taken. */
  own6?: string[];
}
export type SyncStats = Record<string, number>;

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
  ssPollBatch(now: number, maxBytes: number, v6: number): number; ssQueueAll(): number; ssDropQueue(): void; ssQueueLen(): number;
  ssApply(now: number, len: number, liberal: number): number; ssBarrier(): void; ssLiberalPass(start: number, on: number): number; ssReinjectPass(start: number, now: number): number;
  ssCount(): number; ssCapacity(): number; ssSpan(): number; ssBytesPerSlot(): number;
  ssReadRecord(i: number): number; ssLookup(): number;
  ssCount6(): number; ssSpan6(): number; ssReadRecord6(i: number): number; ssLookup6(): number; ssOwn6Ptr(): number; ssSetOwn6(n: number): void;
  __collect(): void;
}

/** One state entry as the table holds it (for tests and `duogate statesync dump`). */
export interface CtEntry {
  proto: number; zone: number; src: string; dst: string; sport: number; dport: number;
  replySrc: string; replyDst: string; replySport: number; replyDport: number;
  status: number; timeout: number; mark: number;
  tcp: { state: number; wscaleOrig: number; wscaleReply: number; flagsOrig: number; flagsReply: number };
  live: number;
  /** 4 or 6. IPv6 addresses are in RFC 5952 text. */
  family: 4 | 6;
}

const ip = (b: Uint8Array, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
/** RFC 5952 text of the 16 bytes at `o` (the longest run of two or more zero words as ::). */
/** The 16 bytes at `o` in RFC 5952 text (the CARP core's formatter). */
export const ip6Text = (b: Uint8Array, o: number): string => bytesToIp6(b.subarray(o, o + 16));
const fold6 = (b: Uint8Array) => { const d = new DataView(b.buffer, b.byteOffset, 16); return (d.getUint32(0, true) ^ d.getUint32(4, true) ^ d.getUint32(8, true) ^ d.getUint32(12, true)) >>> 0; };
const port = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const ICMP = 1;
const ICMPV6 = 58;

export class SyncCore {
  readonly x: Exports;
  readonly abi: Abi;
  private u8!: Uint8Array;
  private dv!: DataView;

  constructor(capacity: number, opts: { debug?: boolean } = {}) {
    const exports = instantiateCore({ debug: opts.debug, what: 'state sync core' });
    this.x = exports as unknown as Exports;
    if (typeof this.x.ssInit !== 'function') throw new CoreError('DG_ERR_CORE_OLD', 'core.wasm has no state sync exports: run "npm run build:core"');
    this.abi = readAbi(exports);
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
    const max = this.abi.IGN_MAX;
    // Raw words: the four network-order bytes read as a little-endian u32, as the core loads them.
    const raw = (bytes: number[]) => new DataView(Uint8Array.from(bytes).buffer).getUint32(0, true);
    const rawIp = (a: string) => raw(a.split('.').map(Number));
    const m = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(32, prefix))) >>> 0;
    addrs.slice(0, max).forEach((a, i) => this.dv.setUint32(p + i * 4, rawIp(a), true));
    this.x.ssSetIgnore(Math.min(addrs.length, max), subnet ? rawIp(subnet) : 0, raw([m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255]));
  }

  /** Bound what the peer may send (without it, every well-formed item is applied). Lists longer than the block are cut. */
  setPolicy(p: RxPolicy): void {
    this.refresh();
    const a = this.abi;
    const base = this.x.ssPolicyPtr();
    this.u8.fill(0, base, base + a.POL_SIZE);
    const raw = (a: string) => new DataView(Uint8Array.from(a.split('.').map(Number)).buffer).getUint32(0, true);
    const maskRaw = (prefix: number) => { const m = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(32, prefix))) >>> 0; return raw(`${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}`); };
    const word = (off: number, i: number, v: number) => this.dv.setUint32(base + off + i * 4, v >>> 0, true);
    p.timeoutMax.slice(0, a.POL_TMAX_MAX).forEach((v, i) => word(a.POL_TMAX, i, v));
    const zones = p.zones.slice(0, a.POL_SET_MAX); const marks = p.marks.slice(0, a.POL_SET_MAX);
    const snat = p.snat.slice(0, a.POL_SNAT_MAX); const vips = p.vips.slice(0, a.POL_VIPS_MAX); const nets = p.dnatNets.slice(0, a.POL_NETS_MAX);
    zones.forEach((v, i) => word(a.POL_ZONES, i, v));
    marks.forEach((v, i) => word(a.POL_MARKS, i, v));
    snat.forEach((addr, i) => word(a.POL_SNAT, i, raw(addr)));
    vips.forEach((addr, i) => word(a.POL_VIPS, i, raw(addr)));
    // Each network is two words: the raw address already masked, then the raw mask.
    nets.forEach(([addr, prefix], i) => { const m = maskRaw(prefix); word(a.POL_NETS, 2 * i, raw(addr) & m); word(a.POL_NETS, 2 * i + 1, m); });
    this.x.ssSetPolicy(zones.length, marks.length, snat.length, vips.length, nets.length);
    const own6 = (p.own6 ?? []).slice(0, a.POL_OWN6_MAX);
    own6.forEach((addr, i) => this.u8.set(ip6Bytes(addr), this.x.ssOwn6Ptr() + i * 16));
    this.x.ssSetOwn6(own6.length);
  }

  /** A dump's NLMSG_DONE was read since the last ssResetFlags(). */
  dumpDone(): boolean { return (this.x.ssFlags() & this.abi.SYNC_FLAG_DONE) !== 0; }
  /** The barrier was answered since the last ssResetFlags(). */
  barrierAnswered(): boolean { return (this.x.ssFlags() & this.abi.SYNC_FLAG_BARRIER) !== 0; }

  stats(): SyncStats {
    this.refresh();
    const p = this.x.ssStatsPtr();
    const o = {} as SyncStats;
    SYNC_STAT_NAMES.forEach((n, i) => { o[n] = this.dv.getUint32(p + i * 4, true); });
    return o;
  }

  private entAt(p: number, v6 = false): CtEntry {
    const b = this.u8; const d = this.dv; const a = this.abi;
    const proto = b[p + a.ENT_PROTO];
    const addr = (o4: number, o6: number) => v6 ? ip6Text(b, p + o6) : ip(b, p + o4);
    return {
      family: v6 ? 6 : 4,
      live: b[p + a.ENT_LIVE], proto, zone: d.getUint16(p + a.ENT_ZONE, true), src: addr(a.ENT_OSRC, a.ENT6_OSRC), dst: addr(a.ENT_ODST, a.ENT6_ODST),
      // ICMP keeps type and code where TCP/UDP keep the destination port: the type is the first byte.
      sport: port(b, p + a.ENT_OSPORT), dport: proto === ICMP || proto === ICMPV6 ? b[p + a.ENT_ODPORT] : port(b, p + a.ENT_ODPORT),
      replySrc: addr(a.ENT_RSRC, a.ENT6_RSRC), replyDst: addr(a.ENT_RDST, a.ENT6_RDST), replySport: port(b, p + a.ENT_RSPORT), replyDport: port(b, p + a.ENT_RDPORT),
      status: d.getUint32(p + a.ENT_STATUS, true), timeout: d.getUint32(p + a.ENT_TIMEOUT, true), mark: d.getUint32(p + a.ENT_MARK, true),
      tcp: {
        state: b[p + a.ENT_TCPSTATE], wscaleOrig: b[p + a.ENT_WSCALE_ORIG], wscaleReply: b[p + a.ENT_WSCALE_REPLY],
        flagsOrig: b[p + a.ENT_FLAGS_ORIG], flagsReply: b[p + a.ENT_FLAGS_REPLY],
      },
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
      if (e.live === this.abi.ENT_LIVE_OK) out.push(e);
    }
    const n6 = this.x.ssSpan6();
    for (let i = 0; i < n6; i++) {
      if (!this.x.ssReadRecord6(i)) continue;
      this.refresh();
      const e = this.entAt(this.x.ssEntPtr(), true);
      if (e.live === this.abi.ENT_LIVE_OK) out.push(e);
    }
    return out;
  }

  /** Find a state by its original tuple. */
  lookup(proto: number, src: string, dst: string, sport: number, dport: number, zone = 0): CtEntry | null {
    this.refresh();
    const a = this.abi;
    const p = this.x.ssEntPtr();
    const v6 = src.includes(':');
    this.u8.fill(0, p, p + a.ENT6_SIZE);
    this.u8[p + a.ENT_PROTO] = proto; this.dv.setUint16(p + a.ENT_ZONE, zone, true);
    if (v6) {
      // The record keeps the full addresses after the IPv4 layout, and their folds where IPv4 keeps its own.
      const s6 = ip6Bytes(src); const d6 = ip6Bytes(dst);
      this.u8.set(s6, p + a.ENT6_OSRC); this.u8.set(d6, p + a.ENT6_ODST);
      this.dv.setUint32(p + a.ENT_OSRC, fold6(s6), true); this.dv.setUint32(p + a.ENT_ODST, fold6(d6), true);
    } else {
      this.u8.set(src.split('.').map(Number), p + a.ENT_OSRC); this.u8.set(dst.split('.').map(Number), p + a.ENT_ODST);
    }
    // Ports are raw network bytes in the record (big-endian), as ctnetlink carries them.
    this.dv.setUint16(p + a.ENT_OSPORT, sport); this.dv.setUint16(p + a.ENT_ODPORT, dport);
    if ((v6 ? this.x.ssLookup6() : this.x.ssLookup()) < 0) return null;
    this.refresh();
    return this.entAt(p, v6);
  }
}
