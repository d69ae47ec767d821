// Config sync on the virtual board with real daemons: the secondary starts with no VIPs and gets them from the
// primary (BACKUP, advskew + 100); live apply without flapping; Python's xmlrpc.client against the server;
// every refusal (password, rate limit, malformed XML, oversized body, unknown method, invalid section,
// version); the primary's failure classes (rejected, authentication, version, tls, unreachable); the
// secondary powered off and converging on return; drift; history/diff/revert; SIGKILL during writes.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { VirtualBoard } from '../../board/virtual/board.js';
import { CLI, poll, sleep } from '../../board/virtual/firmware.js';
import { parseConfigText } from '../../host/config/load.js';
import { ConfigStore, hashOf } from '../../host/configstore/store.js';
import { BOARD_VIPS, SYNC_PASSWORD, SyncPair, nodeYaml, type VipSpec } from './configsync-helpers.js';

/** A stand-in server on the secondary's sync address that reports config schema 2. */
const PY_SERVE = String.raw`
import json, ssl, sys
from xmlrpc.server import SimpleXMLRPCServer
a = json.loads(sys.argv[1])
srv = SimpleXMLRPCServer(('172.16.1.2', 7443), logRequests=False, allow_none=True)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(a['cert'], a['key'])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.register_function(lambda *x: {'version': '9.9.9', 'schema': 2, 'node': 'secondary', 'role': 'secondary'}, 'duogate.host_firmware_version')
print('ready', flush=True)
srv.serve_forever()
`;

const board = new VirtualBoard({ prefix: 'dgt-cs' });
const pair = new SyncPair(board);
t.teardown(() => board.down());

const SYNC = `  retry_min_ms: 200
  retry_max_ms: 1000
  check_interval_s: 1
  max_body_bytes: 1048576
  auth_max_failures: 3
  auth_window_s: 3`;
let vips: VipSpec[] = structuredClone(BOARD_VIPS);
let edits = 0;

/** Apply `vips` on the primary through the CLI (in its namespace); returns the CLI's JSON and its duration. */
function applyPrimary(desc: string, sync = SYNC): { r: any; ms: number } {
  const f = path.join(pair.dir, `edit-${++edits}.yaml`);
  const yaml = nodeYaml('primary', pair.dir, { vips, sync });
  execFileSync('tee', [f], { input: yaml, stdio: ['pipe', 'ignore', 'inherit'] });
  const t0 = performance.now();
  const res = pair.cli('primary', ['apply', f, '-m', desc, '--json']);
  const ms = performance.now() - t0;
  if (res.status !== 0) throw new Error(`config apply failed: ${res.stderr}`);
  return { r: JSON.parse(res.stdout), ms };
}
const peer = async () => (await pair.tryStatus('primary'))?.configsync?.peer;
const inSync = () => poll(async () => { const p = await peer(); return p?.state === 'in_sync' && p.revisions_behind === 0 ? p : null; }, 15_000);
const secVips = async () => Object.fromEntries(((await pair.tryStatus('secondary'))?.vips ?? []).map((v: any) => [v.vhid, v]));
const secRev = async () => (await pair.status('secondary')).configsync.revision;

t.before(async () => {
  await board.up();
  rmSync(pair.dir, { recursive: true, force: true });
  mkdirSync(pair.dir, { recursive: true });
  pair.write('primary', nodeYaml('primary', pair.dir, { sync: SYNC }));
  pair.write('secondary', nodeYaml('secondary', pair.dir, { sync: SYNC }));
});

