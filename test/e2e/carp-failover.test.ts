// The demo's failover story on the virtual board, with real daemons, kernel and pings: the CARP promise end to end.
import t from 'tap';
import { runScenario } from '../../board/virtual/demo/scenario.js';

t.test('power-off takeover, preempting failback and bow-out handover', async (t) => {
  const lines: string[] = [];
  const r = await runScenario({ prefix: 'dgt-carp', say: (l) => lines.push(l) }) as any;
  t.comment(JSON.stringify({ ...r, states: undefined }));
  t.ok(r.takeover_ms <= 3500, `power-off takeover ${r.takeover_ms} ms <= 3500 (master-down 3.39 s)`);
  t.ok(r.failback_ms <= 200, `failback ${r.failback_ms} ms <= 200`);
  t.ok(r.graceful_takeover_ms <= 200, `bow-out handover ${r.graceful_takeover_ms} ms <= 200`);
  t.equal(r.dual_master_ms, 0, 'never two masters for one VIP after convergence');
  // Lost echoes must agree with the measured outage (one echo per 10 ms, with a little slack).
  t.ok(r.pings_lost * r.ping_interval_ms <= r.takeover_ms + 2 * r.ping_interval_ms, `lost ${r.pings_lost} consistent with ${r.takeover_ms} ms`);
  t.ok(r.pings_lost >= Math.floor(r.takeover_ms / r.ping_interval_ms) - 5, 'and the outage is real, not a measuring artefact');
  t.ok(r.graceful_pings_lost <= 2);
  t.same(r.states.converged, { primary: { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, secondary: { 1: 'BACKUP', 2: 'BACKUP', 3: 'BACKUP' } });
  t.same(r.states.after_power_off.secondary, { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' });
  t.same(r.states.after_failback, { primary: { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, secondary: { 1: 'BACKUP', 2: 'BACKUP', 3: 'BACKUP' } });
  t.same(r.states.after_graceful_stop.secondary, { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' });
});
