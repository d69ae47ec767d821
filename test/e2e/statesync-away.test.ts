// A master whose peer is away (powered off) must not keep resending its whole window to it for days (a pair
// left half-powered must stay cheap when idle): once the peer has been silent for 5 s, retransmissions shrink to one probe backed off
// up to 30 s. When the peer is back it gets everything: its bulk on join, and the master's window at once.
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssa', { key: KEY });
  t.teardown(() => lab.board.down());

  t.test('retransmissions to an absent peer back off; the returning peer gets the table', async (t) => {
    await lab.startSynced();
    await lab.board.powerOff('secondary');
    // New connections while the peer is gone: their states are sent into the void and stay unacknowledged.
    const echo = lab.client(['--sessions', '20', '--interval-ms', '200', '--grace-ms', '1000']);
    await lab.until('primary', (s) => s.statesync.in_flight > 0, 10_000);
    await sleep(7000); // past the 5 s after which the peer counts as away
    const r0 = (await lab.status('primary')).statesync.messages.retransmitted;
    await sleep(12_000);
    const s1 = (await lab.status('primary')).statesync;
    const resent = s1.messages.retransmitted - r0;
    t.ok(resent <= 5, `${resent} retransmissions in 12 s with ${s1.in_flight} messages in flight (one probe, backed off)`);

    await lab.board.powerOn('secondary');
    lab.prepare('secondary');
    await lab.start('secondary');
    await lab.until('secondary', (s) => s.statesync?.bulk?.state === 'done', 20_000);
    await lab.until('primary', (s) => s.statesync.in_flight === 0, 10_000);
    const want = lab.kernelTuples('primary', (l) => /dport=5000\b/.test(l));
    const have = new Set(lab.kernelTuples('secondary', (l) => /dport=5000\b/.test(l)));
    t.equal(want.length, 20, 'the primary holds the 20 sessions');
    t.same(want.filter((x) => !have.has(x)), [], 'the returning secondary holds every one of them');
    echo.cp.kill('SIGTERM');
    await echo.result;
  });
}
