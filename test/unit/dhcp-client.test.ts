// The WAN DHCP client machine (host/wan/dhcp/machine.ts) in virtual time against a small ISP model that hands
// exactly one address per client identifier, as the single-address WAN of issue 15 needs: the first lease,
// renewal at T1 (unicast), rebinding at T2 (broadcast), expiry, NAKs, an address that moves at renewal, a second
// machine with the same client id taking over from the synced lease (INIT-REBOOT), retransmission bounds, and
// every kind of bad datagram dropped and counted. Hours of lease time run in milliseconds; randomness is seeded.
import t from 'tap';
import {
  DhcpMachine, DhcpConfigError, T, INFINITE, REQUEST_TRIES, REBOOT_TRIES, RENEW_RETX_MIN_MS, MIN_LEASE_S, MAX_LIST, renewAt, expiresAt,
  leaseProblem, maskPrefix,
  type DhcpClientConfig, type DhcpEvent, type Lease, type Transmit,
} from '../../host/wan/dhcp/machine.js';
import { decode, encode, MsgType, OP_REPLY, OP_REQUEST, HTYPE_ETHERNET, FLAG_BROADCAST, type DhcpMessage } from '../../host/wan/dhcp/codec.js';

const VMAC = '00:00:5e:00:01:02';
const CFG: DhcpClientConfig = { hwaddr: VMAC };
const CID = Buffer.from('0100005e000102', 'hex');
const S = 1000; // ms per second

/** xorshift32 in [0, 1): a failure replays exactly. */
function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 2 ** 32; };
}

const msgOf = (b: Buffer): DhcpMessage => { const d = decode(b); if (!d.ok) throw new Error(`undecodable: ${d.why}`); return d.msg; };

/**
 * The ISP's DHCP server, RFC 2131 §4.3 reduced to what a single-address ISP does: one address per client
 * identifier (option 61), kept across DISCOVERs, renewals and reboots. `move` gives a client id a new address;
 * what the server then answers to a renewal of the old one is `onMoved`: a NAK (ISC dhcpd, Kea) or an ACK
 * naming the new address.
 */
class IspServer {
  leaseTime = 3600;
  t1?: number;
  t2?: number;
  silent = false;
  /** Answer nothing sent to it by unicast (a dead path to the lease's server: RENEWING fails, REBINDING works). */
  deafToUnicast = false;
  /** Answer DISCOVERs but not REQUESTs. */
  deafToRequests = false;
  /** NAK the next this many REQUESTs whatever they ask. */
  nakNext = 0;
  echoClientId = true;
  onMoved: 'nak' | 'ack-new' = 'nak';
  private next = 50;
  constructor(readonly id: string, readonly bindings = new Map<string, string>()) {}

  move(cid: Buffer, address: string): void { this.bindings.set(cid.toString('hex'), address); }

  handle(m: DhcpMessage, unicast: boolean): Buffer | null {
    if (this.silent || (unicast && this.deafToUnicast) || m.op !== OP_REQUEST || !m.clientId) return null;
    const key = m.clientId.toString('hex');
    if (m.type === MsgType.DISCOVER) {
      if (!this.bindings.has(key)) this.bindings.set(key, `203.0.113.${this.next++}`);
      return this.reply(m, MsgType.OFFER, this.bindings.get(key)!);
    }
    if (m.type !== MsgType.REQUEST || this.deafToRequests) return null;
    const bound = this.bindings.get(key);
    if (this.nakNext > 0) { this.nakNext--; return this.reply(m, MsgType.NAK); }
    if (m.serverId !== undefined) { // SELECTING
      if (m.serverId !== this.id) return null;
      return m.requestedIp === bound ? this.reply(m, MsgType.ACK, bound) : this.reply(m, MsgType.NAK);
    }
    if (bound === undefined) return null; // RFC 2131 §4.3.2: no record of the client, stay silent
    if (m.ciaddr === '0.0.0.0') return m.requestedIp === bound ? this.reply(m, MsgType.ACK, bound) : this.reply(m, MsgType.NAK); // INIT-REBOOT
    if (m.ciaddr === bound) return this.reply(m, MsgType.ACK, bound); // RENEWING, REBINDING
    return this.onMoved === 'nak' ? this.reply(m, MsgType.NAK) : this.reply(m, MsgType.ACK, bound);
  }

  private reply(m: DhcpMessage, type: number, yiaddr?: string): Buffer {
    const r: DhcpMessage = { op: OP_REPLY, htype: HTYPE_ETHERNET, chaddr: m.chaddr, xid: m.xid, type, serverId: this.id };
    if (this.echoClientId) r.clientId = m.clientId;
    if (type === MsgType.NAK) { r.message = 'address not available'; return encode(r); }
    Object.assign(r, { yiaddr, leaseTime: this.leaseTime, t1: this.t1, t2: this.t2, subnetMask: '255.255.255.0', routers: ['203.0.113.254'], dns: ['198.51.100.53'] });
    return encode(r);
  }
}

interface Sent { at: number; client: number; tx: Transmit; m: DhcpMessage }

/** The WAN segment: clients (the machines of both nodes, same MAC), servers, 1 ms each way. */
class Wan {
  now = 0;
  readonly sent: Sent[] = [];
  readonly events: { at: number; client: number; e: DhcpEvent }[] = [];
  private flight: { at: number; seq: number; toServers: boolean; bytes: Buffer; to: string }[] = [];
  private seq = 0;
  constructor(readonly clients: DhcpMachine[], readonly servers: IspServer[]) {}

