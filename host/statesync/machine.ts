// The state sync session as a sans-IO state machine (the model of the CARP core and quinn-proto): datagrams
// from the peer, kernel reads, role changes and time go in as arguments; datagrams to send, kernel requests,
// actions (demote, resubscribe, dump, log) and the next deadline come out. It never reads a clock, a socket or
// a random source of its own (`rand` is an option), so two of them run against each other in virtual time
// (test/helpers/syncpair.ts). host/statesync/service.ts owns the sockets, netlink and one timer.
//
// Inside: the session (session.ts: who the peer is), go-back-N with an RTT-derived RTO, the "away" back-off,
// the bulk state machine (barriers by generation), the in-order backlog of received states, role changes and
// the kernel pump. Every timer is a row of one table (`T`), design in docs/statesync.md "The session machine".
import { SyncCore } from './core.js';
import { Codec, Type, F_BULK_START, F_BULK_END, F_WANT_BULK, F_CHALLENGE, F_CAP_V6, F_NACK, MAX_PAYLOAD, helloPayload, shapeOk, type Header } from './protocol.js';
import type { StateSyncConfig } from './config.js';
import { Sessions, seqLt, seqLe, seqAdd } from './session.js';

/** Where the link's counters start (tests start them near their limits); both nodes must use the same initialSeq. */
export interface LinkOptions { initialSeq?: number; initialPn?: bigint }

export interface MachineOptions extends LinkOptions {
  /** Source of session ids and nonces (crypto random by default; tests pass a seeded one). */
  rand?: () => bigint;
  /**
   * A clock used only to measure how long applying took (status `busy_ms`); it decides nothing. Absent: 0.
   * The host passes its monotonic clock; virtual-time tests leave it out.
   */
  meter?: () => number;
  /** The peer's address, for log lines only. */
  peer?: string;
  /** A SyncCore to use (tests may share a debug build); by default one of `cfg.capacity` is made. */
  core?: SyncCore;
}

/**
 * Unacknowledged DATA messages in flight (about 94 KB, ~1850 states: a few ms of the peer's work). The
 * link's own delay is tiny; a bigger window only queues work at the receiver and makes timeouts spurious.
 */
export const WINDOW = 64;
/** Retransmit everything unacknowledged after RTO without progress (go-back-N); RTO follows the measured RTT. */
export const RTO_MIN_MS = 30;
/** Cap of the RTT-derived RTO: a lost last datagram of a burst (no later one to reveal the gap) costs at most this. */
export const RTO_BASE_MAX_MS = 80;
/** Before the first RTT sample (the first bulk window can take the peer a while to inject). */
export const RTO_INITIAL_MS = 250;
export const RTO_MAX_MS = 1000;
/**
 * A peer not heard (no datagram, not even a keepalive) for this long is away: retransmissions shrink to one
 * probe (the oldest message) backed off up to RTO_AWAY_MAX_MS, so a node alone for days costs nothing. The
 * first datagram heard from it again resends the window at once.
 */
export const PEER_AWAY_MS = 5000;
export const RTO_AWAY_MAX_MS = 30_000;
/** Acknowledge after this many in-order messages, or this long after the first unacknowledged one. */
export const ACK_EVERY = 32;
export const ACK_DELAY_MS = 2;
export const HELLO_MS = 300;
export const KEEPALIVE_MS = 1000;
/** Batches leave this long after the first change queued (coalescing window). */
export const FLUSH_DELAY_MS = 1;
/** Kernel requests are handed out once this much piled up (and at the end of each step). */
const NLTX_FLUSH = 48 * 1024;
/**
 * A node that just turned passive still forwards the packets already on their way to it for a few ms (until
 * the new master's gratuitous ARP has moved the flows). A straggler that reaches an entry re-created for the
 * next takeover initialises its window tracking, which is stale a second later. So the re-creation waits this
 * long; a takeover before then re-creates at once (the entries are liberal then anyway).
 */
export const REINJECT_SETTLE_MS = 500;
/** Received messages applied per step (~120 creates, under 1 ms of kernel work), so reads and acks go on. */
export const DRAIN_SLICE = 4;
/** Timers fired in one handleTimeout call, at most (each re-arms at a later time, so this is never reached). */
const FIRE_MAX = 64;

/**
 * The timer table: one deadline (monotonic ms, Infinity = not armed) per row. `nextDeadline()` is the earliest
 * row, or the current time while immediate work (a backlog slice, a table pass) waits for its step.
 */
export const T = {
  /** Delayed acknowledgement of received DATA (ACK_DELAY_MS after the first unacknowledged message). */
  ACK: 0,
  /** Retransmission: the oldest unacknowledged DATA is checked against the RTO. */
  RTO: 1,
  /** Coalescing window: queued states go out FLUSH_DELAY_MS after the first change. */
  FLUSH: 2,
  /** Bulk on join: stop demoting CARP if the peer's table has not arrived by then. */
  BULK: 3,
  /** HELLO every HELLO_MS while the peer is unknown, does not know us, or we want its table. */
  HELLO: 4,
  /** ACK every KEEPALIVE_MS to a known peer (it tells the peer we are here: not away). */
  KEEPALIVE: 5,
  /** Active node: re-read the kernel table every refresh_s (timeouts refreshed by traffic make no events). */
  REFRESH: 6,
  /** liberal_ms after becoming active: injected TCP states become strictly window-tracked. */
  LIBERAL: 7,
  /** REINJECT_SETTLE_MS after turning passive: re-create TCP states with fresh window tracking. */
  REINJECT: 8,
} as const;
export const TIMER_NAMES = ['ack', 'rto', 'flush', 'bulk', 'hello', 'keepalive', 'refresh', 'liberal', 'reinject'] as const;

