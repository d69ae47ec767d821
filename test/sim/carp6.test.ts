// CARP over IPv6 in virtual time: the same election, preempt handshake and bow-out as IPv4 with a vhid whose
// adverts travel only over IPv6, and a dual-stack vhid whose adverts go out in both families.
import t from 'tap';
import { Cluster, type SimNodeSpec } from '../helpers/cluster.js';

const MASTER_DOWN_SECONDARY = 3000 + Math.floor(100 * 1e6 / 256) / 1000; // 3390.625 ms
const P6 = ['fe80::2', 'fe80::102'];
const S6 = ['fe80::3', 'fe80::103'];

/** LAN vhid 1 (IPv6 VIPs only, a link-local one as the router address), WAN vhid 2 dual-stack. */
function v6Pair(opts: { paired?: boolean } = {}): Cluster {
  const vhids = (skew: number) => [
    { vhid: 1, link: 0, vips: ['fe80::1', '2001:db8:1::1'], advskew: skew },
    { vhid: 2, link: 1, vips: ['203.0.113.1', '2001:db8:ffff::1'], advskew: skew },
  ];
  const P = ['192.168.1.2', '203.0.113.2'];
  const S = ['192.168.1.3', '203.0.113.3'];
  const pair = (peers: string[], peers6: string[]): Partial<SimNodeSpec> =>
    (opts.paired ? { peers, peers6, pairKey: 'sim-pair-key-0123456789' } : {});
  return new Cluster([
    { name: 'primary', addrs: P, addrs6: P6, vhids: vhids(0), ...pair(S, S6) },
    { name: 'secondary', addrs: S, addrs6: S6, vhids: vhids(100), ...pair(P, P6) },
  ]);
}

for (const paired of [false, true]) {
  const tag = paired ? 'paired' : 'plain';
  t.test(`${tag}: start-up election over IPv6, one master, adverts in the vhid's families`, async (t) => {
    const c = v6Pair({ paired });
    c.startAll();
    c.run(10_000);
    for (const v of [1, 2]) {
      t.same(c.masters(v), ['primary'], `vhid ${v}`);
      t.equal(c.changedAt('primary', v, 'MASTER'), 3000);
    }
    const sent = c.node('primary').log.filter((e) => e.a.type === 'advert' && e.t > 5000);
    const fam = (v: number) => [...new Set(sent.filter((e) => e.a.type === 'advert' && e.a.vhid === v).map((e) => (e.a.type === 'advert' ? e.a.family : 0)))].sort();
    t.same(fam(1), [6], 'the IPv6-only vhid advertises over IPv6 only');
    t.same(fam(2), [4, 6], 'the dual-stack vhid in both families');
    const st = c.node('secondary').core.stats();
    t.ok(st.accepted > 10 && st.other_family_copy > 5, `backup accepted ${st.accepted}, ${st.other_family_copy} other-family copies`);
    t.equal(st.replay ?? 0, 0, 'no copy taken for a replay');
    t.equal(c.node('secondary').core.vhidStatus()[0].masterSrc6, 'fe80::2', 'the master is known by its link-local address');
    t.equal(c.dualMasterMs.size, 0);
  });

  t.test(`${tag}: master death over IPv6: takeover one master-down interval after the last advert`, async (t) => {
    const c = v6Pair({ paired });
    c.startAll();
    c.run(10_000);
    const last = Math.max(...c.node('primary').log.filter((e) => e.a.type === 'advert' && e.a.vhid === 1).map((e) => e.t));
    c.kill('primary');
    c.run(20_000);
    const at = c.changedAt('secondary', 1, 'MASTER', 10_000)!;
    t.ok(Math.abs(at - (last + 0.2 + MASTER_DOWN_SECONDARY)) < 1, `vhid 1 at ${(at - last).toFixed(1)} ms after the last advert`);
    t.same(c.masters(2), ['secondary']);
  });

  t.test(`${tag}: failback over IPv6: the preempt handshake, never two masters`, async (t) => {
    const c = v6Pair({ paired });
    c.startAll();
    c.run(10_000);
    c.kill('primary');
    c.run(20_000);
    c.reboot('primary');
    c.run(30_000);
    for (const v of [1, 2]) {
      t.same(c.masters(v), ['primary'], `vhid ${v} back`);
      const release = c.node('secondary').log.find((e) => e.t >= 20_000 && e.a.type === 'release' && e.a.vhid === v)!.t;
      const take = c.node('primary').log.find((e) => e.t >= 20_000 && e.a.type === 'take' && e.a.vhid === v)!.t;
      t.ok(take >= release && take - release <= 0.5, `vhid ${v}: handover gap ${(take - release).toFixed(2)} ms`);
    }
    t.equal(c.dualMasterMs.size, 0, 'no time with two VIP holders');
  });

  t.test(`${tag}: graceful stop: the IPv6 bow-out hands over within one packet`, async (t) => {
    const c = v6Pair({ paired });
    c.startAll();
    c.run(10_000);
    const p = c.node('primary');
    p.core.shutdown(c.now); c.drain(p);
    t.ok(p.log.some((e) => e.a.type === 'advert' && e.a.bowOut && e.a.family === 6), 'a bow-out over IPv6');
    c.run(10_001);
    t.same(c.masters(1), ['secondary']); t.same(c.masters(2), ['secondary']);
    t.equal(c.changedAt('secondary', 1, 'MASTER', 10_000), 10_000.2);
    t.equal(c.dualMasterMs.size, 0);
  });
}

t.test('preempt disabled: a returning primary follows the IPv6 master', async (t) => {
  const c = v6Pair();
  for (const n of c.nodes) n.core.setPreempt(false);
  c.startAll();
  c.run(10_000);
  c.kill('primary');
  c.run(20_000);
  c.reboot('primary').core.setPreempt(false);
  c.run(30_000);
  t.same(c.masters(1), ['secondary'], 'no preemption');
  t.equal(c.dualMasterMs.size, 0);
});

t.test('40% loss on both families: one master at a time, the dual-stack vhid survives losing either copy', async (t) => {
  const c = v6Pair({ paired: true });
  c.dropRate = 0.4;
  c.startAll();
  c.run(60_000);
  for (const v of [1, 2]) t.equal(c.masters(v).length, 1, `vhid ${v}: one master`);
  t.equal(c.node('secondary').core.stats().replay ?? 0, 0);
});