  /** Drain every client's output (the host's job). */
  private pump(): void {
    this.clients.forEach((c, i) => {
      for (let x = c.pollTransmit(); x; x = c.pollTransmit()) {
        this.sent.push({ at: this.now, client: i, tx: x, m: msgOf(x.bytes) });
        this.flight.push({ at: this.now + 1, seq: this.seq++, toServers: true, bytes: x.bytes, to: x.to });
      }
      for (let e = c.pollEvent(); e; e = c.pollEvent()) this.events.push({ at: this.now, client: i, e });
    });
  }

  /** Run until virtual time `until` (bounded: a livelock fails instead of hanging). */
  runTo(until: number): void {
    for (let step = 0; step < 100_000; step++) {
      this.pump();
      let next = Infinity;
      for (const p of this.flight) next = Math.min(next, p.at);
      for (const c of this.clients) next = Math.min(next, c.nextDeadline());
      if (next > until) { this.now = until; return; }
      this.now = Math.max(this.now, next);
      const due = this.flight.filter((p) => p.at <= this.now).sort((a, b) => a.at - b.at || a.seq - b.seq);
      this.flight = this.flight.filter((p) => p.at > this.now);
      for (const p of due) {
        if (p.toServers) {
          for (const s of this.servers) {
            if (p.to !== 'broadcast' && p.to !== s.id) continue;
            const r = s.handle(msgOf(p.bytes), p.to !== 'broadcast');
            if (r) this.flight.push({ at: this.now + 1, seq: this.seq++, toServers: false, bytes: r, to: 'client' });
          }
        } else for (const c of this.clients) c.handle(this.now, p.bytes); // both nodes see the shared MAC's frames
      }
      for (const c of this.clients) if (c.nextDeadline() <= this.now) c.handleTimeout(this.now);
    }
    throw new Error('runTo: 100000 steps without reaching the time');
  }

  run(ms: number): void { this.runTo(this.now + ms); }
  sentBy(i: number, since = 0): Sent[] { return this.sent.filter((s) => s.client === i && s.at >= since); }
  eventsOf(i: number, since = 0): DhcpEvent[] { return this.events.filter((x) => x.client === i && x.at >= since).map((x) => x.e); }
}

/** One client and one server, the client bound after its first exchange (DISCOVER at 0, ACK at 4 ms). */
function boundPair(seed = 1, setup: (s: IspServer) => void = () => {}): { w: Wan; m: DhcpMachine; s: IspServer } {
  const s = new IspServer('198.51.100.1');
  setup(s);
  const m = new DhcpMachine(CFG, { rand: seeded(seed) });
  const w = new Wan([m], [s]);
  m.start(0);
  w.runTo(10);
  return { w, m, s };
}

t.test('first lease: DISCOVER, OFFER, REQUEST, ACK; the lease and its timers', async (t) => {
  const { w, m } = boundPair();
  const [d, r] = w.sent.map((x) => x.m);
  const [dt, rt] = w.sent.map((x) => x.tx);
  t.equal(w.sent.length, 2, 'one DISCOVER and one REQUEST');
  t.match(dt, { to: 'broadcast', from: '0.0.0.0', type: 'discover' });
  t.match(d, { op: OP_REQUEST, type: MsgType.DISCOVER, ciaddr: '0.0.0.0', flags: 0, secs: 0 });
  t.equal(d.chaddr.toString('hex'), '00005e000102', 'from the virtual MAC');
  t.same(d.clientId, CID, 'client id 01 + the virtual MAC');
  t.same(d.paramRequest, [1, 3, 6, 51, 54, 58, 59]);
  t.match(rt, { to: 'broadcast', from: '0.0.0.0', type: 'request' });
  t.match(r, { type: MsgType.REQUEST, requestedIp: '203.0.113.50', serverId: '198.51.100.1', ciaddr: '0.0.0.0', xid: d.xid });
  t.equal(m.state, 'bound');
  const lease = m.lease()!;
  t.same(lease, {
    address: '203.0.113.50', subnetMask: '255.255.255.0', routers: ['203.0.113.254'], dns: ['198.51.100.53'],
    serverId: '198.51.100.1', leaseTime: 3600, t1: 1800, t2: 3150, obtainedAt: 2, clientId: CID.toString('hex'),
  }, 'T1 and T2 default to 0.5 and 0.875 of the lease; the lease runs from the REQUEST (2 ms)');
  t.same(w.eventsOf(0), [{ kind: 'bound', lease, from: 'server' }], 'one event');
  t.equal(m.nextDeadline(), 2 + 1800 * S, 'next: T1');
  t.equal(m.timer(T.REBIND), 2 + 3150 * S); t.equal(m.timer(T.EXPIRE), 2 + 3600 * S);
  t.match(m.status(), { state: 'bound', stored_lease: 'none', lease: { address: '203.0.113.50', renew_at: 2 + 1800 * S, expires_at: 2 + 3600 * S }, counters: { discovers: 1, requests: 1, offers: 1, acks: 1, leases: 1 } });
  t.equal(Object.values(m.dropped).reduce((a, b) => a + b, 0), 0, 'nothing dropped');
});