/** The netlink sockets the machine reads from (the host reads into `core.nlRx()` and passes the length). */
export type KernelSocket = 'events' | 'dump' | 'inject';

/** Something the host must do besides sending datagrams and kernel requests. */
export type Action =
  /** Add or remove the bulk-sync CARP demotion (Demote.BULK_SYNC). */
  | { kind: 'demote'; on: boolean }
  /** Replace the event socket with one bound to these ctnetlink groups (then read it). */
  | { kind: 'subscribe'; groups: number }
  /** Ask the kernel for a full table dump with this netlink sequence number (on the dump socket). */
  | { kind: 'dump'; seq: number }
  | { kind: 'log'; level: 'debug' | 'info' | 'warn'; msg: string; fields?: Record<string, unknown> };

interface Pending { seq: number; flags: number; count: number; extra: number; payload: Buffer; sentAt: number; resent?: boolean }
/** A DATA message taken from the peer, not yet applied. `barrier` > 0: it ended bulk number `barrier` (a barrier follows it). */
interface Received { payload: Buffer; count: number; liberal: number; barrier: number }
/** A table pass run in steps (each fills at most half of the core's request buffer); stops when `still()` turns false. */
interface Pass { step: (at: number, now: number) => number; at: number; still: () => boolean; done: () => void }

export type BulkState = 'idle' | 'waiting' | 'receiving' | 'committing' | 'done' | 'timeout';
export const DROP_REASONS = [
  'short', 'magic', 'version', 'length', 'auth', 'replay', 'stale_session', 'wrong_source',
  'out_of_order', 'duplicate', 'bad_items', 'backlog_full',
  'unknown_session', 'challenge_limit', 'type', 'count', 'bulk_count',
] as const;

export class SyncMachine {
  readonly core: SyncCore;
  private readonly codec: Codec;
  private readonly meter: () => number;
  private readonly peerLabel: string;
  private stopped = false;
  private started = false;
  /** This node holds the VIPs (CARP MASTER or MIXED): it follows its kernel and sends. */
  master = false;
  /** The time of the latest call: immediate work is due at it. */
  private lastNow = 0;

  // --- outputs ---
  private tx: Buffer[] = [];
  private txHead = 0;
  private kernelOut: Buffer[] = [];
  private actions: Action[] = [];

  // --- timers ---
  private readonly deadline = new Float64Array(TIMER_NAMES.length).fill(Infinity);

  // --- session and reliability ---
  readonly sessions: Sessions;
  private readonly initialSeq: number;
  /** The nonce of the peer's last challenge, echoed in our HELLOs until it is answered. */
  private peerNonce = 0n;
  /** The confirmed peer session announced CAP_V6: it takes IPv6 items. */
  private peerV6 = false;
  private nextSeq: number;
  private unacked: Pending[] = [];
  private expect: number;       // next in-order DATA seq from the peer
  private unackedRx = 0;
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
  private bulkFirstAt = -1;     // BULK_START arrival (mono ms)
  private bulkBusyMs = 0;       // time spent applying during the bulk (how much of it the receiver was busy)
  private bulkKernelMs = 0;     // of which in the kernel's create calls (reported by the host)
  private windowFull = 0;
  private bulkTransferMs = -1;  // BULK_START → the kernel acknowledged the last state
  private bulkReceivedMs = -1;  // BULK_START → BULK_END taken (this node holds every state of the bulk)
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
  private drainWaiters: { mark: number; fn: () => void }[] = [];
  private taken = 0;            // DATA messages taken into the backlog, ever
  private applied = 0;          // of which applied
  private rxStalled = false;    // the backlog is full: take nothing, NACK nothing, until it drains to half
  private bulkGen = 0;          // numbers the bulks received (BULK_START)
  private barrierGen = 0;       // the bulk whose barrier was last sent to the kernel
  private roleEpoch = 0;
  private passes: Pass[] = [];

  // --- kernel ---
  private dumping = false;
  private dumpQueue = false;
  private dumpAgain = false;
  private dumpSeq = 1;
  /**
   * Started passive: the kernel may hold entries from before this daemon's start (a crash, a restart) whose window
   * tracking went stale while the peer forwarded. Re-create them once the start-up dump has read them.
   */
  private reinjectAfterStartDump = false;

  private c = {
    tx_msgs: 0, rx_msgs: 0, retransmitted: 0, acks_tx: 0, acks_rx: 0, hellos_tx: 0, hellos_rx: 0,
    tx_bytes: 0, rx_bytes: 0, peer_restarts: 0, challenges_tx: 0, bulks_sent: 0, bulks_received: 0, event_overruns: 0, resyncs: 0, rejoins: 0,
    kernel_send_errors: 0, udp_send_errors: 0, refreshes: 0, inject_overruns: 0,
  };
  private drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<typeof DROP_REASONS[number], number>;

