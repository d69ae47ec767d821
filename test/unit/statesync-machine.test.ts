// The state sync session machine (host/statesync/machine.ts) in virtual time: two machines, a faulty network
// and two fake kernels (test/helpers/syncpair.ts). Each test is a bug the git history fixed on the virtual
// board, replayed here in milliseconds: bulk barriers by generation, the backlog stall without a NACK storm,
// a peer restarted mid-bulk, RTO under loss, reordering, duplicates, replays, the away back-off, role changes
// mid-bulk. Loss and reordering come from a seed, so a failure replays exactly.
import t, { type Test } from 'tap';
import { SyncPair, flows, type SyncNode } from '../helpers/syncpair.js';
import { SyncMachine, T, RTO_MIN_MS, RTO_BASE_MAX_MS, RTO_MAX_MS, RTO_AWAY_MAX_MS, PEER_AWAY_MS, WINDOW } from '../../host/statesync/machine.js';
import { Codec, Type, F_BULK_START } from '../../host/statesync/protocol.js';
import { stateSyncDefaults } from '../../host/statesync/config.js';

const put = (n: SyncNode, count: number, from = 0) => { for (const f of flows(count, from)) n.put(f); };
const bulkDone = (n: SyncNode) => () => n.m.bulkState === 'done';

/** A started pair with `states` flows on the active node a, b's bulk complete and both kernels equal. */
function synced(t: Test, states: number, o: ConstructorParameters<typeof SyncPair>[0] = {}): SyncPair {
  const p = new SyncPair(o).start();
  put(p.a, states);
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 20_000), `b holds a's ${states} states`);
  return p;
}

t.test('first contact: 1.5 round trips of challenges, the bulk, the demotion lifted after the barrier, then live changes', async (t) => {
  const p = new SyncPair({ seed: 1 }).start();
  put(p.a, 500);
  t.equal(p.b.demoted, true, 'b starts demoted (bulk sync)');
  t.equal(p.a.demoted, true, 'so does a: a start is a start');
  t.ok(p.runUntil(bulkDone(p.b), 2000), 'b completes its bulk');
  t.equal(p.b.demoted, false, 'demotion lifted');
  t.ok(p.converged(), 'b\'s kernel holds exactly a\'s states');
  t.equal(p.b.kernel.barriers, 1, 'one barrier went to b\'s kernel');
  const s = p.b.m.status(p.now) as any;
  t.equal(s.bulk.expected, 500); t.equal(s.bulk.received, 500);
  t.equal(p.a.m.counters.bulks_sent, 1); t.equal(p.b.m.counters.bulks_received, 1);
  t.ok(p.a.m.counters.challenges_tx >= 1 && p.b.m.counters.challenges_tx >= 1, 'each side challenged the other');
  t.equal(p.a.m.sessions.peer, p.b.m.sessions.session, 'a knows b'); t.equal(p.b.m.sessions.peer, p.a.m.sessions.session, 'b knows a');

  // Live changes: new flows, an expiry, a changed TCP state.
  put(p.a, 50, 500);
  const gone = [...p.a.kernel.table.keys()].slice(0, 10);
  for (const k of gone) p.a.expire(k);
  const first = [...p.a.kernel.table.values()][0];
  p.a.put({ ...first, state: 4 });
  const t0 = p.now;
  t.ok(p.runUntil(() => p.converged(), 100), 'changes reach b\'s kernel');
  t.ok(p.now - t0 < 5, `within a few ms (${(p.now - t0).toFixed(2)} ms)`);
  t.equal(p.b.kernel.table.size, 540);
  // b's injections echo nowhere: passive b listens to DESTROY only; a's own traffic events are not echoed back.
  t.equal(p.a.m.core.stats().own_echo, 0);
  t.equal(p.b.m.dropped.out_of_order + p.b.m.dropped.duplicate + p.b.m.dropped.auth, 0, 'a clean link drops nothing');
  // Idle: the keepalive every second, no HELLOs once both know each other and b has its table.
  const since = p.now;
  p.run(10_000);
  t.equal(p.count('a', (h) => h.type === Type.HELLO, since), 0, 'no HELLO from a once known');
  t.equal(p.count('b', (h) => h.type === Type.HELLO, since), 0, 'no HELLO from b once its bulk is done');
  const acks = p.count('a', (h) => h.type === Type.ACK, since);
  t.ok(acks >= 9 && acks <= 11, `a keepalive a second (${acks} in 10 s)`);
  t.equal(p.a.m.timer(T.KEEPALIVE) - p.now <= 1000, true);
});

