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
