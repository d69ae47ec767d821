// A node whose process stalls (SIGSTOP, a starved event loop) while it is MASTER, in virtual time. The peer takes
// over at the master-down interval and forwards; when the stalled node runs again it must not reassert at once
// (its conntrack state lags the peer's: the sessions would stall), but yield quietly, hold back while demoted
// (the daemon keeps DEMOTE_STALLED until state sync has asked for the peer's table, which raises BULK_SYNC),
// then fail back with the preempt handshake like any returning primary.
import t from 'tap';
import { Why } from '../../host/core/core.js';
import { boardPair, type Cluster } from '../helpers/cluster.js';

const MASTER_DOWN_SECONDARY = 3000 + Math.floor(100 * 1e6 / 256) / 1000; // 3390.625 ms
/** MASTERs that are running (a frozen node still believes it is MASTER). */
const running = (c: Cluster, v: number) => c.masters(v).filter((n) => !c.node(n).frozen);
const after = (c: Cluster, name: string, since: number, type: string) =>
  c.node(name).log.filter((e) => e.t >= since && e.a.type === type);
/** A paired board, settled, with the primary frozen 1 ms after its last advert (`last`, ms). */
function frozenAfterAdvert(): { c: Cluster; last: number } {
  const c = boardPair({}, { paired: true });
  c.startAll();
  c.run(10_000);
  const last = Math.max(...c.node('primary').log.filter((e) => e.a.type === 'advert' && e.t <= 10_000).map((e) => e.t));
  c.run(last + 1);
  c.freeze('primary');
  return { c, last };
}

t.test('a master frozen past the master-down interval yields when thawed, waits while demoted, then fails back', async (t) => {
  const c = boardPair({}, { paired: true });
  c.startAll();
  c.run(10_000);
  c.freeze('primary');
  c.run(15_000);
  t.same([running(c, 1), running(c, 2)], [['secondary'], ['secondary']], 'the peer took both vhids while the primary was frozen');

  c.thaw('primary');
  const p = c.node('primary');
  for (const v of [1, 2]) t.equal(p.state(v), 'BACKUP', `vhid ${v}: BACKUP right after the thaw`);
  const first = after(c, 'primary', 15_000, 'state')[0];
  t.equal(first.a.type === 'state' && first.a.reason, Why.STALLED, 'the first change says why: this node stalled');
  t.ok(p.core.demotion() > 0, 'the node demoted itself (DEMOTE_STALLED)');
  t.same([...p.owns], [], 'and holds no VIP');
  t.same(after(c, 'primary', 15_000, 'take'), [], 'no VIP taken back');
  t.same(after(c, 'primary', 15_000, 'announce'), [], 'no gratuitous ARP reasserting the VIPs');

  // Demoted (the daemon holds the reason until state sync raised its own): the peer keeps everything.
  c.run(20_000);
  t.same([c.masters(1), c.masters(2)], [['secondary'], ['secondary']], 'the peer keeps both vhids while the primary is demoted');
  t.same(after(c, 'secondary', 15_000, 'state'), [], 'no transition on the peer');

  // The host clears the demotion (bulk done): the preempt handshake brings both back, never two holders.
  p.core.setDemotion(c.now, []);
  c.drain(p);
  c.run(25_000);
  t.same([c.masters(1), c.masters(2)], [['primary'], ['primary']], 'failback once the demotion is gone');
  t.equal(c.dualMasterMs.size, 0, 'never two live holders of a VIP');
});

t.test('a stall shorter than the peer\'s master-down interval changes nothing', async (t) => {
  const { c, last } = frozenAfterAdvert();
  c.run(last + MASTER_DOWN_SECONDARY - 300);
  c.thaw('primary');
  c.run(20_000);
  t.same(after(c, 'primary', 10_000, 'state'), [], 'no transition on the stalled master');
  t.same(after(c, 'secondary', 10_000, 'state'), [], 'none on the peer');
  t.equal(c.node('primary').core.demotion(), 0, 'no demotion');
});

t.test('the peer\'s takeover advert still in flight at the thaw: yielded on arrival, not fought', async (t) => {
  const { c, last } = frozenAfterAdvert();
  // The secondary declares the master down at last + latency + 3390.625 ms and adverts at once; thaw the primary
  // 0.1 ms after that, before the takeover advert (0.2 ms latency) has reached it.
  const takeover = last + c.latency + MASTER_DOWN_SECONDARY;
  c.run(takeover + 0.1);
  t.same(running(c, 1), ['secondary'], 'the secondary just took over');
  c.thaw('primary');
  t.equal(c.node('primary').state(1), 'MASTER', 'at the thaw nothing from the peer had arrived yet: still MASTER, advert late');
  c.run(takeover + 50);
  const p = c.node('primary');
  t.same([p.state(1), p.state(2)], ['BACKUP', 'BACKUP'], 'the peer\'s takeover adverts made the primary yield both');
  t.ok(after(c, 'primary', takeover, 'state').some((e) => e.a.type === 'state' && e.a.reason === Why.STALLED), 'as a stall');
  c.run(30_000);
  t.same([c.masters(1), c.masters(2)], [['secondary'], ['secondary']], 'one master per vhid while demoted');
  t.ok(p.core.demotion() >= 240 && (p.core.demotion() / 240 | 0) === 1, `demoted once (${p.core.demotion()})`);
});

t.test('a partition that heals (no stall) still reasserts the better master at once', async (t) => {
  const c = boardPair({}, { paired: true });
  c.startAll();
  c.run(10_000);
  c.cut.add('primary:0'); c.cut.add('secondary:0');
  c.run(15_000);
  c.cut.clear();
  c.run(18_000);
  t.same(c.masters(1), ['primary'], 'the primary kept vhid 1');
  t.notOk(c.node('primary').log.some((e) => e.a.type === 'state' && e.a.reason === Why.STALLED), 'no stall yield');
});
