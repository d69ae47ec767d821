// A download that started on the secondary (after the primary's power-off) runs through the failback and
// through the primary's graceful stop only ~1 s after it: the secondary takes the session back. Segments the
// secondary still forwards just after turning passive must not seed the window tracking of the entries it
// re-creates for the next takeover (they would be ~1 s stale and dropped as INVALID once strict). Needs root.
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssq', { key: KEY, bulk_timeout_ms: 8000, liberal_ms: 2000 });
  t.teardown(() => lab.board.down());

  t.test('a download started on the secondary survives failback and a bow-out 1 s later', async (t) => {
    await lab.startSynced(['done', 'timeout']);
    await lab.board.powerOff('primary');
    await lab.until('secondary', (s) => s.carp_role === 'MASTER', 10000);
    // The session is born on the secondary: its kernel tracks it natively (strict window tracking).
    const t0 = Date.now();
    const dl = lab.client(['--sessions', '0', '--download-bytes', String(300e6), '--download-rate-mbps', '25', '--grace-ms', '20000', '--stall-ms', '12000', '--seed', '5']);
    await sleep(500);
    // Stragglers: the server misses the failback's gratuitous ARP for ~200 ms (a lost GARP, a slow switch), so
    // the secondary, already passive, still forwards the download's segments for a while. Without this the
    // race is left to chance (the last in-flight segments reach the secondary within a few ms of its
    // transition): it failed about half of the runs.
    const mac = (n: 'primary' | 'secondary') => lab.board.exec(n, 'cat', ['/sys/class/net/wan0/address'], { check: true }).stdout.trim();
    lab.board.exec('server', 'ip', ['neigh', 'replace', '203.0.113.1', 'lladdr', mac('secondary'), 'dev', 'eth0', 'nud', 'permanent'], { check: true });
    await lab.board.powerOn('primary');
    lab.prepare('primary');
    await lab.start('primary');
    const ps = await lab.until('primary', (s) => s.carp_role === 'MASTER', 25000);
    t.equal(ps.statesync.bulk.state, 'done', 'the primary completed its bulk before it preempted');
    await sleep(200);
    lab.board.exec('server', 'ip', ['neigh', 'replace', '203.0.113.1', 'lladdr', mac('primary'), 'dev', 'eth0', 'nud', 'reachable'], { check: true });
    await sleep(800);
    await lab.board.stopNode('primary');
    await lab.until('secondary', (s) => s.carp_role === 'MASTER', 5000);
    // The secondary's entries turn strict liberal_ms (2 s) after its takeover: only from then on can a stale one drop.
    const strictAt = Date.now() - t0 + 2000;
    const r = await dl.result;
    if (!r.download_ok) {
      t.comment(lab.board.exec('secondary', 'conntrack', ['-L', '-p', 'tcp', '--dport', '5001']).stdout);
      t.comment(lab.board.exec('secondary', 'nft', ['list', 'ruleset']).stdout.split('\n').filter((l) => /counter/.test(l)).join('\n'));
    }
    t.ok(r.download_ok, `download across power-off, failback and the bow-out 1 s later: ${JSON.stringify(r)}`);
    t.ok(r.download_ms > strictAt + 1000, `the download still ran after the entries turned strict (${r.download_ms} ms > ${strictAt + 1000} ms)`);
  });
}