t.test('bulk barriers by generation: a late barrier answer of an earlier bulk does not complete the next one', async (t) => {
  // Applying is slow (3 ms a turn), so bulk 2 is fully taken (committing) well before its own barrier goes out.
  const p = new SyncPair({ seed: 2, cfg: { bulk_timeout_ms: 500 }, turnMs: 3 }).start();
  put(p.a, 200);
  p.b.kernel.hold = true; // b's kernel is slow to answer: the first bulk's barrier answer waits
  t.ok(p.runUntil(() => p.b.m.bulkState === 'committing', 2000), 'first bulk taken, barrier out');
  t.ok(p.runUntil(() => p.b.m.bulkState === 'timeout', 2000), 'the barrier is not answered in time: bulk timeout');
  t.equal(p.b.demoted, false, 'a silent kernel does not pin the demotion');
  // a restarts with more states: b, still without a complete bulk, asks the new incarnation for bulk 2.
  p.a.kill(); p.a.boot(); put(p.a, 2000, 200);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'committing', 3000), 'bulk 2 taken');
  t.ok(p.b.m.backlogLength > 500, `its states still wait for b's kernel (${p.b.m.backlogLength}): no barrier 2 yet`);
  p.b.releaseKernel(); // the first bulk's barrier answer arrives now
  p.run(0.2);
  t.equal(p.b.m.bulkState, 'committing', 'the old answer completes nothing');
  t.equal(p.b.demoted, false);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'done', 3000), 'bulk 2 completes on its own barrier');
  t.equal(p.b.kernel.table.size, 2200, 'and only once the kernel holds every state of it');
  t.equal(p.b.kernel.barriers, 2);
  t.ok(p.converged(), 'kernels equal');
});

t.test('a lost barrier answer (inject socket overrun) is asked again', async (t) => {
  const p = new SyncPair({ seed: 9 }).start();
  put(p.a, 100);
  p.b.kernel.hold = true;
  t.ok(p.runUntil(() => p.b.m.bulkState === 'committing', 2000));
  p.b.kernel.hold = false; (p.b.kernel as any).held = []; // the answer is lost
  p.b.m.handleKernelOverrun(p.now, 'inject'); p.b.flush();
  t.ok(p.runUntil(bulkDone(p.b), 100), 'the second barrier completes the bulk');
  t.equal(p.b.m.counters.inject_overruns, 1);
  // An overrun when no barrier is awaited asks nothing.
  const before = p.b.kernel.barriers;
  p.b.m.handleKernelOverrun(p.now, 'inject'); p.b.m.handleKernelOverrun(p.now, 'dump'); p.b.flush();
  p.run(10);
  t.equal(p.b.kernel.barriers, before);
});

t.test('backlog stall: past backlog_max nothing is taken and no NACK storm; one NACK once drained to half', async (t) => {
  // A slow kernel side: each turn of applying costs 2 ms, so a bulk arrives far faster than it is applied.
  const p = new SyncPair({ seed: 4, cfg: { backlog_max: 1024 }, turnMs: 2 }).start();
  put(p.a, 6000);
  t.ok(p.runUntil(bulkDone(p.b), 20_000), 'the bulk completes');
  t.ok(p.converged(), 'b holds all 6000 states');
  const full = p.b.m.dropped.backlog_full;
  const nacks = p.count('b', SyncPair.isNack);
  const data = p.count('a', SyncPair.isData);
  t.ok(full > 0, `the backlog filled (${full} DATA not taken)`);
  // While stalled, out-of-order DATA is not NACKed: one NACK per stall when drained, and a few for real gaps.
  t.ok(nacks <= 2 * full + 2, `NACKs stay few: ${nacks} for ${full} stalls, ${p.b.m.dropped.out_of_order} out of order, ${data} DATA sent`);
  t.ok(p.a.m.counters.retransmitted <= full * WINDOW, `at most a window resent per stall (${p.a.m.counters.retransmitted})`);
  t.ok(p.b.m.backlogLength === 0);
});