t.test('the broadcast flag and the hostname, when configured; T1/T2 from the server, out-of-order ones replaced', async (t) => {
  const s = new IspServer('198.51.100.1');
  s.t1 = 600; s.t2 = 900;
  const m = new DhcpMachine({ ...CFG, broadcast: true, hostname: 'duogate' }, { rand: seeded(2) });
  const w = new Wan([m], [s]);
  m.start(0); w.run(10);
  t.equal(w.sent[0].m.flags, FLAG_BROADCAST); t.equal(w.sent[0].m.hostname, 'duogate');
  t.match(m.lease(), { t1: 600, t2: 900 });
  w.runTo(2 + 600 * S + 10);
  t.equal(w.sent.at(-1)!.m.flags, 0, 'a renewing client holds its address: no broadcast flag');
  s.t1 = 3000; s.t2 = 2000; // T1 after T2, T2 within the lease
  w.runTo(m.timer(T.RENEW) + 10);
  t.match(m.lease(), { t1: 1800, t2: 2000 }, 'T1 after T2: half the lease');
  s.t1 = 100; s.t2 = 5000;
  w.runTo(m.timer(T.RENEW) + 10);
  t.match(m.lease(), { t1: 100, t2: 3150 }, 'T2 past the lease: 0.875 of it');
});

t.test('renewal at T1: unicast REQUEST to the lease\'s server from the leased address; renewed', async (t) => {
  const { w, m } = boundPair();
  const t1 = m.timer(T.RENEW);
  w.runTo(t1 - 1);
  t.equal(w.sent.length, 2, 'quiet while bound');
  w.runTo(t1 + 10);
  const [r] = w.sentBy(0, t1);
  t.match(r.tx, { to: '198.51.100.1', from: '203.0.113.50', type: 'request' });
  t.match(r.m, { type: MsgType.REQUEST, ciaddr: '203.0.113.50', requestedIp: undefined, serverId: undefined });
  t.not(r.m.xid, w.sent[0].m.xid, 'a new transaction');
  t.same(w.eventsOf(0, t1).map((e) => e.kind), ['renewed']);
  t.equal(m.state, 'bound');
  t.equal(m.lease()!.obtainedAt, t1, 'the lease now runs from the renewal');
  t.equal(m.nextDeadline(), t1 + 1800 * S);
  t.equal(m.counters.renewals, 1);
  w.runTo(10 * 3600 * S + 10);
  t.equal(w.eventsOf(0).filter((e) => e.kind === 'renewed').length, 20, 'every 30 min for 10 h');
  t.equal(w.eventsOf(0).filter((e) => e.kind !== 'renewed' && e.kind !== 'bound').length, 0);
});

t.test('rebinding at T2: unicast renewals unanswered (retried after half the time left, >= 60 s), then a broadcast any server answers', async (t) => {
  const bindings = new Map<string, string>();
  const a = new IspServer('198.51.100.1', bindings);
  const b = new IspServer('198.51.100.2', bindings);
  b.silent = true;
  const m = new DhcpMachine(CFG, { rand: seeded(3) });
  const w = new Wan([m], [a, b]);
  m.start(0); w.run(10);
  t.equal(m.lease()!.serverId, '198.51.100.1');
  a.silent = true; b.silent = false; b.deafToUnicast = true; // server a is gone; b answers only broadcasts
  const t1 = m.timer(T.RENEW), t2 = m.timer(T.REBIND);
  w.runTo(t2 - 1);
  const renewing = w.sentBy(0, t1);
  t.ok(renewing.every((x) => x.tx.to === '198.51.100.1' && x.m.ciaddr === '203.0.113.50'), 'unicast to the lease\'s server');
  // T1 = 1800 s, T2 = 3150 s: retries after 675, 337.5, 168.75, 84.4 s, then 60 s twice (the next would pass T2).
  const gaps = renewing.slice(1).map((x, i) => (x.at - renewing[i].at) / S);
  const want = [675, 337.5, 168.75, 84.375, 60];
  t.ok(gaps.length === want.length && gaps.every((g, i) => Math.abs(g - want[i]) < 0.001), `retries after ${gaps.join(', ')} s`);
  t.ok(gaps.every((g) => g >= RENEW_RETX_MIN_MS / S));
  t.equal(m.state, 'renewing');
  t.equal(new Set(renewing.map((x) => x.m.xid)).size, renewing.length, 'a fresh xid per send');
  w.runTo(t2 + 10);
  const [rb] = w.sentBy(0, t2);
  t.match(rb.tx, { to: 'broadcast', from: '203.0.113.50' });
  t.match(rb.m, { type: MsgType.REQUEST, ciaddr: '203.0.113.50', serverId: undefined, requestedIp: undefined });
  t.equal(m.state, 'bound');
  t.same(w.eventsOf(0, t1).map((e) => e.kind), ['renewed'], 'the address never went away');
  t.match(m.lease(), { address: '203.0.113.50', serverId: '198.51.100.2', obtainedAt: t2 }, 'the server that answered is the lease\'s server now');
  t.match(m.counters, { renewals: 1, rebinds: 1 });
});

