// Bulk on join, and a master that dies during it: the joining node takes the whole table at network speed
// and acknowledges it before its kernel holds it. The primary is powered off while the secondary's kernel is
// still working through the bulk; the secondary must still end up with every state in its kernel, take the
// VIPs, and only end its bulk-sync demotion once the kernel answered. Then flow control: with a tiny backlog
// bound the receiver holds the sender back, and the bulk still arrives whole. Needs root (namespaces).
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssb', { key: KEY, bulk_timeout_ms: 20000 });
  t.teardown(() => lab.board.down());

  /** Board up, the primary alone and MASTER, holding `n` TCP+SNAT states made by the bench's generator. */
  const masterWith = async (l: Lab, n: number) => {
    await l.up();
    await l.start('primary');
    await l.until('primary', (s) => s.carp_role === 'MASTER', 15000);
    l.board.exec('primary', process.execPath, ['--import', 'tsx', 'test/bench/statesync-tools.ts', 'gen', '--count', String(n), '--net', '10'], { check: true, timeoutMs: 60000 });
    await l.until('primary', (s) => s.statesync.states_table >= n, 20000);
  };

  t.test('a master powered off mid-bulk has already handed over its whole table', async (t) => {
    const N = 60000;
    await masterWith(lab, N);

    await lab.start('secondary');
    // Poll fast: the window between "every state taken" and "the kernel holds them all" is a few hundred ms.
    let seen: any = null;
    for (let i = 0; i < 3000 && !seen; i++) {
      try {
        const s = await lab.status('secondary');
        if (s.statesync?.bulk?.state === 'committing') seen = s;
        else if (s.statesync?.bulk?.state === 'done') break;
      } catch { /* starting */ }
      if (!seen) await sleep(5);
    }
    await lab.board.powerOff('primary');
    t.ok(seen, 'the secondary held the whole bulk before its kernel did (state "committing" observed)');
    if (!seen) return;
    t.ok(seen.statesync.bulk.expected >= N, `the bulk announced the whole table (${seen.statesync.bulk.expected} states, ${N} generated)`);
    // `received` counts every state that arrived while the bulk ran: live updates the master sends meanwhile (its
    // kernel's events for the generated states, late on a loaded machine) come on top of the bulk's own.
    t.ok(seen.statesync.bulk.received >= N, `all ${N} states were taken (${seen.statesync.bulk.received} received during the bulk)`);
    t.ok(seen.statesync.backlog > 0, `states were still waiting for the kernel at power-off (${seen.statesync.backlog})`);
    t.ok(seen.demotion > 0, `still demoted for the bulk while committing (demotion ${seen.demotion})`);

    const s = await lab.until('secondary', (x) => x.statesync.bulk.state === 'done' && x.carp_role === 'MASTER', 20000);
    t.ok(s.statesync.bulk.received_ms <= s.statesync.bulk.transfer_ms,
      `taken in ${s.statesync.bulk.received_ms} ms, in the kernel after ${s.statesync.bulk.transfer_ms} ms`);
    const tuples = lab.kernelTuples('secondary', (l) => / src=10\./.test(l));
    t.equal(tuples.length, N, 'the secondary\'s kernel holds every state of the dead master\'s table');
    t.equal(s.statesync.backlog, 0, 'nothing left waiting');
  });

  t.test('a full backlog holds the sender back and loses nothing', async (t) => {
    await lab.board.down();
    const small = new Lab('dgt-ssc', { key: KEY, bulk_timeout_ms: 20000, backlog_max: 1024 });
    t.teardown(() => small.board.down());
    const N = 30000;
    await masterWith(small, N);
    await small.start('secondary');
    const s = await small.until('secondary', (x) => x.statesync.bulk.state === 'done', 30000);
    t.ok(s.statesync.dropped.backlog_full > 0, `the receiver refused messages while its backlog was full (${s.statesync.dropped.backlog_full})`);
    t.equal(s.statesync.bulk.received, N, `the bulk arrived whole (${s.statesync.bulk.received})`);
    t.equal(small.kernelTuples('secondary', (l) => / src=10\./.test(l)).length, N, 'the secondary\'s kernel holds every state');
  });
}
