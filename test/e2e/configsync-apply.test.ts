// A pushed section the secondary cannot put in force, on the virtual board with real daemons. Overlapping alias
// entries, which nft would refuse, are refused by check on the primary already; what check cannot foresee is the
// node itself: here a ruleset file, then unbound's directory, that cannot be written (immutable: what a failing
// disk does). The secondary keeps that section's previous config, applies the rest of the push, records what is
// in force, answers the primary which section failed and why (stable code), shows it in its status, and keeps
// running with CARP untouched; once the disk is writable the primary's next retry applies it and clears the
// reports. Also: a dhcp change is checked with kea-dhcp4 -t and reloaded into the running Kea.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VirtualBoard } from '../../board/virtual/board.js';
import { CLI } from '../../board/virtual/firmware.js';
import { poll } from '../../board/virtual/wait.js';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { ConfigStore } from '../../host/configstore/store.js';
import { BOARD_VIPS, SyncPair, nodeYaml, type VipSpec } from './configsync-helpers.js';

const board = new VirtualBoard({ prefix: 'dgf' });
const pair = new SyncPair(board);
const unboundDir = () => path.join(pair.stateDir('secondary'), 'unbound');
const rulesetNext = () => path.join(pair.stateDir('secondary'), 'firewall', 'ruleset.nft.next');
// An immutable file cannot be removed: take the flag off before the board empties its run directory.
t.teardown(async () => {
  for (const f of [unboundDir(), rulesetNext()]) { try { execFileSync('chattr', ['-i', f], { stdio: 'ignore' }); } catch { /* not set */ } }
  await board.down();
});

const SYNC = `  sections: [vips, firewall, nat, dns, dhcp]
  retry_min_ms: 200
  retry_max_ms: 2000
  check_interval_s: 1`;

