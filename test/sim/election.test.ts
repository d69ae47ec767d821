// The CARP state machine in virtual time: OpenBSD's regress scenarios without sleeps.
import t from 'tap';
import { Demote } from '../../host/core/core.js';
import { Cluster, boardPair } from '../helpers/cluster.js';

const MASTER_DOWN_SECONDARY = 3000 + Math.floor(100 * 1e6 / 256) / 1000; // 3390.625 ms

t.test('start-up election: skew 0 beats skew 100, one master, no overlap', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  for (const v of [1, 2]) {
    t.same(c.masters(v), ['primary'], `vhid ${v}`);
    t.equal(c.node('secondary').state(v), 'BACKUP');
    t.equal(c.changedAt('primary', v, 'MASTER'), 3000, 'after one master-down interval (3 x advbase)');
  }
  t.equal(c.dualMasterMs.size, 0);
  t.ok(c.node('primary').owns.has(1) && !c.node('secondary').owns.has(1));
});

t.test('master death: the backup takes over one master-down interval after the last advert', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  const lastAdvert = Math.max(...c.node('primary').log.filter((e) => e.a.type === 'advert' && e.t <= 10_000).map((e) => e.t));
  c.kill('primary');
  c.run(20_000);
  for (const v of [1, 2]) {
    const at = c.changedAt('secondary', v, 'MASTER', 10_000)!;
    t.ok(at !== undefined, `vhid ${v} taken over`);
    t.ok(Math.abs(at - (lastAdvert + 0.2 + MASTER_DOWN_SECONDARY)) < 1, `vhid ${v} at ${at - lastAdvert} ms after the last advert`);
  }
});

t.test('failback: the returning primary preempts with a handshake, never two masters', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  c.kill('primary');
  c.run(20_000);
  c.reboot('primary');
  c.run(30_000);
  for (const v of [1, 2]) {
    t.same(c.masters(v), ['primary'], `vhid ${v} back on the primary`);
    const release = c.node('secondary').log.find((e) => e.t >= 20_000 && e.a.type === 'release' && e.a.vhid === v)!.t;
    const take = c.node('primary').log.find((e) => e.t >= 20_000 && e.a.type === 'take' && e.a.vhid === v)!.t;
    t.ok(take >= release && take - release <= 0.5, `vhid ${v}: handover gap ${(take - release).toFixed(2)} ms`);
  }
  t.equal(c.dualMasterMs.size, 0, 'no time with two VIP holders');
});

t.test('failback moves the pair as one: the vhids go back together, not an advert interval apart', async (t) => {
  // Different skews on the secondary put its two vhids' adverts out of phase, as after a real takeover.
  const vhids = (s1: number, s2: number) => [
    { vhid: 1, link: 0, vips: ['192.168.1.1'], advskew: s1 },
    { vhid: 2, link: 1, vips: ['203.0.113.1'], advskew: s2 },
  ];
  const c = new Cluster([
    { name: 'primary', addrs: ['192.168.1.2', '203.0.113.2'], vhids: vhids(0, 0) },
    { name: 'secondary', addrs: ['192.168.1.3', '203.0.113.3'], vhids: vhids(100, 150) },
  ]);
  c.startAll();
  c.run(10_000);
  c.kill('primary');
  c.run(23_700);
  c.reboot('primary');
  c.run(40_000);
  const take = [1, 2].map((v) => c.node('primary').log.find((e) => e.t >= 23_700 && e.a.type === 'take' && e.a.vhid === v)!.t);
  for (const v of [1, 2]) t.same(c.masters(v), ['primary'], `vhid ${v} back on the primary`);
  t.ok(Math.abs(take[0] - take[1]) < 5, `both vhids taken back ${Math.abs(take[0] - take[1]).toFixed(2)} ms apart`);
  t.equal(c.dualMasterMs.size, 0, 'no time with two VIP holders');
  const offers = c.node('secondary').log.filter((e) => e.t >= 23_700 && e.a.type === 'advert').length;
  t.ok(offers <= 6, `a handful of adverts from the old master during the handover (${offers})`);
});

t.test('graceful stop: bow-out hands over within one packet', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  const p = c.node('primary');
  p.core.shutdown(c.now); c.drain(p);
  t.ok(p.log.some((e) => e.a.type === 'advert' && e.a.bowOut), 'a bow-out advert is sent');
  c.run(10_001);
  t.same(c.masters(1), ['secondary']); t.same(c.masters(2), ['secondary']);
  t.equal(c.changedAt('secondary', 1, 'MASTER', 10_000), 10_000.2);
  t.equal(c.dualMasterMs.size, 0);
});

t.test('maintenance demotion hands both VIPs over and back', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  const p = c.node('primary');
  p.core.setDemotion(c.now, [Demote.MAINTENANCE]); c.drain(p);
  c.run(10_010);
  t.same(c.masters(1), ['secondary']); t.same(c.masters(2), ['secondary']);
  t.equal(p.core.vhidStatus()[0].advertisedSkew, 240, 'demoted skew is clamped to 240');
  t.equal(p.core.vhidStatus()[0].demote, 240);
  c.run(20_000);
  t.same(c.masters(1), ['secondary'], 'stays with the secondary while demoted');
  p.core.setDemotion(c.now, []); c.drain(p);
  c.run(20_010);
  t.same(c.masters(1), ['primary'], 'leaving maintenance preempts at once');
  t.same(c.masters(2), ['primary']);
  t.equal(c.dualMasterMs.size, 0);
});

