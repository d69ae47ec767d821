// The chaos harness's invariant checker and plan (board/chaos): the checks can fail (a forged double MASTER, a
// split pair, a lost session, a duplicated DHCP address are each reported), they pass on a healthy pair, and
// the plan is a pure function of the seed that injects every fault kind even in a 2-minute run.
import t from 'tap';
import { Invariants, parseKeaLeases, type NodeObs, type Observation } from '../../board/chaos/invariants.js';
import { ALL_KINDS, KINDS, plan } from '../../board/chaos/schedule.js';

const node = (states: Record<string, string>, o: Partial<NodeObs> = {}): NodeObs => ({
  up: true, states, maintenance: false, alarms: [],
  vips: states['1'] === 'MASTER' ? ['192.168.1.1', '203.0.113.1'] : [],
  config: { seq: 3, peerState: 'in_sync', behind: 0, receivedPrimarySeq: 3 }, kea: true, unbound: true, ...o,
});
const healthy = (t0 = 1000): Observation => ({
  t: t0, settled: true, replyAgeMs: 15,
  nodes: { primary: node({ 1: 'MASTER', 2: 'MASTER' }, { config: { seq: 3, peerState: 'in_sync', behind: 0 } }), secondary: node({ 1: 'BACKUP', 2: 'BACKUP' }) },
});

t.test('a healthy settled pair passes every check', async (t) => {
  const inv = new Invariants();
  inv.observe(healthy());
  t.same(inv.violations, []);
  t.equal(inv.settledObservations, 1);
});

t.test('a forged double MASTER is a violation, counted once per episode, again after it cleared', async (t) => {
  const inv = new Invariants();
  const bad = healthy(2000);
  bad.nodes.secondary = node({ 1: 'MASTER', 2: 'MASTER' });
  inv.observe(bad, [7]);
  inv.observe({ ...bad, t: 2500 }, [7]);
  const one = inv.violations.filter((v) => v.invariant === 'one_master');
  t.equal(one.length, 1, 'one violation for the episode');
  t.match(one[0]!.detail, /vhid 1: \[primary,secondary\]/);
  t.same(one[0]!.faults, [7], 'attributed to the fault that should have settled');
  t.ok(inv.violations.some((v) => v.invariant === 'vip_kernel'), 'both nodes hold the VIP addresses');
  inv.observe(healthy(3000));
  inv.observe({ ...bad, t: 3500 });
  t.equal(inv.violations.filter((v) => v.invariant === 'one_master').length, 2, 'a new episode counts again');
});

t.test('VIPs split across the nodes, the wrong node MASTER, no reply, config behind, an alarm, a dead service', async (t) => {
  const inv = new Invariants();
  const o = healthy();
  o.nodes.primary = node({ 1: 'MASTER', 2: 'BACKUP' }, { vips: ['192.168.1.1'], alarms: ['split_brain'], kea: false });
  o.nodes.secondary = node({ 1: 'BACKUP', 2: 'MASTER' }, { vips: ['203.0.113.1'], config: { receivedPrimarySeq: 2 } });
  o.replyAgeMs = 4000;
  inv.observe(o);
  const got = new Set(inv.violations.map((v) => v.invariant));
  for (const k of ['same_node', 'preferred', 'reach', 'config', 'alarms', 'services']) t.ok(got.has(k), k);
  t.notOk(got.has('one_master'), 'each VIP still has one MASTER');
});

t.test('the secondary holding the VIPs is right while the primary is in maintenance', async (t) => {
  const inv = new Invariants();
  const o = healthy();
  o.nodes.primary = node({ 1: 'BACKUP', 2: 'BACKUP' }, { maintenance: true, config: { seq: 3, peerState: 'in_sync', behind: 0 } });
  o.nodes.secondary = node({ 1: 'MASTER', 2: 'MASTER' });
  inv.observe(o);
  t.same(inv.violations, []);
});

t.test('unsettled observations only check the bounds', async (t) => {
  const inv = new Invariants();
  const o = healthy();
  o.settled = false;
  o.nodes.secondary = node({ 1: 'MASTER', 2: 'MASTER' }, { rssMb: { duogate: 400 }, conntrack: 50_000 });
  inv.observe(o);
  t.same(inv.violations.map((v) => v.invariant).sort(), ['rss', 'table']);
});

