// IPv6 through the pair (issue #16, docs/carp.md "IPv6 routing"): the demo's failover story told on a dual-stack
// board (board/virtual/ipv6.ts) with the IPv6 plugin alone. A SLAAC client (router fe80::1 from the MASTER's
// advertisements) pings the WAN server over IPv6 every 10 ms and keeps 20 IPv6 TCP echo sessions through a power
// cut, a failback and a graceful stop, with an IPv6 download across the power cut, all through duogate's own
// generated ruleset (no rule added by hand), state sync carrying the IPv6 conntrack entries, no NAT.
import t from 'tap';
import { runScenario } from '../../board/virtual/demo/scenario.js';
import { ipv6Plugin } from '../../board/virtual/demo/ipv6.js';
import { V6 } from '../../board/virtual/ipv6.js';

t.test('dual-stack pair: IPv6 clients keep their router, sessions and download through every move', async (t) => {
  const lines: string[] = [];
  const r = await runScenario({ prefix: 'v6a', say: (l) => lines.push(l), plugins: [ipv6Plugin()] }) as any;
  const v6 = r.v6;
  t.comment(JSON.stringify({ v6, takeover_ms: r.takeover_ms, dual_master_ms: r.dual_master_ms }));
  if (!v6) { t.fail(`no v6 report\n${lines.join('\n')}`); return; }
  t.match(v6.slaac_address, /^2001:db8:1:0:/, `the client made ${v6.slaac_address} from the advertised prefix`);
  t.equal(v6.router, V6.router, 'its default router is the link-local VIP');
  t.equal(v6.dns_ok, true, 'the resolver answers over IPv6 on the LAN VIP (the RA\'s RDNSS)');
  t.equal(v6.wan_reaches_lan, false, 'the WAN server cannot open a connection to the LAN client (no NAT, but no WAN rule passes it)');
  t.ok(v6.takeover_ms > 0 && v6.takeover_ms <= 3500, `power-cut outage over IPv6 ${v6.takeover_ms} ms <= 3500 (as IPv4: master-down 3.39 s)`);
  t.ok(v6.pings_lost * 10 <= v6.takeover_ms + 20, `${v6.pings_lost} echoes lost, consistent with the outage`);
  // ping(8) runs in the client beside the load and state sync; a stall of its own sending shows as a gap, so the
  // bound is looser than IPv4's (the native prober): a missed neighbour advertisement would cost seconds.
  t.ok(v6.failback_ms <= 600, `failback outage ${v6.failback_ms} ms <= 600`);
  t.ok(v6.graceful_takeover_ms <= 600, `bow-out outage ${v6.graceful_takeover_ms} ms <= 600`);
  t.equal(v6.tcp_sessions_total, 20, '20 IPv6 TCP sessions');
  t.equal(v6.tcp_sessions_survived, 20, `all survived the power cut, the failback and the graceful stop (${v6.errors.join('; ')})`);
  t.equal(v6.download_ok, true, 'the IPv6 download across the power cut arrived whole (SHA-256 checked)');
  t.ok(v6.ra_seen >= 2, `${v6.ra_seen} router advertisements seen`);
  t.equal(v6.ra_from_backup, 0, 'ra_from_backup = 0: no node advertised while it was not MASTER');
  t.equal(r.dual_master_ms, 0, 'never two masters');
});

