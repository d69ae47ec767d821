// The single-address WAN (`wan.mode: dhcp`, docs/wan.md): the DHCP client machine (dhcp/machine.ts) runs only
// while this node is MASTER of the WAN vhid, from that vhid's virtual MAC, on an AF_PACKET socket on the WAN NIC
// opened at takeover and closed when the vhid leaves MASTER (the machine is stopped first: it sends nothing, not
// even a DHCPRELEASE). The lease becomes the vhid's address (prefix included) through the daemon's live apply,
// which moves it in place (no flap), so the CARP adverts, the NIC, the virtual-MAC rules, outbound NAT and state
// sync's policy follow it; the default route goes via the lease's router. Every lease event goes to the peer in
// the heartbeat and to disk on both nodes, so a new MASTER holds the same address at once and confirms it.
import { execFile } from 'node:child_process';
import type { FeatureHost, Service, Transition } from '../feature.js';
import type { Config } from '../config/schema.js';
import { native, type WatchHandle } from '../io/native.js';
import { macBytes, virtualMac } from '../daemon/vmac.js';
import { DhcpMachine, expiresAt, leaseProblem, maskPrefix, type DhcpEvent, type Lease } from './dhcp/machine.js';
import { BROADCAST_MAC, ETH_P_IP, dhcpClientFilter, dhcpFrame, parseDhcpFrame } from './packet.js';
import { LeaseStore } from './store.js';
import type { WanConfig } from './config.js';

/** Frames read per readiness callback, at most (the filter lets only UDP to port 68 through). */
const DRAIN_MAX = 64;

const prefixOf = (m?: string): number => (m ? maskPrefix(m) ?? 32 : 32);

export class WanService implements Service {
  readonly name = 'wan';
  private d!: FeatureHost;
  private m!: DhcpMachine;
  private store!: LeaseStore;
  private device = '';
  private ifindex = 0;
  private vmac = Buffer.alloc(6);
  private fd = -1;
  private watch: WatchHandle | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rx = Buffer.alloc(2048);
  /** The pair's lease as this node knows it (its own, or the peer's), or null. */
  private lease: Lease | null = null;
  /** The vhid's configured address, used while the pair holds no lease. */
  private fallback = '';
  private avoid: string[] = [];
  /** The Ethernet source of the last server reply: where a unicast renewal goes (broadcast until one came). */
  private serverMac: Buffer | null = null;
  private routeVia: string | null = null;
  private routeChain: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly counters = { frames_tx: 0, frames_rx: 0, rx_not_dhcp: 0, send_errors: 0, peer_leases: 0, peer_leases_ignored: 0, peer_leases_refused: 0, address_moves: 0 };
  private lastEvent: { kind: string; address: string | null; at: string } | null = null;
  private onTransition = (t: Transition) => { if (t.vhid === this.c.vhid) this.follow(); };
  private onPeerLease = (vhid: number, lease: Lease | null) => this.fromPeer(vhid, lease);

  constructor(private readonly c: WanConfig) {}

  start(d: FeatureHost): void {
    this.d = d;
    this.device = d.config.interfaces.wan.device;
    const vip = d.config.carp.vips.find((v) => v.vhid === this.c.vhid && v.interface === 'wan');
    if (!vip) throw Object.assign(new Error(`wan: no carp.vips[] entry on interface wan has vhid ${this.c.vhid}: add one (duogate check explains the plan)`), { code: 'DG_ERR_WAN_CONFIG' });
    if (vip.mac !== 'virtual') throw Object.assign(new Error(`wan: vhid ${this.c.vhid} must be mac: virtual with wan.mode dhcp (duogate check explains why)`), { code: 'DG_ERR_WAN_CONFIG' });
    this.fallback = vip.address;
    const mac = virtualMac(this.c.vhid);
    this.vmac = Buffer.from(macBytes(mac));
    this.ifindex = native.ifInfo(this.device).index;
    // The pair's inside networks: a lease overlapping one is refused (a WAN server must not claim them).
    this.avoid = Object.entries(d.config.interfaces).filter(([k, i]) => k !== 'wan' && i?.address).map(([, i]) => i!.address);
    this.m = new DhcpMachine({ hwaddr: mac, clientId: this.c.client_id ? Buffer.from(this.c.client_id, 'hex') : undefined, hostname: this.c.hostname, avoid: this.avoid });
    this.store = new LeaseStore(d.config.state_dir);
    const stored = this.store.load(d.now());
    if (stored.error) d.log.warn('stored WAN lease unreadable: starting without it', { file: this.store.file, err: stored.error });
    if (stored.lease && expiresAt(stored.lease) > d.now()) this.lease = stored.lease;
    d.on('transition', this.onTransition);
    d.on('peer-wan-lease', this.onPeerLease);
    d.log.info('wan dhcp client ready', { vhid: this.c.vhid, mac, device: this.device, stored_lease: this.lease?.address ?? null });
    // The stored address at once (the wan feature starts right after the firewall, while CARP is still BACKUP
    // and waits a master-down interval): this node's adverts and the peer's are signed over the same address.
    this.setAddress(this.lease);
    this.follow();
  }

