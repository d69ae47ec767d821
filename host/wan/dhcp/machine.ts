// The WAN's DHCPv4 client (RFC 2131 §4.4) as a sans-IO state machine, the model of the CARP core and
// host/statesync/machine.ts: datagrams from port 67 and time go in as arguments; datagrams to send, lease events
// and one deadline come out. It reads no clock, owns no socket and draws no random number of its own (`rand`
// is an option), so the virtual-time tests (test/unit/dhcp-client.test.ts) run it against a server model.
//
// Only the CARP MASTER runs it, from the pair's virtual MAC and a client identifier both nodes share, so the
// ISP sees one client whichever node is master: a new master starts from the lease the old one synced and asks
// for the same address at once (INIT-REBOOT). `stop()` sends nothing, not even a DHCPRELEASE: the lease is the
// pair's, and a BACKUP must never send from the virtual MAC (docs/wan.md).
//
// No DHCPDECLINE: RFC 2131 §4.4.1 asks for an ARP probe of an offered address before use, which this machine
// does not do (the host does no probe either): on an ISP link the server is the only authority on the address,
// and a probe from the virtual MAC would be a frame the switch learns like any other.
import { randomBytes } from 'node:crypto';
import {
  decode, encode, macBytes, ipBytes, MsgType, MSG_NAMES, OP_REQUEST, OP_REPLY, HTYPE_ETHERNET, FLAG_BROADCAST, Opt,
  DECODE_REASONS, type DhcpMessage,
} from './codec.js';
import { inSubnet, ipNum, isNetOrBroadcast, numIp, parseCidr } from '../../config/net.js';
import { CIDR4 } from '../../config/schema.js';

// --- specification constants (RFC 2131 §4.1, §4.4.5) ---
/** First retransmission after 4 s, doubling up to 64 s, each randomised by ±1 s. */
export const RETX_FIRST_MS = 4000;
export const RETX_MAX_MS = 64_000;
export const RETX_JITTER_MS = 1000;
/** RENEWING and REBINDING retransmit after half the time left to T2 / to expiry, but at least this long. */
export const RENEW_RETX_MIN_MS = 60_000;
/** Option 51's "infinite" (RFC 2132 §9.2). */
export const INFINITE = 0xffffffff;

// --- implementation constants ---
/** REQUESTs (the first and its retransmissions) before REQUESTING gives up and discovers again (~60 s in all). */
export const REQUEST_TRIES = 4;
/** REQUESTs before INIT-REBOOT gives up and keeps the stored lease as it stands (RFC 2131 §3.2 step 3). */
export const REBOOT_TRIES = 4;
/** A NAK streak waits 4 s, 8 s, … up to this before discovering again (the first NAK discovers at once). */
export const NAK_WAIT_MAX_MS = 64_000;
/** Timers fired in one handleTimeout call, at most (each re-arms at a later time, so this is never reached). */
const FIRE_MAX = 16;
/** What the client asks for (option 55): mask, routers, DNS, lease, server id, T1, T2. */
export const DEFAULT_PARAMS = [Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS, Opt.LEASE_TIME, Opt.SERVER_ID, Opt.RENEWAL_T1, Opt.REBINDING_T2];

/** The timer table: one deadline (ms in the caller's timebase, Infinity = not armed) per row. */
export const T = {
  /** Retransmit the pending DISCOVER or REQUEST, or give up on it. */
  RETX: 0,
  /** T1: start renewing with the server that granted the lease (unicast). */
  RENEW: 1,
  /** T2: start rebinding with any server (broadcast). */
  REBIND: 2,
  /** The lease ends: the address is no longer ours. */
  EXPIRE: 3,
  /** After a NAK streak: discover again. */
  RESTART: 4,
} as const;
export const TIMER_NAMES = ['retx', 'renew', 'rebind', 'expire', 'restart'] as const;

export type DhcpState = 'stopped' | 'init' | 'selecting' | 'requesting' | 'init-reboot' | 'bound' | 'renewing' | 'rebinding';

