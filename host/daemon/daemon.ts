// The daemon: wires the sans-IO core to the kernel. It owns the sockets (CARP raw socket and ARP socket per
// CARP interface, and the IPv6 CARP raw socket where the interface has an IPv6 VIP; rtnetlink for addresses and carrier), the one timer the core asks for, the VIPs and the
// control socket. Everything protocol-shaped is decided by the core; this file only carries it out.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Core, Demote, Why, type Action, type VhidConfig, type VhidStatus } from '../core/core.js';
import { native } from '../io/native.js';
import { AddressControl, LinkMonitor } from '../io/rtnetlink.js';
import { allNets, netDevice, type Config, type NetName, type VipConfig } from '../config/schema.js';
import { ensureVlans } from './vlan.js';
import { Logger } from '../log.js';
import { MaintenanceFlag } from './maintenance.js';
import { nextEpoch, pairAuthKey, pairKey } from './pair.js';
import type { AlarmEvent, FeatureHost, Service, Transition } from '../feature.js';
import type { ControlServer, Handler } from '../control/server.js';
import { FeatureRunner, FeatureStartError } from './services.js';
import type { ApplyTracker } from './apply.js';
import { secretFingerprints } from '../config/secrets.js';
import { VirtualMacTable, macBytes, macText, virtualMac, type VmacGroup } from './vmac.js';

const CARP_GROUP = '224.0.0.18';
const CARP_GROUP6 = 'ff02::12';
/** ff02::1 (all nodes) as an Ethernet multicast address: where unsolicited neighbour advertisements go. */
const ALL_NODES_MAC = Uint8Array.from([0x33, 0x33, 0, 0, 0, 1]);
const ETH_P_IPV6 = 0x86dd;
const isV6 = (cidr: string) => cidr.includes(':');
/** A VIP's lease: the master-down interval's whole seconds, so a dead master's VIP goes about when the peer takes it. */
export const vipLifetimeS = (advbase: number) => Math.max(2, 3 * advbase);
const BROADCAST = Uint8Array.from([255, 255, 255, 255, 255, 255]);
/** A CARP timer that fires this much late means the event loop was held up: logged with how late (advbase + 50 ms is the target). */
const TIMER_LATE_LOG_MS = 50;
const ETH_P_ARP = 0x0806;

/** One CARP interface: a link number in the core, its sockets and its VIP groups. */
interface Link {
  n: number; role: NetName; device: string; index: number; mac: Uint8Array; address: string; running: boolean;
  carpFd: number; arpFd: number; watch: object;
  /** IPv6 (docs/carp.md "CARP over IPv6"): the node's link-local address here and the proto-112 socket, once a vhid on it has an IPv6 VIP. */
  address6: string | null; carp6Fd: number; watch6: object | null;
}

export type { Transition };

/** The daemon is the FeatureHost the features run on (host/feature.ts); they see nothing else of it. */
export class Daemon extends EventEmitter implements FeatureHost {
  readonly core = new Core();
  readonly log: Logger;
  readonly maintenance: MaintenanceFlag;
  /** The features beside CARP, started from the config and kept in step with it (services.ts). */
  readonly features: FeatureRunner;
  private control: ControlServer | null = null;
  private links: Link[] = [];
  private vhidVips = new Map<number, VipConfig[]>();
  private timer: NodeJS.Timeout | null = null;
  private addrs!: AddressControl;
  private linkMon!: LinkMonitor;
  private startedAt = performance.now();
  private stopped = false;
  private sendErrors = 0;
  /** How late the CARP timer fired (event-loop stalls as CARP sees them): worst, and how often over the log threshold. */
  private readonly timerLate = { max_ms: 0, over_50ms: 0 };
  /** Transitions carried out but not yet told to the features (run() emits them after the actions). */
  private readonly transitions: Transition[] = [];
  /** Last transition per vhid, for status and telemetry. */
  readonly lastChange = new Map<number, Transition>();
  extraDemotions = new Set<number>();
  /** Alarms raised through emit('alarm') and not cleared since, by source and key. */
  private readonly alarms = new Map<string, AlarmEvent>();
  /** The dedicated sync link (no vhid on it): its carrier is a hint that the peer is alive. */
  readonly sync = { index: -1, running: true };
  /** Virtual-MAC vhids this node is MASTER of, and those whose gratuitous ARP waits for the table (vmac.ts). */
  private readonly vmacOwned = new Set<number>();
  private readonly vmacGarp = new Set<number>();
  private readonly vmacTakenAt = new Map<number, number>();
  private readonly vmac: VirtualMacTable;