  private master(): boolean { return this.d.vhidStatus().find((v) => v.vhid === this.c.vhid)?.state === 'MASTER'; }

  /** Run the machine exactly while MASTER of the vhid. */
  private follow(): void {
    if (this.master()) { if (this.fd < 0) this.startClient(); } else if (this.fd >= 0 || this.m.state !== 'stopped') this.stopClient();
    this.route();
  }

  private startClient(): void {
    this.fd = native.openPacket(this.device, ETH_P_IP, true);
    try { native.attachFilter(this.fd, dhcpClientFilter()); } catch (e) { native.close(this.fd); this.fd = -1; throw e; }
    // Whatever arrived between bind and the filter is not ours to judge unfiltered.
    while (native.recvInto(this.fd, this.rx) >= 0) { /* drain */ }
    this.watch = native.watch(this.fd, () => this.onReadable());
    this.d.log.info('wan dhcp client started (MASTER)', { vhid: this.c.vhid, from_lease: this.lease?.address ?? null });
    this.m.start(this.d.now(), this.lease);
    this.pump();
    this.route();
  }

  private stopClient(): void {
    this.m.stop();
    this.pump(); // events only: a stopped machine has nothing to send
    if (this.watch) { native.unwatch(this.watch); this.watch = null; }
    if (this.fd >= 0) { native.close(this.fd); this.fd = -1; }
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.route();
    // The peer now holds the lease: this node stops offering its copy in the heartbeat.
    this.d.log.info('wan dhcp client stopped (not MASTER): sends nothing', { vhid: this.c.vhid });
  }

  private onReadable(): void {
    for (let i = 0; i < DRAIN_MAX && this.fd >= 0; i++) {
      const n = native.recvInto(this.fd, this.rx);
      if (n < 0) break;
      const p = parseDhcpFrame(this.rx.subarray(0, Math.min(n, this.rx.length)));
      if (!p.ok) { this.counters.rx_not_dhcp++; continue; }
      this.counters.frames_rx++;
      // An OFFER or ACK the machine took (checked as a lease) came from the server or its relay: unicast goes
      // there. Not a NAK: anyone who saw the broadcast REQUEST can send one.
      const { offers, acks } = this.m.counters;
      this.m.handle(this.d.now(), p.payload);
      const c = this.m.counters;
      if (c.offers !== offers || c.acks !== acks) this.serverMac = p.srcMac;
    }
    this.pump();
  }

  /** Carry out what the machine asks: events, datagrams, one timer. */
  private pump(): void {
    for (let ev = this.m.pollEvent(); ev; ev = this.m.pollEvent()) this.onEvent(ev);
    for (let tx = this.m.pollTransmit(); tx; tx = this.m.pollTransmit()) {
      // Only a MASTER's running client reaches here with a datagram (stop() drops what was queued).
      if (this.fd < 0) continue;
      const bcast = tx.to === 'broadcast';
      const frame = dhcpFrame(this.vmac, bcast ? BROADCAST_MAC : (this.serverMac ?? BROADCAST_MAC), tx.from, bcast ? '255.255.255.255' : tx.to, tx.bytes);
      try {
        if (native.sendPacket(this.fd, this.ifindex, frame.subarray(0, 6), ETH_P_IP, frame) < 0) throw new Error('send would block');
        this.counters.frames_tx++;
        this.d.log.debug('wan dhcp sent', { type: tx.type, to: tx.to, from: tx.from });
      } catch (e) {
        if (this.counters.send_errors++ === 0) this.d.log.warn('wan dhcp send failed (no carrier?): the machine retransmits', { err: e });
      }
    }
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const at = this.m.nextDeadline();
    if (Number.isFinite(at) && this.fd >= 0) {
      this.timer = setTimeout(() => { this.timer = null; this.m.handleTimeout(this.d.now()); this.pump(); }, Math.max(0, Math.min(at - this.d.now(), 2 ** 31 - 1)));
    }
  }

  private onEvent(ev: DhcpEvent): void {
    const now = this.d.now();
    const lease = ev.kind === 'lost' ? null : ev.lease;
    this.lastEvent = { kind: ev.kind, address: lease?.address ?? null, at: new Date().toISOString() };
    this.d.log.info('wan lease event', { kind: ev.kind, address: lease?.address ?? null, ...(ev.kind === 'bound' ? { from: ev.from } : {}),
      ...(ev.kind === 'address_changed' ? { previous: ev.previous.address } : {}), ...(ev.kind === 'lost' ? { reason: ev.reason, previous: ev.previous.address } : {}),
      lease_s: lease?.leaseTime ?? null });
    this.lease = lease;
    // The peer first, then this node moves: the heartbeat's datagram leaves on the next tick (dgram resolves the
    // address with process.nextTick), before the move (setImmediate), whose live apply holds the loop for a while.
    this.d.emit('wan-lease', this.c.vhid, lease);
    try { if (lease) this.store.save(lease, now); else this.store.clear(); } catch (e) { this.d.log.error('WAN lease not stored', { file: this.store.file, err: e }); }
    setImmediate(() => {
      if (this.stopped) return;
      this.setAddress(lease);
      this.route();
    });
  }