t.test('peer restart mid-bulk: the receiver restarts, its new session gets a whole new bulk', async (t) => {
  const p = new SyncPair({ seed: 5, turnMs: 1 }).start();
  put(p.a, 3000);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'receiving' && (p.b.m.status(p.now) as any).bulk.received > 500, 5000), 'b is mid-bulk');
  p.b.kill();
  p.run(50);
  p.b.boot();
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 10_000), 'the new incarnation completes a bulk');
  t.equal(p.a.m.counters.peer_restarts, 1, 'a saw one restart');
  t.equal(p.a.m.counters.bulks_sent, 2, 'and served a second bulk');
  t.equal(p.b.demoted, false);
});

t.test('peer restart mid-bulk: the sender restarts; the receiver asks the new incarnation at once', async (t) => {
  const p = new SyncPair({ seed: 6, turnMs: 0.5, cfg: { bulk_timeout_ms: 2000 } }).start();
  put(p.a, 3000);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'receiving', 5000));
  const startedAt = p.now;
  const sentBefore = p.a.m.counters.bulks_sent;
  p.a.kill(); p.a.boot();
  t.ok(p.runUntil(() => p.b.m.counters.peer_restarts === 1, 2000), 'b confirms the new incarnation');
  // The old incarnation's bulk can never end: b must not sit out the bulk timeout (2 s + 50 ms per 1000 states).
  t.ok(p.runUntil(bulkDone(p.b), 5000), 'bulk done');
  t.ok(p.now - startedAt < 1000, `well before the bulk timeout (${(p.now - startedAt).toFixed(0)} ms)`);
  t.ok(p.a.m.counters.bulks_sent >= 1 && p.a.m.counters.bulks_sent <= sentBefore + 2, `the new incarnation served the bulk (${p.a.m.counters.bulks_sent})`);
  t.ok(p.runUntil(() => p.converged(), 2000), 'tables converge');
  t.equal(p.b.demoted, false, 'b no longer demoted');
});

t.test('master lost mid-bulk: every state taken reaches the kernel, then the new master reads its table', async (t) => {
  const p = new SyncPair({ seed: 7, turnMs: 3 }).start();
  put(p.a, 4000);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'committing', 10_000), 'b holds the whole bulk (committing)');
  t.ok(p.b.m.backlogLength > 1000, `states still wait for b's kernel (${p.b.m.backlogLength})`);
  p.a.kill(); p.link.ab.cut = true; p.link.ba.cut = true;
  p.b.setRole(true);
  t.ok(p.runUntil(bulkDone(p.b), 10_000), 'b ends its bulk');
  t.equal(p.b.kernel.table.size, 4000, 'b\'s kernel holds every one of the 4000 states');
  t.ok(p.runUntil(() => !p.b.m.isDumping && p.b.m.counters.resyncs >= 2, 1000), 'b re-read its kernel after the backlog was applied');
  const dumpAt = p.b.actions.filter((x) => x.a.kind === 'dump').at(-1)!.t;
  const lastCreate = p.b.m.core.stats().kernel_creates;
  t.equal(lastCreate, 4000);
  t.ok(dumpAt > p.b.actions.find((x) => x.a.kind === 'subscribe')!.t, 'the dump came after the role change');
  t.equal(p.b.kernel.groups, 7, 'active: NEW, UPDATE and DESTROY events');
});

t.test('RTO under loss: 20% both ways, the table converges; the RTO stays within its bounds', async (t) => {
  const p = new SyncPair({ seed: 8 });
  p.link.ab.loss = 0.2; p.link.ba.loss = 0.2;
  p.start();
  put(p.a, 1000);
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 30_000), 'bulk through 20% loss');
  for (let i = 0; i < 20; i++) { put(p.a, 20, 1000 + i * 20); p.run(7); }
  t.ok(p.runUntil(() => p.converged(), 10_000), 'live changes through 20% loss');
  t.ok(p.a.m.counters.retransmitted > 0, `retransmitted ${p.a.m.counters.retransmitted}`);
  t.ok(p.b.m.dropped.out_of_order > 0, 'gaps seen');
  const rto = p.a.m.currentRto;
  t.ok(rto >= RTO_MIN_MS && rto <= RTO_MAX_MS, `rto ${rto}`);
});