export interface DhcpClientConfig {
  /** The hardware address the client speaks for (chaddr): the pair's virtual MAC 00:00:5e:00:01:<vhid>. */
  hwaddr: string;
  /** Option 61, the same on both nodes; default 01 + hwaddr (RFC 2132 §9.14: type 1 = Ethernet). */
  clientId?: Buffer;
  /** Option 12, if the ISP wants one. */
  hostname?: string;
  /** Ask the server to broadcast its answers (the broadcast bit). Default false: answers come to the MAC. */
  broadcast?: boolean;
  /** Option 55; default DEFAULT_PARAMS. */
  paramRequest?: number[];
  /**
   * The pair's own networks (CIDRs: LAN, sync, other internal networks). A lease whose subnet overlaps one is
   * refused (`own_network`): a server on the WAN must not make the node treat an inside network as the WAN.
   */
  avoid?: string[];
}

export interface DhcpMachineOptions {
  /** Uniform in [0, 1): transaction ids and retransmission jitter (crypto random by default; tests seed one). */
  rand?: () => number;
}

/**
 * A lease as the pair keeps it. Times are seconds as the server gave them, anchored at `obtainedAt` (ms in the
 * timebase of the machine that holds it: the host moves it to the peer's timebase when it syncs the lease).
 */
export interface Lease {
  address: string;
  subnetMask?: string;
  routers: string[];
  dns: string[];
  /** The server that granted it (option 54): RENEWING asks it by unicast. */
  serverId: string;
  /** Seconds; INFINITE for a lease that does not end (then t1 = t2 = INFINITE too). */
  leaseTime: number;
  t1: number;
  t2: number;
  /** When the REQUEST that got it was sent (RFC 2131 §4.4.1: the lease runs from there). */
  obtainedAt: number;
  /** The client identifier it was granted to, hex. */
  clientId: string;
}

export const renewAt = (l: Lease): number => l.leaseTime === INFINITE ? Infinity : l.obtainedAt + l.t1 * 1000;
export const rebindAt = (l: Lease): number => l.leaseTime === INFINITE ? Infinity : l.obtainedAt + l.t2 * 1000;
export const expiresAt = (l: Lease): number => l.leaseTime === INFINITE ? Infinity : l.obtainedAt + l.leaseTime * 1000;

export type DhcpEvent =
  /** The machine holds a lease after holding none: from a server's ACK, or at start from the stored lease. */
  | { kind: 'bound'; lease: Lease; from: 'server' | 'stored' }
  /** The same address again, with fresh times (renewal, rebinding, or the stored lease confirmed). */
  | { kind: 'renewed'; lease: Lease }
  /** A server ACKed a different address while the machine held one: the VIP, NAT and adverts must follow. */
  | { kind: 'address_changed'; lease: Lease; previous: Lease }
  /** The address is no longer ours: stop using it. */
  | { kind: 'lost'; previous: Lease; reason: 'expired' | 'nak' };

/** A datagram for the host to send from UDP port 68 to port 67, from the virtual MAC. */
export interface Transmit {
  bytes: Buffer;
  /** 'broadcast' (255.255.255.255, to ff:ff:ff:ff:ff:ff) or the server's address (RENEWING: unicast). */
  to: string;
  /** The IP source: 0.0.0.0 until the machine holds an address it may use, then that address. */
  from: string;
  /** For logs and tests. */
  type: 'discover' | 'request';
}

/** Why a received datagram was dropped: the codec's reasons, then the machine's. */
export const DROP_REASONS = [
  ...DECODE_REASONS,
  'stopped', 'op', 'chaddr', 'idle', 'xid', 'client_id', 'unexpected', 'no_server_id', 'server_id', 'bad_address', 'lease_time',
  'subnet_mask', 'router', 'own_network',
] as const;
export type DropReason = typeof DROP_REASONS[number];

export class DhcpConfigError extends Error {
  readonly code = 'DHCP_ERR_CONFIG';
  constructor(readonly field: string, reason: string) { super(`dhcp client: ${field}: ${reason}`); }
}

const defaultRand = (): number => randomBytes(4).readUInt32BE(0) / 2 ** 32;

/** An address a server may hand a client: not 0/8, loopback, multicast, reserved or broadcast. */
export function usableAddress(ip: string): boolean {
  const a = Number(ip.split('.')[0]);
  return a !== 0 && a !== 127 && a < 224;
}

/**
 * The shortest lease taken. Anything shorter has the client asking more than once every 4 s: a forged ACK with a
 * 1 s lease (T1 = T2 = 0) would otherwise make it ask again at once, and move the address, without end.
 */
