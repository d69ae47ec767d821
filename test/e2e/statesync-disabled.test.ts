// The control run of the failover test: the same sessions with state sync disabled die when the primary
// is powered off (the new master has no state, drops their packets as invalid). Proof that the failover
// test can fail.
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssd', { key: KEY, enabled: false });
  t.teardown(() => lab.board.down());

  t.test('without state sync the sessions are lost', async (t) => {
    await lab.up();
    await lab.startPair();
    const echo = lab.client(['--sessions', '20', '--interval-ms', '50', '--stall-ms', '12000', '--grace-ms', '1000']);
    await sleep(1500);
    t.equal(lab.kernelTuples('secondary', (l) => /dport=5000\b/.test(l)).length, 0, 'the secondary holds none of the sessions');
    await lab.board.powerOff('primary');
    await lab.until('secondary', (s) => s.carp_role === 'MASTER', 10000);
    await sleep(7000);
    echo.cp.kill('SIGTERM');
    const e = await echo.result;
    t.equal(e.sessions_total, 20);
    t.equal(e.sessions_survived, 0, `no session survived: ${JSON.stringify(e).slice(0, 300)}`);
    // The kernel's own counter: segments of connections it has no entry for (tcp_loose=0) are invalid.
    const invalid = [...lab.board.exec('secondary', 'conntrack', ['-S']).stdout.matchAll(/\binvalid=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
    t.ok(invalid > 0, `the new master found the orphaned segments invalid (${invalid} packets)`);
  });
}
