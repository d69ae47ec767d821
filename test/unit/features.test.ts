// The feature list (host/features.ts) and the runner that keeps the running features in step with the config
// (host/daemon/services.ts): sections owned once, what config sync may carry, reason codes as the core sends
// them, and features started, stopped and retried as sections arrive and leave.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { features } from '../../host/features.js';
import { featureSections } from '../../host/config/sections.js';
import { neverSynced, unsyncable } from '../../host/configsync/sections.js';
import { parseConfigText } from '../../host/config/load.js';
import { Why } from '../../host/core/core.js';
import { FeatureRunner } from '../../host/daemon/services.js';
import { ApplyTracker } from '../../host/daemon/apply.js';
import { Logger } from '../../host/log.js';
import { sleep } from '../../board/virtual/wait.js';
import type { Config } from '../../host/config/schema.js';
import type { Feature, FeatureHost, Service } from '../../host/feature.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

t.test('each section belongs to one feature; the loader knows them all', async (t) => {
  const seen = new Map<string, string>();
  for (const f of features) for (const s of Object.keys(f.sections)) {
    t.notOk(seen.has(s), `${s} is owned by ${f.name} only${seen.has(s) ? ` (also ${seen.get(s)})` : ''}`);
    seen.set(s, f.name);
  }
  t.same(Object.keys(featureSections()).sort(), [...seen.keys()].sort());
  t.same(new Set(features.map((f) => f.name)).size, features.length, 'feature names are unique');
  for (const f of features) for (const s of f.synced ?? []) t.ok(s in f.sections, `${f.name} syncs only its own section ${s}`);
  // The board's full config uses every feature and loads; but router advertisements and IPv6 routing need an IPv6
  // VIP and the committed board is IPv4 (the demo and test/e2e/ipv6.test.ts add board/virtual/ipv6.ts's part; DHCPv6
  // needs them too: test/e2e/dhcp6.test.ts).
  const c = parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8'));
  // Nor wan, which runs only for a single-address WAN (mode dhcp: test/e2e/wan-dhcp.test.ts); the board's is static.
  for (const f of features) if (f.name !== 'ra' && f.name !== 'ipv6' && f.name !== 'dhcp6' && f.name !== 'wan') t.ok(f.wanted(c), `the board's primary config asks for ${f.name}`);
});

t.test('what config sync carries comes from the features', async (t) => {
  t.same(new Set(neverSynced()), new Set(['schema', 'node', 'interfaces', 'configsync', 'control', 'state_dir', 'log', 'carp', 'statesync', 'peer', 'mqtt', 'wan']));
  for (const s of ['firewall', 'nat', 'dhcp', 'dns', 'vips']) t.equal(unsyncable(s), null, `${s} may be synced`);
  t.match(unsyncable('statesync'), /node-local/);
  // The configsync schema refuses node-local names at load, as before.
  const yaml = readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8').replace('sections: [vips, firewall, nat]', 'sections: [vips, peer]');
  t.throws(() => parseConfigText(yaml), { field: 'configsync.sections[1]' });
});

t.test('transition reason codes are the core\'s', async (t) => {
  const src = readFileSync(path.join(ROOT, 'assembly/carp/constants.ts'), 'utf8');
  const codes = Object.fromEntries([...src.matchAll(/export const WHY_([A-Z_]+): u8 = (\d+);/g)].map((m) => [m[1], Number(m[2])]));
  t.same(codes, { ...Why }, 'host Why = assembly WHY_*');
});

/** A FeatureHost as the runner needs it: a config, events and a log (the runner touches nothing else). */
function host(config: Record<string, unknown>): FeatureHost & { config: Config; lines: string[] } {
  const lines: string[] = [];
  const e = new EventEmitter();
  return Object.assign(e, {
    config: config as Config, lines, log: new Logger({}, 'info', (l) => lines.push(l)),
  }) as unknown as FeatureHost & { config: Config; lines: string[] };
}