  constructor(private readonly cfg: StateSyncConfig, o: MachineOptions = {}) {
    this.codec = new Codec(Buffer.from(cfg.key, 'utf8'));
    this.sessions = new Sessions({ initialPn: o.initialPn, rand: o.rand });
    this.initialSeq = (o.initialSeq ?? 1) >>> 0;
    this.nextSeq = this.initialSeq; this.expect = this.initialSeq;
    this.core = o.core ?? new SyncCore(cfg.capacity);
    this.meter = o.meter ?? (() => 0);
    this.peerLabel = o.peer ?? '';
  }

  // ================================================================== inputs

  /**
   * Begin: read the kernel table (the host has subscribed to `groupsFor(active)` events first, so nothing falls
   * between), demote CARP until the peer's table is here (or bulk_timeout_ms passed), say HELLO.
   */
  start(now: number, active: boolean): void {
    if (this.started) return;
    this.started = true;
    this.lastNow = now;
    this.master = active;
    this.reinjectAfterStartDump = !active;
    this.startDump();
    this.bulk = 'waiting';
    this.bulkStartedAt = now;
    this.action({ kind: 'demote', on: true });
    this.arm(T.BULK, now + this.cfg.bulk_timeout_ms);
    this.helloTick(now);
    this.arm(T.KEEPALIVE, now + KEEPALIVE_MS);
    if (this.cfg.refresh_s > 0) this.arm(T.REFRESH, now + this.cfg.refresh_s * 1000);
  }

  /** The node's CARP role moved: `active` = it holds the VIPs (MASTER or MIXED). */
  setRole(now: number, active: boolean): void {
    this.lastNow = now;
    if (active === this.master || this.stopped) return;
    this.master = active;
    // Subscribe to what this role needs first (the host replaces the event socket), then (when active) re-read.
    this.action({ kind: 'subscribe', groups: groupsFor(active) });
    if (this.master) {
      this.log('info', 'statesync: active; following the kernel table and sending changes', { states: this.core.x.ssCount() });
      // The kernel is now the truth: re-read it (diff queues what differs), then make injected TCP strict again.
      // Taken over before the passive re-creation ran: do it now, and dump once it is done (a dump that runs
      // while entries are deleted and re-created could miss them and send their deletion to the peer).
      const reinject = this.deadline[T.REINJECT] !== Infinity;
      this.disarm(T.REINJECT);
      // States the peer sent before it died go to the kernel first (in order), so the dump finds them all and
      // the strict pass covers them.
      const epoch = ++this.roleEpoch;
      this.whenApplied(() => {
        if (epoch !== this.roleEpoch || this.stopped) return;
        if (reinject) this.reinjectTcp(() => this.master, () => this.startDump()); else this.startDump();
        this.arm(T.LIBERAL, this.lastNow + this.cfg.liberal_ms);
      });
    } else {
      ++this.roleEpoch;
      this.disarm(T.LIBERAL);
      this.log('info', 'statesync: passive; applying the peer\'s states');
      this.arm(T.REINJECT, now + REINJECT_SETTLE_MS);
    }
  }

  /**
   * This node went silent (frozen, starved) while active, and the peer took over and forwarded meanwhile: its
   * kernel entries lag the peer's. Rejoin as a restarted node would: a new session (the peer serves a session
   * one bulk), ask for the peer's whole table, demote CARP until it is applied (or bulk_timeout_ms passed).
   */
  resync(now: number): void {
    this.lastNow = now;
    if (!this.started || this.stopped || this.master) return;
    this.log('info', 'statesync: this node was away while the peer forwarded; asking for its whole table');
    this.c.rejoins++;
    this.sessions.renew();
    this.newSession();
    if (this.bulk === 'receiving' || this.bulk === 'committing') this.bulkGen++;
    this.bulk = 'waiting';
    this.bulkStartedAt = now;
    this.bulkReceived = 0;
    this.action({ kind: 'demote', on: true });
    this.arm(T.BULK, now + this.cfg.bulk_timeout_ms);
    this.helloTick(now);
  }

  /**
   * `len` bytes the host read from a netlink socket into `core.nlRx()`. Returns false when the host should stop
   * reading that socket for now: a dump that ended (or no dump running).
   */
  handleKernel(now: number, sock: KernelSocket, len: number): boolean {
    this.lastNow = now;
    const x = this.core.x;
    if (sock === 'events') {
      x.ssHandleNetlink(now, len, this.master ? 1 : 0, 0);
      this.afterCoreWork(now);
      return true;
    }
    if (sock === 'dump') {
      if (!this.dumping) return false;
      x.ssHandleNetlink(now, len, this.dumpQueue ? 1 : 0, 1);
      if (this.core.dumpDone()) {
        const swept = x.ssDumpEnd(this.dumpQueue ? 1 : 0);
        x.ssResetFlags();
        this.dumping = false;
        this.log('debug', 'statesync: kernel table read', { states: x.ssCount(), gone: swept, queued: x.ssQueueLen() });
        if (this.reinjectAfterStartDump) {
          this.reinjectAfterStartDump = false;
          // Only while passive (it forwards nothing, so no settle delay); stopped by a takeover. Never at or after
          // a takeover: deleting entries the node forwards makes its own stack reset those sessions.
          if (!this.master) this.reinjectTcp(() => !this.master);
        }
        if (this.dumpAgain) { this.dumpAgain = false; this.startDump(); }
      }
      this.afterCoreWork(now);
      return this.dumping;
    }
    x.ssHandleNetlink(now, len, 0, 0);
    if (this.core.barrierAnswered()) {
      x.ssResetFlags();
      // Only the barrier of the latest bulk completes it (a late answer for an earlier one does not).
      if (this.awaitingBarrier()) this.bulkComplete(now);
    }
    // Fix-ups (EEXIST → delete + create, ENOENT → create) go out at once.
    this.flushKernel(true);
    return true;
  }

