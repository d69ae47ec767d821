// The `peer` service: an authenticated UDP heartbeat between the two nodes over the sync link (and, by
// default, the LAN too), carrying each node's CARP state per vhid so each side knows the other's view. From
// that and its own CARP observations it raises the pair-health alarms (alarms.ts): split brain, sync link
// down, peer lost. Alarms go to `duogate status` (this section), the log, and d.emit('alarm') for MQTT.
//
// Off the packet path: one small datagram per interval per path, sent from a timer; decoding is a HMAC
// over < 1 KiB. Nothing here touches the CARP timers.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import type { AlarmEvent, FeatureHost, Service, Transition } from '../feature.js';
import { decode, encode, type CarpState, type DropReason, type Heartbeat, type Path, type WireLease } from './codec.js';
import type { Lease } from '../wan/dhcp/machine.js';
import { AlarmTracker, type Alarm, type AlarmChange } from './alarms.js';
import type { PeerConfig } from './config.js';

/** A new boot id is accepted only if its clock is within this of ours, so an old boot's datagrams cannot be replayed. */
const NEW_BOOT_WINDOW_MS = 5 * 60_000;
/** The alarm rules run this often (they are a few comparisons). */
const EVAL_MS = 200;

export type { AlarmEvent };

export class PeerHealth implements Service {
  readonly name = 'peer';
  private d!: FeatureHost;
  private socks: Partial<Record<Path, dgram.Socket>> = {};
  private tick: NodeJS.Timeout | null = null;
  private evalTimer: NodeJS.Timeout | null = null;
  private readonly boot = randomBytes(8).toString('hex');
  private seq = 0;
  private startedAt = 0;
  private addr: Record<Path, string | undefined> = { sync: undefined, lan: undefined };
  private last: Record<Path, number | null> = { sync: null, lan: null };
  private peer: { hb: Heartbeat; rx: number; path: Path } | null = null;
  private peerSeq = new Map<string, number>(); // boot id → highest seq seen
  private readonly tracker = new AlarmTracker();
  private counters = { sent: 0, received: 0, send_errors: 0, short: 0, bad_magic: 0, bad_version: 0, bad_hmac: 0, malformed: 0, replay: 0, unknown_source: 0, own: 0 };
  private lastError: string | null = null;
  private onTransition = (_t: Transition) => { this.send(); this.evaluate(); };
  private onMaintenance = () => this.send();
  /**
   * The WAN lease this node holds as MASTER (host/wan): in every heartbeat, so one lost datagram costs an
   * interval, not the peer's copy; sent at once when it changes (the peer moves its VIP address with it).
   */
  private wanLease: { vhid: number; lease: Lease | null } | null = null;
  private onWanLease = (vhid: number, lease: Lease | null) => { this.wanLease = { vhid, lease }; this.send(); };

  constructor(private readonly c: PeerConfig) {}

  start(d: FeatureHost): void {
    this.d = d;
    const ifs = d.config.interfaces;
    this.addr.sync = ifs.sync.peer;
    this.addr.lan = this.c.lan_path ? ifs.lan.peer : undefined;
    if (!this.addr.sync) throw new Error('peer: interfaces.sync.peer is not set: the heartbeat needs the other node\'s sync address (set it, or remove the peer: section)');
    this.startedAt = d.now();
    // One socket per path, bound to this node's own address on it: nothing listens on the WAN or on another
    // network's address, and a datagram's path is the socket it came in on. The source must also be the peer's
    // address on that path (anything else is dropped; the HMAC guards the rest), and the ruleset admits this port
    // only from the peer's sync address on the sync NIC and from its LAN address on the LAN NIC (docs/gateway.md
    // "Ports each node opens"), so a spoofed source has to come from the peer's own segment.
    const own: Record<Path, string | undefined> = { sync: ifs.sync.address.split('/')[0], lan: this.addr.lan ? ifs.lan.address.split('/')[0] : undefined };
    for (const path of ['sync', 'lan'] as Path[]) {
      const at = own[path];
      if (!at) continue;
      const s = dgram.createSocket({ type: 'udp4' });
      s.on('message', (m, r) => this.onMessage(m, r.address, path));
      s.on('error', (e) => { this.lastError = `udp ${at}:${this.c.port}: ${e.message}`; d.log.warn('peer heartbeat socket error', { path, address: at, err: e }); });
      s.bind(this.c.port, at, () => { d.log.info('peer heartbeat listening', { path, address: at, port: this.c.port, peer: this.addr[path] }); this.send(); });
      this.socks[path] = s;
    }
    this.tick = setInterval(() => this.send(), this.c.interval_ms);
    this.evalTimer = setInterval(() => this.evaluate(), EVAL_MS);
    d.on('transition', this.onTransition);
    d.on('maintenance', this.onMaintenance);
    d.on('wan-lease', this.onWanLease);
  }