export const MIN_LEASE_S = 8;
/** Routers and DNS servers kept from a lease (the rest is ignored): the peer heartbeat carries at most this many. */
export const MAX_LIST = 8;

/** The prefix length of a contiguous IPv4 mask, or null for a mask with holes ("255.0.255.0"). */
export function maskPrefix(mask: string): number | null {
  const m = ipNum(mask);
  const p = Math.clz32(~m >>> 0);
  return p === 32 || ((m << p) >>> 0) === 0 ? p : null;
}

/**
 * Why a lease a server (or the peer, or the state dir) hands over is not taken, or null when it is sound: a
 * contiguous mask of /8 to /32; an address that is not the subnet's network or broadcast address; a subnet that
 * overlaps none of `avoid`; routers that are usable addresses other than the lease's own. The same check runs on
 * ACKs, stored leases and peer leases.
 */
export function leaseProblem(l: Pick<Lease, 'address' | 'subnetMask' | 'routers' | 'leaseTime'>, avoid: readonly string[] = []): DropReason | null {
  if (!usableAddress(l.address)) return 'bad_address';
  if (!(l.leaseTime >= MIN_LEASE_S)) return 'lease_time';
  const prefix = l.subnetMask === undefined ? 32 : maskPrefix(l.subnetMask);
  if (prefix === null || prefix < 8) return 'subnet_mask';
  const cidr = `${l.address}/${prefix}`;
  if (prefix <= 30 && isNetOrBroadcast(l.address, cidr)) return 'bad_address';
  const net = parseCidr(cidr);
  for (const a of avoid) {
    const o = parseCidr(a);
    if (inSubnet(numIp(o.net), cidr) || inSubnet(numIp(net.net), a)) return 'own_network';
  }
  if (l.routers.some((r) => !usableAddress(r) || r === l.address)) return 'router';
  return null;
}

export class DhcpMachine {
  private readonly hw: Buffer;
  private readonly cid: Buffer;
  private readonly cidHex: string;
  private readonly params: number[];
  private readonly rand: () => number;
  private readonly hostname: string | undefined;
  private readonly broadcast: boolean;
  private readonly avoid: string[];

  private st: DhcpState = 'stopped';
  private held: Lease | null = null;
  /** The transaction id answers must carry. */
  private xid = 0;
  /** Sends of the pending DISCOVER or REQUEST so far. */
  private tries = 0;
  /** When this exchange began (the `secs` field) and when its REQUEST first left (a granted lease runs from it). */
  private exchangeAt = 0;
  private requestAt = 0;
  /** The OFFER being requested (REQUESTING). */
  private offer: { address: string; serverId: string } | null = null;
  /** NAKs since the last lease: the wait before discovering again grows with them. */
  private nakStreak = 0;
  private stored: 'none' | 'used' | 'expired' | 'client_id' | 'invalid' = 'none';

  private tx: Transmit[] = [];
  private events: DhcpEvent[] = [];
  private readonly deadline = new Float64Array(TIMER_NAMES.length).fill(Infinity);
  private c = {
    discovers: 0, requests: 0, retransmits: 0, offers: 0, acks: 0, naks: 0, leases: 0, renewals: 0, rebinds: 0,
    address_changes: 0, expiries: 0, request_timeouts: 0, reboot_timeouts: 0, rx: 0,
  };
  private drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;

  constructor(cfg: DhcpClientConfig, o: DhcpMachineOptions = {}) {
    try { this.hw = macBytes(cfg.hwaddr); } catch { throw new DhcpConfigError('hwaddr', `"${cfg.hwaddr}" is not a MAC address; give six hex pairs joined by ':'`); }
    if (this.hw[0] & 1) throw new DhcpConfigError('hwaddr', `${cfg.hwaddr} is a multicast MAC; a client needs a unicast one`);
    this.cid = cfg.clientId ? Buffer.from(cfg.clientId) : Buffer.concat([Buffer.from([HTYPE_ETHERNET]), this.hw]);
    if (this.cid.length < 2 || this.cid.length > 255) throw new DhcpConfigError('clientId', `is ${this.cid.length} bytes; option 61 holds 2 to 255`);
    this.cidHex = this.cid.toString('hex');
    this.params = cfg.paramRequest ?? DEFAULT_PARAMS;
    if (this.params.length === 0 || this.params.some((p) => !Number.isInteger(p) || p < 1 || p > 254)) {
      throw new DhcpConfigError('paramRequest', 'list option codes 1 to 254, at least one');
    }
    if (cfg.hostname !== undefined && (cfg.hostname.length === 0 || cfg.hostname.length > 255)) throw new DhcpConfigError('hostname', 'must be 1 to 255 characters');
    this.hostname = cfg.hostname;
    this.broadcast = cfg.broadcast ?? false;
    this.avoid = cfg.avoid ?? [];
    for (const a of this.avoid) if (!CIDR4.test(a)) throw new DhcpConfigError('avoid', `"${a}" is not an IPv4 network (a.b.c.d/len)`);
    this.rand = o.rand ?? defaultRand;
  }

