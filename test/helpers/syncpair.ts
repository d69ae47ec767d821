// Two state sync sessions (host/statesync/machine.ts) wired through a virtual network in virtual time, each
// with a fake kernel conntrack table: no sockets, no sleeps, no netns. The network loses, duplicates, delays
// and reorders datagrams from a seed, and can be cut per direction; the kernel answers the machine's ctnetlink
// requests as Linux does (EEXIST, ENOENT, the barrier's EINVAL, echoes stamped with the inject port id), sends
// events to the groups the machine subscribed, and dumps its table on request. Time only moves in run().
import { SyncMachine, type Action, type KernelSocket, type MachineOptions } from '../../host/statesync/machine.js';
import { SyncCore } from '../../host/statesync/core.js';
import { Codec, Type, F_NACK, type Header } from '../../host/statesync/protocol.js';
import { stateSyncDefaults, type StateSyncConfig } from '../../host/statesync/config.js';
import { be32, enc, nest, nlmsg, tuple, tuple6, u8, type Attr } from './netlink.js';
import { ip6Text } from '../../host/statesync/core.js';

// ------------------------------------------------------------------ seeded randomness

/** mulberry32: a small seeded PRNG, [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** Non-zero 64-bit ids from a seed (session ids and nonces). */
export function rand64(seed: number): () => bigint {
  const r = prng(seed);
  return () => {
    for (;;) {
      const v = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
      if (v !== 0n) return v;
    }
  };
}

// ------------------------------------------------------------------ ctnetlink, as the kernel writes and reads it

const CT_NEW = 0x100, CT_GET = 0x101, CT_DELETE = 0x102;
const NLMSG_ERROR = 2, NLMSG_DONE = 3;
const F_ACK = 0x4, F_MULTI = 0x2, F_CREATE = 0x400;
const EEXIST = 17, ENOENT = 2, EINVAL = 22;
const IPS_SRC_NAT = 0x10, IPS_NAT_DONE = 0x180;

/** One conntrack entry of a fake kernel (TCP or UDP; IPv6 when its addresses are). `nat`: source NAT to this address and port. */
export interface Ct {
  proto: number; src: string; dst: string; sp: number; dp: number;
  nat?: [string, number]; status: number; timeout: number; state: number;
}
export const keyOf = (c: { proto: number; src: string; dst: string; sp: number; dp: number }): string => `${c.proto} ${c.src}:${c.sp}>${c.dst}:${c.dp}`;

/** The message the kernel writes for entry `c` (event or dump line): the reply tuple with NAT applied. */
export function ctMessage(c: Ct, type: number, flags: number, seq: number, pid: number): Buffer {
  const [rdst, rdp] = c.nat ?? [c.src, c.sp];
  const v6 = c.src.includes(':'); const T = v6 ? tuple6 : tuple;
  const attrs: Attr[] = [
    T(1, c.src, c.dst, c.sp, c.dp, c.proto), T(2, c.dst, rdst, c.dp, rdp, c.proto),
    be32(3, c.status), be32(8, 0), be32(12, 0x1234), be32(11, 1), be32(7, c.timeout),
  ];
  if (c.proto === 6) attrs.push(nest(4, [nest(1, [u8(1, c.state), u8(2, 7), u8(3, 7), { type: 4, data: Buffer.from([0x23, 0]) }, { type: 5, data: Buffer.from([0x23, 0]) }])]));
  return nlmsg(type, flags, seq, pid, Buffer.concat([Buffer.from([v6 ? 10 : 2, 0, 0, 0]), ...attrs.map(enc)]));
}

function attrs(b: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let q = 0; q + 4 <= b.length;) { const l = b.readUInt16LE(q); if (l < 4) break; m.set(b.readUInt16LE(q + 2) & 0x3fff, b.subarray(q + 4, q + l)); q += (l + 3) & ~3; }
  return m;
}
const ipOf = (b: Buffer) => [...b.subarray(0, 4)].join('.');

// ------------------------------------------------------------------ the fake kernel