t.test('the secondary starts with no VIPs and gets them from the primary, BACKUP with advskew + 100', async (t) => {
  t.match(readFileSync(pair.configFile('secondary'), 'utf8'), /vips: \[\]/, 'the secondary config has no VIPs');
  const t0 = Date.now();
  await Promise.all([pair.start('primary'), pair.start('secondary')]);
  const got = await poll(async () => {
    const v = await secVips();
    return v[1]?.state === 'BACKUP' && v[2]?.state === 'BACKUP' ? v : null;
  }, 10_000);
  const ms = Date.now() - t0;
  t.ok(got, `both VIPs on the secondary in BACKUP after ${ms} ms`);
  t.ok(ms < 5000, 'within seconds of the primary starting');
  t.equal(got![1].advskew, 100, 'vhid 1 advskew = 0 + 100');
  t.equal(got![2].advskew, 100, 'vhid 2 advskew = 0 + 100');
  const p = await inSync();
  t.ok(p, 'the primary shows the peer in sync');
  t.match(p!.certificate.by, /trust on first use/);
  const cert = pair.python('primary', 'cert');
  t.equal(p!.certificate.fingerprint.replace(/:/g, '').toLowerCase(), cert.sha256, 'the recorded fingerprint is the secondary\'s certificate');
  t.equal(p!.synced_hash.local, p!.synced_hash.peer, 'both nodes report the same synced-sections hash');
  const hist = JSON.parse(pair.cli('secondary', ['history', '--json']).stdout);
  t.equal(hist.at(-1).origin, 'primary', 'the secondary recorded the revision as received from the primary');
  t.match(hist.at(-1).description, /received from the primary primary/);
});

t.test('Python xmlrpc.client calls the server', async (t) => {
  const v = pair.python('primary', 'call', { password: SYNC_PASSWORD, method: 'duogate.host_firmware_version' });
  t.match(v, { ok: true, result: { schema: 1, node: 'secondary', role: 'secondary' } });
  const m = pair.python('primary', 'call', { password: SYNC_PASSWORD, method: 'system.listMethods' });
  t.same(m.result, ['duogate.host_firmware_version', 'duogate.restore_config_section', 'duogate.sync_status', 'system.listMethods']);
  const s = pair.python('primary', 'call', { password: SYNC_PASSWORD, method: 'duogate.sync_status', params: [['vips']] });
  t.equal(s.result.synced_hash.slice(0, 12), (await peer()).synced_hash.peer, 'sync_status answers the applied synced hash');
  t.same(s.result.local_edits, []);
  // A hash over a node-local section would let a caller test guesses of the keys in it (docs/configsync.md).
  for (const n of ['configsync', 'statesync', 'peer', 'mqtt']) {
    const r = pair.python('primary', 'call', { password: SYNC_PASSWORD, method: 'duogate.sync_status', params: [[n]] });
    t.equal(r.fault, -32602, `sync_status refuses ${n}`);
    t.match(r.message, /node-local and never synced/);
  }
  t.notMatch(JSON.stringify([v, s]), /secret/, 'no password in the answers');
});