/** The firewall section with a network alias (entries as given) that a LAN rule blocks; DNS with local names; DHCP. */
const DHCP = (leaseTime: number) => `dhcp:
  range: { from: 192.168.1.150, to: 192.168.1.199 }
  lease_time: ${leaseTime}
`;
const firewall = (entries: string[], hosts = 'one.lan: 192.168.1.51', leaseTime = 3600) => `${DHCP(leaseTime)}dns:
  forwarders: [203.0.113.10]
  hosts: { ${hosts} }
firewall:
  aliases:
    blocked_nets: { type: network, entries: [${entries.join(', ')}], description: networks the LAN may not reach }
  rules:
    lan:
      - { action: block, source: lan net, destination: blocked_nets, description: block the alias }
      - { action: pass, source: lan net, destination: any, description: LAN to any }
`;
let edits = 0;
function primaryYaml(entries: string[], vips: VipSpec[], hosts?: string, leaseTime?: number): string {
  return nodeYaml('primary', pair.dir, { vips, sync: SYNC, extra: firewall(entries, hosts, leaseTime) });
}
function applyPrimary(yaml: string, desc: string): any {
  const f = path.join(pair.dir, `edit-${++edits}.yaml`);
  execFileSync('tee', [f], { input: yaml, stdio: ['pipe', 'ignore', 'inherit'] });
  const r = pair.cli('primary', ['apply', f, '-m', desc, '--json']);
  if (r.status !== 0) throw new Error(`config apply failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
const ruleset = (node: 'primary' | 'secondary') => board.exec(node, 'nft', ['list', 'set', 'inet', 'duogate', 'alias_blocked_nets']).stdout;
const peer = async () => (await pair.tryStatus('primary'))?.configsync?.peer;

t.before(async () => {
  await board.up();
  rmSync(pair.dir, { recursive: true, force: true });
  mkdirSync(pair.dir, { recursive: true });
  pair.write('primary', primaryYaml(['10.1.0.0/16'], BOARD_VIPS));
  // The secondary's own file: interfaces, sync settings, an empty firewall and a plain resolver (the synced
  // sections replace them).
  // Its own VIPs too: Kea needs the LAN VIP (router, DNS) to start.
  pair.write('secondary', nodeYaml('secondary', pair.dir, { sync: SYNC, extra: `firewall: {}\ndns: { forwarders: [203.0.113.10] }\n${DHCP(3600)}` })
    .replace('  vips: []\n', `  vips:\n${BOARD_VIPS.map((v) => `    - { interface: ${v.iface}, vhid: ${v.vhid}, address: ${v.address}, password: ${v.password}, advbase: 1, advskew: 100 }`).join('\n')}\n`));
  await pair.start('primary');
  await pair.start('secondary');
});

t.test('a section the secondary cannot apply keeps its previous config there and is reported to the primary', async (t) => {
  const synced = await poll(async () => { const p = await peer(); return p?.state === 'in_sync' ? p : null; }, 20_000, 100);
  t.ok(synced, 'the first push is in sync');
  t.ok(await poll(() => /10\.1\.0\.0\/16/.test(ruleset('secondary')), 5000, 100), 'the secondary runs the synced alias (10.1.0.0/16)');
  t.ok(await poll(async () => (await pair.tryStatus('primary'))?.vips?.every((v: any) => v.state === 'MASTER'), 10_000, 100), 'the primary is MASTER of both VIPs');
  const before = await pair.status('secondary');
  const transitions = Object.fromEntries(before.vips.map((v: any) => [v.vhid, v.transitions]));
  const pid = board.nodeProcess('secondary')!.pid;

  // Overlapping alias entries: nft would refuse the set, so check refuses them first, on the primary.
  const vips = structuredClone(BOARD_VIPS);
  vips[1]!.description = 'WAN VIP, renamed with the bad push';
  const overlap = path.join(pair.dir, 'overlap.yaml');
  writeFileSync(overlap, primaryYaml(['10.0.0.0/8', '10.1.2.3'], vips));
  const r0 = pair.cli('primary', ['apply', overlap, '--json']);
  t.not(r0.status, 0, 'config apply refuses overlapping alias entries');
  t.match(r0.stderr, /firewall\.aliases\.blocked_nets: entries 10\.0\.0\.0\/8 and 10\.1\.2\.3 overlap/, `naming the alias: ${r0.stderr.trim()}`);

  // A change that passes every check, but this secondary cannot write its ruleset file (what a failing disk
  // does: even root cannot write an immutable file).
  const good = primaryYaml(['10.0.0.0/8'], vips);
  t.same(checkConfig(parseConfigText(good)).filter((f) => f.level === 'error'), [], 'duogate check accepts the config');
  execFileSync('chattr', ['+i', rulesetNext()]);
  const res = applyPrimary(good, 'a wider alias');
  t.ok(res.changed, `the primary recorded #${res.seq}`);

  const p = await poll(async () => { const x = await peer(); return x?.rejected?.length ? x : null; }, 20_000, 100);
  t.ok(p, 'the primary learns of the rejection from the XML-RPC answer');
  const fw = p?.rejected.find((r: any) => r.section === 'firewall');
  t.equal(fw?.code, 'DG_ERR_APPLY_FAILED', 'stable code for the firewall section');
  t.match(fw?.reason, /EPERM|not permitted/, `the reason is the error: ${fw?.reason}`);
  t.match(fw?.reason, /ruleset\.nft\.next/, 'naming the file');
  t.equal(p?.state, 'failing', 'the primary shows the push failing');
  t.equal(p?.error?.class, 'rejected');
  t.match(p?.error?.message, /firewall \(DG_ERR_APPLY_FAILED/, 'the error says which section');

  const sec = await pair.status('secondary');
  t.same(sec.configsync.rejected?.sections.map((r: any) => [r.section, r.code]), [['firewall', 'DG_ERR_APPLY_FAILED'], ['nat', 'DG_ERR_APPLY_FAILED']],
    'the secondary\'s status shows the sections it kept');
  t.equal(sec.configsync.rejected?.primary_seq, res.seq, '... for the primary\'s revision');
  const human = board.exec('secondary', process.execPath, [CLI, 'status', '--socket', pair.socket('secondary')]).stdout;
  t.match(human, /CONFIG SYNC: sections refused .*\n\s+! firewall \(firewall\) DG_ERR_APPLY_FAILED/, '`duogate status` says it loud');
  const rs = ruleset('secondary');
  t.match(rs, /10\.1\.0\.0\/16/, 'the secondary keeps its previous ruleset in force');
  t.notMatch(rs, /10\.0\.0\.0\/8/, 'nothing of the refused one');
  t.equal(sec.vips.find((v: any) => v.vhid === 2)?.description, 'WAN VIP, renamed with the bad push', 'the rest of the push (vips) was applied');
  const stored = new ConfigStore(pair.stateDir('secondary'), 50).latest()!.config as any;
  t.same(stored.firewall.aliases.blocked_nets.entries, ['10.1.0.0/16'], 'the secondary recorded what is in force: a restart starts with the previous firewall');
  t.equal(board.nodeProcess('secondary')?.pid, pid, 'the secondary daemon still runs (same process)');
  t.equal(board.nodeProcess('secondary')?.exitCode, null);
  t.same(Object.fromEntries(sec.vips.map((v: any) => [v.vhid, v.transitions])), transitions, 'no CARP transition on the secondary');
  t.same(sec.vips.map((v: any) => v.state), ['BACKUP', 'BACKUP'], 'the secondary stays BACKUP');
  t.ok((await pair.status('primary')).vips.every((v: any) => v.state === 'MASTER'), 'the primary stays MASTER');

  // The primary keeps retrying (backed off); each retry is refused the same way and changes nothing.
  const attempts = p!.attempts;
  t.ok(await poll(async () => ((await peer())?.attempts ?? 0) > attempts, 10_000, 100), 'the push is retried');
  t.match(ruleset('secondary'), /10\.1\.0\.0\/16/, 'still the previous ruleset after a retry');
  t.equal(board.nodeProcess('secondary')?.pid, pid, 'still the same daemon');

  // The file is writable again: the primary's next retry applies the same revision and clears both reports.
  execFileSync('chattr', ['-i', rulesetNext()]);
  const ok = await poll(async () => { const x = await peer(); return x?.state === 'in_sync' && x.acked_seq === res.seq ? x : null; }, 20_000, 100);
  t.ok(ok, `revision #${res.seq} in sync after a retry`);
  t.same(ok?.rejected, [], 'the primary shows no rejected section');
  t.match(ruleset('secondary'), /10\.0\.0\.0\/8/, 'the secondary runs the new ruleset');
  t.equal((await pair.status('secondary')).configsync.rejected, null, 'the secondary\'s status is clear');
  t.equal(board.nodeProcess('secondary')?.pid, pid, 'the same daemon all along');
});

t.test('any error while applying (unbound\'s directory cannot be written) keeps the section and heals on a retry', async (t) => {
  const synced = await poll(async () => { const p = await peer(); return p?.state === 'in_sync' ? p : null; }, 20_000, 100);
  t.ok(synced, 'in sync to begin with');
  const conf = path.join(unboundDir(), 'unbound.conf');
  t.ok(await poll(() => /one\.lan\./.test(readFileSync(conf, 'utf8')), 5000, 100), 'the secondary\'s unbound serves the synced local name');
  const pid = board.nodeProcess('secondary')!.pid;
  const unbound = (await pair.status('secondary')).dns.unbound.pid;
  // What a full or read-only disk would do: no file can be written there, even by root.
  execFileSync('chattr', ['+i', unboundDir()]);
  const vips = structuredClone(BOARD_VIPS);
  vips[1]!.description = 'WAN VIP, renamed with the bad push';
  const res = applyPrimary(primaryYaml(['10.0.0.0/8'], vips, 'one.lan: 192.168.1.51, two.lan: 192.168.1.52'), 'a second local name');
  const p = await poll(async () => { const x = await peer(); return x?.rejected?.length ? x : null; }, 20_000, 100);
  const dns = p?.rejected.find((r: any) => r.section === 'dns');
  t.equal(dns?.code, 'DG_ERR_APPLY_FAILED', 'a thrown error has the generic stable code');
  t.match(dns?.reason, /EPERM|not permitted/, `the reason is the error: ${dns?.reason}`);
  const sec = await pair.status('secondary');
  t.same(sec.configsync.rejected?.sections.map((r: any) => r.section), ['dns'], 'only dns was kept');
  t.notMatch(readFileSync(conf, 'utf8'), /two\.lan/, 'unbound\'s config is the previous one');
  t.equal(sec.dns.unbound.pid, unbound, 'unbound was not restarted');
  t.equal(board.nodeProcess('secondary')?.pid, pid, 'the daemon still runs');
  const stored = new ConfigStore(pair.stateDir('secondary'), 50).latest()!.config as any;
  t.same(Object.keys(stored.dns.hosts), ['one.lan'], 'the store has the dns section in force');

  // The disk is writable again: the primary's next retry applies the same revision, nothing else needed.
  execFileSync('chattr', ['-i', unboundDir()]);
  const ok = await poll(async () => { const x = await peer(); return x?.state === 'in_sync' && x.acked_seq === res.seq ? x : null; }, 20_000, 100);
  t.ok(ok, `revision #${res.seq} in sync after a retry`);
  t.match(readFileSync(conf, 'utf8'), /two\.lan\./, 'unbound runs the new config');
  t.equal((await pair.status('secondary')).configsync.rejected, null, 'the secondary\'s status is clear');
  t.equal(board.nodeProcess('secondary')?.pid, pid, 'the same daemon all along');
});

t.test('a synced dhcp change is checked with kea-dhcp4 -t and reloaded into the running Kea', async (t) => {
  const vips = structuredClone(BOARD_VIPS);
  vips[1]!.description = 'WAN VIP, renamed with the bad push';
  const kea = (await pair.status('secondary')).dhcp.kea.pid;
  t.ok(kea, `Kea runs on the secondary (pid ${kea})`);
  const logFrom = readFileSync(board.logPath('secondary')).length;
  const res = applyPrimary(primaryYaml(['10.0.0.0/8'], vips, 'one.lan: 192.168.1.51, two.lan: 192.168.1.52', 1800), 'shorter leases');
  const ok = await poll(async () => { const x = await peer(); return x?.state === 'in_sync' && x.acked_seq === res.seq ? x : null; }, 20_000, 100);
  t.ok(ok, `revision #${res.seq} in sync`);
  const file = JSON.parse(readFileSync(path.join(pair.stateDir('secondary'), 'kea', 'kea-dhcp4.json'), 'utf8'));
  t.equal(file.Dhcp4['valid-lifetime'], 1800, 'the secondary\'s Kea config has the new lease time');
  t.ok(await poll(() => /kea reloaded its config/.test(readFileSync(board.logPath('secondary')).subarray(logFrom).toString('utf8')), 5000, 100), 'Kea reloaded it');
  t.equal((await pair.status('secondary')).dhcp.kea.pid, kea, 'the same Kea process (no restart)');
  t.equal((await pair.status('secondary')).configsync.rejected, null, 'nothing refused');
});

t.test('on the primary, a config its own firewall cannot apply is refused whole: nothing written, recorded or pushed', async (t) => {
  const rulesetPrimary = path.join(pair.stateDir('primary'), 'firewall', 'ruleset.nft.next');
  const fileBefore = readFileSync(pair.configFile('primary'), 'utf8');
  const storeBefore = new ConfigStore(pair.stateDir('primary'), 50).latest()!;
  const acked = (await peer())?.acked_seq;
  const pid = board.nodeProcess('primary')!.pid;
  const vips = structuredClone(BOARD_VIPS);
  vips[1]!.description = 'WAN VIP, renamed with the refused apply';
  const f = path.join(pair.dir, 'primary-refused.yaml');
  writeFileSync(f, primaryYaml(['172.16.99.0/24'], vips, 'one.lan: 192.168.1.51, two.lan: 192.168.1.52', 1800));
  execFileSync('chattr', ['+i', rulesetPrimary]);
  t.teardown(() => { try { execFileSync('chattr', ['-i', rulesetPrimary], { stdio: 'ignore' }); } catch { /* already off */ } });
  const r = pair.cli('primary', ['apply', f, '--json']);
  execFileSync('chattr', ['-i', rulesetPrimary]);
  t.not(r.status, 0, 'config apply fails');
  t.match(r.stderr, /DG_ERR_APPLY_FAILED/, `with the stable code: ${r.stderr.trim()}`);
  t.match(r.stderr, /firewall.*refused by firewall.*ruleset\.nft\.next.*nothing changed/s, 'naming the section, the file and what happened');
  t.notMatch(ruleset('primary'), /172\.16\.99\.0\/24/, 'the primary\'s ruleset is the previous one');
  t.equal((await pair.status('primary')).vips.find((v: any) => v.vhid === 2)?.description, 'WAN VIP, renamed with the bad push', 'the rest of the refused config was put back too');
  t.equal(readFileSync(pair.configFile('primary'), 'utf8'), fileBefore, 'the config file is unchanged: the next start is safe');
  t.equal(new ConfigStore(pair.stateDir('primary'), 50).latest()!.seq, storeBefore.seq, 'no revision recorded');
  t.equal((await peer())?.acked_seq, acked, 'nothing pushed');
  t.notMatch(ruleset('secondary'), /172\.16\.99\.0\/24/, 'the secondary never saw it');
  t.equal(board.nodeProcess('primary')?.pid, pid, 'the primary daemon still runs');
  // Writable again: the same file applies.
  const ok = applyPrimary(readFileSync(f, 'utf8'), 'the same config, disk writable');
  t.ok(ok.changed, `applied as #${ok.seq}`);
  t.ok(await poll(() => /172\.16\.99\.0\/24/.test(ruleset('secondary')), 10_000, 100), 'and synced to the secondary');
});