/** A conntrack table and the three netlink sockets as the machine sees them. */
export class FakeKernel {
  readonly table = new Map<string, Ct>();
  /** ctnetlink groups the event socket is bound to (the machine's `subscribe` action sets them). */
  groups = 0;
  /** Answers to requests are held back while set (a slow kernel); `release()` lets them go. */
  hold = false;
  creates = 0; updates = 0; deletes = 0; barriers = 0;
  private held: Buffer[] = [];
  /** Datagrams waiting to be read by the machine, per socket. */
  readonly out: Record<KernelSocket, Buffer[]> = { events: [], dump: [], inject: [] };

  constructor(readonly injectPid: number) {}

  /** Traffic makes (or changes) entry `c`: an event for the NEW or UPDATE group. */
  put(c: Partial<Ct> & { src: string; dst: string; sp: number; dp: number }): Ct {
    const e: Ct = { proto: 6, status: c.nat ? IPS_NAT_DONE | IPS_SRC_NAT | 0xe : IPS_NAT_DONE | 0xe, timeout: 432000, state: 3, ...c };
    const had = this.table.has(keyOf(e));
    this.table.set(keyOf(e), e);
    if (this.groups & (had ? 2 : 1)) this.out.events.push(ctMessage(e, CT_NEW, had ? 0 : 0x600, 0, 0));
    return e;
  }
  /** The entry expires or is closed: a DESTROY event. */
  expire(key: string): void {
    const e = this.table.get(key);
    if (!e) return;
    this.table.delete(key);
    if (this.groups & 4) this.out.events.push(ctMessage(e, CT_DELETE, 0, 0, 0));
  }
  /** Entries vanish without an event (as after an ENOBUFS overrun). */
  forget(key: string): void { this.table.delete(key); }

  /** A run of requests from the machine's inject socket. Failures and the barrier are answered. */
  request(buf: Buffer): void {
    const answers: Buffer[] = [];
    for (let p = 0; p + 16 <= buf.length;) {
      const len = buf.readUInt32LE(p);
      const type = buf.readUInt16LE(p + 4); const flags = buf.readUInt16LE(p + 6); const seq = buf.readUInt32LE(p + 8);
      const hdr = buf.subarray(p, p + 16);
      const answer = (err: number) => { const b = Buffer.alloc(20); b.writeInt32LE(-err, 0); hdr.copy(b, 4); answers.push(nlmsg(NLMSG_ERROR, 0, seq, this.injectPid, b)); };
      const a = attrs(buf.subarray(p + 20, p + len));
      if (type === CT_GET) { this.barriers++; if (flags & F_ACK) answer(EINVAL); } else {
        const o = attrs(a.get(1)!); const ip = attrs(o.get(1)!); const pr = attrs(o.get(2)!);
        const v6 = buf[p + 16] === 10;
        const addr = (t4: number) => v6 ? ip6Text(ip.get(t4 + 2)!, 0) : ipOf(ip.get(t4)!);
        const key = { proto: pr.get(1)![0], src: addr(1), dst: addr(2), sp: pr.get(2)!.readUInt16BE(), dp: pr.get(3)!.readUInt16BE() };
        const k = keyOf(key);
        const cur = this.table.get(k);
        const status = a.get(3)?.readUInt32BE(); const timeout = a.get(7)?.readUInt32BE();
        const tcp = a.get(4) ? attrs(attrs(a.get(4)!).get(1)!).get(1)?.[0] : undefined;
        if (type === CT_DELETE) {
          if (!cur) answer(ENOENT); else { this.table.delete(k); this.deletes++; if (this.groups & 4) this.out.events.push(ctMessage(cur, CT_DELETE, 0, 0, this.injectPid)); }
        } else if (flags & F_CREATE) {
          if (cur) answer(EEXIST); else {
            const ns = a.get(6) ? attrs(a.get(6)!) : null;
            const nat: [string, number] | undefined = ns ? [ipOf(ns.get(1)!), ns.get(3) ? attrs(ns.get(3)!).get(1)!.readUInt16BE() : key.sp] : undefined;
            const e: Ct = { ...key, nat, status: (status ?? 0) | IPS_NAT_DONE | (nat ? IPS_SRC_NAT : 0), timeout: timeout ?? 300, state: tcp ?? 0 };
            this.table.set(k, e); this.creates++;
            if (this.groups & 1) this.out.events.push(ctMessage(e, CT_NEW, 0x600, 0, this.injectPid));
          }
        } else if (!cur) answer(ENOENT); else {
          if (status !== undefined) cur.status = status | IPS_NAT_DONE | (cur.nat ? IPS_SRC_NAT : 0);
          if (timeout !== undefined) cur.timeout = timeout;
          if (tcp !== undefined) cur.state = tcp;
          this.updates++;
          if (this.groups & 2) this.out.events.push(ctMessage(cur, CT_NEW, 0, 0, this.injectPid));
        }
      }
      p += (len + 3) & ~3;
    }
    if (!answers.length) return;
    if (this.hold) this.held.push(Buffer.concat(answers)); else this.out.inject.push(Buffer.concat(answers));
  }
  release(): void { this.hold = false; this.out.inject.push(...this.held); this.held = []; }