t.test('tail loss: the lost last DATA of a burst is resent after the RTT-derived RTO (at most 80 ms)', async (t) => {
  const p = synced(t, 100, { seed: 10 });
  p.link.ab.delayMs = 2; p.link.ba.delayMs = 2;
  for (let i = 0; i < 10; i++) { put(p.a, 1, 2000 + i); p.run(20); } // RTT samples of ~4 ms
  let dropped = 0;
  p.link.ab.drop = (h) => h.type === Type.DATA && dropped++ === 0;
  const t0 = p.now;
  put(p.a, 1, 3000);
  t.ok(p.runUntil(() => p.converged(), 2000));
  const took = p.now - t0;
  t.equal(dropped > 0, true, 'the one DATA was lost');
  t.ok(took >= RTO_MIN_MS && took <= RTO_BASE_MAX_MS + 10, `recovered after ${took.toFixed(1)} ms`);
});

t.test('reordering: 30% of datagrams delayed up to 3 ms, out-of-order dropped and NACKed, the table converges', async (t) => {
  const p = new SyncPair({ seed: 11 });
  p.link.ab = { reorder: 0.3, jitterMs: 3 }; p.link.ba = { reorder: 0.3, jitterMs: 3 };
  p.start();
  put(p.a, 2000);
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 20_000));
  for (let i = 0; i < 30; i++) { put(p.a, 10, 2000 + i * 10); if (i % 3 === 0) p.a.expire([...p.a.kernel.table.keys()][i]); p.run(3); }
  t.ok(p.runUntil(() => p.converged(), 5000), 'converged with reordering (order of updates and deletes kept)');
  t.ok(p.b.m.dropped.out_of_order > 0, `out of order: ${p.b.m.dropped.out_of_order}`);
  t.ok(p.count('b', SyncPair.isNack) > 0, 'gaps NACKed');
});

t.test('duplicates: 30% of datagrams twice; each DATA applied once', async (t) => {
  const p = new SyncPair({ seed: 12 });
  p.link.ab = { dup: 0.3 }; p.link.ba = { dup: 0.3 };
  p.start();
  put(p.a, 1000);
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 10_000));
  t.ok(p.b.m.dropped.duplicate + p.b.m.dropped.replay > 0, `duplicates dropped (${p.b.m.dropped.duplicate} by seq, ${p.b.m.dropped.replay} by pn)`);
  t.equal(p.b.kernel.creates, 1000, 'each state created once');
});

t.test('replayed datagrams: every captured datagram replayed, in the session and after a restart, changes nothing', async (t) => {
  const p = synced(t, 300, { seed: 13 });
  put(p.a, 20, 300); p.a.expire([...p.a.kernel.table.keys()][0]);
  t.ok(p.runUntil(() => p.converged(), 100));
  const before = p.b.kernel.summary().join('\n');
  const creates = p.b.kernel.creates;
  const captured = p.sent.filter((s) => s.from === 'a').map((s) => s.bytes);
  for (const b of captured) p.deliver(p.b, Buffer.from(b));
  p.run(50);
  t.equal(p.b.kernel.summary().join('\n'), before, 'b\'s kernel unchanged');
  t.equal(p.b.kernel.creates, creates);
  t.ok(p.b.m.dropped.replay > 0, `replays dropped: ${p.b.m.dropped.replay}`);
  // a restarts; its old incarnation's datagrams replayed now are from an unknown session.
  p.a.kill(); p.a.boot();
  t.ok(p.runUntil(() => p.a.m.sessions.peer !== 0n && p.b.m.sessions.peer === p.a.m.sessions.session, 2000), 'new session confirmed');
  p.run(100);
  const unknown = p.b.m.dropped.unknown_session;
  for (const b of captured) p.deliver(p.b, Buffer.from(b));
  p.run(50);
  t.ok(p.b.m.dropped.unknown_session > unknown, 'old incarnation: unknown session');
  t.equal(p.b.m.sessions.peer, p.a.m.sessions.session, 'the peer session stays the live one');
  t.ok(p.runUntil(() => p.converged(), 1000));
  // Forged and garbage datagrams.
  const forged = new Codec(Buffer.from('not-the-key-at-all-0000')).seal({ type: Type.DATA, flags: 0, session: p.a.m.sessions.session, peerSession: p.b.m.sessions.session, pn: 1n << 60n, seq: 1, ack: 0, count: 0, extra: 0 }, Buffer.alloc(0));
  const drops = { ...p.b.m.dropped };
  p.deliver(p.b, forged); p.deliver(p.b, Buffer.alloc(10)); p.deliver(p.b, Buffer.from([0xd6, 1, ...Buffer.alloc(80)]));
  t.equal(p.b.m.dropped.auth, drops.auth + 1); t.equal(p.b.m.dropped.short, drops.short + 1); t.equal(p.b.m.dropped.version, drops.version + 1);
  p.b.m.handleWrongSource();
  t.equal(p.b.m.dropped.wrong_source, 1);
});