  constructor(readonly config: Config, opts: { log?: Logger } = {}) {
    super();
    this.log = opts.log ?? new Logger({ node: config.node.name }, config.log.level);
    this.maintenance = new MaintenanceFlag(config.state_dir);
    this.features = new FeatureRunner(this);
    this.vmac = new VirtualMacTable(this.log, () => this.vmacWant(), (owned) => {
      // The VIP and its announcement only once the node takes frames for the MAC: the switch moves the MAC
      // to us on this ARP.
      for (const vhid of [...this.vmacGarp]) {
        if (!owned.has(vhid)) continue;
        this.vmacGarp.delete(vhid);
        const link = this.links.find((l) => l.role === this.vhidVips.get(vhid)?.[0]?.interface);
        if (!link || !this.vmacOwned.has(vhid)) continue;
        this.leaseVips(vhid, link);
        this.announce(vhid, link);
        this.log.info('virtual MAC taken', { vhid, mac: virtualMac(vhid), after_ms: Math.round((this.now() - (this.vmacTakenAt.get(vhid) ?? this.now())) * 10) / 10 });
      }
    });
    this.on('alarm', (ev: AlarmEvent) => {
      const k = `${ev.source}/${ev.key}`;
      if (ev.active) this.alarms.set(k, ev); else this.alarms.delete(k);
    });
  }

  now(): number { return native.nowMs(); }

  /** The control socket features register their commands on (set by `duogate run` before start). */
  useControl(c: ControlServer): void { this.control = c; }
  handle(cmd: string, h: Handler): () => void { return this.control?.handle(cmd, h) ?? (() => {}); }
  activeAlarms(): AlarmEvent[] { return [...this.alarms.values()]; }
  vhidStatus(): VhidStatus[] { return this.core.vhidStatus(); }
  maintenanceState(): { since: string; by: string } | null { return this.maintenance.get(); }
  syncLinkUp(): boolean { return this.sync.running; }
  /** The running services, in start order. */
  get services(): Service[] { return this.features.services(); }