t.test('expiry: no server answers; the address is lost at the lease\'s end and the machine discovers again', async (t) => {
  const { w, m, s } = boundPair(4);
  s.silent = true;
  const t2 = m.timer(T.REBIND), end = m.timer(T.EXPIRE);
  w.runTo(end - 1);
  const rebinding = w.sentBy(0, t2);
  t.same(rebinding.map((x) => (x.at - t2) / S), [0, 225, 337.5, 397.5], 'REBINDING retries after half the time left, >= 60 s, none past the end');
  t.ok(rebinding.every((x) => x.tx.to === 'broadcast'));
  t.equal(m.state, 'rebinding');
  w.runTo(end);
  const lost = w.eventsOf(0, end);
  t.same(lost.map((e) => e.kind), ['lost']);
  t.match(lost[0], { reason: 'expired', previous: { address: '203.0.113.50' } });
  t.equal(m.lease(), null);
  t.equal(m.state, 'selecting');
  t.match(w.sentBy(0, end)[0], { at: end, tx: { type: 'discover', from: '0.0.0.0' } });
  s.silent = false;
  w.run(30 * S);
  t.equal(m.state, 'bound', 'the server is back: bound again');
  t.match(w.eventsOf(0, end).map((e) => e.kind), ['lost', 'bound']);
  t.equal(m.lease()!.address, '203.0.113.50', 'the same address: one per client id');
  t.equal(m.counters.expiries, 1);
});

t.test('NAK: while requesting it restarts discovery at once; a NAK streak waits 4, 8, ... 64 s', async (t) => {
  const s = new IspServer('198.51.100.1');
  s.nakNext = 1;
  const m = new DhcpMachine(CFG, { rand: seeded(5) });
  const w = new Wan([m], [s]);
  m.start(0); w.run(20);
  t.same(w.sent.map((x) => x.tx.type), ['discover', 'request', 'discover', 'request'], 'NAKed, then at once a new DISCOVER');
  t.not(w.sent[2].m.xid, w.sent[0].m.xid, 'with a new xid');
  t.equal(w.sent[2].at, 4, 'at the NAK (4 ms)');
  t.same(w.eventsOf(0).map((e) => e.kind), ['bound'], 'no address was held: no lost event');
  t.equal(m.counters.naks, 1);

  const s2 = new IspServer('198.51.100.1');
  s2.nakNext = 8;
  const m2 = new DhcpMachine(CFG, { rand: seeded(6) });
  const w2 = new Wan([m2], [s2]);
  m2.start(0); w2.run(400 * S);
  const discovers = w2.sent.filter((x) => x.tx.type === 'discover').map((x) => x.at);
  const gaps = discovers.slice(1).map((a, i) => Math.round((a - discovers[i]) / S));
  t.same(gaps, [0, 4, 8, 16, 32, 64, 64, 64], `DISCOVER after each NAK: ${gaps.join(', ')} s`);
  t.equal(m2.state, 'bound', 'and bound once the server stops NAKing');
  t.equal(m2.counters.naks, 8);
});

t.test('the ISP moves the address at renewal: an ACK naming the new one is address_changed; a NAK is lost then bound within ms', async (t) => {
  for (const mode of ['ack-new', 'nak'] as const) {
    const { w, m, s } = boundPair(7, (x) => { x.onMoved = mode; });
    s.move(CID, '203.0.113.77');
    const t1 = m.timer(T.RENEW);
    w.runTo(t1 + 20);
    const ev = w.eventsOf(0, t1);
    if (mode === 'ack-new') {
      t.same(ev.map((e) => e.kind), ['address_changed'], mode);
      t.match(ev[0], { lease: { address: '203.0.113.77' }, previous: { address: '203.0.113.50' } });
      t.equal(m.counters.address_changes, 1);
    } else {
      t.same(ev.map((e) => e.kind), ['lost', 'bound'], mode);
      t.match(ev[0], { reason: 'nak', previous: { address: '203.0.113.50' } });
      t.match(ev[1], { lease: { address: '203.0.113.77' }, from: 'server' });
      const at = w.events.filter((x) => x.at >= t1).map((x) => x.at);
      t.ok(at[1] - at[0] <= 5, `without an address for ${at[1] - at[0]} ms (DISCOVER at the NAK)`);
    }
    t.equal(m.lease()!.address, '203.0.113.77');
    t.equal(s.bindings.size, 1, 'still one address for the client id');
  }
});