  /** The kernel dropped messages on a netlink socket (recv failed with ENOBUFS). */
  handleKernelOverrun(now: number, sock: KernelSocket): void {
    this.lastNow = now;
    if (sock === 'events') {
      // Events were lost: the table can only be trusted again after a full re-dump and diff.
      this.c.event_overruns++;
      this.log('warn', 'statesync: conntrack events lost (ENOBUFS); re-dumping the kernel table', { overruns: this.c.event_overruns });
      if (this.master) this.startDump();
    } else if (sock === 'inject') {
      // Kernel answers were lost: perhaps the barrier's. Ask again: it is answered after everything before it.
      this.c.inject_overruns++;
      if (this.awaitingBarrier()) { this.core.x.ssBarrier(); this.flushKernel(true); }
    }
    // A dump reply lost: the dump's end still comes, and the next refresh re-reads.
  }

  /** The host dropped a datagram that did not come from the peer's address. */
  handleWrongSource(): void { this.drops.wrong_source++; }

  /**
   * One UDP datagram from the peer's address. The machine keeps `m` (its payload waits in the backlog) until
   * applied: pass a buffer that is not reused.
   */
  handleDatagram(now: number, m: Buffer): void {
    this.lastNow = now;
    if (this.stopped) return;
    const r = this.codec.open(m);
    if (!r.ok) { this.drops[r.why]++; return; }
    const h = r.h;
    if (h.type !== Type.DATA && h.type !== Type.ACK && h.type !== Type.HELLO) { this.drops.type++; return; }
    // A count or length that does not match the payload: nothing in it is used (the peer is buggy or lying).
    if (!shapeOk(h, r.payload)) { this.drops.count++; return; }
    const hello = h.type === Type.HELLO
      ? { nonce: r.payload.readBigUInt64BE(0), echo: r.payload.readBigUInt64BE(8), challenge: (h.flags & F_CHALLENGE) !== 0 } : null;
    const v = this.sessions.receive(h, hello, now);
    if (v.kind === 'drop') { this.drops[v.why]++; return; }
    if (v.kind === 'challenge') {
      // Unknown session (the peer restarted, or an old incarnation's HELLO replayed): it must echo a fresh nonce.
      this.sendHello(F_CHALLENGE, v.to, v.nonce, v.echo);
      return;
    }
    // IPv6 items go only to a peer session that said it takes them (protocol.ts F_CAP_V6). Sessions are confirmed
    // by a HELLO, so this is known before the first DATA to it.
    if (v.kind === 'confirmed' || (hello && h.session === this.sessions.peer)) this.peerV6 = (h.flags & F_CAP_V6) !== 0;
    if (v.kind === 'confirmed') this.onPeerSession(h.session, v.first);
    this.c.rx_msgs++; this.c.rx_bytes += m.length;
    const wasAway = this.peerAway(now);
    this.peerHeardAt = now;
    if (wasAway && this.unacked.length) {
      // Back from away: no need to wait out a long backed-off RTO for what is still in flight.
      this.rto = this.rtoBase();
      this.disarm(T.RTO);
      this.resendAll(now);
      this.armRto(now);
    }
    // Messages addressed to an earlier incarnation of ours carry nothing we can use.
    if (h.peerSession !== 0n && h.peerSession !== this.sessions.session) { this.drops.stale_session++; return; }
    // A HELLO's ack means nothing: it may be addressed to a session its sender has not confirmed yet, with the
    // sequence numbers of the link before (an old ack there would empty a fresh window).
    if (h.peerSession === this.sessions.session && h.type !== Type.HELLO) this.onAck(now, h.ack, (h.flags & F_NACK) !== 0 && h.type === Type.ACK);
    if (hello) {
      this.c.hellos_rx++;
      if (hello.nonce !== 0n) this.peerNonce = hello.nonce;
      if ((h.flags & F_WANT_BULK) && this.bulkServedFor !== h.session) this.serveBulk(h.session);
      // It does not know us yet (or asks us to prove we are alive): answer its challenge. The ACK tells it we
      // know it (ACKs go only to a confirmed peer).
      if (hello.challenge || h.peerSession !== this.sessions.session) this.sendHello(0, h.session, 0n, hello.nonce);
      this.sendAck(0);
    } else if (h.type === Type.ACK) {
      this.c.acks_rx++;
      this.pump(now);
    } else if (h.type === Type.DATA) {
      if (h.peerSession !== this.sessions.session) { this.drops.stale_session++; return; }
      this.onData(now, h, r.payload);
    }
  }

  /** Time passed: run the due timers (earliest first) and one step of the immediate work. */
  handleTimeout(now: number): void {
    this.lastNow = now;
    if (this.stopped) return;
    for (let i = 0; i < FIRE_MAX; i++) {
      let k = -1;
      for (let j = 0; j < this.deadline.length; j++) if (this.deadline[j] <= now && (k < 0 || this.deadline[j] < this.deadline[k])) k = j;
      if (k < 0) break;
      this.deadline[k] = Infinity;
      this.fire(k, now);
    }
    if (this.backlogHead < this.backlog.length) this.drain(now);
    if (this.passes.length) this.stepPasses(now);
  }