  async start(): Promise<void> {
    // Before CARP and every feature: the config may be more than the file (a secondary's synced sections), and
    // the features start from it in their order (the firewall's ruleset before anything listens).
    (this as { config: Config }).config = await this.features.bootConfig(this.config);
    const c = this.config;
    const seed = randomBytes(8);
    this.core.reset([seed.readUInt32BE(0), seed.readUInt32BE(4)]);
    this.core.setPreempt(c.carp.preempt);
    // Always, so a vhid added later by a live config apply counts from a fresh epoch too.
    this.core.setEpoch(nextEpoch(c.state_dir));
    this.addrs = new AddressControl((what, errno) => this.log.error('address change failed', { what, errno }));

    // The node's own addresses first: on a real box the firmware owns its NICs.
    ensureVlans(c, this.log);
    for (const role of allNets(c)) {
      const ifc = c.interfaces[role];
      const info = native.ifInfo(netDevice(ifc));
      // A gateway takes its IPv6 routes and addresses from its config, never from a router advertisement any
      // host on the segment can send (the ruleset drops them too; this holds without it). No IPv6: nothing to do.
      try { writeFileSync(`/proc/sys/net/ipv6/conf/${netDevice(ifc)}/accept_ra`, '0'); } catch { /* IPv6 off on this NIC */ }
      if (!info.up) this.addrs.linkUp(info.index);
      this.addrs.add(info.index, ifc.address);
      // The node's IPv6 link-local source for CARP (without DAD: the peer has its own, and the advert must not wait).
      if (ifc.address6) this.addrs.add(info.index, `${ifc.address6.split('/')[0]}/64`);
      // Its own global IPv6 address: stays with the node whatever CARP does (a BACKUP's own IPv6 traffic).
      if (ifc.global6) this.addrs.add(info.index, ifc.global6);
    }

    // Group VIPs by vhid; one link per interface that carries a vhid.
    for (const vip of c.carp.vips) {
      const g = this.vhidVips.get(vip.vhid) ?? [];
      g.push(vip);
      this.vhidVips.set(vip.vhid, g);
    }
    for (const [vhid, vips] of this.vhidVips) {
      const role = vips[0].interface;
      let link = this.links.find((l) => l.role === role);
      if (!link) link = this.openLink(role);
      if (vips.some((v) => isV6(v.address))) this.openLink6(link);
      this.core.addVhid(this.vhidConfig(c, vhid, link.n, vips));
      // A VIP left behind by a crashed run must not answer ARP while we are BACKUP.
      for (const v of vips) this.addrs.del(link.index, v.address);
    }
    this.core.collect();
    // Before CARP runs: a leftover table from a crashed run (an owned MAC) must not make a BACKUP take frames.
    this.vmac.set();
    this.vmac.nicFilter(true);

    this.sync.index = native.ifInfo(netDevice(c.interfaces.sync)).index;
    this.linkMon = new LinkMonitor((e) => this.onLink(e.index, e.running), () => this.rereadLinks());
    // Carrier is read only now that the monitor listens: a change that raced the start is seen here or reported.
    for (const l of this.links) l.running = native.ifInfo(l.device).running;
    this.sync.running = native.ifInfo(netDevice(c.interfaces.sync)).running;
    const now = this.now();
    for (const l of this.links) if (!l.running) this.core.setLink(now, l.n, false);
    if (this.maintenance.get()) this.log.warn('starting in persistent maintenance mode: the peer keeps the VIPs', { since: this.maintenance.get()!.since });
    // Demoted until every feature runs (constants.ts DEMOTE_STARTING): alone, it still takes the VIPs when its
    // master-down timer runs out; beside a working master it waits for its features before it preempts.
    this.extraDemotions.add(Demote.STARTING);
    this.applyDemotion(now);
    this.core.start(now);
    this.run();
    try {
      await this.features.startAll();
    } catch (e) {
      // A node must not hold VIPs without a feature it is configured for (a refused ruleset, a DHCP config
      // that does not build): stop CARP and every service already started, then fail the start.
      const fe = e instanceof FeatureStartError ? e : new FeatureStartError('(unknown)', e);
      this.log.error('service failed to start; stopping so the peer keeps the VIPs', { service: fe.feature, err: fe.cause });
      await this.stop(true);
      throw fe.cause;
    }
    this.demote(Demote.STARTING, false);
    this.log.info('started', {
      role: c.node.role, vhids: [...this.vhidVips.keys()], preempt: c.carp.preempt, maintenance: !!this.maintenance.get(),
    });
  }

  /** A vhid as the core takes it: with the peer's address and, for a duogate pair, the pair trailer key. */
  private vhidConfig(c: Config, vhid: number, link: number, vips: VipConfig[]): VhidConfig {
    const shared = pairAuthKey(c);
    return {
      vhid, link, advbase: vips[0].advbase, advskew: vips[0].advskew, password: vips[0].password,
      vips: vips.map((v) => v.address.split('/')[0]),
      peer: c.interfaces[vips[0].interface].peer, peer6: c.interfaces[vips[0].interface].peer6,
      pairKey: shared ? pairKey(shared, vhid) : undefined,
    };
  }

  private isVirtual(vhid: number): boolean { return this.vhidVips.get(vhid)?.[0]?.mac === 'virtual'; }

  /** What the virtual-MAC table should hold now (vmac.ts). */
  private vmacWant() {
    const groups: VmacGroup[] = [];
    for (const [vhid, vips] of this.vhidVips) {
      if (vips[0]?.mac !== 'virtual') continue;
      const link = this.links.find((l) => l.role === vips[0].interface);
      if (link) groups.push({ vhid, link: link.n, vips: vips.map((v) => v.address.split('/')[0]) });
    }
    const owned = new Set(groups.filter((g) => this.vmacOwned.has(g.vhid)).map((g) => g.vhid));
    return { links: this.links.map((l) => ({ n: l.n, device: l.device, mac: l.mac })), groups, owned };
  }

  private openLink(role: NetName): Link {
    const ifc = this.config.interfaces[role];
    const device = netDevice(ifc);
    const info = native.ifInfo(device);
    const address = ifc.address.split('/')[0];
    const n = this.links.length;
    const carpFd = native.openRawIp({ proto: 112, ifname: device, group: CARP_GROUP, srcAddr: address, ttl: 255, tos: 0x10, loop: false });
    const arpFd = native.openPacket(device, ETH_P_ARP);
    const link: Link = {
      n, role, device, index: info.index, mac: info.mac, address, running: info.running, carpFd, arpFd, watch: {},
      address6: null, carp6Fd: -1, watch6: null,
    };
    link.watch = native.watch(carpFd, () => this.onCarpReadable(link));
    this.core.setLinkAddr(n, address);
    this.links.push(link);
    return link;
  }