  /** Answer a dump request: every entry, ~50 to a datagram, then NLMSG_DONE. */
  dump(seq: number): void {
    const msgs = [...this.table.values()].map((e) => ctMessage(e, CT_NEW, F_MULTI, seq, 0));
    for (let i = 0; i < msgs.length; i += 50) this.out.dump.push(Buffer.concat(msgs.slice(i, i + 50)));
    this.out.dump.push(nlmsg(NLMSG_DONE, F_MULTI, seq, 0, Buffer.alloc(4)));
  }

  /** What another kernel must hold to match this one: tuple, NAT and TCP state per entry. */
  summary(): string[] { return [...this.table.values()].map((e) => `${keyOf(e)} nat=${e.nat?.join(':') ?? '-'} st=${e.state}`).sort(); }
}

// ------------------------------------------------------------------ nodes, network, scheduler

export interface LinkFaults {
  /** Fraction of datagrams lost, duplicated, and delayed by an extra random 0..jitterMs (reordering). */
  loss?: number; dup?: number; reorder?: number; jitterMs?: number;
  /** One-way delay, ms. */
  delayMs?: number;
  /** Nothing gets through. */
  cut?: boolean;
  /** Drop datagrams this returns true for (after the seeded faults), e.g. exactly one DATA. */
  drop?: (h: Header, bytes: Buffer) => boolean;
}

/** A datagram that crossed (or was sent onto) the link, for counting and replay. */
export interface Sent { t: number; from: string; h: Header; bytes: Buffer; delivered: boolean }