t.test('takeover: the old master stops (sends nothing), the new one holds the synced lease at once and confirms it (INIT-REBOOT)', async (t) => {
  const s = new IspServer('198.51.100.1');
  const a = new DhcpMachine(CFG, { rand: seeded(8) });
  const b = new DhcpMachine(CFG, { rand: seeded(9) });
  const w = new Wan([a, b], [s]);
  a.start(0);
  w.runTo(600 * S);
  t.equal(a.state, 'bound'); t.equal(b.state, 'stopped');
  t.equal(b.dropped.stopped, 2, 'the backup saw the OFFER and the ACK to the shared MAC and ignored them');
  t.equal(w.sentBy(1).length, 0, 'the backup sent nothing');
  const synced = a.lease()!;
  a.stop(); // CARP: a is BACKUP now (or powered off)
  t.equal(a.nextDeadline(), Infinity); t.equal(a.pollTransmit(), null);
  const at = w.now;
  b.start(at, { ...synced, renew_at: 1 } as Lease); // as a status snapshot would carry it: only the lease's fields are kept
  t.same(b.pollEvent(), { kind: 'bound', lease: synced, from: 'stored' }, 'the lease is usable at once: the VIP need not wait');
  w.run(10);
  const [r] = w.sentBy(1);
  t.match(r, { at, tx: { to: 'broadcast', from: '0.0.0.0', type: 'request' } });
  t.match(r.m, { type: MsgType.REQUEST, requestedIp: '203.0.113.50', serverId: undefined, ciaddr: '0.0.0.0' }, 'INIT-REBOOT: the address, no server id');
  t.same(r.m.clientId, CID); t.equal(r.m.chaddr.toString('hex'), '00005e000102');
  t.same(w.eventsOf(1).map((e) => e.kind), ['renewed'], 'confirmed: the same address');
  t.match(b.lease(), { address: '203.0.113.50', obtainedAt: at });
  t.equal(b.state, 'bound'); t.equal(b.status().stored_lease, 'used');
  t.equal(s.bindings.size, 1, 'the server sees one client');
  w.run(4 * 3600 * S);
  t.equal(w.sentBy(0, at).length, 0, 'the stopped machine sent nothing in 4 h');
  t.ok(a.dropped.stopped > 0, 'and dropped what reached it');
  t.ok(w.sent.every((x) => x.m.type === MsgType.DISCOVER || x.m.type === MsgType.REQUEST), 'no DHCPRELEASE, no DECLINE, ever');
  t.equal(w.events.filter((x) => x.e.kind === 'lost').length, 0, 'the address never went away');
});

t.test('INIT-REBOOT unanswered: the stored lease stands on its own times; NAKed: lost; a stale or foreign lease is not used', async (t) => {
  const { m: a } = boundPair(10);
  const stored = a.lease()!;
  for (const [when, state, to] of [[100 * S, 'bound', null], [2000 * S, 'renewing', '198.51.100.1'], [3200 * S, 'rebinding', 'broadcast']] as const) {
    const s = new IspServer('198.51.100.1');
    s.silent = true;
    const b = new DhcpMachine(CFG, { rand: seeded(11) });
    const w = new Wan([b], [s]);
    w.now = when;
    b.start(when, stored);
    w.run(200 * S);
    const reqs = w.sent.filter((x) => x.m.requestedIp === stored.address && x.m.ciaddr === '0.0.0.0');
    t.equal(reqs.length, REBOOT_TRIES, `${REBOOT_TRIES} INIT-REBOOT requests`);
    t.equal(b.state, state, `then ${state} at ${when / S} s + the retries`);
    if (to) t.equal(w.sent.at(-1)!.tx.to, to);
    else t.equal(b.nextDeadline(), renewAt(stored));
    t.equal(b.counters.reboot_timeouts, 1);
    t.same(w.eventsOf(0), [{ kind: 'bound', lease: stored, from: 'stored' }], 'held from the start, never lost');
  }
  // The server has forgotten nothing but the address moved: NAK → lost → a new lease.
  const s = new IspServer('198.51.100.1');
  s.move(CID, '203.0.113.90');
  const b = new DhcpMachine(CFG, { rand: seeded(12) });
  const w = new Wan([b], [s]);
  b.start(0, { ...stored, obtainedAt: 0 });
  w.run(50);
  t.same(w.eventsOf(0).map((e) => e.kind), ['bound', 'lost', 'bound']);
  t.equal(b.lease()!.address, '203.0.113.90');

  for (const [lease, why] of [
    [{ ...stored, obtainedAt: -3600 * S }, 'expired'],
    [{ ...stored, clientId: '01aabbccddeeff' }, 'client_id'],
    [{ ...stored, address: '127.0.0.1' }, 'invalid'],
    [{ ...stored, serverId: 'nope' }, 'invalid'],
    [{ ...stored, t1: 4000 }, 'invalid'],
  ] as [Lease, string][]) {
    const c = new DhcpMachine(CFG, { rand: seeded(13) });
    c.start(0, lease);
    t.equal(c.status().stored_lease, why, why);
    t.equal(c.state, 'selecting'); t.equal(c.pollEvent(), null);
    t.equal(c.pollTransmit()!.type, 'discover');
  }
  const inf = new DhcpMachine(CFG, { rand: seeded(14) });
  inf.start(10 ** 12, { ...stored, leaseTime: INFINITE, t1: INFINITE, t2: INFINITE });
  t.equal(inf.state, 'init-reboot', 'an infinite lease never goes stale');
});