  /** The IPv6 CARP socket on a link that carries an IPv6 VIP (config load refuses one without interfaces.*.address6). */
  private openLink6(link: Link): void {
    if (link.carp6Fd >= 0) return;
    const a6 = this.config.interfaces[link.role].address6?.split('/')[0];
    if (!a6) throw new Error(`interfaces.${link.role}.address6 is not set but a vhid there has an IPv6 VIP: add this node's link-local address (e.g. fe80::2)`);
    link.address6 = a6;
    link.carp6Fd = native.openRawIp6(112, link.device, CARP_GROUP6);
    link.watch6 = native.watch(link.carp6Fd, () => this.onCarpReadable(link));
    this.core.setLinkAddr6(link.n, a6);
  }

  private onCarpReadable(link: Link): void {
    this.drainCarp(link);
    this.run();
  }

  private drainCarp(link: Link): void {
    const rx = this.core.rxView();
    // Bounded drain: a flood cannot starve the timers.
    for (let i = 0; i < 256; i++) {
      const n = native.recvInto(link.carpFd, rx);
      if (n < 0) break;
      const r = this.core.handleCarpInPlace(this.now(), link.n, Math.min(n, rx.length));
      if (r !== 0 && r !== 6) this.log.debug('advert dropped', { interface: link.role, reason: r });
    }
    if (link.carp6Fd < 0) return;
    for (let i = 0; i < 256; i++) {
      const n = native.recvIp6Into(link.carp6Fd, rx);
      if (n < 0) break;
      const r = this.core.handleCarpInPlace(this.now(), link.n, Math.min(n, rx.length));
      if (r !== 0 && r !== 6) this.log.debug('advert dropped', { interface: link.role, family: 6, reason: r });
    }
  }

  private onLink(index: number, running: boolean): void {
    if (index === this.sync.index && running !== this.sync.running) {
      // Carrier loss on the dedicated sync cable: the peer may have lost power (fast failover, Vhid.applyPeerLost).
      this.sync.running = running;
      this.log.warn(running ? 'sync link up' : 'sync link lost carrier: backups watch the master with a short master-down', { device: netDevice(this.config.interfaces.sync) });
      this.core.setPeerLost(this.now(), !running);
      this.run();
      this.emit('sync-link', running);
      return;
    }
    const link = this.links.find((l) => l.index === index);
    if (!link || link.running === running) return;
    link.running = running;
    this.log.warn(running ? 'link up' : 'link down: demoting every vhid so the peer takes all VIPs', { interface: link.role, device: link.device });
    this.core.setLink(this.now(), link.n, running);
    this.run();
  }

  private rereadLinks(): void {
    this.log.warn('link events lost (netlink overrun): re-reading every link');
    for (const l of this.links) this.onLink(l.index, native.ifInfo(l.device).running);
    this.onLink(this.sync.index, native.ifInfo(netDevice(this.config.interfaces.sync)).running);
  }

  /** Maintenance and feature demotions (bulk sync, ...) → the core's demotion mask. */
  applyDemotion(now = this.now()): void {
    const reasons = [...this.extraDemotions];
    if (this.maintenance.get()) reasons.push(Demote.MAINTENANCE);
    this.core.setDemotion(now, reasons);
    this.run();
  }

  /** Raise or clear a demotion reason (e.g. Demote.BULK_SYNC from state sync). */
  demote(reason: number, on: boolean): void {
    if (on) this.extraDemotions.add(reason); else this.extraDemotions.delete(reason);
    this.applyDemotion();
  }

