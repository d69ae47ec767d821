// State sync service: replicates the kernel conntrack table from the active node to the passive one over
// the sync link (UDP, HMAC-authenticated, reliable), so established sessions (NAT included) survive a
// failover. The core (SyncCore) parses ctnetlink, keeps the table, coalesces changes and builds the
// kernel requests; this file owns the sockets, timers, the reliability window and CARP demotion.
import dgram from 'node:dgram';
import { writeFileSync, readFileSync } from 'node:fs';
import { Demote } from '../core/core.js';
import { native } from '../io/native.js';
import type { Daemon, Transition } from '../daemon/daemon.js';
import type { Service } from '../daemon/service.js';
import { SyncCore } from './core.js';
import { CtSockets, GROUPS_ALL, GROUPS_PASSIVE } from './kernel.js';
import { Codec, Type, F_BULK_START, F_BULK_END, F_WANT_BULK, F_CHALLENGE, F_NACK, MAX_PAYLOAD, helloPayload, shapeOk, type Header } from './protocol.js';
import type { StateSyncConfig } from './config.js';
import type { Config } from '../config/schema.js';
import { Sessions, seqLt, seqLe, seqAdd } from './session.js';
import { rxPolicyOf } from './policy.js';

/** Where the link's counters start (tests start them near their limits); both nodes must use the same initialSeq. */
export interface LinkOptions { initialSeq?: number; initialPn?: bigint }

/**
 * Unacknowledged DATA messages in flight (about 94 KB, ~1850 states: a few ms of the peer's work). The
 * link's own delay is tiny; a bigger window only queues work at the receiver and makes timeouts spurious.
 */
const WINDOW = 64;
/** Retransmit everything unacknowledged after RTO without progress (go-back-N); RTO follows the measured RTT. */
const RTO_MIN_MS = 30;
/** Cap of the RTT-derived RTO: a lost last datagram of a burst (no later one to reveal the gap) costs at most this. */
const RTO_BASE_MAX_MS = 80;
/** Before the first RTT sample (the first bulk window can take the peer a while to inject). */
const RTO_INITIAL_MS = 250;
const RTO_MAX_MS = 1000;
/**
 * A peer not heard (no datagram, not even a keepalive HELLO) for this long is away: retransmissions shrink to
 * one probe (the oldest message) backed off up to RTO_AWAY_MAX_MS, so a node alone for days costs nothing.
 * The first datagram heard from it again resends the window at once.
 */
const PEER_AWAY_MS = 5000;
const RTO_AWAY_MAX_MS = 30_000;
/** Acknowledge after this many in-order messages, or this long after the first unacknowledged one. */
const ACK_EVERY = 32;
const ACK_DELAY_MS = 2;
const HELLO_MS = 300;
const KEEPALIVE_MS = 1000;
/** Batches leave this long after the first change queued (coalescing window). */
const FLUSH_DELAY_MS = 1;
const NLTX_FLUSH = 48 * 1024;
/**
 * A node that just turned passive still forwards the packets already on their way to it for a few ms (until
 * the new master's gratuitous ARP has moved the flows). A straggler that reaches an entry re-created for the
 * next takeover initialises its window tracking, which is stale a second later. So the re-creation waits this
 * long; a takeover before then re-creates at once (the entries are liberal then anyway).
 */
const REINJECT_SETTLE_MS = 500;
/**
 * Time one read of the dump socket may take before it yields to the event loop (the socket stays readable, so
 * the rest comes next turn). A dump datagram holds ~100 states: 256 of them, the count bound alone, took ~90 ms
 * with the table near 200k states, and CARP's advert timer waited behind each such turn.
 */
const DUMP_SLICE_MS = 4;
/** Received messages applied per turn of the event loop (~120 creates, under 1 ms of kernel work), so reads and acks go on. */
const DRAIN_SLICE = 4;

interface Pending { seq: number; flags: number; count: number; extra: number; payload: Buffer; sentAt: number; resent?: boolean }
/** A DATA message taken from the peer, not yet applied. `barrier` > 0: it ended bulk number `barrier` (a barrier follows it). */
interface Received { payload: Buffer; count: number; liberal: number; barrier: number }

type BulkState = 'idle' | 'waiting' | 'receiving' | 'committing' | 'done' | 'timeout';

export class StateSyncService implements Service {
  readonly name = 'statesync';
  private d!: Daemon;
  private core!: SyncCore;
  private ct!: CtSockets;
  private udp!: dgram.Socket;
  private codec: Codec;
  private watches: object[] = [];
  private evWatch: object | null = null;
  private timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private peerAddr = '';
  private master = false;

  // --- session and reliability ---
  private sessions: Sessions;
  private readonly initialSeq: number;
  /** The nonce of the peer's last challenge, echoed in our HELLOs until it is answered. */
  private peerNonce = 0n;
  private nextSeq: number;
  private unacked: Pending[] = [];
  private expect: number;       // next in-order DATA seq from the peer
  private unackedRx = 0;
  private ackTimer: NodeJS.Timeout | null = null;
  private rtoTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private peerHeardAt = -1;
  private lastNackAt = 0;
  private rto = RTO_INITIAL_MS;
  private srtt = 0;
  private lastResendAt = 0;
  private rttvar = 0;