t.test('over IPv6 the LAN gets DNS on the VIP and nothing else; the WAN gets nothing', async (t) => {
  const { VirtualBoard } = await import('../../board/virtual/board.js');
  const { Firmware } = await import('../../board/virtual/firmware.js');
  const { dualStack, ipv6Up, waitSlaac } = await import('../../board/virtual/ipv6.js');
  const path = await import('node:path');
  const { ROOT } = await import('../../board/virtual/firmware.js');
  const board = new VirtualBoard({ prefix: 'v6b' });
  const fw = new Firmware(board);
  t.teardown(() => board.down());
  await board.up();
  fw.resetState();
  fw.writeConfigs('v6scan', { keep: 'all', edit: (c, n) => dualStack(c, n) });
  ipv6Up(board);
  await fw.startPair();
  const slaac = await waitSlaac(board, 15_000);
  t.ok(slaac.address && slaac.router, 'the client is a SLAAC host with a router');
  const TCP = '1-1024,1883,5353,7200,7201,7443,8000,8001,8080,8443,8883,9100';
  const UDP = '53,67,68,123,161,500,514,547,1900,4500,5353,7200,7201,7443,8001';
  const scan = async (host: 'client' | 'server', targets: string[]) => {
    const r = await board.execAsync(host, process.execPath, [path.join(ROOT, 'dist/board/virtual/portscan.js'), '--targets', targets.join(','), '--tcp', TCP, '--udp', UDP, '--timeout-ms', '800', '--concurrency', '400'], { timeoutMs: 120_000 });
    if (r.status !== 0) throw new Error(`portscan in ${host}: exit ${r.status}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { tcp: { addr: string; port: number; result: string }[]; udp: { addr: string; port: number; result: string }[]; probes: number; ms: number };
  };
  const fmt = (h: { addr: string; port: number; result: string }[]) => h.map((x) => `${x.addr}:${x.port} ${x.result}`);
  // The LAN's IPv6 view of the pair: the VIPs, each node's link-local address, and the WAN VIP.
  const lanTargets = [V6.lanVip, `${V6.router}%eth0`, `${V6.ll.primary}%eth0`, `${V6.ll.secondary}%eth0`, V6.lan.primary, V6.lan.secondary, V6.wanVip, V6.wan.primary];
  const a = await scan('client', lanTargets);
  t.comment(`LAN IPv6 scan: ${a.probes} probes in ${a.ms} ms`);
  t.same(fmt(a.tcp), [`${V6.lanVip}:53 open`], 'TCP: only DNS on the LAN\'s IPv6 VIP answers');
  t.same(fmt(a.udp), [`${V6.lanVip}:53 answer`], 'UDP: only DNS answers (no port unreachable from anything else)');
  const w = await scan('server', [V6.wanVip, `${V6.ll.primary}%eth0`, `${V6.ll.secondary}%eth0`, V6.wan.primary, V6.wan.secondary, V6.lanVip]);
  t.same([...fmt(w.tcp), ...fmt(w.udp)], [], 'from the WAN over IPv6: nothing answers, not even a reset');
  t.ok(board.ping('client', V6.lanVip), 'the LAN may ping the IPv6 VIP');
  t.ok(board.ping('client', V6.lan.secondary), 'and the BACKUP\'s own global address (global6) on the LAN');
  t.ok(board.exec('secondary', 'ping', ['-c', '2', '-W', '1', '-i', '0.3', '-I', V6.wan.secondary, V6.server]).status === 0, 'the BACKUP reaches the internet over IPv6 from its own WAN address (global6, via gateway6)');
  t.notOk(board.exec('server', 'ping', ['-c', '2', '-W', '1', '-i', '0.3', V6.lanVip]).status === 0, 'the WAN may not ping the LAN\'s VIP');
  t.notOk(board.exec('server', 'ping', ['-c', '2', '-W', '1', '-i', '0.3', V6.wan.primary]).status === 0, 'nor a node\'s own WAN address');
  // A forged router advertisement from the LAN gives the nodes no route (accept_ra 0, and the ruleset).
  const routes = (n: 'primary' | 'secondary') => board.exec(n, 'ip', ['-6', 'route', 'show', 'default']).stdout.trim();
  t.match(routes('primary'), /^default via fe80::10 dev wan0/, 'the upstream route from interfaces.wan.gateway6');
  t.equal(board.exec('primary', 'cat', ['/proc/sys/net/ipv6/conf/all/forwarding']).stdout.trim(), '1', 'IPv6 forwarding on');
});