  /**
   * Live apply (config sync, `duogate config apply`): take `next` without a restart, touching only what
   * changed. A vhid whose interface, password, timers and addresses are unchanged is left alone (its VIP
   * never flaps); a removed or changed vhid is removed from the core (a MASTER releases and bows out, so the
   * peer takes over at once) and a changed one added back, starting as BACKUP. Node identity, interfaces,
   * control socket and state_dir are read at start only: a change there needs a restart. Emits 'config'
   * (next, previous) for the other services (firewall, DHCP, ...).
   */
  reconfigure(next: Config, tracker?: ApplyTracker): { added: number[]; removed: number[]; unchanged: number[] } {
    const prev = this.config;
    next = this.withPins(next);
    // What CARP runs on; a description change alone must not flap the VIP.
    const fp = (vips: VipConfig[]) => JSON.stringify([vips[0].interface, vips[0].password, vips[0].advbase, vips[0].advskew,
      vips[0].mac ?? 'real', vips.length]);
    const addrs = (vips: VipConfig[]) => JSON.stringify(vips.map((v) => v.address).sort());
    const want = new Map<number, VipConfig[]>();
    for (const vip of next.carp.vips) want.set(vip.vhid, [...(want.get(vip.vhid) ?? []), vip]);
    const now = this.now();
    const out = { added: [] as number[], removed: [] as number[], unchanged: [] as number[] };
    for (const [vhid, vips] of [...this.vhidVips]) {
      const w = want.get(vhid);
      const same = !!w && addrs(w) === addrs(vips);
      const v4 = (l: VipConfig[]) => l.every((v) => !v.address.includes(':'));
      if (w && fp(w) === fp(vips) && (same || (v4(w) && v4(vips)))) {
        // Only IPv4 addresses moved (a WAN address leased by DHCP, host/wan): changed in place, no flap.
        if (same) this.vhidVips.set(vhid, w); else this.moveVips(vhid, vips, w);
        out.unchanged.push(vhid);
        continue;
      }
      const link = this.links.find((l) => l.role === vips[0].interface);
      if (link) this.core.removeVhid(now, vhid, link.n);
      this.run(); // performs the release while vhidVips still names the old addresses
      if (link) for (const v of vips) if (!w?.some((x) => x.address === v.address)) this.addrs.del(link.index, v.address);
      this.vhidVips.delete(vhid);
      out.removed.push(vhid);
    }
    for (const [vhid, vips] of want) {
      if (this.vhidVips.has(vhid)) continue;
      const role = vips[0].interface;
      let link = this.links.find((l) => l.role === role);
      if (!link) {
        link = this.openLink(role);
        if (!link.running) this.core.setLink(now, link.n, false);
      }
      if (vips.some((v) => isV6(v.address))) this.openLink6(link);
      this.vhidVips.set(vhid, vips);
      this.core.addVhid(this.vhidConfig(next, vhid, link.n, vips));
      out.added.push(vhid);
    }
    if (next.carp.preempt !== prev.carp.preempt) this.core.setPreempt(next.carp.preempt);
    (this as { config: Config }).config = next;
    this.core.start(now); // only the added vhids are still INIT: they go to BACKUP
    this.core.collect();
    this.run();
    // Egress rules follow the VIP lists; serialised behind any apply a transition above started.
    this.vmac.update();
    if (out.added.some((v) => this.isVirtual(v))) this.vmac.nicFilter(true);
    if (pairAuthKey(next) !== pairAuthKey(prev)) {
      this.log.warn('config change needs a restart to take effect', { section: 'peer.key / carp.pair_auth', applies_to: 'CARP pair authentication of the vhids already running' });
    }
    for (const k of ['node', 'interfaces', 'control', 'state_dir'] as const) {
      if (JSON.stringify(next[k]) !== JSON.stringify(prev[k])) this.log.warn('config change needs a restart to take effect', { section: k });
    }
    this.log.info('config applied live', { ...out, removed: out.removed.filter((v) => !out.added.includes(v)), changed: out.added.filter((v) => out.removed.includes(v)) });
    // The tracker (config sync) learns from each service whether its part is in force.
    this.emit('config', next, prev, tracker);
    return out;
  }

  /**
   * A vhid's addresses change in place: the core's list (the next advert's HMAC covers it), and on a MASTER the
   * NIC's addresses and a gratuitous ARP. A virtual-MAC vhid waits for the egress rules of the new address
   * (reconfigure's vmac.update) before it adds and announces it, as at a takeover.
   */
  private moveVips(vhid: number, prev: VipConfig[], next: VipConfig[]): void {
    const link = this.links.find((l) => l.role === prev[0].interface);
    if (!link) return;
    const master = this.core.vhidStatus().find((v) => v.vhid === vhid)?.state === 'MASTER';
    for (const v of prev) if (!next.some((x) => x.address === v.address)) this.addrs.del(link.index, v.address);
    this.vhidVips.set(vhid, next);
    this.core.setVips(vhid, link.n, next.map((v) => v.address.split('/')[0]));
    this.log.info('vip addresses moved in place', { vhid, from: prev.map((v) => v.address), to: next.map((v) => v.address), master, wall_ms: performance.timeOrigin + performance.now() });
    if (!master) return;
    if (this.isVirtual(vhid)) { this.vmacGarp.add(vhid); this.vmacTakenAt.set(vhid, this.now()); return; }
    this.leaseVips(vhid, link);
    this.announce(vhid, link);
  }

