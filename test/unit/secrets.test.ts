// Secrets never leave the node in the clear: every field named like a secret carries a `secret` marking in the
// schema; config diff (control socket and CLI), config history, the sync_status answer and the MQTT state
// document show no secret value, only fingerprints where two nodes are compared; the link keys between the
// nodes (statesync.key, peer.key) and the other node-local secrets cannot be synced or probed over XML-RPC.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../host/config/load.js';
import { fingerprint, fullSchema, urlWithoutCredentials, redactConfig, secretFields, secretFingerprints, walkSchema } from '../../host/config/secrets.js';
import { ConfigStore, diffConfigs } from '../../host/configstore/store.js';
import { neverSynced, outgoingSections, unsyncable } from '../../host/configsync/sections.js';
import { syncStatusNames, syncStatusOf } from '../../host/configsync/service.js';
import { stateDocument } from '../../host/telemetry/state.js';
import { nodeConfigText } from '../helpers/config.js';

const S = {
  carp1: 'carp-lan-pw-1', carp2: 'carp-wan-pw-2', sync: 'configsync-password-0123', peer: 'peer-heartbeat-key-0123456789',
  state: 'statesync-key-0123456789abcdef', mqtt: 'mqtt-password-0123', url: 'url-password-0123',
};
const cfg = (o: Partial<typeof S> = {}) => {
  const s = { ...S, ...o };
  return parseConfigText(nodeConfigText({
    name: 'a', role: 'secondary',
    vips: [
      `{ interface: lan, vhid: 1, address: 192.168.1.1/24, password: ${s.carp1} }`,
      `{ interface: wan, vhid: 2, address: 203.0.113.1/24, password: ${s.carp2} }`,
    ],
    extra: `configsync: { password: ${s.sync}, sections: [vips, firewall] }
peer: { key: ${s.peer} }
statesync: { key: ${s.state} }
mqtt: { url: "mqtt://bob:${s.url}@192.168.1.100:1883", username: bob, password: ${s.mqtt}, key: /etc/duogate/mqtt.key, cert: /etc/duogate/mqtt.crt }`,
  }));
};
const values = Object.values(S);
const leaks = (text: string) => values.filter((v) => text.includes(v));

t.test('schema: every field named like a secret is marked, and the marked list is complete', async (t) => {
  const unmarked: string[] = [];
  walkSchema(fullSchema(), (p, node) => {
    const name = p.split('.').at(-1)!.replace('[]', '');
    if (/pass|secret|token|psk|(^|_)key$/i.test(name) && node.secret === undefined) unmarked.push(p);
  });
  t.same(unmarked, [], 'mark each with secret: true (or false if the value is not secret, like a file path)');
  t.same(secretFields().map((f) => `${f.path}:${f.kind}`).sort(), [
    'carp.vips[].password:whole', 'configsync.password:whole', 'mqtt.password:whole', 'mqtt.url:url', 'peer.key:whole', 'statesync.key:whole',
  ]);
});

t.test('a secret travels by config sync only where both nodes must share it', async (t) => {
  // CARP passwords must be equal on both nodes and the secondary's VIPs come from the primary. Any other
  // secret in a syncable section is a decision to make here, with its reason.
  const SHARED_BY_SYNC = ['carp.vips[].password'];
  for (const f of secretFields()) {
    const category = f.path.startsWith('carp.vips[]') ? 'vips' : f.path.split('.')[0];
    if (SHARED_BY_SYNC.includes(f.path)) t.equal(unsyncable(category), null, `${f.path} is synced`);
    else t.match(unsyncable(category), /never synced/, `${f.path}: section ${category} is never synced`);
  }
  for (const n of ['statesync', 'peer', 'mqtt', 'configsync']) t.ok(neverSynced().includes(n), `${n} is node-local`);
  for (const n of ['peer', 'statesync', 'mqtt']) {
    t.throws(() => parseConfigText(nodeConfigText({ name: 'a', extra: `configsync: { password: ${S.sync}, sections: [vips, ${n}] }` })), /configsync\.sections\[1\]/, `configsync.sections: [${n}] is refused by the schema`);
  }
  const out = JSON.stringify(outgoingSections(cfg(), ['vips', 'firewall']));
  t.same(leaks(out).sort(), [S.carp1, S.carp2].sort(), 'a push carries the CARP passwords and nothing else secret');
});

t.test('config diff shows a changed secret as a changed fingerprint, never the value', async (t) => {
  const a = cfg();
  const b = cfg({ carp1: 'carp-lan-pw-NEW', state: 'statesync-key-NEW-0123456789', peer: 'peer-key-NEW-0123456789', sync: 'configsync-pass-NEW', mqtt: 'mqtt-pass-NEW', url: 'url-pass-NEW' });
  const lines = diffConfigs(a, b);
  const text = lines.join('\n');
  t.same(leaks(text), [], 'old values absent');
  t.notMatch(text, /NEW/, 'new values absent');
  t.ok(lines.includes(`- carp.vips[0].password: "(secret ${fingerprint(S.carp1)})"`), 'old CARP password as its fingerprint');
  t.ok(lines.includes(`+ carp.vips[0].password: "(secret ${fingerprint('carp-lan-pw-NEW')})"`), 'new one too');
  t.ok(lines.includes(`+ mqtt.url: "mqtt://bob:(secret ${fingerprint('url-pass-NEW')})@192.168.1.100:1883"`), 'a URL keeps its user and host');
  for (const f of ['statesync.key', 'peer.key', 'configsync.password', 'mqtt.password']) t.ok(lines.some((l) => l.startsWith(`+ ${f}: "(secret sha256:`)), `${f} changed, shown as a fingerprint`);
  t.notOk(text.includes('carp.vips[1].password'), 'an unchanged secret is not in the diff');
  t.same(leaks(JSON.stringify(redactConfig(a))), [], 'redactConfig leaves no secret');
  t.equal(redactConfig(a).mqtt && (redactConfig(a).mqtt as { key: string }).key, '/etc/duogate/mqtt.key', 'redactConfig keeps file paths');
  t.equal(a.carp.vips[0].password, S.carp1, 'redactConfig does not touch its argument');
});