t.test('refusals: each is a clear fault and a log line, and nothing changes on the secondary', async (t) => {
  const before = await secRev();
  const restore = (sections: unknown, schema = 1) => ({ password: SYNC_PASSWORD, method: 'duogate.restore_config_section', params: [sections, { schema, seq: 99, revision: 'x', description: 'probe', from: 'python' }] });
  const cases: [string, string, Record<string, unknown>, number, RegExp][] = [
    ['wrong password', 'call', { password: 'not-the-password', method: 'duogate.sync_status' }, 1, /authentication failed/],
    ['unknown method', 'call', { password: SYNC_PASSWORD, method: 'duogate.exec_shell', params: ['id'] }, -32601, /unknown method "duogate.exec_shell"/],
    ['malformed XML', 'raw', { password: SYNC_PASSWORD, body: '<methodCall><methodName>duogate.sync_status</methodName><params>' }, -32700, /malformed XML-RPC/],
    ['oversized body', 'big', { password: SYNC_PASSWORD, bytes: 2 * 1024 * 1024 }, 14, /exceeds the limit of 1048576/],
    ['invalid section', 'call', restore({ vips: [{ interface: 'lan', vhid: 300, address: '192.168.1.1/24', password: 'x' }] }), 11, /carp\.vips\[0\]\.vhid: must be <= 255/],
    ['never-synced section', 'call', restore({ interfaces: {} }), 11, /"interfaces" is node-local and never synced/],
    ['section no feature syncs', 'call', restore({ vips: [], routes: { any: 1 } }), 11, /section routes refused: "routes" is not a section config sync carries \(it carries vips, /],
    ['other schema version', 'call', restore({ vips: [] }, 2), 10, /schema 1, the primary sent schema 2/],
  ];
  for (const [name, action, args, code, msg] of cases) {
    const r = pair.python('primary', action, args);
    t.equal(r.fault, code, `${name}: fault ${code}`);
    t.match(r.message, msg, `${name}: ${r.message}`);
  }
  t.equal(pair.python('primary', 'big', { password: SYNC_PASSWORD, bytes: 2 * 1024 * 1024 }).status, 413, 'oversized: HTTP 413 with the fault');
  const log = readFileSync(board.logPath('secondary'), 'utf8');
  for (const code of [1, -32601, -32700, 14, 11, 10]) t.match(log, new RegExp(`"sync call refused".*"fault":${code}`), `log line for fault ${code}`);
  t.same(await secRev(), before, 'the secondary kept its revision');
  t.equal(Object.keys(await secVips()).length, 2, 'and its VIPs');

  // Rate limit: after 3 failures in 3 s even the right password is refused, until the window passes.
  await sleep(3100); // the wrong-password case above started a window
  const limited = pair.python('primary', 'ratelimit', { password: SYNC_PASSWORD, n: 3 });
  t.same(limited.faults, [1, 1, 1, 2], 'three failures, then the 4th attempt is rate limited, right password or not');
  t.match(limited.message, /too many authentication failures from 172\.16\.1\.1/);
  await sleep(3100);
  t.ok(pair.python('primary', 'call', { password: SYNC_PASSWORD, method: 'duogate.sync_status' }).ok, 'allowed again after the window');
});

t.test('apply on the primary: live on both nodes, the unchanged VIP never flaps', async (t) => {
  await inSync();
  const pv1 = (await pair.status('primary')).vips.find((v: any) => v.vhid === 1);
  const sv1 = (await secVips())[1];
  vips[1].description = 'WAN VIP, renamed';
  vips.push({ iface: 'lan', vhid: 3, address: '192.168.1.10/24', password: 'lan3-secret', advskew: 20 });
  const t0 = performance.now();
  const { r, ms } = applyPrimary('add vhid 3, rename vhid 2');
  t.ok(r.changed, `applied revision #${r.seq}`);
  t.same(r.live.added, [3], 'only vhid 3 is added on the primary');
  t.same(r.live.unchanged, [1, 2], 'vhids 1 and 2 untouched (a description is not CARP)');
  const got = await poll(async () => { const v = await secVips(); return v[3]?.state === 'BACKUP' ? v : null; }, 5000, 5);
  const syncMs = performance.now() - t0;
  t.ok(got, `vhid 3 BACKUP on the secondary ${syncMs.toFixed(0)} ms after apply (CLI took ${ms.toFixed(0)} ms)`);
  t.ok(syncMs < 2000, 'sync latency under 2 s');
  t.equal(got![3].advskew, 120, 'advskew 20 + 100');
  t.equal(got![2].description, 'WAN VIP, renamed', 'the new description arrived');
  t.equal(got![1].transitions, sv1.transitions, 'secondary vhid 1: no transition');
  const pv1b = (await pair.status('primary')).vips.find((v: any) => v.vhid === 1);
  t.equal(pv1b.transitions, pv1.transitions, 'primary vhid 1: no transition');
  t.equal(pv1b.state, 'MASTER');
  t.ok(await poll(() => board.addresses('primary', 'lan0').includes('192.168.1.10'), 5000, 100), 'the primary took the new VIP (master-down timer)');
  t.match(readFileSync(pair.configFile('primary'), 'utf8'), /vhid: 3/, 'the primary\'s config file was rewritten (atomically)');
  t.ok(await inSync());
});

t.test('the primary shows each failure class; the secondary keeps running its config', async (t) => {
  const secBefore = await secRev();
  // rejected: a VIP on the secondary's own LAN address passes the primary (no lan peer set) but not the secondary.
  vips.push({ iface: 'lan', vhid: 4, address: '192.168.1.3/24', password: 'lan4-secret', advskew: 0 });
  applyPrimary('bad: VIP on the secondary\'s address');
  const rej = await poll(async () => { const p = await peer(); return p?.error?.class === 'rejected' ? p : null; }, 8000);
  t.ok(rej, 'class rejected');
  t.match(rej!.error.message, /192\.168\.1\.3 is this node's own address/, `reason shown: ${rej?.error.message}`);
  t.equal(rej!.state, 'failing');
  t.same(await secRev(), secBefore, 'the secondary kept its revision');
  t.notOk((await secVips())[4], 'and has no vhid 4');
  vips.pop();
  applyPrimary('fix: drop vhid 4');
  t.ok(await inSync(), 'in sync again after the fix');

  // authentication: the primary's sync password changed.
  const wrong = `${SYNC}\n  username: someone`;
  applyPrimary('wrong sync user', wrong);
  const auth = await poll(async () => { const p = await peer(); return p?.error?.class === 'authentication' ? p : null; }, 8000);
  t.ok(auth, `class authentication: ${auth?.error.message}`);
  applyPrimary('right sync user');
  t.ok(await inSync(), 'in sync again (after the rate-limit window)');

  // version and tls: an impostor on the secondary's sync address (the daemon stopped), once with the
  // secondary's own certificate and another schema version, once with a certificate of its own.
  await board.stopNode('secondary');
  const keyDir = path.join(pair.stateDir('secondary'), 'configsync');
  const otherKey = path.join(pair.dir, 'other.key'); const otherCrt = path.join(pair.dir, 'other.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', otherKey, '-out', otherCrt, '-days', '1', '-subj', '/CN=impostor'], { stdio: 'ignore' });
  for (const [cls, cert, key] of [['version', path.join(keyDir, 'sync.crt'), path.join(keyDir, 'sync.key')], ['tls', otherCrt, otherKey]] as const) {
    const imp = board.spawn('secondary', 'python3', ['-c', PY_SERVE, JSON.stringify({ cert, key })], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => imp.stdout!.once('data', () => res()));
    t.equal(pair.cli('primary', ['sync']).status, 0, 'duogate config sync queues a push');
    const p = await poll(async () => { const x = await peer(); return x?.error?.class === cls ? x : null; }, 8000);
    t.ok(p, `class ${cls}: ${p?.error.message}`);
    t.match(p!.error.message, cls === 'version' ? /config schema 2.*refused/ : /is not the pinned/);
    imp.kill('SIGKILL');
    await new Promise((r) => imp.once('exit', r));
  }
  await pair.start('secondary');
  t.ok(await inSync(), 'the real secondary is back in sync');
});

t.test('secondary powered off: the primary keeps working; on return it converges by itself', async (t) => {
  await board.powerOff('secondary');
  vips[0].description = 'LAN gateway (edited while the secondary was off)';
  const a = applyPrimary('edit 1 while the secondary is off');
  vips.push({ iface: 'wan', vhid: 5, address: '203.0.113.5/24', password: 'wan5-secret', advskew: 0 });
  const b = applyPrimary('edit 2 while the secondary is off');
  t.ok(a.ms < 3000 && b.ms < 3000, `applies are not blocked by the dead peer (${a.ms.toFixed(0)} ms, ${b.ms.toFixed(0)} ms)`);
  const p = await poll(async () => { const x = await peer(); return x?.error?.class === 'unreachable' && x.revisions_behind >= 2 ? x : null; }, 8000);
  t.ok(p, `failing: unreachable, ${p?.revisions_behind} revisions behind`);
  t.ok((await pair.status('primary')).vips.some((v: any) => v.vhid === 5 && v.state !== 'INIT'), 'the primary runs the new config');
  await board.powerOn('secondary');
  await pair.start('secondary');
  t.ok(await inSync(), 'converged without anyone touching it');
  const v = await poll(async () => { const x = await secVips(); return x[5]?.state === 'BACKUP' ? x : null; }, 8000);
  t.ok(v, 'vhid 5 BACKUP on the secondary');
  t.equal(v![1].description, 'LAN gateway (edited while the secondary was off)');
});

t.test('drift: a local edit of a synced section on the secondary is flagged on both nodes', async (t) => {
  const cur = parseConfigText(readFileSync(pair.configFile('secondary'), 'utf8'));
  const st = await pair.status('secondary');
  const local = structuredClone(cur) as any;
  local.carp.vips = st.vips.map((v: any) => ({ interface: v.interface, vhid: v.vhid, address: v.addresses[0], password: vips.find((x) => x.vhid === v.vhid)!.password, advbase: 1, advskew: 200 }));
  const f = path.join(pair.dir, 'secondary-local.json');
  execFileSync('tee', [f], { input: JSON.stringify(local), stdio: ['pipe', 'ignore', 'inherit'] });
  const r = pair.cli('secondary', ['apply', f, '-m', 'local edit on the secondary']);
  t.equal(r.status, 0, `local apply on the secondary: ${r.stderr}`);
  const s = await pair.status('secondary');
  t.same(s.configsync.local_edits, ['vips'], 'the secondary flags its local edit of vips');
  t.ok(s.configsync.drift);
  const p = await poll(async () => { const x = await peer(); return x?.state === 'drift' ? x : null; }, 6000);
  t.ok(p, `the primary shows drift: ${p?.error.message}`);
  t.not(p!.synced_hash.local, p!.synced_hash.peer, 'the hashes differ');
  t.equal(pair.cli('primary', ['sync']).status, 0);
  t.ok(await inSync(), '"duogate config sync" overwrites the local edit');
  t.same((await pair.status('secondary')).configsync.local_edits, []);
  t.equal((await secVips())[1].advskew, 100);
});

t.test('history, diff and revert on the primary', async (t) => {
  const hist = JSON.parse(pair.cli('primary', ['history', '--json']).stdout);
  t.ok(hist.length >= 8, `${hist.length} revisions`);
  t.equal(hist.at(-1).description, 'edit 2 while the secondary is off');
  const d = pair.cli('primary', ['diff']).stdout;
  t.match(d, /\+ carp\.vips\[3\]\.vhid: 5/, 'diff shows vhid 5 added');
  t.match(d, /\+ carp\.vips\[3\]\.password: "\(secret sha256:[0-9a-f]{8}\)"/, 'its password as a fingerprint');
  t.notMatch(d, /wan5-secret/, 'never the password itself');
  const target = hist.find((h: any) => h.description === 'add vhid 3, rename vhid 2');
  const r = JSON.parse(pair.cli('primary', ['revert', String(target.seq), '--json']).stdout);
  t.ok(r.changed);
  t.same(r.live.removed.sort(), [5], 'revert removes vhid 5 only');
  t.ok(await inSync());
  const v = await poll(async () => { const x = await secVips(); return !x[5] ? x : null; }, 5000);
  t.ok(v, 'the deletion propagated: vhid 5 is gone from the secondary');
  t.equal(JSON.parse(pair.cli('primary', ['history', '--json']).stdout).at(-1).origin, 'revert');
  vips = vips.filter((x) => x.vhid !== 5);
  vips[0].description = 'LAN gateway';

  // The small edit commands: the running file is edited in place (comments kept) and applied like any change.
  const a = pair.cli('primary', ['add-alias', 'web_ports', 'port', '80', '443']);
  t.equal(a.status, 0, `add-alias: ${a.stdout}${a.stderr}`);
  const r2 = pair.cli('primary', ['add-rule', 'lan', 'block', 'tcp', 'lan net', 'any', 'web_ports', '-m', 'no web from the LAN']);
  t.equal(r2.status, 0, `add-rule: ${r2.stdout}${r2.stderr}`);
  const file = readFileSync(pair.configFile('primary'), 'utf8');
  t.match(file, /^# written by the config-sync tests/, 'the file keeps its comments');
  const c = parseConfigText(file) as any;
  t.same(c.firewall.aliases.web_ports.entries, [80, 443]);
  t.match(c.firewall.rules.lan[0], { action: 'block', destination_port: 'web_ports', description: 'no web from the LAN' });
  t.match(JSON.parse(pair.cli('primary', ['history', '--json']).stdout).at(-1).description, /add-rule lan: block tcp lan net -> any:web_ports/);
  const bad = pair.cli('primary', ['add-rule', 'lan', 'allow', 'tcp', 'lan net', 'any']);
  t.not(bad.status, 0, 'an invalid rule is refused');
  t.match(bad.stderr, /firewall\.rules\.lan\[0\]\.action: must be one of pass, block, reject/);
  t.ok(await inSync());
});

t.test('SIGKILL of either daemon in the middle of writes leaves a valid config (bounded loop)', async (t) => {
  for (let round = 0; round < 3; round++) {
    vips[2].advskew = 30 + round;
    const apply = board.execAsync('primary', process.execPath, [
      CLI, 'config', 'apply', (() => {
        const f = path.join(pair.dir, `kill-${round}.yaml`);
        execFileSync('tee', [f], { input: nodeYaml('primary', pair.dir, { vips, sync: SYNC }), stdio: ['pipe', 'ignore', 'inherit'] });
        return f;
      })(), '--config', pair.configFile('primary'), '--socket', pair.socket('primary')], { timeoutMs: 20_000 });
    await apply;
    await sleep(round * 10); // the push and the secondary's write are under way
    await board.stopNode('secondary', 'SIGKILL');
    const store = new ConfigStore(pair.stateDir('secondary'));
    const latest = store.latest();
    t.ok(latest && hashOf(latest.config) === latest.hash, `round ${round}: the secondary's current revision is whole`);
    t.ok(parseConfigText(readFileSync(pair.configFile('secondary'), 'utf8')), 'and its config file parses');
    await pair.start('secondary');
    t.ok(await inSync(), `round ${round}: converged after restart`);
    t.equal((await secVips())[3].advskew, 130 + round);
  }
  // The primary killed right after the apply command: its file and store stay valid and it starts again.
  vips[2].advskew = 40;
  const f = path.join(pair.dir, 'kill-primary.yaml');
  execFileSync('tee', [f], { input: nodeYaml('primary', pair.dir, { vips, sync: SYNC }), stdio: ['pipe', 'ignore', 'inherit'] });
  const apply = board.execAsync('primary', process.execPath, [CLI, 'config', 'apply', f, '--config', pair.configFile('primary'), '--socket', pair.socket('primary')], { timeoutMs: 20_000 });
  await sleep(250); // the CLI has connected and the daemon is writing (or just wrote)
  await board.stopNode('primary', 'SIGKILL');
  await apply;
  t.ok(parseConfigText(readFileSync(pair.configFile('primary'), 'utf8')), 'the primary\'s config file parses');
  const pl = new ConfigStore(pair.stateDir('primary')).latest();
  t.ok(pl && hashOf(pl.config) === pl.hash, 'its current revision is whole');
  await pair.start('primary');
  t.ok(await inSync(), 'the restarted primary pushes what its file says');
  const sv = await secVips();
  const fileSkew = parseConfigText(readFileSync(pair.configFile('primary'), 'utf8')).carp.vips.find((v) => v.vhid === 3)!.advskew;
  t.equal(sv[3].advskew, fileSkew + 100, 'and the secondary follows it');
});