  // --- bulk ---
  private bulk: BulkState = 'idle';
  private bulkExpected = 0;
  private bulkReceived = 0;
  private bulkStartedAt = 0;
  private bulkDoneMs = -1;
  private bulkFirstAt = -1;
  private bulkBusyMs = 0;       // time spent applying during the bulk (how much of it the receiver was busy)
  private bulkKernelMs = 0;     // of which in the kernel's create calls (send() on the inject socket)
  private windowFull = 0;     // BULK_START arrival (mono ms)
  private bulkTransferMs = -1;  // BULK_START → the kernel acknowledged the last state
  private bulkReceivedMs = -1;  // BULK_START → BULK_END taken (this node holds every state of the bulk)
  private bulkTimer: NodeJS.Timeout | null = null;
  private bulkServedFor = 0n;   // peer session we last sent a bulk to
  private bulkEndPending = false;
  private bulkStartPending = 0; // >0: a BULK_START with this count must go out first

  // --- received, waiting for the kernel ---
  // DATA is acknowledged once authenticated and in sequence, so a bulk crosses the link at network speed while
  // the kernel's creates (serialised in the kernel, ~3-6 µs each) follow behind, in order. Past
  // cfg.backlog_max states waiting, DATA is not taken (the sender resends it later).
  private backlog: Received[] = [];
  private backlogHead = 0;
  private backlogStates = 0;
  private drainScheduled = false;
  private drainWaiters: { mark: number; fn: () => void }[] = [];
  private taken = 0;            // DATA messages taken into the backlog, ever
  private applied = 0;          // of which applied
  private rxStalled = false;    // the backlog is full: take nothing, NACK nothing, until it drains to half
  private bulkGen = 0;          // numbers the bulks received (BULK_START)
  private barrierGen = 0;       // the bulk whose barrier was last sent to the kernel
  private roleEpoch = 0;

  // --- kernel ---
  private dumping = false;
  private dumpQueue = false;
  private dumpAgain = false;
  private dumpSeq = 1;
  private liberalTimer: NodeJS.Timeout | null = null;
  private reinjectTimer: NodeJS.Timeout | null = null;

  private c = {
    tx_msgs: 0, rx_msgs: 0, retransmitted: 0, acks_tx: 0, acks_rx: 0, hellos_tx: 0, hellos_rx: 0,
    tx_bytes: 0, rx_bytes: 0, peer_restarts: 0, challenges_tx: 0, bulks_sent: 0, bulks_received: 0, event_overruns: 0, resyncs: 0,
    kernel_send_errors: 0, udp_send_errors: 0, refreshes: 0, inject_overruns: 0,
  };
  private drops: Record<string, number> = {
    short: 0, magic: 0, version: 0, length: 0, auth: 0, replay: 0, stale_session: 0, wrong_source: 0,
    out_of_order: 0, duplicate: 0, bad_items: 0, backlog_full: 0,
    unknown_session: 0, challenge_limit: 0, type: 0, count: 0, bulk_count: 0,
  };

  constructor(private readonly cfg: StateSyncConfig, link: LinkOptions = {}) {
    this.codec = new Codec(Buffer.from(cfg.key, 'utf8'));
    this.sessions = new Sessions({ initialPn: link.initialPn });
    this.initialSeq = (link.initialSeq ?? 1) >>> 0;
    this.nextSeq = this.initialSeq; this.expect = this.initialSeq;
  }

