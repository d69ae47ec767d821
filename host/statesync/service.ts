// State sync service: replicates the kernel conntrack table from the active node to the passive one over
// the sync link (UDP, HMAC-authenticated, reliable), so established sessions (NAT included) survive a
// failover. The protocol, its timers and the bulk are the sans-IO SyncMachine (machine.ts); this file only
// carries out its decisions: the UDP socket, the three ctnetlink sockets, CARP demotion, logs, and one timer
// armed for the machine's next deadline.
import dgram from 'node:dgram';
import { writeFileSync, readFileSync } from 'node:fs';
import { Demote, Why } from '../core/core.js';
import { native } from '../io/native.js';
import type { FeatureHost, Service, Transition } from '../feature.js';
import { CtSockets } from './kernel.js';
import type { StateSyncConfig } from './config.js';
import { allNets, internalNets, type Config } from '../config/schema.js';
import { rxPolicyOf } from './policy.js';
import { SyncMachine, groupsFor, type KernelSocket, type LinkOptions } from './machine.js';

export type { LinkOptions } from './machine.js';

/**
 * Time one read of the dump socket may take before it yields to the event loop (the socket stays readable, so
 * the rest comes next turn). A dump datagram holds ~100 states: 256 of them, the count bound alone, took ~90 ms
 * with the table near 200k states, and CARP's advert timer waited behind each such turn.
 */
const DUMP_SLICE_MS = 4;

export class StateSyncService implements Service {
  readonly name = 'statesync';
  private d!: FeatureHost;
  private m!: SyncMachine;
  private ct!: CtSockets;
  private udp!: dgram.Socket;
  private watches: object[] = [];
  private evWatch: object | null = null;
  private stopped = false;
  /** Whether this service holds CARP's BULK_SYNC demotion (raised at start until the peer's table is here). */
  private demoted = false;
  /** A vhid yielded because this node stalled: ask for the peer's table once passive (SyncMachine.resync). */
  private rejoin = false;
  private readonly onConfig = (next: Config) => this.applyPolicy(next);
  private readonly onCarp = (t: Transition) => this.onTransition(t);
  private peerAddr = '';
  /** The one timer: armed for the machine's next deadline (`timerAt`), or an immediate for its queued work. */
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private immediate: NodeJS.Immediate | null = null;

  constructor(private readonly cfg: StateSyncConfig, private readonly link: LinkOptions = {}) {}