  // ================================================================== inputs

  /**
   * Become the pair's DHCP client (this node is MASTER). With a stored lease that is still running and was
   * granted to this client id, hold it at once (event `bound`, from 'stored') and confirm it with the server
   * (INIT-REBOOT); otherwise discover. Calling start while running does nothing.
   */
  start(now: number, storedLease?: Lease | null): void {
    if (this.st !== 'stopped') return;
    this.tx = [];
    this.nakStreak = 0;
    this.held = null;
    const why = storedLease ? this.checkStored(now, storedLease) : 'none';
    this.stored = why;
    if (why === 'used') {
      this.held = copyLease(storedLease!);
      this.emit({ kind: 'bound', lease: this.lease()!, from: 'stored' });
      this.enterReboot(now);
    } else {
      this.enterSelecting(now);
    }
  }

  /** Become silent (this node is no longer MASTER): nothing more leaves, not even a release. The lease stays readable. */
  stop(): void {
    this.st = 'stopped';
    this.tx = [];
    this.deadline.fill(Infinity);
    this.offer = null;
  }

  /** A UDP payload that arrived on port 68 (any source: the checks are here). */
  handle(now: number, bytes: Buffer): void {
    this.c.rx++;
    if (this.st === 'stopped') return this.drop('stopped');
    const d = decode(bytes);
    if (!d.ok) return this.drop(d.why);
    const m = d.msg;
    if (m.op !== OP_REPLY) return this.drop('op');
    if (m.htype !== HTYPE_ETHERNET || !m.chaddr.equals(this.hw)) return this.drop('chaddr');
    if (this.st === 'bound' || this.st === 'init') return this.drop('idle');
    if (m.xid !== this.xid) return this.drop('xid');
    // Servers echo option 61 (RFC 6842); an old one may leave it out, but one that names another client is not ours.
    if (m.clientId && !m.clientId.equals(this.cid)) return this.drop('client_id');
    if (this.st === 'selecting') {
      if (m.type !== MsgType.OFFER) return this.drop('unexpected');
      if (!m.serverId) return this.drop('no_server_id');
      if (!usableAddress(m.yiaddr!)) return this.drop('bad_address');
      this.c.offers++;
      this.offer = { address: m.yiaddr!, serverId: m.serverId };
      this.enterRequesting(now);
      return;
    }
    if (m.type !== MsgType.ACK && m.type !== MsgType.NAK) return this.drop('unexpected');
    if (!m.serverId) return this.drop('no_server_id');
    // REQUESTING answers come from the server we chose, RENEWING answers from the lease's; in INIT-REBOOT and
    // REBINDING any server may answer (that is what they are for).
    const want = this.st === 'requesting' ? this.offer!.serverId : this.st === 'renewing' ? this.held!.serverId : null;
    if (want !== null && m.serverId !== want) return this.drop('server_id');
    if (m.type === MsgType.NAK) return this.onNak(now);
    if (this.st === 'requesting' && m.yiaddr !== this.offer!.address) return this.drop('bad_address');
    if (m.leaseTime === undefined) return this.drop('lease_time');
    const why = leaseProblem({ address: m.yiaddr!, subnetMask: m.subnetMask, routers: m.routers ?? [], leaseTime: m.leaseTime }, this.avoid);
    if (why) return this.drop(why);
    this.c.acks++;
    this.adopt(now, m);
  }

