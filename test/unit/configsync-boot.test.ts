// A secondary starts from its file plus the sections it last received from the primary, merged before any
// feature starts (so the firewall's ruleset comes from them and is loaded before the sync server listens).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../host/config/load.js';
import type { Config } from '../../host/config/schema.js';
import { ConfigStore, hashOf } from '../../host/configstore/store.js';
import { bootConfig } from '../../host/configsync/service.js';
import { FeatureRunner } from '../../host/daemon/services.js';
import { Logger } from '../../host/log.js';
import type { Feature, FeatureHost } from '../../host/feature.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

function setup(t: any) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-boot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/secondary.yaml'), 'utf8'));
  file.state_dir = dir;
  const lines: any[] = [];
  const log = new Logger({}, 'info', (l) => lines.push(JSON.parse(l)));
  return { file, dir, lines, log };
}

/** What a push from the primary left in the store: the file with a different lan rule list and one more VIP. */
function received(file: Config, dir: string): Config {
  const c = structuredClone(file);
  c.firewall!.rules.lan = [{ action: 'pass', protocol: 'any', source: 'lan net', destination: 'any', description: 'from the primary' }] as any;
  c.carp.vips = [...c.carp.vips, { ...c.carp.vips[0], vhid: 77, address: '192.168.1.77/24' }];
  new ConfigStore(dir).record(c, { description: 'received', origin: 'primary', synced: ['vips', 'firewall'], primary_revision: { seq: 4, hash: 'h' } });
  return c;
}

t.test('the stored synced sections win over the file\'s; node-local ones stay the file\'s', async (t) => {
  const { file, dir, lines, log } = setup(t);
  t.equal(bootConfig(file, log), file, 'nothing received yet: the file as it is');
  const rx = received(file, dir);
  const local = structuredClone(file);
  local.dns!.forwarders = ['198.51.100.53']; // a node-local edit of a section not synced: the file's stays
  const c = bootConfig(local, log);
  t.match(c.firewall, rx.firewall, 'firewall from the primary (defaults filled in)');
  t.equal(c.firewall!.rules.lan!.length, 1);
  t.same(c.carp.vips.map((v) => v.vhid), rx.carp.vips.map((v) => v.vhid), 'vips from the primary');
  t.same(c.dns, local.dns, 'dns (not synced) from the file');
  t.match(lines.at(-1), { level: 'info', msg: 'starting with the sections last received from the primary', seq: 1, primary_seq: 4, sections: ['vips', 'firewall'] });
  t.same(bootConfig({ ...structuredClone(local), node: { ...local.node, role: 'primary' } } as Config, log).firewall, local.firewall, 'a primary starts from its file');
});

t.test('a synced section edited here after the push starts as edited (what was last in force)', async (t) => {
  const { file, dir, log } = setup(t);
  const rx = received(file, dir);
  const edited = structuredClone(rx);
  edited.firewall!.rules.lan![0].description = 'edited on the secondary';
  new ConfigStore(dir).record(edited, { description: 'local edit', origin: 'local' });
  t.equal(bootConfig(file, log).firewall!.rules.lan![0].description, 'edited on the secondary');
});

t.test('stored sections that no longer load: the file\'s, said loudly, no throw', async (t) => {
  const { file, dir, lines, log } = setup(t);
  const c = structuredClone(file);
  (c.firewall as any).rules.lan = [{ action: 'teleport' }];
  new ConfigStore(dir).record(c, { description: 'received', origin: 'primary', synced: ['firewall'], primary_revision: { seq: 9, hash: 'h' } });
  const out = bootConfig(file, log);
  t.equal(hashOf(out), hashOf(file));
  t.match(lines.at(-1), { level: 'error', msg: /cannot be used at start; the config file's are in force/, seq: 1, field: /^firewall\.rules\.lan/ });
});

t.test('the runner asks each feature in order before any starts', async (t) => {
  const { file, log } = setup(t);
  const seen: string[] = [];
  const f = (name: string, amend?: (c: Config) => Config): Feature => ({
    name, sections: {}, wanted: () => true, start: async () => { seen.push(`start ${name}`); return null; },
    ...(amend ? { bootConfig: async (c: Config) => { seen.push(`boot ${name}`); return amend(c); } } : {}),
  });
  const host = { config: file, log, on() {}, off() {} } as unknown as FeatureHost;
  const r = new FeatureRunner(host, [f('a', (c) => ({ ...c, x: 1 }) as Config), f('b'), f('c', (c) => ({ ...c, y: (c as any).x + 1 }) as Config)]);
  const c = await r.bootConfig(file);
  t.same([(c as any).x, (c as any).y], [1, 2], 'each sees the one before\'s result');
  t.same(seen, ['boot a', 'boot c'], 'no feature started');
});
