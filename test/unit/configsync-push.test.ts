// What travels and how: categories, never-synced sections, the advskew transform (pfSense's +100, capped at
// 254), whole-section replacement with deletions; and the push queue: bursts coalesce, failures back off
// exponentially, a new commit restarts the backoff, a slow push never blocks the caller.
import t from 'tap';
import { parseConfigText } from '../../host/config/load.js';
import { getSection, outgoingSections, setSection, syncedHash, currentSections, unsyncable } from '../../host/configsync/sections.js';
import { PushQueue } from '../../host/configsync/push.js';
import { sleep } from '../../board/virtual/wait.js';
import { nodeConfigText } from '../helpers/config.js';

const cfg = (skews: number[]) => parseConfigText(nodeConfigText({
  name: 'a',
  vips: skews.map((s, i) => `{ interface: lan, vhid: ${i + 1}, address: 192.168.1.${i + 10}/24, password: pw${i}, advskew: ${s} }`),
  extra: 'configsync: { password: 0123456789abcdef }',
}));

t.test('advskew + 100, capped at 254; the primary config is not modified', async (t) => {
  const c = cfg([0, 100, 153, 154, 200, 254]);
  const out = outgoingSections(c, ['vips']) as { vips: { advskew: number }[] };
  t.same(out.vips.map((v) => v.advskew), [100, 200, 253, 254, 254, 254]);
  t.same(c.carp.vips.map((v) => v.advskew), [0, 100, 153, 154, 200, 254], 'the primary keeps its own skews');
});

t.test('sections: never-synced names, absent sections travel as null (deletion)', async (t) => {
  for (const n of ['node', 'interfaces', 'configsync', 'control', 'state_dir', 'schema', 'carp']) t.match(unsyncable(n), /never synced/, n);
  t.equal(unsyncable('firewall'), null);
  t.match(unsyncable('Bad-Name'), /not a section config sync carries/);
  const c = cfg([0]);
  const out = outgoingSections(c, ['vips', 'dhcp']);
  t.equal(out.dhcp, null, 'no dhcp on the primary: sent as null, so the secondary deletes its own');
  const sec = cfg([5]);
  sec.dhcp = { range: {} };
  setSection(sec, 'dhcp', out.dhcp);
  setSection(sec, 'vips', out.vips);
  t.notOk('dhcp' in sec, 'deleted on the secondary');
  t.equal((getSection(sec, 'vips') as { advskew: number }[])[0].advskew, 100);
  t.equal(syncedHash(currentSections(sec, ['vips', 'dhcp'])), syncedHash(out), 'the secondary\'s hash of what it applied equals the sender\'s');
  setSection(sec, 'vips', null);
  t.same(sec.carp.vips, [], 'vips deleted = no VIPs');
});

t.test('push queue: a burst coalesces into one push of the latest', async (t) => {
  let pushes = 0; let latest = 0; const seen: number[] = [];
  const q = new PushQueue(async () => { pushes++; seen.push(latest); await sleep(30); }, { minMs: 10, maxMs: 100 }, () => {});
  for (let i = 1; i <= 10; i++) { latest = i; q.kick(); }
  await sleep(20);
  latest = 11; q.kick(); q.kick(); // during the first push
  await sleep(150);
  t.same(seen, [10, 11], 'two pushes for 12 kicks: the burst, then what came in during it');
  t.equal(pushes, 2);
  q.stop();
});

t.test('push queue: failures back off exponentially; a new commit restarts the backoff', async (t) => {
  const attempts: number[] = []; const delays: number[] = [];
  let fail = true;
  const q = new PushQueue(async () => { attempts.push(Date.now()); if (fail) throw new Error('unreachable'); },
    { minMs: 20, maxMs: 160, coalesceMs: 0 }, (_e, _n, d) => delays.push(d));
  q.kick();
  await sleep(700);
  t.ok(attempts.length >= 4 && attempts.length <= 8, `${attempts.length} attempts in 700 ms`);
  // Jitter is ±20 %: each delay doubles until the cap.
  for (let i = 0; i < 4; i++) t.ok(delays[i] >= 0.8 * Math.min(160, 20 * 2 ** i) && delays[i] <= 1.2 * Math.min(160, 20 * 2 ** i), `delay ${i}: ${delays[i]} ms`);
  t.ok(delays.at(-1)! <= 192, 'capped at max (+ jitter)');
  const before = attempts.length;
  q.kick(); // a new commit: retry at once instead of waiting out the backoff
  await sleep(10);
  t.equal(attempts.length, before + 1, 'the kick retried at once');
  fail = false;
  await sleep(250);
  const n = attempts.length;
  await sleep(300);
  t.equal(attempts.length, n, 'after a success it stops');
  t.equal(q.attempt, 0);
  q.stop();
});

t.test('push queue: kick never waits for a slow push', async (t) => {
  const q = new PushQueue(() => sleep(500), { minMs: 10, maxMs: 100 }, () => {});
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) q.kick();
  t.ok(performance.now() - t0 < 20, 'kick returns at once');
  q.stop();
});


t.test('push queue: busy through the backoff after a failure, so the drift check adds no push to a retrying one', async (t) => {
  let pushes = 0;
  const q = new PushQueue(async () => { pushes++; throw new Error('rejected: DG_ERR_DHCP_REFUSED'); }, { minMs: 1000, maxMs: 2000, coalesceMs: 0 }, () => {});
  q.kick();
  await sleep(50);
  t.equal(pushes, 1);
  t.ok(q.busy, 'waiting out the backoff counts as busy (checkDrift returns on busy)');
  t.ok(q.nextRetryAt !== null, 'a retry is scheduled');
  await sleep(150);
  t.equal(pushes, 1, 'no retry before the backoff');
  q.stop();
});