t.test('LAN link down: WAN vhid follows at once, LAN vhid after master-down; link up takes both back', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  c.setLink('primary', 0, false);
  t.equal(c.node('primary').state(1), 'INIT');
  c.run(10_010);
  t.same(c.masters(2), ['secondary'], 'WAN vhid moves on the demoted advert');
  c.run(14_000);
  t.same(c.masters(1), ['secondary'], 'LAN vhid moves after the master-down interval');
  t.equal(c.dualMasterMs.size, 0, 'never both VIPs split across the nodes for long... and never doubled');
  c.setLink('primary', 0, true);
  c.run(17_000);
  t.same(c.masters(1), ['primary']); t.same(c.masters(2), ['primary']);
});

t.test('partition and heal: dual master while cut off, one master after', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  c.cut.add('primary:0'); c.cut.add('secondary:0');
  c.run(15_000);
  t.same(c.masters(1).sort(), ['primary', 'secondary'], 'both MASTER on the partitioned segment');
  t.same(c.masters(2), ['primary'], 'the other segment is unaffected');
  c.cut.clear();
  c.run(18_000);
  t.same(c.masters(1), ['primary'], 'heals to the better node');
  const announces = c.node('primary').log.filter((e) => e.t > 15_000 && e.a.type === 'announce' && e.a.vhid === 1);
  t.ok(announces.length >= 1, 'the winner re-announces the VIP after the heal');
});

t.test('equal timings: exactly one master, stable (tie broken by address)', async (t) => {
  const vh = [{ vhid: 9, link: 0, vips: ['10.0.0.1'], advskew: 0 }];
  const c = new Cluster([
    { name: 'a', addrs: ['10.0.0.2'], vhids: vh }, { name: 'b', addrs: ['10.0.0.3'], vhids: vh },
  ]);
  c.latency = 0; // both time out at the same instant: the worst case
  c.startAll();
  c.run(60_000);
  t.equal(c.masters(9).length, 1);
  t.same(c.masters(9), ['b'], 'the higher address keeps the role');
  const flips = c.node('a').log.filter((e) => e.a.type === 'state').length + c.node('b').log.filter((e) => e.a.type === 'state').length;
  t.ok(flips <= 5, `converged without flapping (${flips} transitions)`);
});

t.test('three nodes: the best live node is master; a bow-out during preemption does not make the third master', async (t) => {
  const vh = (s: number) => [{ vhid: 3, link: 0, vips: ['10.0.0.1'], advskew: s }];
  const c = new Cluster([
    { name: 'a', addrs: ['10.0.0.2'], vhids: vh(0) }, { name: 'b', addrs: ['10.0.0.3'], vhids: vh(50) },
    { name: 'c', addrs: ['10.0.0.4'], vhids: vh(100) },
  ]);
  c.startAll();
  c.run(10_000);
  t.same(c.masters(3), ['a']);
  c.kill('a');
  c.run(20_000);
  t.same(c.masters(3), ['b']);
  c.reboot('a');
  c.run(30_000);
  t.same(c.masters(3), ['a']);
  t.notOk(c.node('c').log.some((e) => e.a.type === 'state' && e.a.to === 'MASTER'), 'c never became master');
  t.equal(c.dualMasterMs.size, 0);
});

t.test('preempt off: a returning better node stays backup', async (t) => {
  const c = boardPair({ preempt: false });
  c.startAll();
  c.run(10_000);
  c.kill('primary');
  c.run(20_000);
  c.reboot('primary');
  c.run(40_000);
  t.same(c.masters(1), ['secondary']);
});

t.test('lossy link: 20% advert loss does not flap a healthy pair', async (t) => {
  const c = boardPair();
  c.dropRate = 0.2;
  c.startAll();
  c.run(120_000);
  t.same(c.masters(1), ['primary']);
  const sFlips = c.node('secondary').log.filter((e) => e.a.type === 'state' && e.a.to === 'MASTER').length;
  t.ok(sFlips <= 1, `secondary became master ${sFlips} times in 2 minutes at 20% loss`);
});

t.test('sync link lost: the backup declares a silent master down after 1.5 advert intervals', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  const last = Math.max(...c.node('primary').log.filter((e) => e.a.type === 'advert').map((e) => e.t));
  c.kill('primary');
  const s = c.node('secondary');
  s.core.setPeerLost(c.now, true); c.drain(s);
  c.run(15_000);
  for (const v of [1, 2]) {
    const at = c.changedAt('secondary', v, 'MASTER', 10_000)!;
    t.ok(at - last <= 1500.5, `vhid ${v}: ${(at - last).toFixed(1)} ms after the last advert (3390 without the hint)`);
  }
});

t.test('sync link lost but the master alive: no takeover while its adverts arrive', async (t) => {
  const c = boardPair();
  c.startAll();
  c.run(10_000);
  const s = c.node('secondary');
  s.core.setPeerLost(c.now, true); c.drain(s);
  c.run(40_000);
  t.same(c.masters(1), ['primary']); t.same(c.masters(2), ['primary']);
  t.notOk(s.log.some((e) => e.a.type === 'state' && e.a.to === 'MASTER'), 'the secondary never became master');
});