  start(d: FeatureHost): void {
    this.d = d;
    const c = d.config;
    this.peerAddr = c.interfaces.sync.peer ?? '';
    if (!this.peerAddr) throw new Error('statesync: interfaces.sync.peer is not set; state sync needs the peer\'s sync address');
    this.m = new SyncMachine(this.cfg, { ...this.link, peer: this.peerAddr, meter: () => d.now() });
    this.applyPolicy(c);
    // VIPs and NAT rules can change live (config sync): the filters follow.
    d.on('config', this.onConfig);

    this.enableEvents();
    // Events first, then the dump (the machine asks for it at start): nothing can fall between them (statesync.md §0.6).
    const active = this.isMaster();
    this.ct = new CtSockets(this.cfg.event_buffer, groupsFor(active));
    this.learnInjectPid();
    this.watchEvents();
    this.watches.push(native.watch(this.ct.dump, () => this.onDump()));
    this.watches.push(native.watch(this.ct.inject, () => this.onInjectReplies()));

    this.udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 16 * 1024 * 1024, sendBufferSize: 8 * 1024 * 1024 });
    this.udp.on('message', (m, rinfo) => this.onDatagram(m, rinfo.address));
    this.udp.on('error', (e) => d.log.warn('statesync socket error', { err: e.message }));
    this.udp.bind(this.cfg.port, c.interfaces.sync.address.split('/')[0]);

    d.on('transition', this.onCarp);
    this.m.start(d.now(), active);
    this.carryOut();
    d.log.info('statesync started', { peer: this.peerAddr, port: this.cfg.port, capacity: this.m.core.x.ssCapacity(), inject_pid: this.ct.injectPid });
  }

  /** What is never sent (the gateway's own traffic) and what the peer may send (policy.ts), from config `c`. */
  private applyPolicy(c: Config): void {
    const own = allNets(c).flatMap((r) => [c.interfaces[r]!.address.split('/')[0], c.interfaces[r]!.peer ?? '']).filter(Boolean);
    const [syncNet, syncPrefix] = c.interfaces.sync.address.split('/');
    this.m.core.setIgnore(own, syncNet, Number(syncPrefix));
    // The authenticated peer is still bounded: what it sends is checked like our own states.
    this.m.core.setPolicy(rxPolicyOf(c, this.cfg, (name) => {
      try { const v = Number(readFileSync(`/proc/sys/net/netfilter/${name}`, 'utf8').trim()); return Number.isFinite(v) && v > 0 ? v : null; } catch { return null; }
    }));
  }

  // ------------------------------------------------------------------ kernel side

  private enableEvents(): void {
    // With "auto" (2), entries created while nobody listened never produce events (statesync.md 3.3).
    try { writeFileSync('/proc/sys/net/netfilter/nf_conntrack_events', '1'); } catch (e) {
      this.d.log.warn('statesync: cannot enable conntrack events', { err: (e as Error).message });
    }
    try {
      if (readFileSync('/proc/sys/net/netfilter/nf_conntrack_tcp_loose', 'utf8').trim() !== '0')
        this.d.log.warn('statesync: nf_conntrack_tcp_loose is not 0: mid-stream packets before takeover may create entries and resets (statesync.md §0.5)');
    } catch { /* no conntrack module yet */ }
  }

  /** The kernel stamps its answers with the requester's port id; a barrier's answer tells us ours. */
  private learnInjectPid(): void {
    const core = this.m.core;
    core.x.ssNlTxReset();
    core.x.ssBarrier();
    this.ct.sendAll(this.ct.inject, core.nlTx());
    core.x.ssNlTxReset();
    const rx = core.nlRx();
    for (let i = 0; i < 100 && !this.ct.injectPid; i++) {
      const n = native.recvInto(this.ct.inject, rx);
      if (n >= 16) this.ct.injectPid = new DataView(rx.buffer, rx.byteOffset).getUint32(12, true);
    }
    if (!this.ct.injectPid) throw new Error('statesync: the kernel did not answer on the conntrack netlink socket; is nf_conntrack loaded?');
    core.x.ssSetOwnPid(this.ct.injectPid);
    core.x.ssResetFlags();
  }

  /** Read the event socket whenever it is readable (the addon keeps watching through an overrun's POLLERR). */
  private watchEvents(): void {
    if (this.evWatch) native.unwatch(this.evWatch);
    this.evWatch = native.watch(this.ct.events, () => this.onEvents());
  }

  /**
   * Read up to `max` datagrams (and, with `sliceMs`, for at most that long) from netlink socket `sock` into the
   * core's receive buffer, each handed to the machine at once (the next read overwrites it).
   */
  private readSocket(sock: KernelSocket, fd: number, max: number, sliceMs = Infinity): void {
    const until = this.d.now() + sliceMs;
    for (let i = 0; i < max && (i === 0 || this.d.now() < until); i++) {
      const rx = this.m.core.nlRx();
      const n = native.recvInto(fd, rx);
      if (n === -1) return;
      if (n === -2) { this.m.handleKernelOverrun(this.d.now(), sock); continue; }
      if (n < 0) continue;
      if (!this.m.handleKernel(this.d.now(), sock, Math.min(n, rx.length))) return;
    }
  }

  private onEvents(): void {
    if (this.stopped) return;
    this.readSocket('events', this.ct.events, 512);
    this.carryOut();
  }

  private onDump(): void {
    if (this.stopped) return;
    if (this.m.isDumping) this.readSocket('dump', this.ct.dump, 256, DUMP_SLICE_MS);
    this.carryOut();
  }

  private onInjectReplies(): void {
    if (this.stopped) return;
    this.readSocket('inject', this.ct.inject, 256);
    this.carryOut();
  }

  private isMaster(): boolean { const r = this.d.role(); return r === 'MASTER' || r === 'MIXED'; }

  private onTransition(t: Transition): void {
    if (this.stopped) return;
    if (t.reason === Why.STALLED) this.rejoin = true;
    const active = this.isMaster();
    if (active === this.m.master) return;
    // What the old socket still holds is read under the old role (a master's last NEW events still go out).
    this.onEvents();
    this.m.setRole(this.d.now(), active);
    // Yielded because this node stalled: the peer forwarded meanwhile, so take its table before preempting back
    // (the machine demotes CARP in this same call, while the daemon still holds its stall demotion).
    if (!active && this.rejoin) { this.rejoin = false; this.m.resync(this.d.now()); }
    this.carryOut();
  }

  // ------------------------------------------------------------------ carrying out the machine's decisions

  /** Send what the machine produced, do what it asked, and arm the timer for its next deadline. */
  private carryOut(): void {
    if (this.stopped) return;
    const m = this.m;
    for (let a = m.pollAction(); a; a = m.pollAction()) {
      switch (a.kind) {
        case 'demote': this.demoted = a.on; this.d.demote(Demote.BULK_SYNC, a.on); break;
        case 'dump': this.ct.requestDump(a.seq); break;
        case 'log': this.d.log[a.level](a.msg, a.fields); break;
        case 'subscribe':
          // The new socket is open before the old one closes; the watch moves to it (events queued meanwhile are read).
          if (this.evWatch) { native.unwatch(this.evWatch); this.evWatch = null; }
          try { this.ct.resubscribe(a.groups); } finally { this.watchEvents(); }
          break;
      }
    }
    for (let k = m.pollKernel(); k; k = m.pollKernel()) {
      const before = this.ct.sendErrors;
      const t0 = this.d.now();
      this.ct.sendAll(this.ct.inject, k);
      m.noteKernelSend(this.d.now() - t0, this.ct.sendErrors - before);
    }
    for (let b = m.pollTransmit(); b; b = m.pollTransmit()) {
      this.udp.send(b, this.cfg.port, this.peerAddr, (e) => { if (e) m.noteUdpSendError(); });
    }
    this.arm();
  }

  private arm(): void {
    const m = this.m;
    if (m.hasImmediateWork()) {
      // Received states and table passes go a slice per turn of the event loop, so reads, acks and CARP go on.
      if (!this.immediate) this.immediate = setImmediate(() => { this.immediate = null; this.tick(); });
    }
    const at = m.nextDeadline();
    if (m.hasImmediateWork() || at === this.timerAt) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = setTimeout(() => { this.timer = null; this.timerAt = Infinity; this.tick(); }, Math.max(0, Math.ceil(at - this.d.now())));
  }

  private tick(): void {
    if (this.stopped) return;
    this.m.handleTimeout(this.d.now());
    this.carryOut();
  }

  // ------------------------------------------------------------------ peer side

  private onDatagram(b: Buffer, from: string): void {
    if (this.stopped) return;
    if (from !== this.peerAddr) { this.m.handleWrongSource(); return; }
    this.m.handleDatagram(this.d.now(), b);
    this.carryOut();
  }

  stop(_graceful: boolean): void {
    this.stopped = true;
    // The feature can stop while the daemon runs (its section removed by a live apply): leave nothing behind.
    this.d?.off('config', this.onConfig);
    this.d?.off('transition', this.onCarp);
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.m?.stop();
    // A stop during the bulk (the feature removed live) must not leave the node demoted until its next start.
    if (this.demoted) { this.demoted = false; this.d.demote(Demote.BULK_SYNC, false); }
    for (const w of this.watches) native.unwatch(w);
    if (this.evWatch) native.unwatch(this.evWatch);
    this.ct?.close();
    try { this.udp?.close(); } catch { /* closed */ }
  }

  status(): Record<string, unknown> {
    if (!this.m) return { enabled: true, running: false };
    let kernel = -1;
    try { kernel = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8').trim()); } catch { /* none */ }
    const s = this.m.status(this.d.now()) as Record<string, any>;
    const stats = this.m.core.stats();
    return {
      enabled: true,
      mode: s.mode,
      states_kernel: kernel,
      states_table: s.states_table,
      states_table_v6: s.states_table_v6,
      table_capacity: s.table_capacity,
      table_bytes_per_state: s.table_bytes_per_state,
      queue: s.queue,
      backlog: s.backlog,
      in_flight: s.in_flight,
      link: s.link,
      peer: { address: this.peerAddr, ...s.peer },
      bulk: s.bulk,
      window_full: s.window_full,
      messages: s.messages,
      dropped: s.dropped,
      // States from the authenticated peer refused by the policy (policy.ts), one counter per reason.
      rejected: { to_self: stats.rx_to_self, zone: stats.rx_zone, mark: stats.rx_mark, snat: stats.rx_snat, dnat: stats.rx_dnat, timeout_clamped: stats.rx_timeout_clamped },
      core: stats,
    };
  }
}
