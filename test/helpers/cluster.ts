// A virtual-time cluster of cores (quinn's Pair, for CARP): no sockets, no sleeps. Each node's links
// attach to segments; an advert sent on a link reaches every other node on that segment after `latency`
// ms, wrapped in the IPv4 header a raw socket would deliver (or the IPv6 header the daemon lays out, for an IPv6
// advert from the node's link-local address on that link). Time only moves in step().
import { Core, type Action, type StateName } from '../../host/core/core.js';
import { pairKey } from '../../host/daemon/pair.js';
import { ipv4, ipv6 } from './carp.js';

export interface SimVhid { vhid: number; link: number; vips: string[]; advbase?: number; advskew: number; password?: string }
export interface SimNodeSpec {
  name: string; addrs: string[]; vhids: SimVhid[]; preempt?: boolean;
  /** IPv6 link-local address per link: the source of IPv6 adverts (vhids with an IPv6 VIP). */
  addrs6?: string[];
  /** The peer's IPv6 link-local address per link. */
  peers6?: string[];
  /** The peer's address per link: adverts from other sources are dropped. */
  peers?: string[];
  /** A duogate pair's shared key: adverts carry and need the pair trailer (docs/security.md). */
  pairKey?: string;
}

interface InFlight { at: number; to: SimNode; link: number; datagram: Buffer }

export class SimNode {
  core = new Core({ debug: true });
  states = new Map<number, StateName>();
  owns = new Set<number>(); // vhids whose VIPs are configured (take/release)
  log: { t: number; a: Action }[] = [];
  alive = true;
  /** SIGSTOPped: its timers wait and what reaches it queues in its sockets (`held`) until thawed. */
  frozen = false;
  held: InFlight[] = [];
  linkUp: boolean[];
  /** `epoch`: what the daemon persists and grows at every start (paired counters count from it). */
  constructor(readonly spec: SimNodeSpec, seed: number, readonly epoch = 1000) {
    this.core.reset([seed, seed * 7 + 1]);
    this.core.setPreempt(spec.preempt ?? true);
    this.core.setEpoch(epoch);
    spec.addrs.forEach((a, i) => this.core.setLinkAddr(i, a));
    spec.addrs6?.forEach((a, i) => this.core.setLinkAddr6(i, a));
    for (const v of spec.vhids) {
      this.core.addVhid({
        vhid: v.vhid, link: v.link, advbase: v.advbase ?? 1, advskew: v.advskew, password: v.password ?? 'secret', vips: v.vips,
        peer: spec.peers?.[v.link], peer6: spec.peers6?.[v.link], pairKey: spec.pairKey ? pairKey(spec.pairKey, v.vhid) : undefined,
      });
      this.states.set(v.vhid, 'INIT');
    }
    this.linkUp = spec.addrs.map(() => true);
  }
  state(vhid: number): StateName { return this.states.get(vhid) ?? 'INIT'; }
}

export class Cluster {
  now = 0;
  nodes: SimNode[] = [];
  private flight: InFlight[] = [];
  /** segment[link] per node: nodes share a segment when their link numbers match and neither is cut off. */
  cut = new Set<string>(); // `${node}:${link}`
  latency = 0.2;
  dropRate = 0;
  private rng = 12345;
  dualMasterMs = new Map<number, number>();

  constructor(specs: SimNodeSpec[]) { this.nodes = specs.map((s, i) => new SimNode(s, i + 1)); }

  node(name: string): SimNode { const n = this.nodes.find((x) => x.spec.name === name); if (!n) throw new Error(name); return n; }

  startAll(): void { for (const n of this.nodes) { n.core.start(this.now); this.drain(n); } }

  private random(): number { this.rng = (this.rng * 1103515245 + 12345) & 0x7fffffff; return this.rng / 0x7fffffff; }

  drain(n: SimNode): void {
    for (let a = n.core.pollAction(); a; a = n.core.pollAction()) {
      n.log.push({ t: this.now, a });
      if (a.type === 'state') n.states.set(a.vhid, a.to);
      else if (a.type === 'take') n.owns.add(a.vhid);
      else if (a.type === 'release') n.owns.delete(a.vhid);
      else if (a.type === 'advert') {
        if (!n.linkUp[a.link] || this.cut.has(`${n.spec.name}:${a.link}`)) continue;
        const datagram = a.family === 6 ? ipv6(a.payload, n.spec.addrs6?.[a.link] ?? 'fe80::') : ipv4(a.payload, n.spec.addrs[a.link]);
        for (const m of this.nodes) {
          if (m === n || !m.alive || !m.linkUp[a.link] || this.cut.has(`${m.spec.name}:${a.link}`)) continue;
          if (this.dropRate > 0 && this.random() < this.dropRate) continue;
          this.flight.push({ at: this.now + this.latency, to: m, link: a.link, datagram });
        }
      }
    }
  }

  private nextEventAt(): number {
    let t = Infinity;
    for (const f of this.flight) t = Math.min(t, f.at);
    for (const n of this.nodes) if (n.alive && !n.frozen) { const d = n.core.pollTimeout(); if (d >= 0) t = Math.min(t, d); }
    return t;
  }

