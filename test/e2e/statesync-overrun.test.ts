// Event loss: with a deliberately small event buffer on the master, a burst of new states overruns the
// conntrack event socket (ENOBUFS). The master must notice, re-dump its table and diff it, so the peer still
// ends up with every state instead of silently missing the lost ones. Needs root (namespaces).
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-sso', { key: KEY, bulk_timeout_ms: 3000, event_buffer: 65536 });
  t.teardown(() => lab.board.down());

  t.test('an event overrun is healed by a re-dump', async (t) => {
    await lab.startSynced();
    const N = 20000;
    // A burst of ctnetlink creates on the master (the benchmark's generator), far more than 64 KiB of events.
    lab.board.exec('primary', process.execPath, ['--import', 'tsx', 'test/bench/statesync-tools.ts', 'gen', '--count', String(N), '--net', '10'], { check: true, timeoutMs: 60000 });
    const p = await lab.until('primary', (s) => s.statesync.messages.event_overruns > 0 && s.statesync.states_table >= N, 15000);
    t.ok(p.statesync.messages.event_overruns > 0, `events were lost (${p.statesync.messages.event_overruns} overruns)`);
    t.ok(p.statesync.messages.resyncs >= 2, `the master re-dumped its table (${p.statesync.messages.resyncs} dumps)`);
    const s = await lab.until('secondary', (x) => x.statesync.states_table >= N, 15000);
    t.ok(s.statesync.states_table >= N, `the peer holds all ${N} states (${s.statesync.states_table})`);
    await sleep(300);
    const gen = (n: 'primary' | 'secondary') => lab.kernelTuples(n, (l) => / src=10\./.test(l));
    const master = gen('primary');
    t.equal(master.length, N);
    t.same(gen('secondary'), master, 'the two kernels hold the same states');
  });
}