t.test('away: a silent peer gets one probe backed off to 30 s; the first datagram back resends the window', async (t) => {
  const p = synced(t, 50, { seed: 14 });
  p.link.ab.cut = true; p.link.ba.cut = true;
  put(p.a, 29 * 10, 1000); // ten DATA in flight, unacknowledged
  p.run(PEER_AWAY_MS + 1000);
  const r0 = p.a.m.counters.retransmitted;
  t.ok(r0 >= 10, `before away, whole windows resent (${r0})`);
  p.run(60_000);
  const probes = p.a.m.counters.retransmitted - r0;
  t.ok(probes >= 1 && probes <= 4, `away: ${probes} single-datagram probes in 60 s`);
  t.equal(p.a.m.currentRto, RTO_AWAY_MAX_MS, 'RTO backed off to 30 s');
  t.ok(p.a.m.inFlight >= 10);
  // b stayed silent in the meantime too (its keepalives never arrived). Heal: b's next keepalive brings it back.
  p.link.ab.cut = false; p.link.ba.cut = false;
  const healAt = p.now;
  const r1 = p.a.m.counters.retransmitted;
  t.ok(p.runUntil(() => p.converged(), 1500), 'converged after the link came back');
  t.ok(p.now - healAt <= 1000 + 5, `within one keepalive (${(p.now - healAt).toFixed(1)} ms), not after the 30 s RTO`);
  t.ok(p.a.m.counters.retransmitted - r1 >= 10, 'the whole window went again at once');
  t.ok(p.a.m.currentRto <= RTO_BASE_MAX_MS, 'RTO back to its base');
});

t.test('role change mid-bulk: b takes over while a still sends; a turns passive and re-creates TCP after 500 ms', async (t) => {
  const p = new SyncPair({ seed: 15, turnMs: 1, cfg: { liberal_ms: 2000 } }).start();
  put(p.a, 3000);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'receiving' && (p.b.m.status(p.now) as any).bulk.received > 600, 5000));
  p.b.setRole(true);
  p.run(1);
  p.a.setRole(false);
  t.equal(p.a.kernel.groups, 4, 'a passive: DESTROY only');
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 10_000), 'the bulk completes and kernels agree');
  t.ok(p.runUntil(() => p.a.log(/re-created/), 1000), 'a re-creates its TCP states');
  const re = p.a.logs.find((l) => /re-created/.test(l.msg))!;
  t.ok(re.t - p.a.actions.find((x) => x.a.kind === 'subscribe')!.t >= 500, 'after the 500 ms settle delay');
  t.equal(re.fields?.at, 'passive');
  t.ok(p.runUntil(() => p.b.log(/strictly/), 3000), 'b makes its injected TCP strict after liberal_ms');
  // Live changes now flow b → a.
  put(p.b, 30, 5000);
  t.ok(p.runUntil(() => p.converged(), 100), 'b\'s new flows reach a');
});

t.test('takeover within 500 ms of turning passive: TCP re-created at once, then the dump', async (t) => {
  const p = synced(t, 200, { seed: 16 });
  p.a.setRole(false);
  p.run(100);
  t.notOk(p.a.log(/re-created/));
  p.a.setRole(true);
  t.ok(p.runUntil(() => p.a.log(/re-created/) && !p.a.m.isDumping, 1000));
  t.equal(p.a.logs.find((l) => /re-created/.test(l.msg))!.fields?.at, 'takeover');
  t.equal(p.a.m.timer(T.REINJECT), Infinity, 'the settle timer was dropped');
  p.run(1000);
  t.ok(p.converged());
});