  /** Advance to `until` (ms), processing every event in order. Bounded so a livelock fails instead of hanging. */
  run(untilMs: number, maxSteps = 200_000): void {
    for (let i = 0; i < maxSteps; i++) {
      const t = this.nextEventAt();
      if (t > untilMs) { this.account(untilMs); this.now = untilMs; return; }
      this.account(t);
      this.now = Math.max(this.now, t);
      const due = this.flight.filter((f) => f.at <= this.now);
      this.flight = this.flight.filter((f) => f.at > this.now);
      for (const f of due) {
        if (!f.to.alive) continue;
        if (f.to.frozen) { f.to.held.push(f); continue; }
        f.to.core.handleCarp(this.now, f.link, f.datagram); this.drain(f.to);
      }
      for (const n of this.nodes) {
        if (!n.alive || n.frozen) continue;
        const d = n.core.pollTimeout();
        if (d >= 0 && d <= this.now) { n.core.handleTimeout(this.now); this.drain(n); }
      }
    }
    throw new Error(`cluster did not reach ${untilMs} ms in ${maxSteps} steps (livelock?)`);
  }

  /** Accumulate time during which two live nodes hold the same vhid's VIPs. */
  private account(t: number): void {
    const dt = t - this.now;
    if (dt <= 0) return;
    const vhids = new Set(this.nodes.flatMap((n) => n.spec.vhids.map((v) => v.vhid)));
    for (const v of vhids) {
      // A frozen node's VIPs expire with their lease in the real kernel (not modelled): not counted.
      const holders = this.nodes.filter((n) => n.alive && !n.frozen && n.owns.has(v)).length;
      if (holders > 1) this.dualMasterMs.set(v, (this.dualMasterMs.get(v) ?? 0) + dt);
    }
  }

  /** SIGSTOP: the node's timers and receive wait (carrier stays up: the peer's adverts queue for it). */
  freeze(name: string): void { this.node(name).frozen = true; }

  /** SIGCONT: the daemon takes what queued in its sockets first, then its late timer (host/daemon/daemon.ts run). */
  thaw(name: string): void {
    const n = this.node(name);
    n.frozen = false;
    const held = n.held; n.held = [];
    for (const f of held) { n.core.handleCarp(this.now, f.link, f.datagram); this.drain(n); }
    const d = n.core.pollTimeout();
    if (d >= 0 && d <= this.now) { n.core.handleTimeout(this.now); this.drain(n); }
  }

  kill(name: string): void { const n = this.node(name); n.alive = false; this.flight = this.flight.filter((f) => f.to !== n); }

  /** Deliver an arbitrary datagram (an attacker's) to `name` on `link` after the usual latency. */
  inject(name: string, link: number, datagram: Buffer): void {
    const to = this.node(name);
    if (to.alive) this.flight.push({ at: this.now + this.latency, to, link, datagram });
  }

  /** A fresh boot of a dead node (new core, INIT → BACKUP); its epoch grows unless `epoch` says otherwise. */
  reboot(name: string, epoch?: number): SimNode {
    const i = this.nodes.findIndex((x) => x.spec.name === name);
    const fresh = new SimNode(this.nodes[i].spec, 100 + i, epoch ?? this.nodes[i].epoch + 1);
    this.nodes[i] = fresh;
    fresh.core.start(this.now); this.drain(fresh);
    return fresh;
  }

  setLink(name: string, link: number, up: boolean): void {
    const n = this.node(name); n.linkUp[link] = up; n.core.setLink(this.now, link, up); this.drain(n);
  }

  masters(vhid: number): string[] { return this.nodes.filter((n) => n.alive && n.state(vhid) === 'MASTER').map((n) => n.spec.name); }

  /** Time of the first state change to `to` for vhid on node at or after `since`. */
  changedAt(name: string, vhid: number, to: StateName, since = 0): number | undefined {
    return this.node(name).log.find((e) => e.t >= since && e.a.type === 'state' && e.a.vhid === vhid && e.a.to === to)?.t;
  }
}

/**
 * The virtual board's pair: LAN vhid 1 on link 0, WAN vhid 2 on link 1; primary skew 0, secondary 100.
 * `paired`: each knows the other's addresses and signs its adverts with the pair trailer, as the daemon does
 * when peer.key is set.
 */
export function boardPair(extra: Partial<SimNodeSpec> = {}, opts: { paired?: boolean } = {}): Cluster {
  const vhids = (skew: number): SimVhid[] => [
    { vhid: 1, link: 0, vips: ['192.168.1.1'], advskew: skew },
    { vhid: 2, link: 1, vips: ['203.0.113.1'], advskew: skew },
  ];
  const P = ['192.168.1.2', '203.0.113.2'];
  const S = ['192.168.1.3', '203.0.113.3'];
  const pair = (peers: string[]): Partial<SimNodeSpec> => (opts.paired ? { peers, pairKey: 'sim-pair-key-0123456789' } : {});
  return new Cluster([
    { name: 'primary', addrs: P, vhids: vhids(0), ...pair(S), ...extra },
    { name: 'secondary', addrs: S, vhids: vhids(100), ...pair(P), ...extra },
  ]);
}