  start(d: Daemon): void {
    this.d = d;
    const c = d.config;
    this.peerAddr = c.interfaces.sync.peer ?? '';
    if (!this.peerAddr) throw new Error('statesync: interfaces.sync.peer is not set; state sync needs the peer\'s sync address');
    this.core = new SyncCore(this.cfg.capacity);
    this.applyPolicy(c);
    // VIPs and NAT rules can change live (config sync): the filters follow.
    d.on('config', (next: Config) => this.applyPolicy(next));

    this.enableEvents();
    // Events first, then the dump: nothing can fall between them (statesync.md §0.6).
    this.master = this.isMaster();
    this.ct = new CtSockets(this.cfg.event_buffer, this.master ? GROUPS_ALL : GROUPS_PASSIVE);
    this.learnInjectPid();
    this.watchEvents();
    this.watches.push(native.watch(this.ct.dump, () => this.onDump()));
    this.watches.push(native.watch(this.ct.inject, () => this.onInjectReplies()));
    this.startDump();

    this.udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 16 * 1024 * 1024, sendBufferSize: 8 * 1024 * 1024 });
    this.udp.on('message', (m, rinfo) => this.onDatagram(m, rinfo.address));
    this.udp.on('error', (e) => d.log.warn('statesync socket error', { err: e.message }));
    this.udp.bind(this.cfg.port, c.interfaces.sync.address.split('/')[0]);

    // Bulk on join: stay demoted until we hold the peer's table, or until the timeout (dead peer).
    this.bulk = 'waiting';
    this.bulkStartedAt = d.now();
    d.demote(Demote.BULK_SYNC, true);
    this.bulkTimer = this.after(this.cfg.bulk_timeout_ms, () => this.bulkTimedOut());
    d.on('transition', (t: Transition) => this.onTransition(t));
    this.helloLoop();
    this.every(KEEPALIVE_MS, () => { if (this.sessions.peer) this.sendControl(Type.ACK, 0); });
    // Timeouts refreshed by traffic produce no events: a periodic re-read re-sends states the peer would expire early.
    if (this.cfg.refresh_s > 0) this.every(this.cfg.refresh_s * 1000, () => { if (this.master) this.startDump(true); });
    d.log.info('statesync started', { peer: this.peerAddr, port: this.cfg.port, capacity: this.core.x.ssCapacity(), inject_pid: this.ct.injectPid });
  }

  /** What is never sent (the gateway's own traffic) and what the peer may send (policy.ts), from config `c`. */
  private applyPolicy(c: Config): void {
    const own = (['wan', 'lan', 'sync'] as const).flatMap((r) => [c.interfaces[r].address.split('/')[0], c.interfaces[r].peer ?? '']).filter(Boolean);
    const [syncNet, syncPrefix] = c.interfaces.sync.address.split('/');
    this.core.setIgnore(own, syncNet, Number(syncPrefix));
    // The authenticated peer is still bounded: what it sends is checked like our own states.
    this.core.setPolicy(rxPolicyOf(c, this.cfg, (name) => {
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
    this.core.x.ssNlTxReset();
    this.core.x.ssBarrier();
    this.ct.sendAll(this.ct.inject, this.core.nlTx());
    this.core.x.ssNlTxReset();
    const rx = this.core.nlRx();
    for (let i = 0; i < 100 && !this.ct.injectPid; i++) {
      const n = native.recvInto(this.ct.inject, rx);
      if (n >= 16) this.ct.injectPid = new DataView(rx.buffer, rx.byteOffset).getUint32(12, true);
    }
    if (!this.ct.injectPid) throw new Error('statesync: the kernel did not answer on the conntrack netlink socket; is nf_conntrack loaded?');
    this.core.x.ssSetOwnPid(this.ct.injectPid);
    this.core.x.ssResetFlags();
  }

  /** Read the event socket whenever it is readable (the addon keeps watching through an overrun's POLLERR). */
  private watchEvents(): void {
    if (this.evWatch) native.unwatch(this.evWatch);
    this.evWatch = native.watch(this.ct.events, () => this.onEvents());
  }

  /**
   * Read up to `max` datagrams (and, with `sliceMs`, for at most that long) from a netlink socket into the core's
   * receive buffer. `onData(len)` handles one (returning false stops early); `onOverrun` is called when the
   * kernel dropped messages (ENOBUFS).
   */
  private readSocket(fd: number, max: number, onData: (len: number) => boolean | void, onOverrun: () => void, sliceMs = Infinity): void {
    const until = this.d.now() + sliceMs;
    for (let i = 0; i < max && (i === 0 || this.d.now() < until); i++) {
      const rx = this.core.nlRx();
      const n = native.recvInto(fd, rx);
      if (n === -1) return;
      if (n === -2) { onOverrun(); continue; }
      if (n < 0) continue;
      if (onData(Math.min(n, rx.length)) === false) return;
    }
  }

  /** Read what the event socket holds (bounded). */
  private onEvents(): void {
    this.readSocket(this.ct.events, 512,
      (len) => { this.core.x.ssHandleNetlink(this.d.now(), len, this.master ? 1 : 0, 0); },
      () => {
        // Events were lost: the table can only be trusted again after a full re-dump and diff.
        this.c.event_overruns++;
        this.d.log.warn('statesync: conntrack events lost (ENOBUFS); re-dumping the kernel table', { overruns: this.c.event_overruns });
        if (this.master) this.startDump();
      });
    this.afterCoreWork();
  }

  /** Re-read the kernel table; `refresh` = the periodic timeout refresh (counted apart from resyncs). */
  private startDump(refresh = false): void {
    if (this.dumping) { this.dumpAgain = true; return; }
    this.dumping = true;
    this.dumpQueue = this.master;
    if (refresh) this.c.refreshes++; else this.c.resyncs++;
    this.core.x.ssDumpBegin();
    this.core.x.ssResetFlags();
    this.ct.requestDump(this.dumpSeq++);
  }

  private onDump(): void {
    const x = this.core.x;
    if (this.dumping) this.readSocket(this.ct.dump, 256, (len) => {
      x.ssHandleNetlink(this.d.now(), len, this.dumpQueue ? 1 : 0, 1);
      if (x.ssFlags() & 1) {
        const swept = x.ssDumpEnd(this.dumpQueue ? 1 : 0);
        x.ssResetFlags();
        this.dumping = false;
        this.d.log.debug('statesync: kernel table read', { states: x.ssCount(), gone: swept, queued: x.ssQueueLen() });
        if (this.dumpAgain) { this.dumpAgain = false; this.startDump(); }
      }
      return this.dumping;
    }, () => { /* a dump reply lost: the dump's end still comes, and the next refresh re-reads */ }, DUMP_SLICE_MS);
    this.afterCoreWork();
  }

  /** The latest bulk's barrier is out and its answer still counts (the bulk may have timed out meanwhile). */
  private awaitingBarrier(): boolean {
    return this.barrierGen !== 0 && this.barrierGen === this.bulkGen && (this.bulk === 'committing' || this.bulk === 'timeout');
  }

  private onInjectReplies(): void {
    const x = this.core.x;
    this.readSocket(this.ct.inject, 256, (len) => {
      x.ssHandleNetlink(this.d.now(), len, 0, 0);
      if (x.ssFlags() & 2) {
        x.ssResetFlags();
        // Only the barrier of the latest bulk completes it (a late answer for an earlier one does not).
        if (this.awaitingBarrier()) this.bulkComplete();
      }
    }, () => {
      // Kernel answers were lost (ENOBUFS): perhaps the barrier's. Ask again: it is answered after everything before it.
      this.c.inject_overruns++;
      if (this.awaitingBarrier()) x.ssBarrier();
    });
    this.flushKernel(true);
  }

  /** Send the core's pending kernel requests (all, or only once enough piled up). */
  private flushKernel(all: boolean): void {
    const x = this.core.x;
    if (x.ssNlTxLen() === 0 || (!all && x.ssNlTxLen() < NLTX_FLUSH)) return;
    const before = this.ct.sendErrors;
    const t0 = this.d.now();
    this.ct.sendAll(this.ct.inject, this.core.nlTx());
    if (this.inBulk()) this.bulkKernelMs += this.d.now() - t0;
    x.ssNlTxReset();
    if (this.ct.sendErrors !== before) this.c.kernel_send_errors += this.ct.sendErrors - before;
  }

  private inBulk(): boolean { return this.bulk === 'receiving' || this.bulk === 'committing'; }

  private afterCoreWork(): void {
    if (this.core.x.ssQueueLen() > 0 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => { this.flushTimer = null; this.pump(); }, FLUSH_DELAY_MS);
    }
  }

  private isMaster(): boolean { const r = this.d.role(); return r === 'MASTER' || r === 'MIXED'; }

  private onTransition(_t: Transition): void {
    const was = this.master;
    const now = this.isMaster();
    if (now === was) return;
    // What the old socket still holds is read under the old role (a master's last NEW events still go out).
    this.onEvents();
    this.master = now;
    // Subscribe to what this role needs first, then (when active) re-read the table.
    // The new socket is open before the old one closes; the watch moves to it (events queued meanwhile are read).
    if (this.evWatch) { native.unwatch(this.evWatch); this.evWatch = null; }
    try { this.ct.resubscribe(this.master ? GROUPS_ALL : GROUPS_PASSIVE); } finally { this.watchEvents(); }
    if (this.master) {
      this.d.log.info('statesync: active; following the kernel table and sending changes', { states: this.core.x.ssCount() });
      // The kernel is now the truth: re-read it (diff queues what differs), then make injected TCP strict again.
      // Taken over before the passive re-creation ran: do it now, and dump once it is done (a dump that runs
      // while entries are deleted and re-created could miss them and send their deletion to the peer).
      const reinject = this.reinjectTimer !== null;
      if (this.reinjectTimer) { this.clearTimer(this.reinjectTimer); this.reinjectTimer = null; }
      // States the peer sent before it died go to the kernel first (in order), so the dump finds them all and
      // the strict pass covers them.
      const epoch = ++this.roleEpoch;
      this.whenApplied(() => {
        if (epoch !== this.roleEpoch || this.stopped) return;
        if (reinject) this.reinjectTcp(() => this.master, () => this.startDump()); else this.startDump();
        if (this.liberalTimer) clearTimeout(this.liberalTimer);
        this.liberalTimer = this.after(this.cfg.liberal_ms, () => this.strictPass());
      });
    } else {
      ++this.roleEpoch;
      if (this.liberalTimer) { clearTimeout(this.liberalTimer); this.liberalTimer = null; }
      this.d.log.info('statesync: passive; applying the peer\'s states');
      if (this.reinjectTimer) this.clearTimer(this.reinjectTimer);
      this.reinjectTimer = this.after(REINJECT_SETTLE_MS, () => { this.reinjectTimer = null; this.reinjectTcp(() => !this.master); });
    }
  }

  /** After forwarding, our TCP entries' window tracking goes stale: re-create them so a takeover starts afresh. */
  private reinjectTcp(still: () => boolean, then?: () => void): void {
    this.chunked((at) => this.core.x.ssReinjectPass(at, this.d.now()), still, () => {
      this.d.log.info('statesync: TCP states re-created with fresh window tracking', { at: this.master ? 'takeover' : 'passive', states: this.core.x.ssCount() });
      then?.();
    });
  }

  private strictPass(): void {
    this.chunked((at) => this.core.x.ssLiberalPass(at, 0), () => this.master,
      () => this.d.log.info('statesync: injected TCP states are strictly window-tracked again'));
  }

  /**
   * Run a table pass in chunks (each fills at most half of the core's request buffer, a few ms of kernel
   * work), yielding to the event loop between them so CARP and the sync link are not held up by 100k states.
   * Stops early if `still()` turns false (the role changed again).
   */
  private chunked(pass: (at: number) => number, still: () => boolean, done: () => void): void {
    const step = (at: number) => {
      if (this.stopped || !still()) return;
      const next = pass(at);
      this.flushKernel(true);
      if (next >= 0) setImmediate(() => step(next)); else done();
    };
    step(0);
  }

  // ------------------------------------------------------------------ peer side

  private header(type: number, flags: number, seq = 0, count = 0, extra = 0, to = this.sessions.peer): Header {
    const before = this.sessions.session;
    const pn = this.sessions.nextPn();
    if (this.sessions.session !== before) this.ownRollover();
    return { type, flags, session: this.sessions.session, peerSession: to, pn, seq, ack: seqAdd(this.expect, -1), count, extra };
  }

  private sendRaw(b: Buffer): void {
    this.c.tx_msgs++; this.c.tx_bytes += b.length;
    this.udp.send(b, this.cfg.port, this.peerAddr, (e) => { if (e) this.c.udp_send_errors++; });
  }

  private sendControl(type: number, flags: number): void {
    if (type === Type.HELLO) { this.sendHello(flags, this.sessions.peer, 0n, this.peerNonce); return; }
    this.c.acks_tx++; this.unackedRx = 0; if (this.ackTimer) { clearTimeout(this.ackTimer); this.ackTimer = null; }
    this.sendRaw(this.codec.seal(this.header(type, flags), Buffer.alloc(0)));
  }

  /** A HELLO to session `to` (0n: whoever the peer is now): our challenge `nonce` (0n = none) and the `echo` of its. */
  private sendHello(flags: number, to: bigint, nonce: bigint, echo: bigint): void {
    this.c.hellos_tx++;
    if (flags & F_CHALLENGE) this.c.challenges_tx++;
    this.sendRaw(this.codec.seal(this.header(Type.HELLO, flags, 0, 0, 0, to), helloPayload(nonce, echo)));
  }

  /** Until the peer is heard (and while we still want its table), say hello. */
  private helloLoop(): void {
    if (this.stopped) return;
    // A peer that shows up late (after our timeout) still hands us its table.
    // The active node's kernel is the truth: it never asks for (or waits on) the peer's table.
    const wantBulk = !this.master && (this.bulk === 'waiting' || this.bulk === 'timeout');
    if (!this.sessions.peer || !this.sessions.peerKnowsUs || wantBulk) this.sendControl(Type.HELLO, wantBulk ? F_WANT_BULK : 0);
    this.after(HELLO_MS, () => this.helloLoop());
  }

  /** Move queued states and bulk markers into DATA messages while the window allows. */
  private pump(): void {
    if (this.stopped || !this.sessions.peer || !this.sessions.peerKnowsUs) return;
    const x = this.core.x;
    const now = this.d.now();
    // A new session of ours (pn exhausted) mid-loop waits for the peer to confirm it.
    while (this.unacked.length < WINDOW && this.sessions.peerKnowsUs) {
      if (this.bulkStartPending) {
        this.sendData(F_BULK_START, 0, this.bulkStartPending, Buffer.alloc(0), now);
        this.bulkStartPending = 0;
        continue;
      }
      const n = x.ssPollBatch(now, MAX_PAYLOAD);
      if (n > 0) { this.sendData(0, n, 0, Buffer.from(this.core.txBatch()), now); continue; }
      if (this.bulkEndPending) { this.bulkEndPending = false; this.sendData(F_BULK_END, 0, 0, Buffer.alloc(0), now); }
      break;
    }
    if (x.ssQueueLen() > 0 && this.unacked.length < WINDOW) this.afterCoreWork();
    else if (x.ssQueueLen() > 0) this.windowFull++;
  }

  private sendData(flags: number, count: number, extra: number, payload: Buffer, now: number): void {
    const p: Pending = { seq: this.nextSeq, flags, count, extra, payload, sentAt: now };
    this.nextSeq = seqAdd(this.nextSeq, 1);
    this.unacked.push(p);
    this.sendRaw(this.codec.seal(this.header(Type.DATA, flags, p.seq, count, extra), payload));
    this.armRto();
  }

  private armRto(): void {
    if (this.rtoTimer || this.unacked.length === 0) return;
    this.rtoTimer = setTimeout(() => { this.rtoTimer = null; this.onRto(); }, this.rto);
  }

  private onRto(): void {
    if (this.stopped || this.unacked.length === 0) return;
    const now = this.d.now();
    if (now - this.unacked[0].sentAt >= this.rto) {
      const away = this.peerAway(now);
      if (away) this.resend(now, this.unacked.slice(0, 1));
      else this.resendAll(now);
      // Back off while nothing gets through (link down or dropping), so a dead link costs little.
      this.rto = Math.min(this.rto * 2, away ? RTO_AWAY_MAX_MS : RTO_MAX_MS);
    }
    this.armRto();
  }

  private peerAway(now: number): boolean { return this.peerHeardAt < 0 || now - this.peerHeardAt > PEER_AWAY_MS; }

  /** Go-back-N: the receiver only accepts in order, so everything after the gap goes again. */
  private resendAll(now: number): void { this.resend(now, this.unacked); }

  private resend(now: number, which: Pending[]): void {
    this.lastResendAt = now;
    for (const p of which) {
      p.sentAt = now; p.resent = true;
      this.c.retransmitted++;
      this.sendRaw(this.codec.seal(this.header(Type.DATA, p.flags, p.seq, p.count, p.extra), p.payload));
    }
  }

  private onDatagram(m: Buffer, from: string): void {
    if (from !== this.peerAddr) { this.drops.wrong_source++; return; }
    const r = this.codec.open(m);
    if (!r.ok) { this.drops[r.why]++; return; }
    const h = r.h;
    if (h.type !== Type.DATA && h.type !== Type.ACK && h.type !== Type.HELLO) { this.drops.type++; return; }
    // A count or length that does not match the payload: nothing in it is used (the peer is buggy or lying).
    if (!shapeOk(h, r.payload)) { this.drops.count++; return; }
    const hello = h.type === Type.HELLO
      ? { nonce: r.payload.readBigUInt64BE(0), echo: r.payload.readBigUInt64BE(8), challenge: (h.flags & F_CHALLENGE) !== 0 } : null;
    const v = this.sessions.receive(h, hello, this.d.now());
    if (v.kind === 'drop') { this.drops[v.why]++; return; }
    if (v.kind === 'challenge') {
      // Unknown session (the peer restarted, or an old incarnation's HELLO replayed): it must echo a fresh nonce.
      this.sendHello(F_CHALLENGE, v.to, v.nonce, v.echo);
      return;
    }
    if (v.kind === 'confirmed') this.onPeerSession(h.session, v.first);
    this.c.rx_msgs++; this.c.rx_bytes += m.length;
    const now = this.d.now();
    const wasAway = this.peerAway(now);
    this.peerHeardAt = now;
    if (wasAway && this.unacked.length) {
      // Back from away: no need to wait out a long backed-off RTO for what is still in flight.
      this.rto = this.rtoBase();
      if (this.rtoTimer) { clearTimeout(this.rtoTimer); this.rtoTimer = null; }
      this.resendAll(now);
      this.armRto();
    }
    // Messages addressed to an earlier incarnation of ours carry nothing we can use.
    if (h.peerSession !== 0n && h.peerSession !== this.sessions.session) { this.drops.stale_session++; return; }
    // A HELLO's ack means nothing: it may be addressed to a session its sender has not confirmed yet, with the
    // sequence numbers of the link before (an old ack there once emptied a fresh window).
    if (h.peerSession === this.sessions.session && h.type !== Type.HELLO) this.onAck(h.ack, (h.flags & F_NACK) !== 0 && h.type === Type.ACK);
    if (hello) {
      this.c.hellos_rx++;
      if (hello.nonce !== 0n) this.peerNonce = hello.nonce;
      if ((h.flags & F_WANT_BULK) && this.bulkServedFor !== h.session) this.serveBulk(h.session);
      // It does not know us yet (or asks us to prove we are alive): answer its challenge. The ACK tells it we
      // know it (ACKs go only to a confirmed peer).
      if (hello.challenge || h.peerSession !== this.sessions.session) this.sendHello(0, h.session, 0n, hello.nonce);
      this.sendControl(Type.ACK, 0);
    } else if (h.type === Type.ACK) {
      this.c.acks_rx++;
      this.pump();
    } else if (h.type === Type.DATA) {
      if (h.peerSession !== this.sessions.session) { this.drops.stale_session++; return; }
      this.onData(h, r.payload);
    }
  }

  /**
   * Our packet numbers ran out (2^64: never in practice, but it must not stall) and a new session began. The peer
   * confirms it like a restart and drops what was in flight, so our side of the link starts over too: an active
   * node sends its whole table again, a passive one asks for the peer's.
   */
  private ownRollover(): void {
    this.d.log.warn('statesync: packet numbers exhausted; starting a new session', { session: this.sessions.session.toString(16) });
    this.unacked = []; this.nextSeq = this.initialSeq; this.expect = this.initialSeq; this.unackedRx = 0;
    this.bulkEndPending = false; this.bulkStartPending = 0;
    if (this.master) { this.core.x.ssQueueAll(); this.afterCoreWork(); } else if (this.bulk === 'done') this.bulk = 'waiting';
  }

  private onPeerSession(s: bigint, first: boolean): void {
    this.expect = this.initialSeq;
    this.unackedRx = 0;
    this.peerNonce = 0n;
    // What we had in flight went to a process that no longer exists; it asks for a bulk if it needs one.
    this.unacked = [];
    this.nextSeq = this.initialSeq;
    this.bulkEndPending = false; this.bulkStartPending = 0;
    if (!first) this.c.peer_restarts++;
    this.d.log.info(first ? 'statesync: peer found' : 'statesync: peer restarted', { peer: this.peerAddr, session: s.toString(16) });
  }

  private onAck(ack: number, nack: boolean): void {
    let k = 0;
    while (k < this.unacked.length && seqLe(this.unacked[k].seq, ack)) k++;
    if (k > 0) {
      const last = this.unacked[k - 1];
      if (!last.resent) this.rttSample(this.d.now() - last.sentAt);
      this.unacked.splice(0, k);
      this.rto = this.rtoBase();
    }
    // One go-back-N round per round trip: later NACKs were triggered by messages already resent.
    const now = this.d.now();
    if (nack && this.unacked.length && now - this.lastResendAt > Math.max(5, this.srtt)) this.resendAll(now);
    if (k > 0) this.pump();
  }

  /** RFC 6298 smoothing, from acks of messages sent once (Karn). */
  private rttSample(ms: number): void {
    if (this.srtt === 0) { this.srtt = ms; this.rttvar = ms / 2; return; }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
    this.srtt = 0.875 * this.srtt + 0.125 * ms;
  }
  private rtoBase(): number { if (this.srtt === 0) return RTO_INITIAL_MS; return Math.min(RTO_BASE_MAX_MS, Math.max(RTO_MIN_MS, this.srtt + 4 * this.rttvar)); }

  private onData(h: Header, payload: Buffer): void {
    if (seqLt(h.seq, this.expect)) { this.drops.duplicate++; this.scheduleAck(true); return; }
    if (h.seq !== this.expect) {
      this.drops.out_of_order++;
      // While stalled, a NACK would only make the sender resend what we cannot take yet.
      const now = this.d.now();
      if (!this.rxStalled && now - this.lastNackAt > 5) { this.lastNackAt = now; this.sendControl(Type.ACK, F_NACK); }
      return;
    }
    // Not taken (no ack): once the backlog has drained to half, a NACK asks the sender to resend from here.
    if (this.backlogStates > 0 && this.backlogStates + h.count > this.cfg.backlog_max) { this.drops.backlog_full++; this.rxStalled = true; return; }
    this.expect = seqAdd(this.expect, 1);
    if (h.flags & F_BULK_START) {
      // A bulk cannot hold more states than our table: a bigger announcement would only stretch the timeout below.
      if (h.extra > this.core.x.ssCapacity()) { this.drops.bulk_count++; h.extra = this.core.x.ssCapacity(); }
      this.bulkGen++;
      this.bulkExpected = h.extra; this.bulkReceived = 0; this.bulkFirstAt = this.d.now(); this.bulkReceivedMs = -1;
      if (this.bulk === 'waiting' || this.bulk === 'timeout') {
        this.bulk = 'receiving';
        // Like pfsync: once the peer answers, allow time in proportion to the table it announced.
        if (this.bulkTimer) clearTimeout(this.bulkTimer);
        this.bulkTimer = this.after(this.cfg.bulk_timeout_ms + h.extra / 20, () => this.bulkTimedOut());
      }
      this.d.log.info('statesync: bulk from the peer started', { states: h.extra });
    }
    if (this.bulk === 'receiving') this.bulkReceived += h.count;
    let barrier = 0;
    if ((h.flags & F_BULK_END) && this.bulk === 'receiving') {
      // Every state is in our hands; the bulk is complete once the kernel has answered the barrier after them.
      this.bulk = 'committing';
      this.bulkReceivedMs = this.d.now() - this.bulkFirstAt;
      this.c.bulks_received++;
      barrier = this.bulkGen;
    }
    if (payload.length || barrier) {
      this.backlog.push({ payload, count: h.count, liberal: this.master ? 0 : 1, barrier });
      this.backlogStates += h.count;
      this.taken++;
      this.drainSoon();
    }
    this.scheduleAck(false);
  }

  private drainSoon(): void {
    if (this.drainScheduled || this.stopped) return;
    this.drainScheduled = true;
    setImmediate(() => { this.drainScheduled = false; this.drain(); });
  }

  /** Apply a slice of the received messages to the table and the kernel; the rest waits for the next turn. */
  private drain(): void {
    if (this.stopped) return;
    const x = this.core.x;
    const t0 = this.d.now();
    for (let k = 0; k < DRAIN_SLICE && this.backlogHead < this.backlog.length; k++) {
      const it = this.backlog[this.backlogHead++];
      this.backlogStates -= it.count;
      this.applied++;
      if (it.payload.length) {
        this.core.peerRx().set(it.payload);
        // Injected TCP starts BE_LIBERAL on a passive node (window tracking re-learns after takeover); a state
        // taken while active but applied after turning passive is passive's too.
        const n = x.ssApply(this.d.now(), it.payload.length, it.liberal || !this.master ? 1 : 0);
        if (n < it.count) this.drops.bad_items += it.count - n;
        this.flushKernel(false);
      }
      // Netlink handles one socket's requests in order: the barrier's answer means every state is in.
      if (it.barrier) { this.flushKernel(true); x.ssBarrier(); this.barrierGen = it.barrier; }
    }
    this.flushKernel(true);
    if (this.inBulk()) this.bulkBusyMs += this.d.now() - t0;
    if (this.rxStalled && this.backlogStates <= this.cfg.backlog_max / 2) {
      this.rxStalled = false;
      this.sendControl(Type.ACK, F_NACK);
    }
    if (this.backlogHead < this.backlog.length) {
      if (this.backlogHead >= 4096) { this.backlog = this.backlog.slice(this.backlogHead); this.backlogHead = 0; }
      this.drainSoon();
    } else { this.backlog = []; this.backlogHead = 0; }
    // Marks only grow, so the due waiters are at the front.
    while (this.drainWaiters.length && this.drainWaiters[0].mark <= this.applied) this.drainWaiters.shift()!.fn();
  }

  /** Run `fn` once every state taken so far has gone to the kernel (later arrivals do not hold it up). */
  private whenApplied(fn: () => void): void {
    if (this.applied >= this.taken) fn(); else this.drainWaiters.push({ mark: this.taken, fn });
  }

  private scheduleAck(now: boolean): void {
    this.unackedRx++;
    if (now || this.unackedRx >= ACK_EVERY) { this.sendControl(Type.ACK, 0); return; }
    if (!this.ackTimer) this.ackTimer = setTimeout(() => { this.ackTimer = null; this.sendControl(Type.ACK, 0); }, ACK_DELAY_MS);
  }

  private serveBulk(forSession: bigint): void {
    this.bulkServedFor = forSession;
    // States we took from the peer but have not applied yet are not in the table: they belong in the bulk too.
    this.whenApplied(() => { if (!this.stopped && this.sessions.peer === forSession && this.bulkServedFor === forSession) this.sendBulk(); });
  }

  private sendBulk(): void {
    const n = this.core.x.ssQueueAll();
    this.bulkStartPending = Math.max(1, n);
    this.bulkEndPending = true;
    this.c.bulks_sent++;
    this.d.log.info('statesync: peer asked for the whole table; sending', { states: n });
    this.pump();
  }

  private bulkTimedOut(): void {
    if (this.bulk === 'done') return;
    this.d.log.warn('statesync: no complete bulk from the peer in time; no longer demoting (the peer may be down)', { bulk_timeout_ms: this.cfg.bulk_timeout_ms, state: this.bulk, received: this.bulkReceived });
    this.bulk = 'timeout';
    this.d.demote(Demote.BULK_SYNC, false);
  }

  private bulkComplete(): void {
    this.bulk = 'done';
    this.bulkDoneMs = this.d.now() - this.bulkStartedAt;
    if (this.bulkFirstAt >= 0) this.bulkTransferMs = this.d.now() - this.bulkFirstAt;
    if (this.bulkTimer) { clearTimeout(this.bulkTimer); this.bulkTimer = null; }
    this.d.demote(Demote.BULK_SYNC, false);
    this.d.log.info('statesync: bulk complete; the kernel holds the peer\'s table', { states: this.bulkReceived, ms: Math.round(this.bulkDoneMs) });
  }

  // ------------------------------------------------------------------ plumbing

  private after(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => { this.timers.delete(t); if (!this.stopped) fn(); }, ms);
    this.timers.add(t);
    return t;
  }
  private clearTimer(t: NodeJS.Timeout): void { clearTimeout(t); this.timers.delete(t); }
  private every(ms: number, fn: () => void): void {
    const t = setInterval(() => { if (!this.stopped) fn(); }, ms);
    this.timers.add(t);
  }

  stop(_graceful: boolean): void {
    this.stopped = true;
    for (const t of this.timers) { clearTimeout(t); clearInterval(t); }
    for (const t of [this.ackTimer, this.rtoTimer, this.flushTimer, this.bulkTimer, this.liberalTimer, this.reinjectTimer]) if (t) clearTimeout(t);
    for (const w of this.watches) native.unwatch(w);
    if (this.evWatch) native.unwatch(this.evWatch);
    this.backlog = []; this.backlogHead = 0; this.backlogStates = 0; this.drainWaiters = [];
    this.ct?.close();
    try { this.udp?.close(); } catch { /* closed */ }
  }

  status(): Record<string, unknown> {
    if (!this.core) return { enabled: true, running: false };
    const x = this.core.x;
    let kernel = -1;
    try { kernel = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8').trim()); } catch { /* none */ }
    const now = this.d.now();
    return {
      enabled: true,
      mode: this.master ? 'active' : 'passive',
      states_kernel: kernel,
      states_table: x.ssCount(),
      table_capacity: x.ssCapacity(),
      table_bytes_per_state: x.ssBytesPerSlot(),
      queue: x.ssQueueLen(),
      backlog: this.backlogStates,
      in_flight: this.unacked.length,
      link: { session: this.sessions.session.toString(16).padStart(16, '0'), next_pn: this.sessions.peekPn().toString(), next_seq: this.nextSeq, expect_seq: this.expect },
      peer: { address: this.peerAddr, session: this.sessions.peer ? this.sessions.peer.toString(16).padStart(16, '0') : null, knows_us: this.sessions.peerKnowsUs, last_heard_ms_ago: this.peerHeardAt < 0 ? null : Math.round(now - this.peerHeardAt) },
      bulk: { state: this.bulk, expected: this.bulkExpected, received: this.bulkReceived, took_ms: this.bulkDoneMs < 0 ? null : Math.round(this.bulkDoneMs), received_ms: this.bulkReceivedMs < 0 ? null : Math.round(this.bulkReceivedMs * 10) / 10, transfer_ms: this.bulkTransferMs < 0 ? null : Math.round(this.bulkTransferMs * 10) / 10, busy_ms: Math.round(this.bulkBusyMs), kernel_busy_ms: Math.round(this.bulkKernelMs) },
      window_full: this.windowFull,
      messages: { ...this.c },
      dropped: { ...this.drops },
      // States from the authenticated peer refused by the policy (policy.ts), one counter per reason.
      rejected: (({ rx_to_self, rx_zone, rx_mark, rx_snat, rx_dnat, rx_timeout_clamped }) => ({ to_self: rx_to_self, zone: rx_zone, mark: rx_mark, snat: rx_snat, dnat: rx_dnat, timeout_clamped: rx_timeout_clamped }))(this.core.stats()),
      core: this.core.stats(),
    };
  }
}
