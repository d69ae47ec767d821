// The services' config listener (firewall, dns, dhcp): applies land in the order the changes came, a refused one
// does not stop the next, and the tracker gets each apply's own outcome.
import t from 'tap';
import { ApplyTracker, serialApply } from '../../host/daemon/apply.js';
import { Logger } from '../../host/log.js';
import type { Config } from '../../host/config/schema.js';

const cfg = (n: number, fail = false) => ({ n, fail }) as unknown as Config;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('two quick applies land in order even when the first is the slow one', async (t) => {
  let inForce = 0;
  const landed: number[] = [];
  const lines: string[] = [];
  const outcomes: (string | null)[] = [];
  const on = serialApply({
    service: 'firewall', sections: ['firewall', 'nat'], log: new Logger({}, 'info', (l) => lines.push(l)),
    wants: (next, prev) => (next as any).n !== (prev as any).n,
    // The older config takes longer (a big ruleset, a slow nft): without the queue it would land last.
    apply: async (next) => {
      const { n, fail } = next as any;
      await sleep(n === 1 ? 150 : 5);
      if (fail) throw Object.assign(new Error(`ruleset ${n} refused`), { code: 'DG_ERR_FIREWALL_REFUSED' });
      inForce = n; landed.push(n);
    },
    refused: 'new ruleset refused; the previous one stays in force',
    settled: (e) => outcomes.push(e ? e.message : null),
  });
  const k1 = new ApplyTracker(); const k2 = new ApplyTracker(); const k3 = new ApplyTracker(); const k4 = new ApplyTracker();
  on(cfg(1), cfg(0), k1);
  on(cfg(2), cfg(1), k2);
  on(cfg(3, true), cfg(2), k3); // refused: 2 stays in force
  on(cfg(4), cfg(3), k4); // a refusal does not stop the next apply
  on(cfg(4), cfg(4)); // not this service's change: nothing queued
  t.same(await k2.settle(2000), [], 'the second apply settles fine');
  t.same(landed, [1, 2], 'the older config landed first, the newer one is in force');
  const r3 = await k3.settle(2000);
  t.same(r3, [{ sections: ['firewall', 'nat'], service: 'firewall', code: 'DG_ERR_FIREWALL_REFUSED', reason: 'ruleset 3 refused' }]);
  t.equal(inForce, 2, 'a refused config leaves the one before in force');
  t.same(await k1.settle(10), []);
  t.same(await k4.settle(2000), []);
  t.same(landed, [1, 2, 4]);
  t.same(outcomes, [null, null, 'ruleset 3 refused', null], 'one outcome per queued apply, in order');
  const refusals = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 'error');
  t.same(refusals.map((l) => [l.msg, l.err.code]), [['new ruleset refused; the previous one stays in force', 'DG_ERR_FIREWALL_REFUSED']]);
});
