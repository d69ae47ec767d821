// The tracker config sync waits on after a live change: which sections' applies failed, with what stable code.
import t from 'tap';
import { ApplyTracker } from '../../host/daemon/apply.js';

t.test('settled applies: failures listed with their own code, others generic; successes not', async (t) => {
  const k = new ApplyTracker();
  k.track('firewall', ['firewall', 'nat'], Promise.reject(Object.assign(new Error('ruleset refused'), { code: 'DG_ERR_FIREWALL_REFUSED' })));
  k.track('dns', ['dns'], Promise.reject(Object.assign(new Error("EPERM: operation not permitted, open 'x'"), { code: 'EPERM' })));
  k.track('dhcp', ['dhcp'], Promise.resolve());
  t.equal(k.size, 3);
  const r = await k.settle(1000);
  t.same(r.sort((a, b) => a.service.localeCompare(b.service)), [
    { sections: ['dns'], service: 'dns', code: 'DG_ERR_APPLY_FAILED', reason: "EPERM: operation not permitted, open 'x'" },
    { sections: ['firewall', 'nat'], service: 'firewall', code: 'DG_ERR_FIREWALL_REFUSED', reason: 'ruleset refused' },
  ]);
  t.same(await new ApplyTracker().settle(10), [], 'nothing tracked: nothing failed');
});

t.test('an apply that does not finish in time is reported as a timeout, and settle returns', async (t) => {
  const k = new ApplyTracker();
  k.track('dns', ['dns'], new Promise(() => {}));
  const t0 = Date.now();
  const r = await k.settle(50);
  t.ok(Date.now() - t0 < 1000, 'bounded');
  t.equal(r[0]?.code, 'DG_ERR_APPLY_TIMEOUT');
  t.match(r[0]?.reason, /dns did not finish applying within 50 ms/);
});

t.test('a rejection tracked before anyone settles is not an unhandled rejection', async (t) => {
  let unhandled = 0;
  const on = () => { unhandled++; };
  process.on('unhandledRejection', on);
  const k = new ApplyTracker();
  k.track('firewall', ['firewall'], Promise.reject(new Error('x')));
  await new Promise((r) => setTimeout(r, 20));
  process.off('unhandledRejection', on);
  t.equal(unhandled, 0);
  t.equal((await k.settle(10)).length, 1);
});