t.test('retransmission: 4, 8, 16, 32, 64, 64 s each within ±1 s; REQUESTING gives up after its tries', async (t) => {
  for (const [name, rand, jitter] of [['rand 0', () => 0, -1], ['rand ~1', () => 0.999999, 1]] as const) {
    const s = new IspServer('198.51.100.1'); s.silent = true;
    const m = new DhcpMachine(CFG, { rand });
    const w = new Wan([m], [s]);
    m.start(0); w.run(400 * S);
    const at = w.sent.map((x) => x.at);
    const gaps = at.slice(1).map((a, i) => Math.round((a - at[i]) / S * 1000) / 1000);
    t.same(gaps.slice(0, 7), [4, 8, 16, 32, 64, 64, 64].map((g) => g + jitter), `${name}: ${gaps.join(', ')}`);
    t.ok(w.sent.every((x) => x.m.xid === w.sent[0].m.xid), 'one xid for the whole DISCOVER exchange');
    t.same(w.sent.slice(0, 3).map((x) => x.m.secs), w.sent.slice(0, 3).map((x) => Math.floor(x.at / S)), 'secs counts from the first DISCOVER');
  }
  const s = new IspServer('198.51.100.1'); s.silent = true;
  const m = new DhcpMachine(CFG, { rand: seeded(15) });
  const w = new Wan([m], [s]);
  m.start(0); w.run(3600 * S);
  const at = w.sent.map((x) => x.at);
  const gaps = at.slice(1).map((a, i) => (a - at[i]) / S);
  t.ok(gaps.every((g, i) => Math.abs(g - Math.min(64, 4 * 2 ** i)) <= 1), 'seeded: every gap within 1 s of its base');
  t.ok(w.sent.length <= 3600 / 63 + 6, `${w.sent.length} DISCOVERs in an hour of silence`);

  const s2 = new IspServer('198.51.100.1'); s2.deafToRequests = true;
  const m2 = new DhcpMachine(CFG, { rand: seeded(16) });
  const w2 = new Wan([m2], [s2]);
  m2.start(0); w2.run(120 * S);
  const types = w2.sent.map((x) => x.tx.type);
  t.same(types.slice(0, 2 + REQUEST_TRIES), ['discover', ...Array(REQUEST_TRIES).fill('request'), 'discover'], 'REQUEST tries, then DISCOVER');
  const last = w2.sent[REQUEST_TRIES];
  const again = w2.sent[REQUEST_TRIES + 1];
  t.ok(Math.abs((again.at - last.at) / S - 32) <= 1, `gave up ${((again.at - last.at) / S).toFixed(2)} s after the last REQUEST`);
  t.equal(m2.counters.request_timeouts >= 1, true);
  t.not(again.m.xid, last.m.xid, 'the new DISCOVER has a new xid');
});

t.test('bad datagrams are dropped and counted; the state does not move', async (t) => {
  const m = new DhcpMachine(CFG, { rand: seeded(17) });
  m.start(0);
  const d = msgOf(m.pollTransmit()!.bytes);
  const offer = (o: Partial<DhcpMessage> = {}): Buffer => encode({
    op: OP_REPLY, htype: 1, chaddr: d.chaddr, xid: d.xid, type: MsgType.OFFER, clientId: CID, yiaddr: '203.0.113.50', serverId: '198.51.100.1', leaseTime: 3600, ...o,
  });
  const drops: [string, Buffer, string][] = [
    ['garbage', Buffer.from('this is not dhcp'), 'short'],
    ['wrong cookie', Buffer.concat([offer().subarray(0, 236), Buffer.from('63825364ff', 'hex')]), 'cookie'],
    ['truncated options', offer().subarray(0, 245), 'truncated'],
    ['a request (BOOTREQUEST)', offer({ op: OP_REQUEST }), 'op'],
    ['another MAC', offer({ chaddr: Buffer.from('00005e000103', 'hex') }), 'chaddr'],
    ['not Ethernet', offer({ htype: 6 }), 'chaddr'],
    ['wrong xid', offer({ xid: (d.xid + 1) >>> 0 }), 'xid'],
    ['another client id', offer({ clientId: Buffer.from('0100005e000103', 'hex') }), 'client_id'],
    ['an ACK while selecting', offer({ type: MsgType.ACK }), 'unexpected'],
    ['no server id', offer({ serverId: undefined }), 'no_server_id'],
    ['yiaddr 0.0.0.0', offer({ yiaddr: '0.0.0.0' }), 'bad_address'],
    ['yiaddr loopback', offer({ yiaddr: '127.0.0.1' }), 'bad_address'],
    ['yiaddr multicast', offer({ yiaddr: '224.0.0.18' }), 'bad_address'],
  ];
  for (const [name, b, why] of drops) {
    const before = m.dropped[why as keyof typeof m.dropped];
    m.handle(1, b);
    t.equal(m.dropped[why as keyof typeof m.dropped], before + 1, `${name}: ${why}`);
    t.equal(m.state, 'selecting');
  }
  t.equal(m.pollTransmit(), null, 'nothing sent for them'); t.equal(m.pollEvent(), null);
  m.handle(2, offer({ clientId: undefined })); // an old server that does not echo option 61 is fine
  t.equal(m.state, 'requesting');
  const r = msgOf(m.pollTransmit()!.bytes);
  const ack = (o: Partial<DhcpMessage> = {}): Buffer => encode({
    op: OP_REPLY, htype: 1, chaddr: r.chaddr, xid: r.xid, type: MsgType.ACK, clientId: CID, yiaddr: '203.0.113.50', serverId: '198.51.100.1', leaseTime: 3600, ...o,
  });
  for (const [name, b, why] of [
    ['ACK from another server', ack({ serverId: '198.51.100.9' }), 'server_id'],
    ['NAK from another server', ack({ type: MsgType.NAK, serverId: '198.51.100.9', yiaddr: undefined }), 'server_id'],
    ['ACK without a server id', ack({ serverId: undefined }), 'no_server_id'],
    ['ACK without a lease time', ack({ leaseTime: undefined }), 'lease_time'],
    ['ACK with lease time 0', ack({ leaseTime: 0 }), 'lease_time'],
    ['ACK for 255.255.255.255', ack({ yiaddr: '255.255.255.255' }), 'bad_address'],
    ['an OFFER while requesting', ack({ type: MsgType.OFFER }), 'unexpected'],
  ] as [string, Buffer, string][]) {
    const before = m.dropped[why as keyof typeof m.dropped];
    m.handle(3, b);
    t.equal(m.dropped[why as keyof typeof m.dropped], before + 1, `${name}: ${why}`);
    t.equal(m.state, 'requesting');
  }
  m.handle(4, ack({ leaseTime: INFINITE }));
  t.equal(m.state, 'bound');
  t.equal(m.nextDeadline(), Infinity, 'an infinite lease: no timer at all');
  t.match(m.status(), { lease: { expires_at: null, renew_at: null } });
  t.equal(expiresAt(m.lease()!), Infinity);
  m.handle(5, ack());
  t.equal(m.dropped.idle, 1, 'an ACK while bound (nothing asked): idle');
  m.stop();
  m.handle(6, ack());
  t.equal(m.dropped.stopped, 1);
  m.handleTimeout(10 ** 9);
  t.equal(m.pollTransmit(), null, 'a stopped machine sends nothing whatever happens');
  t.match(m.counters, { rx: 24 });
});