t.test('duogate config diff and history (the CLI, on the store) print no secret', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dg-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = cfg(); a.state_dir = dir;
  const b = cfg({ carp1: 'carp-lan-pw-NEW', state: 'statesync-key-NEW-0123456789' }); b.state_dir = dir;
  const store = new ConfigStore(dir);
  store.record(a, { description: 'first', origin: 'local' });
  store.record(b, { description: 'second', origin: 'local' });
  const file = path.join(dir, 'duogate.yaml');
  writeFileSync(file, `schema: 1\nnode: { name: a, role: secondary }\ninterfaces:\n  wan: { device: wan0, address: 203.0.113.2/24 }\n  lan: { device: lan0, address: 192.168.1.2/24 }\n  sync: { device: sync0, address: 172.16.1.2/30 }\ncarp: { vips: [] }\nstate_dir: ${dir}\n`);
  const cli = path.resolve('dist/host/cli.js');
  for (const args of [['config', 'diff'], ['config', 'diff', '--json'], ['config', 'history', '--json'], ['config', 'diff', '1', '2']]) {
    const out = execFileSync(process.execPath, [cli, ...args, '--config', file], { encoding: 'utf8' });
    t.same(leaks(out), [], `${args.join(' ')}: no old secret`);
    t.notMatch(out, /NEW/, `${args.join(' ')}: no new secret`);
    if (args[1] === 'diff') t.match(out, /carp\.vips\[0\]\.password: .*sha256:[0-9a-f]{8}/, `${args.join(' ')}: the change shows as fingerprints`);
  }
});

t.test('sync_status: only syncable names, and an answer with no secret in it', async (t) => {
  for (const n of ['configsync', 'statesync', 'peer', 'mqtt', 'interfaces', 'carp']) {
    t.throws(() => syncStatusNames([n]), { name: 'XmlRpcFault', faultCode: -32602, faultString: /never synced/ }, `${n} refused`);
  }
  t.throws(() => syncStatusNames('vips' as never), { faultCode: -32602 }, 'not an array');
  t.throws(() => syncStatusNames([1] as never), { faultCode: -32602 }, 'not strings');
  t.same(syncStatusNames(['vips', 'firewall']), ['vips', 'firewall']);
  t.equal(syncStatusNames(undefined), undefined);
  const c = cfg();
  const ans = syncStatusOf(c, { seq: 3, hash: 'ab'.repeat(32), time: '', description: '', origin: 'primary', config: c, synced: ['vips'] }, null, ['vips', 'firewall']);
  t.same(leaks(JSON.stringify(ans)), []);
  t.same(Object.keys(ans).sort(), ['local_edits', 'node', 'received', 'revision', 'synced_hash']);
});

t.test('the schema walk reaches map values, list items and anyOf branches', async (t) => {
  const schema = { properties: { a: { type: 'object', additionalProperties: { properties: { token: { type: 'string', secret: true } } } },
    b: { type: 'array', items: { type: 'string', secret: true } }, c: { anyOf: [{ properties: { psk: { secret: true } } }] } } };
  const seen: string[] = [];
  walkSchema(schema, (p, n) => { if (n.secret) seen.push(p); });
  t.same(seen, ['a.*.token', 'b[]', 'c.psk']);
});

t.test('logs and MQTT status show the broker URL without its credentials', async (t) => {
  t.equal(urlWithoutCredentials('mqtts://bob:p@ss@broker:8883'), 'mqtts://broker:8883', 'a password with an @ is not half shown');
  t.equal(urlWithoutCredentials('mqtt://token@broker'), 'mqtt://broker');
  t.equal(urlWithoutCredentials('mqtt://192.168.1.100:1883'), 'mqtt://192.168.1.100:1883');
  t.equal(redactConfig({ mqtt: { url: 'mqtt://bob:p@ss@broker' } }).mqtt.url, `mqtt://bob:(secret ${fingerprint('p@ss')})@broker`);
});

t.test('status: fingerprints to compare the nodes, kept out of MQTT', async (t) => {
  const fp = secretFingerprints(cfg());
  t.same(fp, {
    'carp.vips[0].password': fingerprint(S.carp1), 'carp.vips[1].password': fingerprint(S.carp2), 'configsync.password': fingerprint(S.sync),
    'mqtt.password': fingerprint(S.mqtt), 'mqtt.url (password)': fingerprint(S.url), 'peer.key': fingerprint(S.peer), 'statesync.key': fingerprint(S.state),
  });
  t.same(secretFingerprints(cfg()), fp, 'the same secrets give the same fingerprints (on the other node too)');
  t.not(fingerprint(S.peer), fingerprint(S.peer + 'x'));
  t.match(fingerprint('x'), /^sha256:[0-9a-f]{8}$/);
  const doc = stateDocument({ node: 'a', role: 'secondary', carp_role: 'BACKUP', vips: [], carp_counters: {}, secrets: fp, statesync: { enabled: true } }, { version: '0' });
  t.notMatch(JSON.stringify(doc), /sha256:/, 'the MQTT state document carries no fingerprint');
  t.ok((doc.services as Record<string, unknown>).statesync, 'but still the feature sections');
});