export class SyncNode {
  m!: SyncMachine;
  readonly kernel: FakeKernel;
  demoted = false;
  readonly logs: { t: number; level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  readonly actions: { t: number; a: Action }[] = [];
  /** The machine was busy with immediate work until then (one event-loop turn costs the pair's turnMs). */
  busyUntil = 0;
  active: boolean;
  incarnation = 0;

  constructor(readonly pair: SyncPair, readonly name: string, readonly cfg: StateSyncConfig, active: boolean, private readonly opts: MachineOptions, pid: number) {
    this.kernel = new FakeKernel(pid);
    this.active = active;
  }

  /** A (re)started daemon: a new machine (new session) on the same kernel, subscribed first, then started. */
  boot(): void {
    this.incarnation++;
    this.m?.stop();
    this.m = new SyncMachine(this.cfg, { rand: rand64(this.pair.seed * 31 + this.name.charCodeAt(0) * 7 + this.incarnation), core: new SyncCore(this.cfg.capacity, { debug: true }), ...this.opts });
    this.m.core.x.ssSetOwnPid(this.kernel.injectPid);
    this.kernel.groups = this.active ? 7 : 4;
    this.m.start(this.pair.now, this.active);
    this.flush();
  }

  /** The daemon dies: its machine is gone (its kernel stays, as after a crash). */
  kill(): void { this.m.stop(); }

  setRole(active: boolean): void {
    this.active = active;
    // What the old event socket holds is read under the old role first (as the service does).
    this.deliverKernel('events');
    this.m.setRole(this.pair.now, active);
    this.flush();
  }

  due(): number {
    if (!this.m) return Infinity;
    if (this.m.hasImmediateWork()) return Math.max(this.busyUntil, this.pair.now);
    return this.m.nextDeadline();
  }

  tick(): void {
    const busy = this.m.hasImmediateWork();
    this.m.handleTimeout(this.pair.now);
    if (busy) this.busyUntil = this.pair.now + this.pair.turnMs;
    this.flush();
  }

  /** Feed the machine what a kernel socket holds (as the service's read loop does). */
  deliverKernel(sock: KernelSocket): void {
    const q = this.kernel.out[sock];
    while (q.length) {
      if (sock === 'dump' && !this.m.isDumping) break;
      const b = q.shift()!;
      this.m.core.nlRx().set(b);
      if (!this.m.handleKernel(this.pair.now, sock, b.length) && sock === 'dump') break;
    }
    this.flush();
  }

  /** Carry out the machine's decisions: datagrams onto the link, requests into the kernel, actions. */
  flush(): void {
    const m = this.m;
    for (let a = m.pollAction(); a; a = m.pollAction()) {
      this.actions.push({ t: this.pair.now, a });
      if (a.kind === 'demote') this.demoted = a.on;
      else if (a.kind === 'subscribe') this.kernel.groups = a.groups;
      else if (a.kind === 'dump') { this.kernel.dump(a.seq); this.pair.soon(() => this.deliverKernel('dump')); }
      else if (a.kind === 'log') this.logs.push({ t: this.pair.now, level: a.level, msg: a.msg, fields: a.fields });
    }
    let asked = false;
    for (let k = m.pollKernel(); k; k = m.pollKernel()) { this.kernel.request(k); asked = true; }
    if (asked && this.kernel.out.inject.length) this.pair.soon(() => this.deliverKernel('inject'));
    if (this.kernel.out.events.length) this.pair.soon(() => this.deliverKernel('events'));
    for (let b = m.pollTransmit(); b; b = m.pollTransmit()) this.pair.send(this, b);
  }

  /** Traffic through this node's kernel, and the event it makes reaches the machine a moment later. */
  put(c: Partial<Ct> & { src: string; dst: string; sp: number; dp: number }): Ct { const e = this.kernel.put(c); this.pair.soon(() => this.deliverKernel('events')); return e; }
  expire(key: string): void { this.kernel.expire(key); this.pair.soon(() => this.deliverKernel('events')); }
  /** The event socket overran (ENOBUFS): queued events are lost. */
  overrun(): void { this.kernel.out.events = []; this.m.handleKernelOverrun(this.pair.now, 'events'); this.flush(); }
  releaseKernel(): void { this.kernel.release(); this.pair.soon(() => this.deliverKernel('inject')); }

  log(re: RegExp): boolean { return this.logs.some((l) => re.test(l.msg)); }
}

export interface PairOptions {
  seed?: number;
  /** Config overrides for both nodes (the key is fixed). */
  cfg?: Partial<StateSyncConfig>;
  /** Per-node machine options (initial seq and pn). */
  a?: MachineOptions; b?: MachineOptions;
  /** Which node starts active (holds the VIPs). */
  active?: 'a' | 'b' | 'none';
  /** Virtual cost of one turn of immediate work (a backlog slice: ~120 kernel creates), ms. */
  turnMs?: number;
  /** Kernel answers and events arrive this long after the request or the change, ms. */
  kernelMs?: number;
}

export class SyncPair {
  now = 0;
  readonly seed: number;
  readonly a: SyncNode;
  readonly b: SyncNode;
  /** Faults per direction: `ab` is a → b. */
  readonly link: { ab: LinkFaults; ba: LinkFaults } = { ab: {}, ba: {} };
  readonly sent: Sent[] = [];
  turnMs: number;
  kernelMs: number;
  private readonly rnd: () => number;
  private readonly codec: Codec;
  private q: { t: number; n: number; fn: () => void }[] = [];
  private n = 0;

  constructor(o: PairOptions = {}) {
    this.seed = o.seed ?? 1;
    this.rnd = prng(this.seed);
    this.turnMs = o.turnMs ?? 0.2;
    this.kernelMs = o.kernelMs ?? 0.05;
    const cfg: StateSyncConfig = { ...stateSyncDefaults, capacity: 16384, key: 'syncpair-test-key-0123456789', ...o.cfg };
    this.codec = new Codec(Buffer.from(cfg.key, 'utf8'));
    this.a = new SyncNode(this, 'a', cfg, (o.active ?? 'a') === 'a', o.a ?? {}, 4001);
    this.b = new SyncNode(this, 'b', cfg, o.active === 'b', o.b ?? {}, 4002);
  }