t.test('a hostile server on the WAN: an ACK that would harm the pair is dropped and counted, and cannot make the client churn', async (t) => {
  const AVOID = ['192.168.1.2/24', '172.16.1.1/30'];
  const m = new DhcpMachine({ ...CFG, avoid: AVOID }, { rand: seeded(23) });
  m.start(0);
  const d = msgOf(m.pollTransmit()!.bytes);
  m.handle(1, encode({ op: OP_REPLY, htype: 1, chaddr: d.chaddr, xid: d.xid, type: MsgType.OFFER, clientId: CID, yiaddr: '203.0.113.50', serverId: '198.51.100.1', leaseTime: 3600 }));
  const r = msgOf(m.pollTransmit()!.bytes);
  const ack = (o: Partial<DhcpMessage> = {}): Buffer => encode({
    op: OP_REPLY, htype: 1, chaddr: r.chaddr, xid: r.xid, type: MsgType.ACK, clientId: CID, yiaddr: '203.0.113.50', serverId: '198.51.100.1',
    leaseTime: 3600, subnetMask: '255.255.255.0', routers: ['203.0.113.254'], ...o,
  });
  for (const [name, b, why] of [
    [`a lease shorter than ${MIN_LEASE_S} s (T1 = T2 = 0: ask again at once, forever)`, ack({ leaseTime: 1 }), 'lease_time'],
    ['mask 0.0.0.0 (a /0 connected route on the WAN)', ack({ subnetMask: '0.0.0.0' }), 'subnet_mask'],
    ['a mask with holes', ack({ subnetMask: '255.0.255.0' }), 'subnet_mask'],
    ['a /7', ack({ subnetMask: '254.0.0.0' }), 'subnet_mask'],
    ['the subnet\'s network address', ack({ yiaddr: '203.0.113.0' }), 'bad_address'],
    ['the subnet\'s broadcast address', ack({ yiaddr: '203.0.113.255' }), 'bad_address'],
    ['an address other than the one offered', ack({ yiaddr: '203.0.113.51' }), 'bad_address'],
    ['router 0.0.0.0', ack({ routers: ['0.0.0.0'] }), 'router'],
    ['router multicast', ack({ routers: ['203.0.113.254', '224.0.0.1'] }), 'router'],
    ['router = the leased address', ack({ routers: ['203.0.113.50'] }), 'router'],
  ] as [string, Buffer, string][]) {
    const before = m.dropped[why as keyof typeof m.dropped];
    m.handle(2, b);
    t.equal(m.dropped[why as keyof typeof m.dropped], before + 1, `${name}: ${why}`);
    t.equal(m.state, 'requesting');
  }
  t.equal(m.pollEvent(), null, 'no lease event for any of them');
  // Inside networks: a lease in the LAN's or the sync link's subnet, or one whose subnet covers them.
  t.equal(leaseProblem({ address: '192.168.1.50', subnetMask: '255.255.255.0', routers: [], leaseTime: 60 }, AVOID), 'own_network', 'an address on the LAN');
  t.equal(leaseProblem({ address: '172.16.1.2', routers: [], leaseTime: 60 }, AVOID), 'own_network', 'the peer\'s sync address (/32)');
  t.equal(leaseProblem({ address: '192.0.2.7', subnetMask: '128.0.0.0', routers: [], leaseTime: 60 }, AVOID), 'subnet_mask', 'a /1 is refused as a mask first');
  t.equal(leaseProblem({ address: '172.20.0.9', subnetMask: '255.240.0.0', routers: [], leaseTime: 60 }, AVOID), 'own_network', 'a /12 covering the sync link');
  t.equal(leaseProblem({ address: '203.0.113.50', routers: ['203.0.113.254'], leaseTime: 60 }, AVOID), null, 'a /32 (no mask) with an off-link router is fine');
  t.equal(leaseProblem({ address: '100.64.0.1', subnetMask: '255.255.255.254', routers: ['100.64.0.0'], leaseTime: 8 }, AVOID), null, 'a /31 has no network or broadcast address');
  t.same([maskPrefix('255.255.255.0'), maskPrefix('255.255.255.255'), maskPrefix('0.0.0.0'), maskPrefix('255.255.0.255')], [24, 32, 0, null]);

  // A sound ACK with 20 routers and 20 DNS servers: kept to MAX_LIST (what the peer heartbeat carries).
  const many = (n: number, base: string) => Array.from({ length: n }, (_, i) => `${base}.${i + 1}`);
  m.handle(3, ack({ routers: many(20, '203.0.113'), dns: many(20, '198.51.100') }));
  t.equal(m.state, 'bound');
  t.equal(m.lease()!.routers.length, MAX_LIST); t.equal(m.lease()!.dns.length, MAX_LIST);

  // The shortest lease taken: a forger answering every broadcast REQUEST gets one change per T2, not a loop.
  const n = new DhcpMachine({ ...CFG, avoid: AVOID }, { rand: seeded(29) });
  n.start(0);
  let now = 0; let asked = 0; let changes = 0;
  for (let i = 0; i < 2000; i++) {
    const tx = n.pollTransmit();
    if (tx) {
      asked++;
      const q = msgOf(tx.bytes);
      const addr = `203.0.113.${10 + (i % 200)}`;
      const type = q.type === MsgType.DISCOVER ? MsgType.OFFER : MsgType.ACK;
      n.handle(now, encode({ op: OP_REPLY, htype: 1, chaddr: q.chaddr, xid: q.xid, type, clientId: CID, yiaddr: type === MsgType.ACK && q.requestedIp ? q.requestedIp : addr, serverId: '198.51.100.66', leaseTime: MIN_LEASE_S, subnetMask: '255.255.255.0' }));
      for (let e = n.pollEvent(); e; e = n.pollEvent()) if (e.kind === 'address_changed' || e.kind === 'bound') changes++;
      continue;
    }
    now = Math.max(now, n.nextDeadline());
    n.handleTimeout(now);
    if (now > 600 * S) break;
  }
  t.ok(now >= 600 * S, `ran 10 minutes of virtual time (${asked} packets sent, ${changes} leases taken)`);
  t.ok(asked <= 2 * (600 / (MIN_LEASE_S / 2)) + 4, `at most about one exchange per T1 of the shortest lease: ${asked} packets in 10 minutes`);
});

