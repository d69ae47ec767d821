// State sync sessions: a peer that restarts with its wall clock a day earlier is taken at once (a session
// named by the start time alone would look like a replay until this node restarted),
// and counters started near their limits (seq at 2^32, pn at 2^64) cross them without a stall. Needs root.
import t from 'tap';
import { join } from 'node:path';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY, NODES, type Node } from './statesync-lib.js';

/** Send one UDP datagram to each of `n` ports, `gapMs` apart (each is a new conntrack entry on the master). */
const UDP_FLOWS = `
const s = require('node:dgram').createSocket('udp4');
const [base, n, gap] = process.argv.slice(1).map(Number);
let i = 0;
const next = () => { if (i >= n) { s.close(); return; } s.send('x', base + i++, '203.0.113.10', () => setTimeout(next, gap)); };
s.bind(0, next);
`;
const DAY_MS = 86_400_000;

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssk', { key: KEY, bulk_timeout_ms: 8000 });
  t.teardown(() => lab.board.down());
  const udp = (n: Node, from: number, to: number) => lab.kernelTuples(n, (l) => /\sudp\s/.test(l) && l.includes('dst=203.0.113.10'))
    .filter((x) => { const p = Number(x.split(' ')[4]); return p >= from && p < to; });
  const flows = (base: number, n: number, gapMs = 0) => lab.board.exec('client', process.execPath, ['-e', UDP_FLOWS, String(base), String(n), String(gapMs)], { check: true, timeoutMs: 60000 });
  const start = (node: Node, env: Record<string, string> = {}, pre: string[] = []) =>
    lab.board.startNode(node, [...pre, '--import', 'tsx', 'host/cli.ts', 'run', '--config', lab.files[node]], env);
  async function peerHolds(from: number, to: number, n: number): Promise<string[]> {
    let got: string[] = [];
    for (let i = 0; i < 60; i++) { got = udp('secondary', from, to); if (got.length >= n) break; await sleep(100); }
    return got;
  }

  t.test('a peer restarted with its clock a day earlier is taken at once', async (t) => {
    await lab.startSynced();
    flows(23000, 20);
    t.equal((await peerHolds(23000, 23020, 20)).length, 20, 'the secondary holds the first flows');
    const before = (await lab.status('primary')).statesync;

    await lab.board.stopNode('secondary');
    lab.board.exec('secondary', 'conntrack', ['-F'], {});
    const t0 = Date.now();
    start('secondary', { DUOGATE_TEST_CLOCK_SHIFT_MS: String(-DAY_MS) }, ['--import', join(process.cwd(), 'board/chaos/clock-step.mjs')]);
    // Its bulk must complete from the primary's table, not time out (8 s) for want of an answer.
    const s = await lab.until('secondary', (x) => ['done', 'timeout'].includes(x.statesync?.bulk?.state), 15000);
    t.equal(s.statesync.bulk.state, 'done', `the restarted secondary got the primary's table (after ${Date.now() - t0} ms)`);
    t.equal(udp('secondary', 23000, 23020).length, 20, 'its kernel holds the flows again');
    const after = (await lab.status('primary')).statesync;
    t.equal(after.messages.peer_restarts - before.messages.peer_restarts, 1, 'the primary saw one restart');
    t.equal(after.dropped.replay - before.dropped.replay, 0, 'and took none of the new incarnation for a replay');
    flows(23100, 20);
    t.equal((await peerHolds(23100, 23120, 20)).length, 20, 'new flows reach it');
  });

  t.test('counters started near their limits cross them without a stall', async (t) => {
    // seq 10 before 2^32 on both nodes; the primary's pn 60 before 2^64, so it runs out mid-test and starts a
    // new session (the secondary takes it as a restart).
    for (const n of NODES) await lab.board.stopNode(n);
    for (const n of NODES) lab.board.exec(n, 'conntrack', ['-F'], {});
    const seq = 2 ** 32 - 10;
    start('primary', { DUOGATE_STATESYNC_LINK_START: `${seq}:${2n ** 64n - 60n}` });
    start('secondary', { DUOGATE_STATESYNC_LINK_START: `${seq}:${2n ** 32n - 10n}` });
    await lab.until('primary', (s) => s.carp_role === 'MASTER', 15000);
    await lab.until('secondary', (s) => s.statesync?.bulk?.state === 'done', 15000);
    const p0 = (await lab.status('primary')).statesync;
    t.ok(BigInt(p0.link.next_pn) > 2n ** 64n - 200n, `the primary's pn starts near 2^64 (${p0.link.next_pn})`);
    // 150 flows, 5 ms apart: well over 10 DATA messages, so seq wraps; ACKs, HELLOs and DATA use up the pn.
    flows(24000, 150, 5);
    const got = await peerHolds(24000, 24150, 150);
    t.same(got, udp('primary', 24000, 24150), 'the secondary\'s kernel holds exactly the primary\'s 150 flows');
    t.equal(got.length, 150);
    const p = (await lab.status('primary')).statesync; const s = (await lab.status('secondary')).statesync;
    t.ok(p.link.next_seq < seq, `the primary's seq wrapped past 2^32 (next ${p.link.next_seq})`);
    t.equal(s.link.expect_seq, p.link.next_seq, 'the secondary expects exactly the primary\'s next seq');
    t.ok(BigInt(s.link.next_pn) > 2n ** 32n, `the secondary's pn went past 2^32 (${s.link.next_pn})`);
    t.ok(BigInt(p.link.next_pn) < 2n ** 32n, `the primary's pn ran out and began again in a new session (${p.link.next_pn})`);
    t.equal(s.messages.peer_restarts, 1, 'the secondary took the primary\'s new session like a restart');
    t.equal(s.peer.session, p.link.session);
    t.equal(s.dropped.replay + p.dropped.replay, 0, 'nothing was taken for a replay');
    t.comment(JSON.stringify({ primary: p.link, secondary: s.link, p_dropped: p.dropped, s_dropped: s.dropped }));
  });
}