  stop(): void {
    this.d?.off('transition', this.onTransition);
    this.d?.off('maintenance', this.onMaintenance);
    this.d?.off('wan-lease', this.onWanLease);
    if (this.tick) clearInterval(this.tick);
    if (this.evalTimer) clearInterval(this.evalTimer);
    for (const s of Object.values(this.socks)) try { s.close(); } catch { /* already closed */ }
    this.socks = {};
    // Nobody watches the pair's health any more: what was raised is cleared, or its listeners (telemetry's
    // events, dhcp's hold) keep it for as long as the daemon runs. The socket is closed: report() sends nothing.
    for (const alarm of this.tracker.clear()) this.report({ alarm, active: false });
  }

  /** Active alarms (for other services, e.g. telemetry's problem sensor). */
  alarms(): Alarm[] { return this.tracker.list(); }

  private deadMs(): number { return this.c.interval_ms * this.c.dead_after; }

  private heartbeat(path: Path): Heartbeat {
    const vs = this.d.vhidStatus();
    // Only the MASTER of the WAN vhid speaks for the lease: a node that left MASTER must not keep offering the
    // copy it had, which the peer (BACKUP until it takes over) would take and advertise.
    const w = this.wanLease && vs.find((v) => v.vhid === this.wanLease!.vhid)?.state === 'MASTER' ? this.wanLease : null;
    return {
      node: this.d.config.node.name, boot: this.boot, seq: ++this.seq, at: Date.now(), path,
      vips: vs.map((v) => ({ vhid: v.vhid, state: v.state as CarpState, demote: v.demote })),
      maintenance: !!this.d.maintenanceState(), alarms: this.tracker.list().map((a) => a.name),
      ...(w ? { wan: { vhid: w.vhid, lease: this.wireLease(w.lease) } } : {}),
    };
  }

  private wireLease(l: Lease | null): WireLease | null {
    if (!l) return null;
    const { obtainedAt, ...rest } = l;
    return { ...rest, age_ms: Math.max(0, Math.round(this.d.now() - obtainedAt)) };
  }

  private send(): void {
    for (const path of ['sync', 'lan'] as Path[]) {
      const to = this.addr[path], sock = this.socks[path];
      if (!to || !sock) continue;
      const buf = encode(this.heartbeat(path), this.c.key);
      try {
        sock.send(buf, this.c.port, to, (e) => {
          if (!e) { this.counters.sent++; return; }
          // No route / no carrier: expected while a cable is out; the alarm says so, the log says it once.
          if (this.counters.send_errors++ === 0) this.d.log.warn('peer heartbeat send failed', { path, to, err: e });
          this.lastError = `send to ${to} (${path}): ${e.message}`;
        });
      } catch (e) { this.lastError = `send to ${to} (${path}): ${(e as Error).message}`; }
    }
  }