  /** The host's kernel send of the bulk's requests took `ms` (status `kernel_busy_ms`); `errors` sends failed. */
  noteKernelSend(ms: number, errors: number): void {
    if (this.inBulk()) this.bulkKernelMs += ms;
    this.c.kernel_send_errors += errors;
  }
  noteUdpSendError(): void { this.c.udp_send_errors++; }

  /** Stop: nothing more goes out; what waited for the kernel is forgotten. */
  stop(): void {
    this.stopped = true;
    this.deadline.fill(Infinity);
    this.backlog = []; this.backlogHead = 0; this.backlogStates = 0; this.drainWaiters = []; this.passes = [];
  }

  // ================================================================== outputs

  /** The next datagram to send to the peer, or null. */
  pollTransmit(): Buffer | null {
    if (this.txHead >= this.tx.length) { if (this.tx.length) { this.tx = []; this.txHead = 0; } return null; }
    return this.tx[this.txHead++];
  }
  /** The next run of ctnetlink requests for the inject socket (in order), or null. */
  pollKernel(): Buffer | null { return this.kernelOut.shift() ?? null; }
  pollAction(): Action | null { return this.actions.shift() ?? null; }
  /**
   * When handleTimeout must be called next (monotonic ms; Infinity = only inputs matter). Immediate work (a
   * backlog slice, a table pass step) makes it the time of the latest call: the host runs it on the next turn
   * of its event loop, after the I/O that is ready.
   */
  nextDeadline(): number {
    if (this.stopped) return Infinity;
    if (this.hasImmediateWork()) return this.lastNow;
    let d = Infinity;
    for (let j = 0; j < this.deadline.length; j++) if (this.deadline[j] < d) d = this.deadline[j];
    return d;
  }
  hasImmediateWork(): boolean { return !this.stopped && (this.backlogHead < this.backlog.length || this.passes.length > 0); }
  /** A timer's deadline (tests and status). */
  timer(k: number): number { return this.deadline[k]; }

  /** A dump is running: the host reads the dump socket (handleKernel returns false once it ended). */
  get isDumping(): boolean { return this.dumping; }
  get bulkState(): BulkState { return this.bulk; }
  get inFlight(): number { return this.unacked.length; }
  get backlogLength(): number { return this.backlogStates; }
  get currentRto(): number { return this.rto; }
  get counters(): Readonly<typeof this.c> { return this.c; }
  get dropped(): Readonly<typeof this.drops> { return this.drops; }
  inBulk(): boolean { return this.bulk === 'receiving' || this.bulk === 'committing'; }

  // ================================================================== timers

  private arm(k: number, at: number): void { this.deadline[k] = at; }
  private disarm(k: number): void { this.deadline[k] = Infinity; }

  private fire(k: number, now: number): void {
    switch (k) {
      case T.ACK: this.sendAck(0); break;
      case T.RTO: this.onRto(now); break;
      case T.FLUSH: this.pump(now); break;
      case T.BULK: this.bulkTimedOut(); break;
      case T.HELLO: this.helloTick(now); break;
      case T.KEEPALIVE:
        this.arm(T.KEEPALIVE, now + KEEPALIVE_MS);
        if (this.sessions.peer) this.sendAck(0);
        break;
      case T.REFRESH:
        this.arm(T.REFRESH, now + this.cfg.refresh_s * 1000);
        if (this.master) this.startDump(true);
        break;
      case T.LIBERAL: this.strictPass(); break;
      case T.REINJECT: this.reinjectTcp(() => !this.master); break;
    }
  }

  // ================================================================== kernel side

  /** Re-read the kernel table; `refresh` = the periodic timeout refresh (counted apart from resyncs). */
  private startDump(refresh = false): void {
    if (this.dumping) { this.dumpAgain = true; return; }
    this.dumping = true;
    this.dumpQueue = this.master;
    if (refresh) this.c.refreshes++; else this.c.resyncs++;
    this.core.x.ssDumpBegin();
    this.core.x.ssResetFlags();
    this.action({ kind: 'dump', seq: this.dumpSeq++ });
  }

  /** The latest bulk's barrier is out and its answer still counts (the bulk may have timed out meanwhile). */
  private awaitingBarrier(): boolean {
    return this.barrierGen !== 0 && this.barrierGen === this.bulkGen && (this.bulk === 'committing' || this.bulk === 'timeout');
  }

  /** Hand the core's pending kernel requests out (all, or only once enough piled up). */
  private flushKernel(all: boolean): void {
    const x = this.core.x;
    const n = x.ssNlTxLen();
    if (n === 0 || (!all && n < NLTX_FLUSH)) return;
    this.kernelOut.push(Buffer.from(this.core.nlTx()));
    x.ssNlTxReset();
  }

  private afterCoreWork(now: number): void {
    if (this.core.x.ssQueueLen() > 0 && this.deadline[T.FLUSH] === Infinity) this.arm(T.FLUSH, now + FLUSH_DELAY_MS);
  }

