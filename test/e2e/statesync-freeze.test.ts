// A MASTER frozen (SIGSTOP, carrier up) longer than the master-down interval: the secondary takes over and
// forwards; thawed, the primary must not reassert at once (its TCP window tracking is stale: the sessions would
// stall) but yield, rejoin state sync with the secondary's whole table, then fail back with the preempt
// handshake. 20 echo sessions and a checksummed download through SNAT survive the freeze, the thaw and the
// failback. Needs root (namespaces).
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssz', { key: KEY, bulk_timeout_ms: 8000, liberal_ms: 2000 });
  t.teardown(() => lab.board.down());

  t.test('sessions survive a frozen master and its return', async (t) => {
    await lab.startSynced(['done', 'timeout']);
    await sleep(500);
    const echo = lab.client(['--sessions', '20', '--interval-ms', '50', '--stall-ms', '12000', '--grace-ms', '4000']);
    const dl = lab.client(['--sessions', '0', '--download-bytes', String(250e6), '--download-rate-mbps', '25', '--grace-ms', '15000', '--stall-ms', '10000', '--seed', '5']);
    await sleep(2000);

    const pid = lab.board.nodeProcess('primary')!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await lab.until('secondary', (s) => s.carp_role === 'MASTER', 10_000);
      await sleep(2000); // the secondary forwards (windows move on) while the primary is frozen
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const thawedAt = Date.now();
    const ps = await lab.until('primary', (s) => s.carp_role === 'MASTER', 30_000);
    t.ok(Date.now() - thawedAt < 15_000, `the primary took the VIPs back ${Date.now() - thawedAt} ms after the thaw`);
    t.ok(ps.statesync.messages.rejoins >= 1, 'its state sync rejoined (a new session, the secondary\'s whole table)');
    t.equal(ps.statesync.bulk.state, 'done', 'and completed that bulk before it preempted');
    const log = lab.board.logSinceStart('primary');
    t.match(log, /peer took over: yielding until state has caught up/, 'the yield is logged');
    const lines = log.split('\n').filter((l) => /carp transition/.test(l)).map((l) => JSON.parse(l));
    const afterThaw = lines.filter((l) => l.wall_ms >= thawedAt - 50);
    t.ok(afterThaw.some((l) => l.to === 'BACKUP' && /stalled/.test(l.why)), 'the thawed primary went BACKUP because it had stalled');
    const firstBack = afterThaw.findIndex((l) => l.to === 'MASTER');
    t.ok(firstBack > 0 && /preempt/.test(afterThaw[firstBack].why), `it came back by preempting: ${JSON.stringify(afterThaw.map((l) => [l.to, l.why]))}`);

    await sleep(5000); // past liberal_ms: the entries are strictly window-tracked again
    const r = await dl.result;
    echo.cp.kill('SIGTERM');
    const e = await echo.result;
    t.ok(r.download_ok, `download across the freeze and failback: ${JSON.stringify(r)}`);
    t.equal(e.sessions_total, 20);
    t.equal(e.sessions_survived, 20, `all echo sessions survived: ${JSON.stringify(e)}`);
    t.comment(`echoes ${e.echoes}, longest echo gap ${e.max_echo_gap_ms} ms`);
  });
}