t.test('a daemon restarted passive on a kernel that kept its entries re-creates its TCP states (stale windows)', async (t) => {
  const p = synced(t, 300, { seed: 21 });
  // a (MASTER) dies; its kernel keeps every entry, whose window tracking goes stale while b forwards.
  p.a.kill();
  p.b.setRole(true);
  p.run(3000);
  p.a.active = false;
  const deletesBefore = p.a.kernel.deletes, createsBefore = p.a.kernel.creates;
  p.a.boot();
  t.ok(p.runUntil(() => p.a.log(/re-created/), 1000), 'the restarted daemon re-creates its TCP states');
  t.equal(p.a.logs.find((l) => /re-created/.test(l.msg))!.fields?.at, 'passive');
  t.ok(p.a.kernel.deletes - deletesBefore >= 300 && p.a.kernel.creates - createsBefore >= 300,
    `every kept entry was deleted and created afresh (${p.a.kernel.deletes - deletesBefore} / ${p.a.kernel.creates - createsBefore})`);
  t.ok(p.runUntil(() => bulkDone(p.a)() && p.converged(), 5000), 'and the bulk from b completes');
});

t.test('a node that stalled while active rejoins: a new session, the peer\'s whole table, demoted until it is applied', async (t) => {
  const p = synced(t, 300, { seed: 23 });
  // a (active) stalls: nothing reaches it; b takes over and forwards, new flows among them.
  p.link.ba.cut = true;
  p.b.setRole(true);
  put(p.b, 40, 300);
  p.run(3000);
  const session = p.a.m.sessions.session;
  const creates = p.a.kernel.creates;
  p.link.ba.cut = false;
  // a runs again: CARP yielded (Why.STALLED), the service turns it passive and asks it to rejoin.
  p.a.setRole(false);
  p.a.m.resync(p.now);
  p.a.flush();
  t.equal(p.a.demoted, true, 'demoted until the peer\'s table is here');
  t.not(p.a.m.sessions.session, session, 'with a new session (the peer serves a session one bulk)');
  t.equal(p.a.m.counters.rejoins, 1);
  const t0 = p.now;
  t.ok(p.runUntil(() => !p.a.demoted, 5000), 'the demotion is lifted');
  t.ok(p.converged(), 'by then a\'s kernel holds every state b made while a was away');
  // b had backed off its retransmissions to the silent a (up to RTO_AWAY_MAX_MS); the rejoin does not wait them out.
  t.ok(p.now - t0 < 1000, `within a HELLO round or two, not after b's away back-off (${(p.now - t0).toFixed(1)} ms)`);
  t.equal(p.b.m.counters.bulks_sent, 1, 'b sent its whole table to the rejoined session');
  t.ok(p.a.kernel.creates - creates >= 40, `the new flows were created (${p.a.kernel.creates - creates})`);
  // An active node has nothing to catch up: its kernel is the truth.
  p.b.m.resync(p.now);
  t.equal(p.b.m.counters.rejoins, 0, 'resync is ignored while active');
});

t.test('event overrun: the active node re-dumps and diffs; vanished entries go to the peer as deletes', async (t) => {
  const p = synced(t, 300, { seed: 17 });
  const keys = [...p.a.kernel.table.keys()].slice(0, 25);
  for (const k of keys) p.a.kernel.forget(k);
  put(p.a, 10, 300);
  p.a.overrun();
  t.ok(p.runUntil(() => p.converged(), 1000), 'b lost the 25 and got the 10');
  t.equal(p.b.kernel.table.size, 285);
  t.equal(p.a.m.counters.event_overruns, 1);
  // A second overrun while the dump runs is queued behind it.
  p.a.overrun(); p.a.overrun();
  p.run(100);
  t.ok(p.a.m.counters.resyncs >= 3);
  // The passive node does not re-dump on an overrun.
  const r = p.b.m.counters.resyncs;
  p.b.overrun(); p.run(10);
  t.equal(p.b.m.counters.resyncs, r);
});

t.test('bulk timeout: a lone node stops demoting; a peer that shows up later still hands over its table', async (t) => {
  const p = new SyncPair({ seed: 18, cfg: { bulk_timeout_ms: 1000 } });
  p.b.boot(); // a is not there yet
  p.run(999);
  t.equal(p.b.demoted, true);
  p.run(2);
  t.equal(p.b.m.bulkState, 'timeout'); t.equal(p.b.demoted, false);
  const hellos = p.count('b', (h) => h.type === Type.HELLO);
  t.ok(hellos >= 3 && hellos <= 5, `HELLO every 300 ms while alone (${hellos})`);
  p.a.boot(); put(p.a, 100);
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 2000), 'the late peer\'s bulk completes');
  t.equal(p.b.demoted, false);
});