  /** Time passed: run the due timers, earliest first. */
  handleTimeout(now: number): void {
    if (this.st === 'stopped') return;
    for (let i = 0; i < FIRE_MAX; i++) {
      let k = -1;
      for (let j = 0; j < this.deadline.length; j++) if (this.deadline[j] <= now && (k < 0 || this.deadline[j] < this.deadline[k])) k = j;
      if (k < 0) return;
      this.deadline[k] = Infinity;
      this.fire(k, now);
    }
  }

  // ================================================================== outputs

  /** The next datagram to send, or null. */
  pollTransmit(): Transmit | null { return this.tx.shift() ?? null; }

  /** The next lease event, or null. */
  pollEvent(): DhcpEvent | null { return this.events.shift() ?? null; }

  /** When handleTimeout must be called next (Infinity: nothing pending). */
  nextDeadline(): number {
    let d = Infinity;
    for (const v of this.deadline) if (v < d) d = v;
    return d;
  }

  /** A timer's deadline (tests and status). */
  timer(k: number): number { return this.deadline[k]; }

  get state(): DhcpState { return this.st; }
  get counters(): Readonly<typeof this.c> { return this.c; }
  get dropped(): Readonly<Record<DropReason, number>> { return this.drops; }

  /** A copy of the lease held, for the host to sync to the peer (null: none). */
  lease(): Lease | null {
    return this.held ? copyLease(this.held) : null;
  }

  status(): Record<string, unknown> {
    const l = this.held;
    const timers = Object.fromEntries(TIMER_NAMES.map((n, i) => [n, this.deadline[i] === Infinity ? null : this.deadline[i]]));
    return {
      state: this.st,
      lease: l ? { ...this.lease(), renew_at: nul(renewAt(l)), rebind_at: nul(rebindAt(l)), expires_at: nul(expiresAt(l)) } : null,
      stored_lease: this.stored,
      xid: this.xid, tries: this.tries, next_deadline: nul(this.nextDeadline()), timers,
      counters: { ...this.c }, dropped: { ...this.drops },
    };
  }

  // ================================================================== states

  private enterSelecting(now: number): void {
    this.st = 'selecting';
    this.offer = null;
    this.newExchange(now);
    this.deadline.fill(Infinity);
    this.sendDiscover(now);
  }

  /** The REQUEST for the OFFER keeps the DISCOVER's xid (RFC 2131 table 5). */
  private enterRequesting(now: number): void {
    this.st = 'requesting';
    this.tries = 0;
    this.requestAt = now;
    this.sendRequest(now);
  }

  /** Ask for the stored lease's address without naming a server (RFC 2131 §4.3.2 INIT-REBOOT). */
  private enterReboot(now: number): void {
    this.st = 'init-reboot';
    this.newExchange(now);
    this.deadline.fill(Infinity);
    this.arm(T.EXPIRE, expiresAt(this.held!));
    this.requestAt = now;
    this.sendRequest(now);
  }

  private enterBound(): void {
    this.st = 'bound';
    this.tries = 0;
    const l = this.held!;
    this.deadline.fill(Infinity);
    this.arm(T.RENEW, renewAt(l));
    this.arm(T.REBIND, rebindAt(l));
    this.arm(T.EXPIRE, expiresAt(l));
  }

  /** RENEWING and REBINDING: one REQUEST with ciaddr, a fresh xid per send (its send time anchors the lease). */
  private enterRenewal(now: number, st: 'renewing' | 'rebinding'): void {
    this.st = st;
    this.newExchange(now);
    if (st === 'rebinding') this.disarm(T.RENEW);
    this.renewalSend(now);
  }

  private renewalSend(now: number): void {
    const l = this.held!;
    this.xid = this.nextXid();
    this.requestAt = now;
    this.sendRequest(now);
    // RFC 2131 §4.4.5: retry after half the time left to T2 (RENEWING) or to expiry (REBINDING), at least 60 s;
    // a retry that would fall after that point is left to its timer.
    const until = this.st === 'renewing' ? rebindAt(l) : expiresAt(l);
    const at = now + Math.max(RENEW_RETX_MIN_MS, (until - now) / 2);
    if (at < until) this.arm(T.RETX, at); else this.disarm(T.RETX);
  }

