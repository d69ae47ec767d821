// Router advertisements on the router vhid's interface, from its MASTER only (machine.ts decides when; codec.ts
// builds the packet). Sent on a send-only packet socket (it receives nothing); router solicitations arrive on a raw
// ICMPv6 socket that passes only them. A failover changes nothing a host sees: the same link-local router address,
// prefixes and DNS, from the new MASTER at once. Only when the pair stops entirely (this MASTER stops and no peer
// is left to take over) does a last RA say router lifetime 0.
import { randomInt } from 'node:crypto';
import { native } from '../io/native.js';
import { Why } from '../core/core.js';
import type { FeatureHost, Startable, Transition } from '../feature.js';
import { RaMachine } from './machine.js';
import { buildRa } from './codec.js';
import { raAddresses, raManaged, type RaConfig } from './config.js';

const ALL_NODES_MAC = Uint8Array.from([0x33, 0x33, 0, 0, 0, 1]);
const ETH_P_IPV6 = 0x86dd;
const ND_ROUTER_SOLICIT = 133;

export class RaService implements Startable {
  readonly name = 'ra';
  private host!: FeatureHost;
  private machine: RaMachine;
  private txFd = -1;
  private rsFd = -1;
  private watch: object | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly buf = new Uint8Array(2048);
  private ifindex = 0;
  private mac: Uint8Array = new Uint8Array(6);
  private readonly counters = { sent: 0, solicitations: 0, bad_solicitations: 0, send_errors: 0, final_sent: 0 };
  private readonly onTransition = (t: Transition) => this.transition(t);

  constructor(private readonly cfg: RaConfig) {
    this.machine = new RaMachine(Math.max(3000, Math.round(cfg.interval_max * 1000 / 3)), cfg.interval_max * 1000, () => randomInt(0, 1 << 30) / (1 << 30));
  }

  start(host: FeatureHost): void {
    this.host = host;
    const a = raAddresses(host.config, this.cfg);
    if (!a.iface || !a.router) throw new Error(`ra: vhid ${this.cfg.vhid} has no link-local IPv6 VIP to advertise from (duogate check says more)`);
    const device = host.config.interfaces[a.iface].device;
    const info = native.ifInfo(device);
    this.ifindex = info.index;
    this.mac = info.mac;
    this.txFd = native.openPacket(device, 0);
    this.rsFd = native.openRawIp6(58, device, 'ff02::2', [ND_ROUTER_SOLICIT]);
    this.watch = native.watch(this.rsFd, () => this.onReadable());
    host.on('transition', this.onTransition);
    const st = host.vhidStatus().find((v) => v.vhid === this.cfg.vhid);
    this.machine.setActive(host.now(), st?.state === 'MASTER');
    this.run();
  }

  private transition(t: Transition): void {
    if (t.vhid !== this.cfg.vhid) return;
    const was = this.machine.active;
    this.machine.setActive(this.host.now(), t.to === 'MASTER');
    if (was && t.to !== 'MASTER' && t.reason === Why.SHUTDOWN && this.peerGone()) this.send(0);
    this.run();
  }

  /** No peer left to take the router over: it is lost (peer feature) or the sync cable has no carrier. */
  private peerGone(): boolean {
    return this.host.activeAlarms().some((a) => a.name === 'peer_lost') || !this.host.syncLinkUp();
  }

  private onReadable(): void {
    for (let i = 0; i < 64; i++) {
      const n = native.recvIp6Into(this.rsFd, this.buf);
      if (n < 0) break;
      // RFC 4861 §6.1.1: hop limit 255, code 0, at least the 8-byte message.
      if (n < 48 || this.buf[7] !== 255 || this.buf[40] !== ND_ROUTER_SOLICIT || this.buf[41] !== 0) { this.counters.bad_solicitations++; continue; }
      this.counters.solicitations++;
      this.machine.onSolicit(this.host.now());
    }
    this.run();
  }

  private run(): void {
    const now = this.host.now();
    if (this.machine.poll(now)) this.send(this.cfg.router_lifetime ?? 3 * this.cfg.interval_max);
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const t = this.machine.nextTimeout();
    if (t >= 0) this.timer = setTimeout(() => { this.timer = null; this.run(); }, Math.max(0, t - now));
  }

  private send(routerLifetimeS: number): void {
    const c = this.host.config;
    const a = raAddresses(c, this.cfg);
    if (!a.router) return;
    const max = this.cfg.interval_max;
    const pkt = buildRa({
      mac: this.mac, router: a.router, routerLifetimeS,
      prefixes: this.cfg.prefixes.map((prefix) => ({ prefix, validS: 86_400, preferredS: 14_400 })),
      dns: a.dns, dnsLifetimeS: routerLifetimeS === 0 ? 0 : 3 * max,
      managed: raManaged(this.cfg), autonomous: this.cfg.mode !== 'managed',
    });
    try {
      native.sendPacket(this.txFd, this.ifindex, ALL_NODES_MAC, ETH_P_IPV6, pkt);
      this.counters.sent++;
      if (routerLifetimeS === 0) { this.counters.final_sent++; }
    } catch (e) {
      if (this.counters.send_errors++ === 0) this.host.log.warn('router advertisement send failed', { err: e });
    }
  }

  stop(): void {
    this.host?.off('transition', this.onTransition);
    if (this.timer) clearTimeout(this.timer);
    if (this.watch) native.unwatch(this.watch);
    if (this.rsFd >= 0) native.close(this.rsFd);
    if (this.txFd >= 0) native.close(this.txFd);
    this.rsFd = this.txFd = -1;
  }

  status(): Record<string, unknown> {
    return { vhid: this.cfg.vhid, mode: this.cfg.mode ?? 'slaac', advertising: this.machine.active, next_in_ms: this.machine.active ? Math.max(0, Math.round(this.machine.nextAt - this.host.now())) : null, ...this.counters };
  }
}