t.test('an announced bulk bigger than the table is cut to the capacity (it only stretches the timeout)', async (t) => {
  const p = new SyncPair({ seed: 19, cfg: { capacity: 1024, bulk_timeout_ms: 1000 } }).start();
  put(p.a, 10);
  // a lies about its count: rewrite the next BULK_START a seals.
  const codec = new Codec(Buffer.from('syncpair-test-key-0123456789'));
  const orig = p.send.bind(p);
  p.send = (from, bytes) => {
    const r = codec.open(bytes);
    if (from === p.a && r.ok && r.h.type === Type.DATA && (r.h.flags & F_BULK_START)) bytes = codec.seal({ ...r.h, extra: 1_000_000 }, r.payload);
    orig(from, bytes);
  };
  t.ok(p.runUntil(() => p.b.m.dropped.bulk_count === 1, 2000));
  const s = p.b.m.status(p.now) as any;
  // The capacity is both tables': 1024 IPv4 states and 1024 IPv6 ones (a quarter of the IPv4 table, at least 1024).
  t.equal(s.bulk.expected, 2048);
  t.ok(p.b.m.timer(T.BULK) - p.now <= 1000 + 2048 / 20 + 1, 'the timeout grew by the capped count only');
  t.ok(p.runUntil(bulkDone(p.b), 1000));
});

t.test('counters near their ends: seq across 2^32 and pn to the end of 2^64 (a new session, like a restart)', async (t) => {
  const seq = 0xffff_ffff - 10;
  const p = new SyncPair({ seed: 20, a: { initialSeq: seq, initialPn: 0xffff_ffff_ffff_ffffn - 25n }, b: { initialSeq: seq } }).start();
  put(p.a, 100);
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged(), 2000));
  for (let i = 0; i < 10; i++) { put(p.a, 15, 100 + i * 15); p.run(5); }
  t.ok(p.runUntil(() => p.converged(), 3000), 'converged across both ends');
  t.ok(p.a.log(/packet numbers exhausted/), 'a started a new session');
  t.ok(p.b.m.counters.peer_restarts >= 1, 'b took it as a restart');
  t.equal(p.b.kernel.table.size, 250);
  t.equal(p.b.m.dropped.replay, 0);
});

t.test('a passive node whose pn runs out asks for the bulk again', async (t) => {
  const p = new SyncPair({ seed: 21, b: { initialPn: 0xffff_ffff_ffff_ffffn - 8n } }).start();
  put(p.a, 60);
  t.ok(p.runUntil(() => p.b.log(/packet numbers exhausted/), 5000));
  t.ok(p.runUntil(() => bulkDone(p.b)() && p.converged() && p.a.m.counters.bulks_sent >= 2, 5000), 'a second bulk for the new session');
});

t.test('received states wait for the backlog: a bulk asked of us is served after our own backlog is applied', async (t) => {
  const p = new SyncPair({ seed: 22, turnMs: 2 }).start();
  put(p.a, 2000);
  t.ok(p.runUntil(() => p.b.m.bulkState === 'committing', 5000));
  t.ok(p.b.m.backlogLength > 0, 'b still applying');
  // a restarts as a passive node and asks b (now active) for the table while b's backlog is not applied yet.
  p.b.setRole(true);
  p.a.kill(); p.a.active = false; p.a.boot();
  t.ok(p.runUntil(() => bulkDone(p.a)(), 10_000), 'a gets a bulk from b');
  t.equal(p.a.kernel.table.size, 2000, 'with every state b had taken, applied or not');
});