  private fire(k: number, now: number): void {
    switch (k) {
      case T.RETX: return this.retransmit(now);
      // A host that calls late (its loop stalled) may find T1, T2 and the end all due: only the latest stage
      // that is still ahead of its own end sends anything.
      case T.RENEW:
        if (this.st === 'bound' && now < rebindAt(this.held!)) { this.c.renewals++; this.enterRenewal(now, 'renewing'); }
        return;
      case T.REBIND:
        if ((this.st === 'bound' || this.st === 'renewing') && now < expiresAt(this.held!)) { this.c.rebinds++; this.enterRenewal(now, 'rebinding'); }
        return;
      case T.EXPIRE: {
        const previous = this.held!;
        this.held = null;
        this.c.expiries++;
        this.emit({ kind: 'lost', previous, reason: 'expired' });
        return this.enterSelecting(now);
      }
      case T.RESTART: return this.enterSelecting(now);
    }
  }

  private retransmit(now: number): void {
    switch (this.st) {
      case 'selecting':
        this.c.retransmits++;
        return this.sendDiscover(now);
      case 'requesting':
        if (this.tries >= REQUEST_TRIES) { this.c.request_timeouts++; return this.enterSelecting(now); }
        this.c.retransmits++;
        return this.sendRequest(now);
      case 'init-reboot':
        if (this.tries >= REBOOT_TRIES) { this.c.reboot_timeouts++; return this.settleByTime(now); }
        this.c.retransmits++;
        return this.sendRequest(now);
      case 'renewing': case 'rebinding':
        this.c.retransmits++;
        return this.renewalSend(now);
    }
  }

  /** INIT-REBOOT went unanswered: keep the stored lease where its own times put it (RFC 2131 §3.2 step 3). */
  private settleByTime(now: number): void {
    const l = this.held!;
    this.enterBound();
    if (now >= rebindAt(l)) { this.c.rebinds++; this.enterRenewal(now, 'rebinding'); } else if (now >= renewAt(l)) { this.c.renewals++; this.enterRenewal(now, 'renewing'); }
  }

  private onNak(now: number): void {
    this.c.naks++;
    const previous = this.held;
    this.held = null;
    if (previous) this.emit({ kind: 'lost', previous, reason: 'nak' });
    // The first NAK discovers at once (the address moved: get the new one); a server that NAKs everything is
    // asked again after 4 s, 8 s, … 64 s.
    this.nakStreak++;
    if (this.nakStreak === 1) return this.enterSelecting(now);
    this.st = 'init';
    this.offer = null;
    this.deadline.fill(Infinity);
    this.arm(T.RESTART, now + Math.min(NAK_WAIT_MAX_MS, 1000 * 2 ** this.nakStreak));
  }

  private adopt(now: number, m: DhcpMessage): void {
    const L = m.leaseTime!;
    let t1 = INFINITE, t2 = INFINITE;
    if (L !== INFINITE) {
      // RFC 2131 §4.4.5: T1 defaults to 0.5 and T2 to 0.875 of the lease; values out of order are replaced.
      t2 = m.t2 !== undefined && m.t2 > 0 && m.t2 < L ? m.t2 : Math.floor(L * 0.875);
      t1 = m.t1 !== undefined && m.t1 > 0 && m.t1 < t2 ? m.t1 : Math.min(Math.floor(L * 0.5), t2);
    }
    const lease: Lease = {
      address: m.yiaddr!, subnetMask: m.subnetMask, routers: (m.routers ?? []).slice(0, MAX_LIST), dns: (m.dns ?? []).slice(0, MAX_LIST), serverId: m.serverId!,
      leaseTime: L, t1, t2, obtainedAt: this.requestAt, clientId: this.cidHex,
    };
    if (lease.subnetMask === undefined) delete lease.subnetMask;
    const previous = this.held;
    this.held = lease;
    this.nakStreak = 0;
    this.offer = null;
    if (!previous) { this.c.leases++; this.emit({ kind: 'bound', lease: this.lease()!, from: 'server' }); }
    else if (previous.address === lease.address) this.emit({ kind: 'renewed', lease: this.lease()! });
    else { this.c.address_changes++; this.emit({ kind: 'address_changed', lease: this.lease()!, previous }); }
    this.enterBound();
  }

  // ================================================================== sending

