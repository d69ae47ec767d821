// IPv6 conntrack entries reach the BACKUP (issue #16, state sync part): a LAN client and the WAN server with ULA
// addresses, routed through the primary (no NAT for IPv6), hold TCP echo sessions; the secondary's kernel gets
// their IPv6 entries, ESTABLISHED with the inverse reply, from the primary's upsert6 items. The pair announced
// CAP_V6 to each other. The routed dual-stack pair (VIPs, RA, IPv6 sessions through every failover, duogate's own
// IPv6 rules) is test/e2e/ipv6.test.ts; this lab puts node addresses by hand on the primary only.
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('ds1', { key: KEY, bulk_timeout_ms: 8000, liberal_ms: 2000 });
  t.teardown(() => lab.board.down());

  t.test('IPv6 TCP sessions through the MASTER appear in the BACKUP\'s kernel', async (t) => {
    await lab.startSynced(['done', 'timeout']);
    const b = lab.board;
    const ip = (role: string, args: string[]) => b.exec(role, 'ip', args, { check: true });
    b.sysctl('primary', { 'net.ipv6.conf.all.forwarding': '1' });
    ip('primary', ['-6', 'addr', 'add', 'fd00:1::1/64', 'dev', 'lan0', 'nodad']);
    ip('primary', ['-6', 'addr', 'add', 'fd00:2::1/64', 'dev', 'wan0', 'nodad']);
    ip('client', ['-6', 'addr', 'add', 'fd00:1::100/64', 'dev', 'eth0', 'nodad']);
    ip('client', ['-6', 'route', 'add', 'fd00:2::/64', 'via', 'fd00:1::1']);
    ip('server', ['-6', 'addr', 'add', 'fd00:2::10/64', 'dev', 'eth0', 'nodad']);
    ip('server', ['-6', 'route', 'add', 'fd00:1::/64', 'via', 'fd00:2::1']);
    // The generated ruleset passes IPv6 for the prefixes of IPv6 VIPs; these hand-made addresses are not VIPs, so
    // the two rules a dual-stack config would generate are added by hand to the table here.
    b.exec('primary', 'nft', ['-f', '-'], { check: true, input: [
      'insert rule inet duogate input icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
      'add rule inet duogate rules_lan ip6 saddr fd00:1::/64 accept', ''].join('\n') });
    for (const r of ['client', 'server']) b.exec(r, 'nft', ['-f', '-'], { input: 'flush ruleset\n' });
    const cp = b.spawn('client', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'client', '--dst', 'fd00:2::10', '--sessions', '5', '--interval-ms', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cp.stdout!.on('data', (d) => { out += d; });
    const done = new Promise<void>((r) => cp.on('exit', () => r()));
    t.teardown(() => { cp.kill('SIGTERM'); });

    const v6on = (node: 'primary' | 'secondary') => b.exec(node, 'conntrack', ['-L', '-f', 'ipv6', '-p', 'tcp', '--dport', '5000', '-o', 'extended'], { timeoutMs: 10000 })
      .stdout.split('\n').filter((l) => l.includes('dst=fd00:2::10'));
    let sec: string[] = [];
    for (let i = 0; i < 50 && sec.length < 5; i++) { await sleep(200); sec = v6on('secondary'); }
    t.equal(v6on('primary').length, 5, 'the primary forwards 5 IPv6 sessions');
    t.equal(sec.length, 5, 'the secondary\'s kernel holds all 5');
    for (const l of sec) t.match(l, /ipv6\s+10 tcp\s+6 \d+ ESTABLISHED src=fd00:1::100 dst=fd00:2::10 sport=\d+ dport=5000 src=fd00:2::10 dst=fd00:1::100 sport=5000 dport=\d+ \[ASSURED\]/, 'ESTABLISHED, the reply the plain inverse (no NAT)');
    t.comment(sec[0] ?? '');
    const ps = await lab.status('primary'); const ss = await lab.status('secondary');
    t.equal(ps.statesync.peer.v6, true, 'the secondary announced CAP_V6');
    t.equal(ss.statesync.peer.v6, true, 'the primary announced CAP_V6');
    t.ok(ss.statesync.states_table_v6 >= 5, `the secondary's IPv6 table: ${ss.statesync.states_table_v6}`);
    cp.kill('SIGTERM');
    await done;
    const sum = JSON.parse(out.split('\n').find((l) => l.includes('"summary"')) ?? '{}');
    t.equal(sum.sessions_total, 5); t.equal(sum.sessions_survived, 5, `echoes flowed over IPv6: ${JSON.stringify(sum)}`);
    if (sum.sessions_survived !== 5) for (const r of ['client', 'primary', 'server']) t.comment(`${r}: ${b.exec(r, 'ip', ['-6', 'neigh']).stdout}`);
  });
}
