// Peer sessions without clocks (host/statesync/session.ts) and the serial arithmetic of sequence numbers.
// A tiny driver plays both nodes' HELLO rules (those of StateSyncService.onDatagram) over real sealed datagrams,
// so replays are byte-for-byte what an attacker on the sync link could capture.
import t from 'tap';
import { Codec, Type, F_CHALLENGE, helloPayload, type Header } from '../../host/statesync/protocol.js';
import { Sessions, seqLt, seqLe, seqAdd, PN_MAX, CHALLENGE_TTL_MS, type SessionOptions } from '../../host/statesync/session.js';

const codec = new Codec(Buffer.from('session-test-key-0123'));
const DAY = 86_400_000;

class Node {
  s: Sessions;
  out: Buffer[] = [];
  log: string[] = [];
  constructor(readonly name: string, o: SessionOptions = {}) { this.s = new Sessions(o); }
  private send(type: number, flags: number, to: bigint, payload = Buffer.alloc(0)): void {
    const h: Header = { type, flags, session: this.s.session, peerSession: to, pn: this.s.nextPn(), seq: 0, ack: 0, count: 0, extra: 0 };
    this.out.push(codec.seal(h, payload));
  }
  hello(): void { this.send(Type.HELLO, 0, this.s.peer, helloPayload(0n, 0n)); }
  ack(): void { this.send(Type.ACK, 0, this.s.peer); }
  receive(b: Buffer, now: number): string {
    const r = codec.open(b);
    if (!r.ok) return r.why;
    const h = r.h;
    const hello = h.type === Type.HELLO ? { nonce: r.payload.readBigUInt64BE(0), echo: r.payload.readBigUInt64BE(8), challenge: (h.flags & F_CHALLENGE) !== 0 } : null;
    const v = this.s.receive(h, hello, now);
    this.log.push(v.kind === 'drop' ? v.why : v.kind);
    if (v.kind === 'drop') return v.why;
    if (v.kind === 'challenge') { this.send(Type.HELLO, F_CHALLENGE, v.to, helloPayload(v.nonce, v.echo)); return 'challenge'; }
    if (hello) {
      if (hello.challenge || h.peerSession !== this.s.session) this.send(Type.HELLO, 0, h.session, helloPayload(0n, hello.nonce));
      this.ack();
    }
    return v.kind;
  }
}

/** Deliver everything in flight both ways until quiet (bounded). */
function run(a: Node, b: Node, now: number): void {
  for (let i = 0; i < 20 && (a.out.length || b.out.length); i++) {
    const fa = a.out.splice(0); const fb = b.out.splice(0);
    for (const m of fa) b.receive(m, now);
    for (const m of fb) a.receive(m, now);
  }
}
function pair(a: Node, b: Node, now: number): void {
  for (let i = 0; i < 5 && !(a.s.peer === b.s.session && b.s.peer === a.s.session && a.s.peerKnowsUs && b.s.peerKnowsUs); i++) { a.hello(); b.hello(); run(a, b, now); }
}

t.test('sessions are random 64-bit ids, confirmed by a challenge', async (t) => {
  const a = new Node('a'); const b = new Node('b');
  t.not(a.s.session, b.s.session);
  t.ok(a.s.session > 0n && a.s.session <= 0xffff_ffff_ffff_ffffn);
  a.hello();
  b.receive(a.out.shift()!, 0);
  t.equal(b.s.peer, 0n, 'one HELLO does not make a peer: it could be a replay');
  t.equal(b.log[0], 'challenge');
  run(a, b, 0); pair(a, b, 0);
  t.equal(a.s.peer, b.s.session); t.equal(b.s.peer, a.s.session);
  t.ok(a.s.peerKnowsUs && b.s.peerKnowsUs, 'both know the other knows them');
});