  private onMessage(buf: Buffer, from: string, path: Path): void {
    if (from !== this.addr[path]) { this.counters.unknown_source++; return; }
    const r = decode(buf, this.c.key);
    if (!r.ok) { this.count(r.reason); return; }
    const hb = r.hb;
    if (hb.node === this.d.config.node.name) { this.counters.own++; return; }
    const prev = this.peerSeq.get(hb.boot);
    if (prev === undefined) {
      if (Math.abs(hb.at - Date.now()) > NEW_BOOT_WINDOW_MS) { this.counters.replay++; return; }
      if (this.peerSeq.size > 8) this.peerSeq.clear(); // old boots of the peer
    } else if (hb.seq <= prev) { this.counters.replay++; return; }
    this.peerSeq.set(hb.boot, hb.seq);
    this.counters.received++;
    const now = this.d.now();
    this.last[path] = now;
    const newer = !this.peer || (this.peer.hb.boot === hb.boot ? hb.seq > this.peer.hb.seq : hb.at >= this.peer.hb.at);
    if (newer) this.peer = { hb, rx: now, path };
    if (newer && hb.wan) this.passWan(hb.wan, now);
    this.evaluate();
  }

  /**
   * The peer's lease, in this node's timebase, to the wan service, which judges it and ignores a copy it holds:
   * passed on with every heartbeat, so a wan service that starts after the first one still gets it.
   */
  private passWan(w: NonNullable<Heartbeat['wan']>, now: number): void {
    let lease: Lease | null = null;
    if (w.lease) { const { age_ms, ...rest } = w.lease; lease = { ...rest, obtainedAt: now - age_ms }; }
    this.d.emit('peer-wan-lease', w.vhid, lease);
  }

  private count(r: DropReason): void { this.counters[r]++; }

  private evaluate(): void {
    if (!this.d) return;
    const now = this.d.now();
    const st = this.d.vhidStatus();
    const groups = new Map<number, string[]>();
    for (const v of this.d.config.carp.vips) groups.set(v.vhid, [...(groups.get(v.vhid) ?? []), v.address]);
    const changes = this.tracker.update({
      now, deadMs: this.deadMs(), startedAt: this.startedAt,
      lastSync: this.last.sync, lastLan: this.last.lan,
      peerName: this.peer?.hb.node ?? `the peer (${this.addr.sync})`,
      peerStates: new Map((this.peer?.hb.vips ?? []).map((v) => [v.vhid, v.state])),
      own: st.map((v) => ({
        vhid: v.vhid, state: v.state, advertMs: v.advbase * 1000 + (v.advskew * 1000) / 256,
        addresses: groups.get(v.vhid) ?? [], masterHeardAgoS: v.masterHeardAt >= 0 ? (now - v.masterHeardAt) / 1000 : null,
      })),
    });
    for (const c of changes) this.report(c);
  }

  private report({ alarm, active }: AlarmChange): void {
    const d = this.d;
    if (active) d.log.error(alarm.message, { alarm: alarm.name, vhid: alarm.vhid });
    else d.log.warn('alarm cleared', { alarm: alarm.name, vhid: alarm.vhid });
    const ev: AlarmEvent = { source: 'peer', name: alarm.name, key: alarm.key, active, message: active ? alarm.message : `cleared: ${alarm.message}`, vhid: alarm.vhid, at: new Date().toISOString(), node: d.config.node.name };
    d.emit('alarm', ev);
    // The peer hears about it at once, not at the next tick.
    this.send();
  }

  status(): Record<string, unknown> {
    const now = this.d?.now() ?? 0;
    const ago = (t: number | null) => (t === null ? null : Math.round(now - t) / 1000);
    const dead = this.deadMs();
    const ok = (t: number | null) => t !== null && now - t <= dead;
    return {
      peer: this.peer?.hb.node ?? null,
      sync_link: ok(this.last.sync) ? 'ok' : 'silent',
      lan_path: this.addr.lan ? (ok(this.last.lan) ? 'ok' : 'silent') : 'off',
      heard_sync_s_ago: ago(this.last.sync),
      heard_lan_s_ago: ago(this.last.lan),
      peer_view: this.peer ? {
        // Stale once both paths are silent: the last word of a peer that may be gone.
        fresh: ok(this.last.sync) || ok(this.last.lan),
        vips: this.peer.hb.vips.map((v) => ({ vhid: v.vhid, state: v.state })), maintenance: this.peer.hb.maintenance,
        alarms: this.peer.hb.alarms, sent_at: new Date(this.peer.hb.at).toISOString(), via: this.peer.path,
      } : null,
      alarms: this.tracker.list(),
      counters: { ...this.counters },
      last_error: this.lastError,
    };
  }
}