t.test('status and the timer table', async (t) => {
  const p = synced(t, 10, { seed: 23 });
  p.run(10);
  const s = p.a.m.status(p.now) as any;
  t.equal(s.mode, 'active'); t.equal(s.states_table, 10); t.equal(s.in_flight, 0);
  t.equal(s.peer.knows_us, true); t.type(s.peer.last_heard_ms_ago, 'number');
  t.match(s.link, { next_seq: Number, expect_seq: Number });
  const fresh = new SyncMachine({ ...stateSyncDefaults, key: 'syncpair-test-key-0123456789', capacity: 1024 });
  t.equal(fresh.nextDeadline(), Infinity, 'not started: nothing due');
  t.equal((fresh.status(0) as any).peer.last_heard_ms_ago, null);
  t.equal(fresh.pollTransmit(), null); t.equal(fresh.pollKernel(), null); t.equal(fresh.pollAction(), null);
  fresh.start(0, false); fresh.start(5, false);
  t.equal(fresh.pollTransmit()!.length > 0, true, 'HELLO at start');
  t.equal(fresh.timer(T.HELLO), 300); t.equal(fresh.timer(T.BULK), 15000); t.equal(fresh.timer(T.KEEPALIVE), 1000); t.equal(fresh.timer(T.REFRESH), 30000);
  t.equal(fresh.nextDeadline(), 300);
  fresh.noteKernelSend(3, 2); fresh.noteUdpSendError();
  t.equal(fresh.counters.kernel_send_errors, 2); t.equal(fresh.counters.udp_send_errors, 1);
  fresh.stop();
  t.equal(fresh.nextDeadline(), Infinity, 'stopped: nothing due');
  fresh.handleTimeout(1e9); fresh.handleDatagram(1e9, Buffer.alloc(100));
  t.equal(fresh.pollTransmit(), null, 'a stopped machine sends nothing');
  // Periodic refresh on the active node only.
  const r = p.a.m.counters.refreshes;
  p.run(30_001);
  t.equal(p.a.m.counters.refreshes, r + 1);
  t.equal(p.b.m.counters.refreshes, 0);
  t.ok(p.converged());
});

t.test('a lying peer with the key: unknown type, count not matching the items, a bad item', async (t) => {
  const p = synced(t, 5, { seed: 24 });
  p.run(10);
  const codec = new Codec(Buffer.from('syncpair-test-key-0123456789'));
  const h = () => ({ session: p.a.m.sessions.session, peerSession: p.b.m.sessions.session, pn: p.a.m.sessions.nextPn(), ack: 0, extra: 0 });
  const expect = (p.b.m.status(p.now) as any).link.expect_seq;
  p.deliver(p.b, codec.seal({ ...h(), type: 9, flags: 0, seq: expect, count: 0 }, Buffer.alloc(0)));
  t.equal(p.b.m.dropped.type, 1, 'unknown type');
  const item = Buffer.alloc(48); item[0] = 1; item[1] = 99; // an upsert of protocol 99: well-shaped, invalid
  p.deliver(p.b, codec.seal({ ...h(), type: Type.DATA, flags: 0, seq: expect, count: 2 }, item));
  t.equal(p.b.m.dropped.count, 1, 'count 2 with one item: refused whole');
  p.deliver(p.b, codec.seal({ ...h(), type: Type.DATA, flags: 0, seq: expect, count: 1 }, item));
  p.run(5);
  t.equal(p.b.m.dropped.bad_items, 1, 'the invalid item is counted, nothing applied');
  t.equal(p.b.kernel.table.size, 5);
  // DATA that names an earlier incarnation of b is stale.
  p.deliver(p.b, codec.seal({ ...h(), peerSession: 12345n, type: Type.DATA, flags: 0, seq: expect + 1, count: 0 }, Buffer.alloc(0)));
  t.equal(p.b.m.dropped.stale_session, 1);
  // DATA before b knows a's session... from a session b never confirmed: unknown.
  p.deliver(p.b, codec.seal({ ...h(), session: 777n, type: Type.DATA, flags: 0, seq: expect + 1, count: 0 }, Buffer.alloc(0)));
  t.equal(p.b.m.dropped.unknown_session, 1);
});

t.test('immediate work makes the deadline "now"; a pass stops when the role moves on', async (t) => {
  const p = new SyncPair({ seed: 25, turnMs: 5 }).start();
  put(p.a, 500);
  t.ok(p.runUntil(() => p.b.m.hasImmediateWork(), 2000));
  t.ok(p.b.m.nextDeadline() <= p.now, 'a backlog to apply is due at once');
  t.ok(p.runUntil(bulkDone(p.b), 2000));
  // A strict pass that the next role change interrupts.
  p.b.setRole(true);
  p.run(stateSyncDefaults.liberal_ms - 1);
  t.notOk(p.b.log(/strictly/));
  p.run(1.5);
  p.b.setRole(false);
  p.run(2000);
  t.ok(p.b.m.timer(T.LIBERAL) === Infinity, 'no strict pass armed once passive');
});
