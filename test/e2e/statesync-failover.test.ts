// Sessions survive a failover: 20 TCP echo sessions + a checksummed bulk download from the LAN client to the WAN
// server through SNAT on the WAN VIP survive the primary's power-off, and survive the failback when the
// primary returns (bulk sync from the new master first, then preempt). Needs root (namespaces).
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssf', { key: KEY, bulk_timeout_ms: 8000, liberal_ms: 2000 });
  t.teardown(() => lab.board.down());

  t.test('sessions survive power-off and failback', async (t) => {
    await lab.startSynced(['done', 'timeout']);
    await sleep(500);
    const echo = lab.client(['--sessions', '20', '--interval-ms', '50', '--stall-ms', '12000', '--grace-ms', '4000']);
    const dl1 = lab.client(['--sessions', '0', '--download-bytes', String(200e6), '--download-rate-mbps', '25', '--grace-ms', '15000', '--seed', '7']);
    await sleep(2000);
    const onSecondary = lab.kernelTuples('secondary', (l) => /dport=5000\b/.test(l));
    t.equal(onSecondary.length, 20, 'the secondary\'s kernel holds all 20 echo sessions before the power-off');
    const ent = lab.board.exec('secondary', 'conntrack', ['-L', '-p', 'tcp', '--dport', '5000']).stdout.split('\n')[0];
    t.match(ent, /ESTABLISHED.*src=203\.0\.113\.10 dst=203\.0\.113\.1 /, 'injected entry is ESTABLISHED with the reply to the WAN VIP (SNAT)');
    t.comment(ent);

    await lab.board.powerOff('primary');
    await lab.until('secondary', (s) => s.carp_role === 'MASTER', 10000);
    await sleep(8000); // TCP retransmission backoff (up to ~6 s after ~3 s of takeover)
    dl1.cp.kill('SIGTERM');
    const r1 = await dl1.result;
    t.ok(r1.download_ok, `download across the failover: ${JSON.stringify(r1)}`);

    // Failback: the primary boots, takes the secondary's table, then preempts.
    const dl2 = lab.client(['--sessions', '0', '--download-bytes', String(200e6), '--download-rate-mbps', '25', '--grace-ms', '15000', '--seed', '9']);
    await lab.board.powerOn('primary');
    lab.prepare('primary');
    await lab.start('primary');
    const ps = await lab.until('primary', (s) => s.carp_role === 'MASTER', 25000);
    t.equal(ps.statesync.bulk.state, 'done', 'the primary completed its bulk before it preempted');
    t.ok(ps.statesync.bulk.received >= 20, `bulk carried the sessions (${ps.statesync.bulk.received} states)`);
    await sleep(5000);
    // Third move, soon after the failback (the demo's order): the primary bows out, the secondary takes over
    // again with entries whose window tracking it learned before the failback. They must have been re-created
    // when it turned passive, or the download is dropped as INVALID once the entries turn strict.
    const dl3 = lab.client(['--sessions', '0', '--download-bytes', String(300e6), '--download-rate-mbps', '40', '--grace-ms', '15000', '--stall-ms', '8000', '--seed', '11']);
    await sleep(1000);
    await lab.board.stopNode('primary');
    await lab.until('secondary', (s) => s.carp_role === 'MASTER', 5000);
    await sleep(4000); // past liberal_ms (2 s): entries are strict again
    const r2 = await dl2.result;
    const r3 = await dl3.result;
    echo.cp.kill('SIGTERM');
    const e = await echo.result;
    t.ok(r2.download_ok, `download across the failback: ${JSON.stringify(r2)}`);
    t.ok(r3.download_ok, `download across the bow-out right after the failback: ${JSON.stringify(r3)}`);
    t.equal(e.sessions_total, 20);
    t.equal(e.sessions_survived, 20, `all echo sessions survived the three moves: ${JSON.stringify(e)}`);
    t.comment(`echoes ${e.echoes}, longest echo gap ${e.max_echo_gap_ms} ms`);
  });
}