t.test('a lost session is a violation only for faults state sync must survive', async (t) => {
  const inv = new Invariants();
  const loss = { id: 3, since: 10_000, opened: 1_000, why: 'stalled' };
  t.ok(inv.sessionLost(loss, [{ n: 1, kind: 'power_cut', survivable: true, start: 9_000 }]), 'power cut');
  t.ok(inv.sessionLost(loss, []), 'no fault at all');
  t.notOk(inv.sessionLost(loss, [{ n: 2, kind: 'freeze', survivable: false, start: 9_000 }]), 'freeze: counted, not a violation');
  t.notOk(inv.sessionLost(loss, [{ n: 1, kind: 'power_cut', survivable: true, start: 9_000 }, { n: 3, kind: 'cable_sync', survivable: false, start: 8_000 }]), 'power cut with the sync cable out');
  t.notOk(inv.sessionLost({ ...loss, opened: 8_500 }, [{ n: 1, kind: 'power_cut', survivable: true, start: 9_000 }]), 'opened just before the fault: maybe not synced yet');
  t.equal(inv.violations.length, 2);
});

t.test('DHCP: one address bound by two clients, or leased to two MACs across the nodes', async (t) => {
  const inv = new Invariants();
  inv.dhcp(1, { dhc1: '192.168.1.150', dhc2: '192.168.1.151' }, { primary: { '192.168.1.150': '02:d6:0a:01:00:01' }, secondary: { '192.168.1.150': '02:D6:0A:01:00:01' } });
  t.same(inv.violations, [], 'distinct addresses; the same MAC in both lease files');
  inv.dhcp(2, { dhc1: '192.168.1.150', dhc2: '192.168.1.150' }, { primary: {}, secondary: {} });
  inv.dhcp(3, {}, { primary: { '192.168.1.152': '02:d6:0a:01:00:01' }, secondary: { '192.168.1.152': '02:d6:0a:01:00:02' } });
  t.same(inv.violations.map((v) => v.detail), ['192.168.1.150 bound by dhc1 and dhc2', '192.168.1.152 leased to 02:d6:0a:01:00:01 and 02:d6:0a:01:00:02 (Kea lease files)']);
});

t.test('Kea lease file: the last line per address wins; expired and released leases are not active', async (t) => {
  const csv = [
    'address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context',
    '192.168.1.150,02:d6:0a:01:00:01,,3600,2000,1,0,0,,0,',
    '192.168.1.151,02:d6:0a:01:00:02,,3600,2000,1,0,0,,0,',
    '192.168.1.151,02:d6:0a:01:00:02,,0,1000,1,0,0,,0,',
    '192.168.1.152,02:d6:0a:01:00:03,,3600,2000,1,0,0,,1,',
  ].join('\n');
  t.same(parseKeaLeases(csv, 1500), { '192.168.1.150': '02:d6:0a:01:00:01' });
});

t.test('the plan: the same for a seed, every kind in a 2-minute run, node faults one at a time', async (t) => {
  const window = 95_000;
  t.same(plan(7, window), plan(7, window), 'deterministic');
  t.notSame(plan(7, window), plan(8, window), 'the seed matters');
  for (const seed of [1, 2, 7, 42, 1234]) {
    const p = plan(seed, window);
    const kinds = new Set(p.map((f) => f.kind));
    t.same(ALL_KINDS.filter((k) => !kinds.has(k)), [], `seed ${seed}: every kind planned`);
    const timed = p.filter((f) => KINDS[f.kind].cls !== 'node');
    t.ok(timed.every((f) => f.atMs <= window - 5_000), `seed ${seed}: timed faults inside the window`);
  }
  const only = plan(3, 180_000, ['kill9']);
  t.ok(only.length >= 5 && only.every((f) => f.kind === 'kill9'), `--only kill9: ${only.length} kill9 faults, nothing else`);
  const long = plan(1, 30 * 60_000);
  t.ok(long.length > 100, `30 min: ${long.length} faults`);
  t.ok(long.filter((f) => f.kind === 'sync_loss').every((f) => f.param >= 1 && f.param <= 30), 'loss 1-30 %');
  t.ok(long.filter((f) => f.kind === 'clock_step').every((f) => Math.abs(f.param) === 86_400_000), 'clock steps of one day');
});