t.test('a host that calls late: only the stage still ahead of its end sends (one REQUEST, or one DISCOVER)', async (t) => {
  const { m } = boundPair(19);
  const l = m.lease()!;
  m.handleTimeout(l.obtainedAt + 3200 * S); // past T1 and T2
  t.equal(m.state, 'rebinding');
  t.same([m.pollTransmit()?.to, m.pollTransmit()], ['broadcast', null], 'one broadcast REQUEST, no unicast one first');
  t.match(m.counters, { renewals: 0, rebinds: 1 });
  const { m: m2 } = boundPair(20);
  m2.pollEvent();
  m2.handleTimeout(l.obtainedAt + 4000 * S); // past the end
  t.equal(m2.state, 'selecting');
  t.same([m2.pollTransmit()?.type, m2.pollTransmit()], ['discover', null], 'one DISCOVER, no REQUEST for a dead lease');
  t.match(m2.pollEvent(), { kind: 'lost', reason: 'expired' });
  t.match(m2.counters, { renewals: 0, rebinds: 0, expiries: 1 });
});

t.test('start and stop: start twice is one start; a stopped machine starts again; bad config is refused with the field', async (t) => {
  const { w, m } = boundPair(18);
  m.start(w.now);
  w.run(10);
  t.equal(w.sent.length, 2, 'a second start while running sends nothing');
  m.stop(); m.stop();
  t.equal(m.state, 'stopped');
  const early = new DhcpMachine(CFG, { rand: seeded(21) });
  early.start(0); early.stop(); // CARP moved before the host drained the machine
  t.equal(early.pollTransmit(), null, 'a DISCOVER queued before stop never leaves');
  t.ok(m.lease(), 'the lease stays readable for the peer');
  m.start(w.now, m.lease());
  w.run(10);
  t.equal(m.state, 'bound'); t.equal(w.sent.at(-1)!.m.requestedIp, '203.0.113.50');
  for (const [cfg, field] of [
    [{ hwaddr: '00:00:5e:00:01' }, 'hwaddr'],
    [{ hwaddr: '01:00:5e:00:01:02' }, 'hwaddr'],
    [{ hwaddr: VMAC, clientId: Buffer.from([1]) }, 'clientId'],
    [{ hwaddr: VMAC, paramRequest: [] }, 'paramRequest'],
    [{ hwaddr: VMAC, paramRequest: [0] }, 'paramRequest'],
    [{ hwaddr: VMAC, hostname: '' }, 'hostname'],
  ] as [DhcpClientConfig, string][]) {
    let err: unknown;
    try { new DhcpMachine(cfg); } catch (e) { err = e; }
    t.ok(err instanceof DhcpConfigError && err.field === field && err.code === 'DHCP_ERR_CONFIG', `${field}: ${(err as Error)?.message}`);
  }
  const own = new DhcpMachine({ hwaddr: VMAC, clientId: Buffer.from('ff00112233', 'hex') });
  own.start(0);
  t.same(msgOf(own.pollTransmit()!.bytes).clientId, Buffer.from('ff00112233', 'hex'), 'a configured client id is sent as given');
});