t.test('a peer restarting with its clock a day earlier is accepted; the old incarnation\'s datagrams are not', async (t) => {
  const realNow = Date.now;
  t.teardown(() => { Date.now = realNow; });
  const a = new Node('a'); const b = new Node('b');
  // Capture everything the first incarnation says, its handshake included (an attacker on the sync link can).
  const captured: Buffer[] = [];
  const tap = a.out;
  a.out = new Proxy(tap, { get: (o, k) => k === 'splice' ? (...x: [number, number]) => { const r = o.splice(...x); captured.push(...r); return r; } : k === 'shift' ? () => { const r = o.shift(); if (r) captured.push(r); return r; } : (o as any)[k] });
  pair(a, b, 1000);
  a.hello(); a.ack(); a.out.splice(0);
  t.ok(captured.length >= 4, `captured ${captured.length} datagrams of the first incarnation`);
  // A restarts; its wall clock stepped back a day (NTP fix, RTC battery). Nothing in a session depends on it.
  Date.now = () => realNow() - DAY;
  const a2 = new Node('a2');
  Date.now = realNow;
  pair(a2, b, 2000);
  t.equal(b.s.peer, a2.s.session, 'b took the new incarnation');
  t.equal(a2.s.peer, b.s.session);
  t.ok(a2.s.peerKnowsUs && b.s.peerKnowsUs);
  // Replays of the old incarnation (HELLOs, its answer to b's challenge, ACKs) change nothing: HELLOs only earn
  // challenges nobody alive answers, its old echo answered a nonce that was used once and is gone, the rest is
  // from an unknown session.
  b.log = [];
  for (const m of captured) b.receive(m, 2100);
  t.ok(b.log.every((x) => x === 'challenge' || x === 'unknown_session'), `replays: ${[...new Set(b.log)].join(', ')}`);
  t.ok(b.log.includes('challenge') && b.log.includes('unknown_session'));
  t.equal(b.s.peer, a2.s.session, 'still the new incarnation');
  b.out.splice(0);
  a2.ack(); t.equal(b.receive(a2.out.shift()!, 2200), 'ok', 'and the new one still gets through');
});

t.test('replays within a session, and challenges that expire', async (t) => {
  const a = new Node('a'); const b = new Node('b');
  pair(a, b, 0);
  a.ack(); const m = a.out.shift()!;
  t.equal(b.receive(m, 10), 'ok');
  t.equal(b.receive(m, 20), 'replay', 'the same packet number again');
  // A challenge answered after its TTL does not confirm.
  const c = new Node('c');
  c.hello(); b.receive(c.out.shift()!, 100);
  const challenge = b.out.splice(0).pop()!;
  c.receive(challenge, 100);
  const answer = c.out.find((x) => codec.open(x).ok && (codec.open(x) as any).h.type === Type.HELLO)!;
  t.equal(b.receive(answer, 100 + CHALLENGE_TTL_MS + 1), 'challenge', 'too late: challenged again instead');
  t.equal(b.s.peer, a.s.session);
});

t.test('a flood of replayed HELLOs costs at most 100 challenges a second', async (t) => {
  const b = new Node('b');
  const olds = Array.from({ length: 300 }, () => { const n = new Node('x'); n.hello(); return n.out[0]; });
  let challenges = 0; let limited = 0;
  for (const m of olds) { const r = b.receive(m, 5000); if (r === 'challenge') challenges++; if (r === 'challenge_limit') limited++; }
  t.equal(challenges, 100); t.equal(limited, 200);
});

t.test('packet numbers across 2^32 and up to 2^64: no stall', async (t) => {
  // A 32-bit pn would wrap to 0 at 2^32 and every later datagram would look like a replay: pn is 64 bits.
  const a = new Node('a', { initialPn: 0xffff_fff0n }); const b = new Node('b');
  pair(a, b, 0);
  let ok = 0;
  for (let i = 0; i < 40; i++) { a.ack(); if (b.receive(a.out.shift()!, 1) === 'ok') ok++; }
  t.equal(ok, 40, 'every datagram across 2^32 is taken');
  t.ok(a.s.peekPn() > 0x1_0000_0000n, `pn is past 2^32 (${a.s.peekPn()})`);
  // At the end of the 64-bit space the sender starts a new session, which the peer confirms like a restart.
  const c = new Node('c', { initialPn: PN_MAX - 40n }); const d = new Node('d');
  pair(c, d, 0);
  const first = c.s.session;
  t.ok(c.s.peekPn() < PN_MAX, 'the handshake did not use them all');
  for (let i = 0; i < 50; i++) { c.ack(); d.receive(c.out.shift()!, 1); }
  t.not(c.s.session, first, 'a new session after the last packet number');
  t.equal(c.s.peerKnowsUs, false);
  pair(c, d, 2);
  t.equal(d.s.peer, c.s.session, 'the peer took the new session');
  c.ack(); t.equal(d.receive(c.out.shift()!, 3), 'ok', 'and the link carries on');
});

t.test('sequence numbers use serial arithmetic (RFC 1982)', async (t) => {
  const top = 0xffff_ffff;
  t.ok(seqLt(top, 0), '2^32-1 comes before 0');
  t.ok(seqLt(top - 5, 3));
  t.notOk(seqLt(3, top - 5));
  t.ok(seqLe(top, top)); t.ok(seqLe(top, 1)); t.notOk(seqLe(1, top));
  t.equal(seqAdd(top, 1), 0); t.equal(seqAdd(0, -1), top);
  // A window of 64 in flight around the wrap: the cumulative ack covers exactly the ones up to it.
  const inFlight = Array.from({ length: 64 }, (_, i) => seqAdd(top - 31, i));
  const ack = seqAdd(top, 3);
  t.equal(inFlight.filter((s) => seqLe(s, ack)).length, 35, "2^32-32 … 2^32-1, then 0, 1, 2");
});