  /** A lease from the peer (its heartbeat): kept and advertised only while this node is not MASTER. */
  private fromPeer(vhid: number, lease: Lease | null): void {
    if (vhid !== this.c.vhid) return;
    // Every heartbeat carries it: a copy of what this node holds is nothing new (the anchor moves with the path's delay).
    const l = this.lease;
    if (!lease ? !l : !!l && l.address === lease.address && l.serverId === lease.serverId && l.leaseTime === lease.leaseTime
      && l.t1 === lease.t1 && l.subnetMask === lease.subnetMask && l.routers.join() === lease.routers.join() && Math.abs(l.obtainedAt - lease.obtainedAt) < 2000) return;
    this.counters.peer_leases++;
    if (this.master() || (lease && this.m.state !== 'stopped')) { this.counters.peer_leases_ignored++; return; }
    // The peer is authenticated, but its lease came from the WAN: the same checks as an ACK, and still running.
    if (lease && (leaseProblem(lease, this.avoid) || !(expiresAt(lease) > this.d.now()))) { this.counters.peer_leases_refused++; return; }
    this.d.log.info('wan lease from the peer', { address: lease?.address ?? null });
    this.lease = lease;
    try { if (lease) this.store.save(lease, this.d.now()); else this.store.clear(); } catch (e) { this.d.log.error('WAN lease not stored', { file: this.store.file, err: e }); }
    this.setAddress(lease);
  }

  /**
   * The vhid's address: the lease's, or the configured one without a lease, pinned in the daemon so that a
   * config taken live (config sync, `duogate config apply`) keeps it; the daemon moves it in place.
   */
  private setAddress(lease: Lease | null): void {
    const want = lease ? `${lease.address}/${prefixOf(lease.subnetMask)}` : this.fallback;
    const cur = this.d.config.carp.vips.find((v) => v.vhid === this.c.vhid && v.interface === 'wan');
    if (cur?.address !== want) {
      this.counters.address_moves++;
      this.d.log.info('wan address moves', { vhid: this.c.vhid, from: cur?.address ?? null, to: want, wall_ms: performance.timeOrigin + performance.now() });
    }
    this.d.pinVip(this.c.vhid, want);
  }

  /**
   * The default route: via the lease's router on the WAN NIC while MASTER with a lease; via the peer's sync
   * address while not MASTER (the BACKUP has no ISP address: its own traffic leaves through the MASTER, which
   * NATs it to the leased address, host/gateway/firewall/compile.ts); none on a MASTER without a lease.
   */
  private route(): void {
    const master = this.master();
    const peer = this.d.config.interfaces.sync.peer;
    const want = master ? (this.lease?.routers[0] ? { via: this.lease.routers[0], dev: this.device, onlink: true } : null)
      : peer ? { via: peer, dev: this.d.config.interfaces.sync.device, onlink: false } : null;
    const key = want ? `${want.via}%${want.dev}` : null;
    if (key === this.routeVia) return;
    this.routeVia = key;
    const args = want ? ['route', 'replace', 'default', 'via', want.via, 'dev', want.dev, ...(want.onlink ? ['onlink'] : [])] : ['route', 'del', 'default'];
    // One at a time, in order: a later change must not land before an earlier one.
    this.routeChain = this.routeChain.then(() => new Promise<void>((done) => {
      execFile('ip', args, { timeout: 10_000 }, (err, _o, stderr) => {
        if (err && want) this.d.log.warn('wan default route not set', { ...want, err: stderr.trim() || String(err) });
        else if (!err) this.d.log.info('wan default route', want ?? { via: null });
        done();
      });
    }));
  }

  stop(): void {
    this.stopped = true;
    this.d?.off('transition', this.onTransition);
    this.d?.off('peer-wan-lease', this.onPeerLease);
    if (this.m) this.stopClient();
  }

  status(): Record<string, unknown> {
    const now = this.d?.now() ?? 0;
    const l = this.lease;
    return {
      mode: 'dhcp', vhid: this.c.vhid, mac: virtualMac(this.c.vhid), client: this.m?.state ?? 'stopped', socket_open: this.fd >= 0,
      lease: l ? { address: l.address, subnet_mask: l.subnetMask ?? null, routers: l.routers, server: l.serverId, lease_s: l.leaseTime,
        expires_in_s: Number.isFinite(expiresAt(l)) ? Math.round((expiresAt(l) - now) / 1000) : null } : null,
      default_route_via: this.routeVia, last_event: this.lastEvent, counters: { ...this.counters }, machine: this.m?.status() ?? null,
    };
  }
}