  private sendDiscover(now: number): void {
    this.tries++;
    this.c.discovers++;
    this.queue(now, MsgType.DISCOVER, {}, 'broadcast', '0.0.0.0');
    this.arm(T.RETX, now + this.backoff());
  }

  /** The REQUEST of the current state (RFC 2131 §4.3.2's four forms). */
  private sendRequest(now: number): void {
    this.tries++;
    this.c.requests++;
    switch (this.st) {
      case 'requesting':
        this.queue(now, MsgType.REQUEST, { requestedIp: this.offer!.address, serverId: this.offer!.serverId }, 'broadcast', '0.0.0.0');
        break;
      case 'init-reboot':
        this.queue(now, MsgType.REQUEST, { requestedIp: this.held!.address }, 'broadcast', '0.0.0.0');
        break;
      default: { // renewing (unicast to the lease's server) or rebinding (broadcast); ciaddr names the address
        const a = this.held!.address;
        this.queue(now, MsgType.REQUEST, { ciaddr: a }, this.st === 'renewing' ? this.held!.serverId : 'broadcast', a);
        return; // renewalSend arms its own retry
      }
    }
    this.arm(T.RETX, now + this.backoff());
  }

  private queue(now: number, type: number, extra: Partial<DhcpMessage>, to: string, from: string): void {
    const m: DhcpMessage = {
      op: OP_REQUEST, htype: HTYPE_ETHERNET, chaddr: this.hw, xid: this.xid, type, clientId: this.cid,
      secs: Math.min(0xffff, Math.floor((now - this.exchangeAt) / 1000)),
      // A client that holds its address (RENEWING, REBINDING) can take unicast answers (RFC 2131 §4.1).
      flags: this.broadcast && from === '0.0.0.0' ? FLAG_BROADCAST : 0,
      hostname: this.hostname, paramRequest: this.params, ...extra,
    };
    this.tx.push({ bytes: encode(m), to, from, type: MSG_NAMES[type] as Transmit['type'] });
  }

  /** RFC 2131 §4.1: 4 s before the second send, doubling to 64 s, ±1 s uniform. */
  private backoff(): number {
    const base = Math.min(RETX_MAX_MS, RETX_FIRST_MS * 2 ** Math.min(this.tries - 1, 8));
    return base + (this.rand() * 2 - 1) * RETX_JITTER_MS;
  }

  // ================================================================== helpers

  private newExchange(now: number): void {
    this.xid = this.nextXid();
    this.tries = 0;
    this.exchangeAt = now;
  }

  private nextXid(): number {
    const x = Math.floor(this.rand() * 2 ** 32) >>> 0;
    return x === this.xid ? (x + 1) >>> 0 : x;
  }

  private checkStored(now: number, l: Lease): 'used' | 'expired' | 'client_id' | 'invalid' {
    if (l.clientId !== this.cidHex) return 'client_id';
    try { ipBytes(l.address); ipBytes(l.serverId); } catch { return 'invalid'; }
    if (!Number.isFinite(l.obtainedAt) || !Array.isArray(l.routers) || !Array.isArray(l.dns) || l.routers.length > MAX_LIST || l.dns.length > MAX_LIST) return 'invalid';
    try { if (leaseProblem(l, this.avoid)) return 'invalid'; } catch { return 'invalid'; }
    if (l.leaseTime !== INFINITE && !(l.t1 > 0 && l.t1 <= l.t2 && l.t2 < l.leaseTime)) return 'invalid';
    return now < expiresAt(l) ? 'used' : 'expired';
  }

  private arm(k: number, at: number): void { this.deadline[k] = at; }
  private disarm(k: number): void { this.deadline[k] = Infinity; }
  private emit(e: DhcpEvent): void { this.events.push(e); }
  private drop(why: DropReason): void { this.drops[why]++; }
}

const nul = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** The lease's own fields only (a stored lease may come with more, e.g. a status snapshot's times). */
function copyLease(l: Lease): Lease {
  const c: Lease = {
    address: l.address, routers: [...l.routers], dns: [...l.dns], serverId: l.serverId, leaseTime: l.leaseTime,
    t1: l.t1, t2: l.t2, obtainedAt: l.obtainedAt, clientId: l.clientId,
  };
  if (l.subnetMask !== undefined) c.subnetMask = l.subnetMask;
  return c;
}
