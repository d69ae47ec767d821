// What a config-sync peer may write is an allowlist: vips and the sections the features mark `synced`. Any other
// name is refused at load (configsync.sections), on the wire (restore_config_section, sync_status) with a fault
// that names the section and what is carried, and nothing of the push is applied.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfigText } from '../../host/config/load.js';
import { SCHEMA_VERSION } from '../../host/config/schema.js';
import { syncable, unsyncable } from '../../host/configsync/sections.js';
import { ConfigSyncService, syncStatusNames } from '../../host/configsync/service.js';
import { Fault, XmlRpcFault } from '../../host/configsync/xmlrpc.js';
import { features } from '../../host/features.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

t.test('the allowlist is vips plus every feature\'s synced list', async (t) => {
  t.same(new Set(syncable()), new Set(['vips', ...features.flatMap((f) => f.synced ?? [])]));
  for (const s of syncable()) t.equal(unsyncable(s), null, `${s} is carried`);
  // Well-formed names that no feature marks synced: a section a future schema might accept must still be refused.
  for (const s of ['telemetry', 'routes', 'users', 'x']) t.match(unsyncable(s), /is not a section config sync carries \(it carries vips, /, s);
  t.match(unsyncable('statesync'), /node-local and never synced/);
});

t.test('the config loader refuses a name outside the allowlist in configsync.sections', async (t) => {
  const yaml = readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8');
  t.ok(parseConfigText(yaml), 'the board\'s config loads');
  t.throws(() => parseConfigText(yaml.replace('sections: [vips, firewall, nat]', 'sections: [vips, routes]')),
    { field: 'configsync.sections[1]', reason: /must be one of vips, / });
});

t.test('the secondary refuses a push naming any other section with a fault, and applies nothing of it', async (t) => {
  const s = new ConfigSyncService();
  let reconfigured = 0;
  const config = parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/secondary.yaml'), 'utf8'));
  (s as any).d = { config, reconfigure: () => { reconfigured++; } };
  const receive = (sections: Record<string, unknown>) => (s as any).receive([sections, { schema: SCHEMA_VERSION, seq: 7, from: 'a' }], '10.0.0.1');
  for (const bad of ['routes', 'statesync', '__proto__x']) {
    const err = await receive({ firewall: config.firewall ?? null, [bad]: { anything: 1 } }).catch((e: unknown) => e);
    t.ok(err instanceof XmlRpcFault, `${bad}: a fault`);
    t.equal((err as XmlRpcFault).faultCode, Fault.INVALID_CONFIG, `${bad}: invalid config`);
    t.match((err as XmlRpcFault).message, new RegExp(`section ${bad} refused: `), `${bad}: the fault names it`);
  }
  t.equal(reconfigured, 0, 'nothing applied');
  t.throws(() => syncStatusNames(['vips', 'routes']), { faultCode: Fault.INVALID_PARAMS, faultString: /section routes refused: "routes" is not a section config sync carries/ });
  t.same(syncStatusNames(['vips', 'firewall']), ['vips', 'firewall']);
});