  /** After forwarding, our TCP entries' window tracking goes stale: re-create them so a takeover starts afresh. */
  private reinjectTcp(still: () => boolean, then?: () => void): void {
    this.runPass((at, now) => this.core.x.ssReinjectPass(at, now), still, () => {
      this.log('info', 'statesync: TCP states re-created with fresh window tracking', { at: this.master ? 'takeover' : 'passive', states: this.core.x.ssCount() });
      then?.();
    });
  }

  private strictPass(): void {
    this.runPass((at) => this.core.x.ssLiberalPass(at, 0), () => this.master,
      () => this.log('info', 'statesync: injected TCP states are strictly window-tracked again'));
  }

  /** Start a table pass: its first step runs now, the rest one per step of immediate work. */
  private runPass(step: Pass['step'], still: () => boolean, done: () => void): void {
    const p: Pass = { step, at: 0, still, done };
    if (this.stepPass(p)) this.passes.push(p);
  }

  /** One step of `p`; true while it has more to do. */
  private stepPass(p: Pass): boolean {
    if (this.stopped || !p.still()) return false;
    const next = p.step(p.at, this.lastNow);
    this.flushKernel(true);
    if (next >= 0) { p.at = next; return true; }
    p.done();
    return false;
  }

  private stepPasses(_now: number): void {
    const run = this.passes;
    this.passes = [];
    for (const p of run) if (this.stepPass(p)) this.passes.push(p);
  }

  // ================================================================== peer side

  private header(type: number, flags: number, seq = 0, count = 0, extra = 0, to = this.sessions.peer): Header {
    const before = this.sessions.session;
    const pn = this.sessions.nextPn();
    if (this.sessions.session !== before) this.ownRollover();
    return { type, flags, session: this.sessions.session, peerSession: to, pn, seq, ack: seqAdd(this.expect, -1), count, extra };
  }

  private sendRaw(b: Buffer): void {
    this.c.tx_msgs++; this.c.tx_bytes += b.length;
    this.tx.push(b);
  }

  private sendAck(flags: number): void {
    this.c.acks_tx++; this.unackedRx = 0; this.disarm(T.ACK);
    this.sendRaw(this.codec.seal(this.header(Type.ACK, flags), Buffer.alloc(0)));
  }

  /** A HELLO to session `to` (0n: whoever the peer is now): our challenge `nonce` (0n = none) and the `echo` of its. */
  private sendHello(flags: number, to: bigint, nonce: bigint, echo: bigint): void {
    this.c.hellos_tx++;
    if (flags & F_CHALLENGE) this.c.challenges_tx++;
    this.sendRaw(this.codec.seal(this.header(Type.HELLO, flags | F_CAP_V6, 0, 0, 0, to), helloPayload(nonce, echo)));
  }

  /** The active node's kernel is the truth: only a passive one asks for (or waits on) the peer's table. */
  private wantsBulk(): boolean { return !this.master && (this.bulk === 'waiting' || this.bulk === 'timeout'); }

  /** Until the peer is heard (and while we still want its table), say hello. */
  private helloTick(now: number): void {
    // A peer that shows up late (after our timeout) still hands us its table.
    // The active node's kernel is the truth: it never asks for (or waits on) the peer's table.
    const wantBulk = this.wantsBulk();
    if (!this.sessions.peer || !this.sessions.peerKnowsUs || wantBulk) this.sendHello(wantBulk ? F_WANT_BULK : 0, this.sessions.peer, 0n, this.peerNonce);
    this.arm(T.HELLO, now + HELLO_MS);
  }

  /** Move queued states and bulk markers into DATA messages while the window allows. */
  private pump(now: number): void {
    if (this.stopped || !this.sessions.peer || !this.sessions.peerKnowsUs) return;
    const x = this.core.x;
    // A new session of ours (pn exhausted) mid-loop waits for the peer to confirm it.
    while (this.unacked.length < WINDOW && this.sessions.peerKnowsUs) {
      if (this.bulkStartPending) {
        this.sendData(now, F_BULK_START, 0, this.bulkStartPending, Buffer.alloc(0));
        this.bulkStartPending = 0;
        continue;
      }
      const n = x.ssPollBatch(now, MAX_PAYLOAD, this.peerV6 ? 1 : 0);
      if (n > 0) { this.sendData(now, 0, n, 0, Buffer.from(this.core.txBatch())); continue; }
      if (this.bulkEndPending) { this.bulkEndPending = false; this.sendData(now, F_BULK_END, 0, 0, Buffer.alloc(0)); }
      break;
    }
    if (x.ssQueueLen() > 0 && this.unacked.length < WINDOW) this.afterCoreWork(now);
    else if (x.ssQueueLen() > 0) this.windowFull++;
  }

  private sendData(now: number, flags: number, count: number, extra: number, payload: Buffer): void {
    const p: Pending = { seq: this.nextSeq, flags, count, extra, payload, sentAt: now };
    this.nextSeq = seqAdd(this.nextSeq, 1);
    this.unacked.push(p);
    this.sendRaw(this.codec.seal(this.header(Type.DATA, flags, p.seq, count, extra), payload));
    this.armRto(now);
  }

  private armRto(now: number): void {
    if (this.deadline[T.RTO] !== Infinity || this.unacked.length === 0) return;
    this.arm(T.RTO, now + this.rto);
  }