/** A feature that runs while its section is present; `failFirst` throws on its first start. */
function toy(name: string, events: string[], opts: { failFirst?: boolean } = {}): Feature {
  let starts = 0;
  return {
    name, sections: { [name]: { type: 'object' } },
    wanted: (c) => c[name] !== undefined,
    async start(h) {
      if (!this.wanted(h.config)) return null;
      if (opts.failFirst && starts++ === 0) throw new Error(`${name} refused`);
      events.push(`start ${name}`);
      const s: Service = { name, stop: () => { events.push(`stop ${name}`); }, status: () => ({ running: true }) };
      return s;
    },
  };
}

t.test('the runner follows the config: sections arriving start features, leaving ones stop them', async (t) => {
  const ev: string[] = [];
  const h = host({ a: {}, c: {} });
  const r = new FeatureRunner(h, [toy('a', ev), toy('b', ev, { failFirst: true }), toy('c', ev)]);
  await r.startAll();
  t.same(ev.splice(0), ['start a', 'start c'], 'at start: the wanted ones, in list order');
  t.same(Object.keys(r.status()), ['a', 'c']);

  const change = async (next: Record<string, unknown>) => { const prev = h.config; h.config = next as Config; h.emit('config', h.config, prev); await r.settled(); };
  await change({ a: {}, b: {} });
  t.same(ev.splice(0), ['stop c'], 'c left: stopped; b failed to start');
  t.same(r.status(), { a: { running: true }, b: { running: false, error: 'b refused' } }, 'the failure shows in status');
  t.match(h.lines.join('\n'), /feature could not start.*"feature":"b"/);
  await change({ a: {}, b: { x: 1 }, c: {} });
  t.same(ev.splice(0), ['start b', 'start c'], 'the next change starts b and c again');
  t.same(r.services().map((s) => s.name), ['a', 'b', 'c']);
  await r.stopAll(true);
  t.same(ev.splice(0), ['stop c', 'stop b', 'stop a'], 'stopped last first');
  await change({ a: {}, b: {}, c: {}, d: {} });
  t.same(ev, [], 'nothing starts after the daemon stopped');
});

t.test('a feature that fails at daemon start names itself', async (t) => {
  const ev: string[] = [];
  const r = new FeatureRunner(host({ a: {}, b: {} }), [toy('a', ev), toy('b', ev, { failFirst: true })]);
  await t.rejects(r.startAll(), { code: 'DG_ERR_FEATURE_START', feature: 'b', message: 'b: b refused' });
  t.same(ev, ['start a']);
});

t.test('a feature a tracked change asks for that cannot start is reported with its sections', async (t) => {
  const ev: string[] = [];
  const h = host({ a: {} });
  const r = new FeatureRunner(h, [toy('a', ev), toy('b', ev, { failFirst: true })]);
  await r.startAll();
  const change = async (next: Record<string, unknown>) => {
    const k = new ApplyTracker();
    const prev = h.config; h.config = next as Config; h.emit('config', h.config, prev, k);
    return await k.settle(1000);
  };
  t.same(await change({ a: {}, b: {} }), [{ sections: ['b'], service: 'b', code: 'DG_ERR_FEATURE_START', reason: 'b refused' }],
    'config sync learns which section to keep');
  t.same(await change({ a: {}, b: { x: 1 } }), [], 'a start that works reports nothing');
  t.same(ev, ['start a', 'start b']);
  await r.stopAll(true);
});

t.test('a feature start that outlasts the wait is reported with the sections it was starting, not none', async (t) => {
  const ev: string[] = [];
  const h = host({ a: {} });
  const slow: Feature = { ...toy('s', ev), async start(hh) { await sleep(300); return toy('s', ev).start(hh); } };
  const r = new FeatureRunner(h, [toy('a', ev), slow]);
  await r.startAll();
  const k = new ApplyTracker();
  const prev = h.config; h.config = { a: {}, s: {} } as unknown as Config; h.emit('config', h.config, prev, k);
  t.same(await k.settle(50), [{ sections: ['s'], service: 'features', code: 'DG_ERR_APPLY_TIMEOUT', reason: 'starting the features the change asks for took over 50 ms' }],
    'config sync puts back the section whose feature had not started');
  await r.settled();
  await r.stopAll(true);
});