  start(): this { this.a.boot(); this.b.boot(); return this; }

  other(n: SyncNode): SyncNode { return n === this.a ? this.b : this.a; }

  /** Run `fn` at time `t` (after everything already queued for `t`). */
  at(t: number, fn: () => void): void {
    const e = { t, n: this.n++, fn };
    let lo = 0, hi = this.q.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.q[mid].t < t || (this.q[mid].t === t && this.q[mid].n < e.n)) lo = mid + 1; else hi = mid; }
    this.q.splice(lo, 0, e);
  }
  soon(fn: () => void): void { this.at(this.now + this.kernelMs, fn); }

  /** A datagram from `from` onto the link, through its faults. */
  send(from: SyncNode, bytes: Buffer): void {
    const to = this.other(from);
    const f = from === this.a ? this.link.ab : this.link.ba;
    const r = this.codec.open(bytes);
    const s: Sent = { t: this.now, from: from.name, h: r.ok ? r.h : ({} as Header), bytes, delivered: false };
    this.sent.push(s);
    if (f.cut) return;
    if (f.loss && this.rnd() < f.loss) return;
    if (f.drop && r.ok && f.drop(r.h, bytes)) return;
    const copies = f.dup && this.rnd() < f.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const extra = f.reorder && this.rnd() < f.reorder ? this.rnd() * (f.jitterMs ?? 2) : 0;
      this.at(this.now + (f.delayMs ?? 0.1) + extra, () => { s.delivered = true; this.deliver(to, Buffer.from(bytes)); });
    }
  }

  /** A datagram arrives at `to` (a replay or a forgery too). */
  deliver(to: SyncNode, bytes: Buffer): void { if (!to.m) return; to.m.handleDatagram(this.now, bytes); to.flush(); }

  /** Advance virtual time by `ms`, running every event, timer and turn of work due meanwhile. */
  run(ms: number): void { this.runUntil(() => false, ms); }

  /** Run until `cond()` holds (checked after each event) or `maxMs` passed; returns whether it held. */
  runUntil(cond: () => boolean, maxMs: number): boolean {
    const end = this.now + maxMs;
    for (let i = 0; i < 5_000_000; i++) {
      if (cond()) return true;
      const tq = this.q.length ? this.q[0].t : Infinity;
      const da = this.a.due(); const db = this.b.due();
      const t = Math.min(tq, da, db);
      if (t > end) { this.now = end; return cond(); }
      this.now = Math.max(this.now, t);
      if (tq <= this.now) { this.q.shift()!.fn(); continue; }
      if (da <= this.now) this.a.tick();
      if (db <= this.now) this.b.tick();
    }
    throw new Error(`syncpair: no progress at t=${this.now} (an event loop that never settles)`);
  }

  /** Datagrams sent by `from` matching `pred` since time `since`. */
  count(from: 'a' | 'b', pred: (h: Header) => boolean, since = 0): number {
    return this.sent.filter((s) => s.from === from && s.t >= since && s.h.type !== undefined && pred(s.h)).length;
  }
  static isData = (h: Header) => h.type === Type.DATA;
  static isNack = (h: Header) => h.type === Type.ACK && (h.flags & F_NACK) !== 0;

  /** Both kernels hold the same entries (tuple, NAT, TCP state). */
  converged(): boolean {
    const x = this.a.kernel.summary(); const y = this.b.kernel.summary();
    return x.length === y.length && x.every((v, i) => v === y[i]);
  }
}

/** `n` distinct TCP flows with source NAT to the WAN VIP, from LAN host `lan` (a /16 of clients). */
export function flows(n: number, from = 0): Parameters<FakeKernel['put']>[0][] {
  const out: Parameters<FakeKernel['put']>[0][] = [];
  for (let i = from; i < from + n; i++) {
    out.push({ src: `10.1.${(i >> 8) & 255}.${i & 255}`, dst: '198.51.100.7', sp: 40000 + (i % 20000), dp: 443, nat: ['203.0.113.1', 20000 + (i % 40000)] });
  }
  return out;
}