  /** Addresses features hold for vhids of one VIP (pinVip): every config taken live keeps them. */
  private readonly pins = new Map<number, string>();

  pinVip(vhid: number, address: string): void {
    if (this.pins.get(vhid) === address) return;
    this.pins.set(vhid, address);
    // Only a moved address is applied (and told to the features).
    if (this.withPins(this.config) !== this.config) this.reconfigure(this.config);
  }

  private withPins(c: Config): Config {
    const touched = [...this.pins].filter(([vhid, a]) => {
      const vips = c.carp.vips.filter((v) => v.vhid === vhid);
      return vips.length === 1 && vips[0].address !== a;
    });
    if (!touched.length) return c;
    const next = structuredClone(c);
    for (const [vhid, a] of touched) for (const v of next.carp.vips) if (v.vhid === vhid) v.address = a;
    return next;
  }

  setMaintenance(on: boolean, by: string): void {
    this.maintenance.set(on, by);
    this.log.warn(on ? 'entering persistent maintenance mode' : 'leaving maintenance mode', { by });
    this.applyDemotion();
    this.emit('maintenance', on);
  }

  /** Drain the core's actions, then arm the one timer it asks for (index.ts contract). */
  run(): void {
    for (let a = this.core.pollAction(); a; a = this.core.pollAction()) this.perform(a);
    // The features (state sync, DHCP, telemetry) hear of a transition once it is carried out: a takeover's VIPs,
    // gratuitous ARP and advert do not wait behind their work (5-30 ms under load). In order, even when a
    // listener's demotion runs this again.
    for (let t = this.transitions.shift(); t; t = this.transitions.shift()) this.emit('transition', t);
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.stopped) return;
    const t = this.core.pollTimeout();
    if (t >= 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.noteLate(this.now() - t);
        // Adverts that arrived while the loop was held up still wait in the sockets: take them first, or a
        // BACKUP whose own loop stalled would declare a live master down (a false takeover).
        for (const l of this.links) this.drainCarp(l);
        this.core.handleTimeout(this.now());
        this.run();
      }, Math.max(0, t - this.now()));
    }
  }

  private noteLate(ms: number): void {
    if (ms > this.timerLate.max_ms) this.timerLate.max_ms = Math.round(ms * 10) / 10;
    if (ms <= TIMER_LATE_LOG_MS) return;
    this.timerLate.over_50ms++;
    this.log.warn('carp timer late: event loop held up (or the process not scheduled)', { late_ms: Math.round(ms), wall_ms: Date.now() });
  }

  private perform(a: Action): void {
    const link = this.links[a.link];
    switch (a.type) {
      case 'advert':
        // Every advert of a MASTER renews its VIPs' lease: if this process dies or freezes, the kernel drops the
        // VIPs within the master-down interval, about when the peer takes over (docs/security.md, crash safety).
        if (!a.bowOut && this.lastChange.get(a.vhid)?.to === 'MASTER' && !this.vmacGarp.has(a.vhid)) this.leaseVips(a.vhid, link);
        try {
          const sent = a.family === 6
            ? native.sendIp6(link.carp6Fd, a.payload, CARP_GROUP6, link.index, link.address6 ?? '::')
            : native.sendTo(link.carpFd, a.payload, CARP_GROUP);
          if (sent < 0) throw Object.assign(new Error('send would block'), { code: 'EAGAIN' });
          this.sendErrors = 0;
        } catch (e) {
          // No carrier, or the interface vanished: the link monitor demotes; log the first of a burst only.
          if (this.sendErrors++ === 0) this.log.warn('advert send failed', { interface: link.role, err: e });
        }
        break;
      case 'take':
        // Virtual MAC: the VIP goes on (and is announced) once the ingress set takes frames for the MAC
        // (constructor); before that, answers to the node's first ARP requests from the VIP would be lost.
        if (this.isVirtual(a.vhid)) { this.vmacOwned.add(a.vhid); this.vmacGarp.add(a.vhid); this.vmacTakenAt.set(a.vhid, this.now()); this.vmac.own(link.n, a.vhid, true); break; }
        this.leaseVips(a.vhid, link);
        this.announce(a.vhid, link);
        break;
      case 'announce':
        if (!this.vmacGarp.has(a.vhid)) this.announce(a.vhid, link);
        break;
      case 'release':
        for (const v of this.vhidVips.get(a.vhid) ?? []) this.addrs.del(link.index, v.address);
        if (this.vmacOwned.delete(a.vhid)) { this.vmacGarp.delete(a.vhid); this.vmac.own(link.n, a.vhid, false); }
        break;
      case 'state': {
        const t: Transition = {
          vhid: a.vhid, interface: link.role, address: (this.vhidVips.get(a.vhid) ?? []).map((v) => v.address),
          from: a.from, to: a.to, reason: a.reason, why: a.why, at: new Date().toISOString(), mono: this.now(),
        };
        this.lastChange.set(a.vhid, t);
        // wall_ms: sub-millisecond wall clock, comparable across the processes of one machine (the demo uses it).
        this.log.info('carp transition', { vhid: a.vhid, interface: link.role, from: a.from, to: a.to, why: a.why, wall_ms: performance.timeOrigin + performance.now() });
        if (a.reason === Why.STALLED) this.afterStall();
        this.transitions.push(t);
        break;
      }
    }
  }

  /**
   * The core yielded a vhid because this node went silent and the peer took over (Vhid.yieldAfterStall) and
   * raised DEMOTE_STALLED. The daemon owns that reason from here: it holds while the 'transition' listeners run
   * (state sync asks for the peer's table and raises BULK_SYNC there), then goes, so the node preempts back only
   * once what a feature raised is cleared, as after a restart.
   */
  private afterStall(): void {
    if (this.extraDemotions.has(Demote.STALLED)) return;
    this.extraDemotions.add(Demote.STALLED);
    this.log.warn('this node went silent longer than an advert interval and the peer took over: yielding until state has caught up', {
      timer_late_max_ms: this.timerLate.max_ms,
    });
    // Held until no vhid is MASTER here (a sibling yields when the peer's advert for it comes, or the demotion
    // hands it over), so the node moves as one and state sync turns passive; bounded by a master-down interval.
    const until = this.now() + 1000 * (3 * Math.max(1, ...this.config.carp.vips.map((v) => v.advbase)) + 1);
    const release = () => {
      if (this.stopped) return;
      if (this.role() === 'MASTER' || this.role() === 'MIXED') {
        if (this.now() < until) { setTimeout(release, 50).unref(); return; }
      }
      setImmediate(() => this.demote(Demote.STALLED, false));
    };
    release();
  }

  /** Add or renew the vhid's VIPs with a lifetime of its master-down interval (3 x advbase, whole seconds). */
  private leaseVips(vhid: number, link: Link): void {
    const vips = this.vhidVips.get(vhid) ?? [];
    const lifetime = vipLifetimeS(vips[0]?.advbase ?? 1);
    for (const v of vips) this.addrs.lease(link.index, v.address, lifetime);
  }

  /**
   * Gratuitous ARP for every IPv4 VIP of the vhid, from the interface's own MAC or the vhid's virtual MAC (README),
   * and an unsolicited neighbour advertisement (override, router) for every IPv6 one, from the interface's MAC.
   */
  private announce(vhid: number, link: Link): void {
    const mac = this.isVirtual(vhid) ? macBytes(virtualMac(vhid)) : link.mac;
    for (const v of this.vhidVips.get(vhid) ?? []) {
      if (isV6(v.address)) {
        try {
          native.sendPacket(link.arpFd, link.index, ALL_NODES_MAC, ETH_P_IPV6, this.core.unsolicitedNa(mac, v.address.split('/')[0]));
        } catch (e) { this.log.warn('unsolicited neighbour advertisement failed', { vip: v.address, err: e }); }
        continue;
      }
      try {
        // Sent from the NIC; the egress rule gives a virtual-MAC VIP's ARP the virtual source MAC (vmac.ts).
        native.sendPacket(link.arpFd, link.index, BROADCAST, ETH_P_ARP, this.core.garp(mac, v.address.split('/')[0]));
      } catch (e) { this.log.warn('gratuitous ARP failed', { vip: v.address, err: e }); }
    }
  }

  /** Node role as pfSense shows it: MASTER or BACKUP when every vhid agrees, else MIXED. */
  role(): string {
    const states = new Set(this.core.vhidStatus().map((v) => v.state));
    return states.size === 1 ? [...states][0] : states.size === 0 ? 'NONE' : 'MIXED';
  }

  status(): Record<string, unknown> {
    const now = this.now();
    const m = this.maintenance.get();
    return {
      node: this.config.node.name,
      role: this.config.node.role,
      carp_role: this.role(),
      uptime_s: Math.round((performance.now() - this.startedAt) / 1000),
      maintenance: m ? { on: true, since: m.since } : { on: false },
      demotion: this.core.demotion(),
      preempt: this.config.carp.preempt,
      links: {
        ...Object.fromEntries(this.links.map((l) => [l.role, { device: l.device, carrier: l.running }])),
        sync: { device: netDevice(this.config.interfaces.sync), carrier: this.sync.running },
      },
      // Every network of the node, with its VIPs and carrier: what status, MQTT and the console list.
      networks: Object.fromEntries(allNets(this.config).map((name) => {
        const ifc = this.config.interfaces[name];
        const link = this.links.find((l) => l.role === name);
        const vhids = this.core.vhidStatus().filter((s) => this.vhidVips.get(s.vhid)?.[0]?.interface === name);
        return [name, {
          kind: name === 'wan' ? 'wan' : name === 'sync' ? 'sync' : 'internal', device: netDevice(ifc), address: ifc.address,
          ...(ifc.vlan ? { vlan: ifc.vlan } : {}),
          carrier: name === 'sync' ? this.sync.running : link ? link.running : null,
          vips: vhids.map((s) => ({ vhid: s.vhid, addresses: (this.vhidVips.get(s.vhid) ?? []).map((v) => v.address), state: s.state })),
        }];
      })),
      vips: this.core.vhidStatus().map((s) => {
        const vips = this.vhidVips.get(s.vhid) ?? [];
        return {
          interface: vips[0]?.interface, device: this.links[s.link]?.device, vhid: s.vhid,
          addresses: vips.map((v) => v.address), description: vips[0]?.description ?? '',
          mac_mode: vips[0]?.mac ?? 'real', mac: vips[0]?.mac === 'virtual' ? virtualMac(s.vhid) : (this.links[s.link] ? macText(this.links[s.link].mac) : null),
          state: s.state, advbase: s.advbase, advskew: s.advskew, advertised_skew: s.advertisedSkew, demote: s.demote,
          master_heard_s_ago: s.masterHeardAt >= 0 ? Math.round(now - s.masterHeardAt) / 1000 : null,
          master_source: s.masterSrc ?? s.masterSrc6, master_source6: s.masterSrc6, adverts_rx: s.rxAccepted, adverts_tx: s.txAdverts, transitions: s.transitions,
          last_change: this.lastChange.get(s.vhid)?.at ?? null, last_change_why: this.lastChange.get(s.vhid)?.why ?? null,
        };
      }),
      carp_counters: { ...this.core.stats(), vmac_apply_failures: this.vmac.failures, timer_late_max_ms: this.timerLate.max_ms, timer_late_over_50ms: this.timerLate.over_50ms },
      // Fingerprints, never values: compare them with the other node's to find a mismatched key.
      secrets: secretFingerprints(this.config),
      ...this.features.status(),
    };
  }

  /** Graceful stop: release the VIPs and bow out (the peer takes over at once), then close everything. */
  async stop(graceful = true): Promise<void> {
    if (this.stopped) return;
    if (graceful) { this.core.shutdown(this.now()); this.run(); }
    this.stopped = true;
    // Services going down clear what they raised (the peer's alarms): nothing may act on that now, e.g. dhcp
    // starting a held Kea ("sync link back") just before its own stop.
    this.removeAllListeners('alarm');
    await this.features.stopAll(graceful);
    if (this.timer) clearTimeout(this.timer);
    for (const l of this.links) {
      native.unwatch(l.watch); native.close(l.carpFd); native.close(l.arpFd);
      if (l.watch6) { native.unwatch(l.watch6); native.close(l.carp6Fd); }
    }
    await this.vmac.close();
    this.linkMon?.close();
    // Give the kernel's acks for the last address changes a moment to arrive before the socket closes.
    await new Promise((r) => setTimeout(r, 20));
    this.addrs?.close();
    this.log.info('stopped', { graceful });
  }
}