  private onRto(now: number): void {
    if (this.unacked.length === 0) return;
    if (now - this.unacked[0].sentAt >= this.rto) {
      const away = this.peerAway(now);
      if (away) this.resend(now, this.unacked.slice(0, 1));
      else this.resendAll(now);
      // Back off while nothing gets through (link down or dropping), so a dead link costs little.
      this.rto = Math.min(this.rto * 2, away ? RTO_AWAY_MAX_MS : RTO_MAX_MS);
    }
    this.armRto(now);
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

  /**
   * Our packet numbers ran out (2^64: never in practice, but it must not stall) and a new session began. The peer
   * confirms it like a restart and drops what was in flight, so our side of the link starts over too: an active
   * node sends its whole table again, a passive one asks for the peer's.
   */
  private ownRollover(): void {
    this.log('warn', 'statesync: packet numbers exhausted; starting a new session', { session: this.sessions.session.toString(16) });
    this.newSession();
    if (this.master) { this.core.x.ssQueueAll(); this.afterCoreWork(this.lastNow); } else if (this.bulk === 'done') this.bulk = 'waiting';
  }

  /** Our side of the link starts over with a new session of ours. */
  private newSession(): void {
    this.unacked = []; this.nextSeq = this.initialSeq; this.expect = this.initialSeq; this.unackedRx = 0;
    this.bulkEndPending = false; this.bulkStartPending = 0;
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
    // A bulk from the dead incarnation will never end: ask the new one at once rather than wait for the timeout.
    if (!first && this.bulk === 'receiving') { this.bulk = 'waiting'; this.bulkGen++; }
    this.log('info', first ? 'statesync: peer found' : 'statesync: peer restarted', { peer: this.peerLabel, session: s.toString(16) });
  }

  private onAck(now: number, ack: number, nack: boolean): void {
    let k = 0;
    while (k < this.unacked.length && seqLe(this.unacked[k].seq, ack)) k++;
    if (k > 0) {
      const last = this.unacked[k - 1];
      if (!last.resent) this.rttSample(now - last.sentAt);
      this.unacked.splice(0, k);
      this.rto = this.rtoBase();
    }
    // One go-back-N round per round trip: later NACKs were triggered by messages already resent.
    if (nack && this.unacked.length && now - this.lastResendAt > Math.max(5, this.srtt)) this.resendAll(now);
    if (k > 0) this.pump(now);
  }

  /** RFC 6298 smoothing, from acks of messages sent once (Karn). */
  private rttSample(ms: number): void {
    if (this.srtt === 0) { this.srtt = ms; this.rttvar = ms / 2; return; }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
    this.srtt = 0.875 * this.srtt + 0.125 * ms;
  }
  private rtoBase(): number { if (this.srtt === 0) return RTO_INITIAL_MS; return Math.min(RTO_BASE_MAX_MS, Math.max(RTO_MIN_MS, this.srtt + 4 * this.rttvar)); }

  private onData(now: number, h: Header, payload: Buffer): void {
    if (seqLt(h.seq, this.expect)) { this.drops.duplicate++; this.scheduleAck(now, true); return; }
    if (h.seq !== this.expect) {
      this.drops.out_of_order++;
      // While stalled, a NACK would only make the sender resend what we cannot take yet.
      if (!this.rxStalled && now - this.lastNackAt > 5) { this.lastNackAt = now; this.sendAck(F_NACK); }
      return;
    }
    // Not taken (no ack): once the backlog has drained to half, a NACK asks the sender to resend from here.
    if (this.backlogStates > 0 && this.backlogStates + h.count > this.cfg.backlog_max) { this.drops.backlog_full++; this.rxStalled = true; return; }
    this.expect = seqAdd(this.expect, 1);
    if (h.flags & F_BULK_START) {
      // A bulk cannot hold more states than our table: a bigger announcement would only stretch the timeout below.
      if (h.extra > this.core.x.ssCapacity()) { this.drops.bulk_count++; h.extra = this.core.x.ssCapacity(); }
      this.bulkGen++;
      this.bulkExpected = h.extra; this.bulkReceived = 0; this.bulkFirstAt = now; this.bulkReceivedMs = -1;
      if (this.bulk === 'waiting' || this.bulk === 'timeout') {
        this.bulk = 'receiving';
        // Like pfsync: once the peer answers, allow time in proportion to the table it announced.
        this.arm(T.BULK, now + this.cfg.bulk_timeout_ms + h.extra / 20);
      }
      this.log('info', 'statesync: bulk from the peer started', { states: h.extra });
    }
    if (this.bulk === 'receiving') this.bulkReceived += h.count;
    let barrier = 0;
    if ((h.flags & F_BULK_END) && this.bulk === 'receiving') {
      // Every state is in our hands; the bulk is complete once the kernel has answered the barrier after them.
      this.bulk = 'committing';
      this.bulkReceivedMs = now - this.bulkFirstAt;
      this.c.bulks_received++;
      barrier = this.bulkGen;
    }
    if (payload.length || barrier) {
      this.backlog.push({ payload, count: h.count, liberal: this.master ? 0 : 1, barrier });
      this.backlogStates += h.count;
      this.taken++;
    }
    this.scheduleAck(now, false);
  }

  /** Apply a slice of the received messages to the table and the kernel; the rest waits for the next step. */
  private drain(now: number): void {
    const x = this.core.x;
    const t0 = this.meter();
    for (let k = 0; k < DRAIN_SLICE && this.backlogHead < this.backlog.length; k++) {
      const it = this.backlog[this.backlogHead++];
      this.backlogStates -= it.count;
      this.applied++;
      if (it.payload.length) {
        this.core.peerRx().set(it.payload);
        // Injected TCP starts BE_LIBERAL on a passive node (window tracking re-learns after takeover); a state
        // taken while active but applied after turning passive is passive's too.
        const n = x.ssApply(now, it.payload.length, it.liberal || !this.master ? 1 : 0);
        if (n < it.count) this.drops.bad_items += it.count - n;
        this.flushKernel(false);
      }
      // Netlink handles one socket's requests in order: the barrier's answer means every state is in.
      if (it.barrier) { this.flushKernel(true); x.ssBarrier(); this.barrierGen = it.barrier; }
    }
    this.flushKernel(true);
    if (this.inBulk()) this.bulkBusyMs += this.meter() - t0;
    if (this.rxStalled && this.backlogStates <= this.cfg.backlog_max / 2) {
      this.rxStalled = false;
      this.sendAck(F_NACK);
    }
    if (this.backlogHead < this.backlog.length) {
      if (this.backlogHead >= 4096) { this.backlog = this.backlog.slice(this.backlogHead); this.backlogHead = 0; }
    } else { this.backlog = []; this.backlogHead = 0; }
    // Marks only grow, so the due waiters are at the front.
    while (this.drainWaiters.length && this.drainWaiters[0].mark <= this.applied) this.drainWaiters.shift()!.fn();
  }

  /** Run `fn` once every state taken so far has gone to the kernel (later arrivals do not hold it up). */
  private whenApplied(fn: () => void): void {
    if (this.applied >= this.taken) fn(); else this.drainWaiters.push({ mark: this.taken, fn });
  }

  private scheduleAck(now: number, immediate: boolean): void {
    this.unackedRx++;
    if (immediate || this.unackedRx >= ACK_EVERY) { this.sendAck(0); return; }
    if (this.deadline[T.ACK] === Infinity) this.arm(T.ACK, now + ACK_DELAY_MS);
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
    this.log('info', 'statesync: peer asked for the whole table; sending', { states: n });
    this.pump(this.lastNow);
  }

  private bulkTimedOut(): void {
    if (this.bulk === 'done') return;
    this.log('warn', 'statesync: no complete bulk from the peer in time; no longer demoting (the peer may be down)', { bulk_timeout_ms: this.cfg.bulk_timeout_ms, state: this.bulk, received: this.bulkReceived });
    this.bulk = 'timeout';
    this.action({ kind: 'demote', on: false });
  }

  private bulkComplete(now: number): void {
    this.bulk = 'done';
    this.bulkDoneMs = now - this.bulkStartedAt;
    if (this.bulkFirstAt >= 0) this.bulkTransferMs = now - this.bulkFirstAt;
    this.disarm(T.BULK);
    this.action({ kind: 'demote', on: false });
    this.log('info', 'statesync: bulk complete; the kernel holds the peer\'s table', { states: this.bulkReceived, ms: Math.round(this.bulkDoneMs) });
  }

  private action(a: Action): void { this.actions.push(a); }
  private log(level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void { this.actions.push({ kind: 'log', level, msg, fields }); }

  /** The `duogate status` section, but for `states_kernel` and the peer's address (the host knows those). */
  status(now: number): Record<string, unknown> {
    const x = this.core.x;
    return {
      mode: this.master ? 'active' : 'passive',
      table_capacity: x.ssCapacity(),
      table_bytes_per_state: x.ssBytesPerSlot(),
      states_table: x.ssCount(),
      states_table_v6: x.ssCount6(),
      queue: x.ssQueueLen(),
      backlog: this.backlogStates,
      in_flight: this.unacked.length,
      link: { session: this.sessions.session.toString(16).padStart(16, '0'), next_pn: this.sessions.peekPn().toString(), next_seq: this.nextSeq, expect_seq: this.expect },
      peer: { session: this.sessions.peer ? this.sessions.peer.toString(16).padStart(16, '0') : null, knows_us: this.sessions.peerKnowsUs, v6: this.peerV6, last_heard_ms_ago: this.peerHeardAt < 0 ? null : Math.round(now - this.peerHeardAt) },
      bulk: { state: this.bulk, expected: this.bulkExpected, received: this.bulkReceived, took_ms: this.bulkDoneMs < 0 ? null : Math.round(this.bulkDoneMs), received_ms: this.bulkReceivedMs < 0 ? null : Math.round(this.bulkReceivedMs * 10) / 10, transfer_ms: this.bulkTransferMs < 0 ? null : Math.round(this.bulkTransferMs * 10) / 10, busy_ms: Math.round(this.bulkBusyMs), kernel_busy_ms: Math.round(this.bulkKernelMs) },
      window_full: this.windowFull,
      messages: { ...this.c },
      dropped: { ...this.drops },
    };
  }
}

/** NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY as a bind mask: what the active node follows. */
export const GROUPS_ALL = 0x1 | 0x2 | 0x4;
/**
 * The passive node only needs to hear entries expire (DESTROY): every NEW/UPDATE it would hear is an echo
 * of its own injections, and with no listener on those groups the kernel does not even build them.
 */
export const GROUPS_PASSIVE = 0x4;
/** The ctnetlink event groups a role listens to (the passive node only needs expiries). */
export function groupsFor(active: boolean): number { return active ? GROUPS_ALL : GROUPS_PASSIVE; }
