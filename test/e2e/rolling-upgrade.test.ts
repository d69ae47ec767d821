// A rolling upgrade (issue #14; prefix ru1): a pair with one node on the previous release and one on this build
// holds the VIPs and syncs what both understand, then the old node is upgraded and everything syncs.
// The previous release is built from git (test/e2e/old-release.ts: the last landed stop before named networks,
// cached in /tmp/duogate-old-<hash>; a clone without that commit fails here, naming `git fetch --unshallow`).
// The secondary runs it with today's board config minus what its schema cannot load (the guest network: its
// interface, VIP vhid 3, rules and DHCP scope); the primary runs this build with the board's config as it is.
// Asserted, with a sampler watching both nodes every 50 ms for two masters of one vhid:
// - the pair converges (primary MASTER, old secondary BACKUP on vhids 1 and 2; vhid 3 the primary's alone);
// - config sync to the old secondary carries what it can load (VIPs of wan/lan with +100 skew, firewall, nat: a
//   lan rule committed on the primary appears in its ruleset) and leaves out the guest parts, said in the
//   primary's status and log (host/configsync/compat.ts), instead of a push the old node refuses whole;
// - Kea HA across the releases: a LAN client's lease reaches the old node's lease file;
// - state sync both ways, IPv4: 5 TCP echo sessions from the LAN client survive a power cut of the primary (old
//   node takes over) and the failback to the restarted new primary (it took the old node's table in its bulk);
// - the secondary restarted on this build: every vhid BACKUP there, guest included, the push carries everything
//   (the guest rule committed while it was old included), and the sessions are in its table again.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { VirtualBoard } from '../../board/virtual/board.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Firmware, allAre, sleep, waitFor, type NodeConfig } from '../../board/virtual/firmware.js';
import { GatewayProbes } from '../../board/virtual/demo/gateway.js';
import { oldRelease } from './old-release.js';

const PREFIX = 'ru1';

/** Today's board config without the guest network: what the previous release's schema can load. */
function withoutGuest(c: NodeConfig): void {
  delete c.interfaces.guest;
  c.carp.vips = c.carp.vips.filter((v: { interface: string }) => v.interface !== 'guest');
  delete c.firewall?.rules?.guest;
  delete c.dhcp?.networks;
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (network namespaces)');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const fw = new Firmware(board);
  const probes = new GatewayProbes(board);
  let load: ChildProcess | null = null;
  let sampling = false;

  t.teardown(async () => { sampling = false; load?.kill('SIGKILL'); await board.down(); });

  t.test('old secondary + new primary: one master per vhid, moves as one, syncs what both understand; then upgraded', async (t) => {
    const old = oldRelease();
    t.comment(`previous release ${old.commit.slice(0, 12)}: ${old.built ? `built in ${(old.ms / 1000).toFixed(1)} s` : `cached (${old.ms} ms)`} at ${old.dir}`);
    const t0 = Date.now();
    await board.up();
    fw.resetState();
    // The primary learns that the secondary was upgraded at its drift check (the restarted secondary's synced
    // sections differ): every 2 s here instead of 30.
    fw.writeConfigs('rolling', { keep: 'all', edit: (c, n) => { if (n === 'secondary') withoutGuest(c); else c.configsync.check_interval_s = 2; } });
    fw.cliOverride.secondary = old.cli;
    await probes.startServer();
    board.spawn('server', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'server'], { stdio: 'ignore' });

    // Two masters of one vhid at any sample, for the whole test.
    const dual: string[] = [];
    sampling = true;
    const sampler = (async () => {
      const until = Date.now() + 120_000;
      while (sampling && Date.now() < until) {
        const [p, s] = await Promise.all([fw.states('primary'), fw.states('secondary')]);
        for (const v of Object.keys(p)) if (p[v] === 'MASTER' && s[v] === 'MASTER') dual.push(`vhid ${v} at ${Date.now() - t0} ms`);
        await sleep(50);
      }
    })();

    await fw.startPair();
    t.match(board.logSinceStart('secondary'), new RegExp(`node ${old.cli.replace(/[.]/g, '\\.')} run`), 'the secondary runs the previous release');
    t.ok(allAre(await fw.states('primary'), 'MASTER', ['1', '2', '3']), 'the new primary holds vhids 1, 2 and 3 (guest)');
    t.same(Object.keys(await fw.states('secondary')).sort(), ['1', '2'], 'the old secondary has the wan and lan vhids only');

    // Config sync: what the old node can load, the guest parts left out and said so.
    const peer = async () => (await fw.status('primary')).configsync.peer;
    await waitFor('config sync in sync with the old secondary', async () => (await peer()).state === 'in_sync', 15_000, 200);
    const p1 = await peer();
    t.equal(p1.release, 'before named networks', 'the primary sees a secondary from before named networks');
    t.same(p1.omitted, ['vips: vhid 3 on guest', 'firewall.rules.guest'], 'and leaves out the guest VIP and rules');
    t.match(board.logSinceStart('primary'), /the push leaves out what it cannot load.*vips: vhid 3 on guest/, 'logged with what was left out');
    const s1 = await fw.status('secondary');
    t.ok(s1.configsync.received, 'the old secondary applied a push');
    t.same(s1.vips.map((v: { vhid: number; advskew: number }) => [v.vhid, v.advskew]), [[1, 100], [2, 100]], 'its VIPs: wan and lan, skew +100');

    t.equal(fw.cli('primary', ['config', 'add-rule', 'lan', 'block', 'tcp', 'lan net', '203.0.113.10', '8082', '-m', 'rolling lan rule']).status, 0, 'a lan rule committed on the primary');
    t.equal(fw.cli('primary', ['config', 'add-rule', 'guest', 'block', 'tcp', 'guest net', '203.0.113.10', '8083', '-m', 'rolling guest rule']).status, 0, 'a guest rule committed on the primary');
    const ruleset = (n: 'primary' | 'secondary') => board.exec(n, 'nft', ['list', 'ruleset']).stdout;
    await waitFor('the lan rule in the old secondary\'s ruleset', async () => ruleset('secondary').includes('rolling lan rule'), 15_000, 200);
    t.match(ruleset('secondary'), /tcp dport 8082 .*"lan#0 rolling lan rule"/, 'the old secondary enforces the synced lan rule');
    t.notMatch(ruleset('secondary'), /rolling guest rule/, 'and has no guest rule (it has no guest network)');
    t.match(ruleset('primary'), /"guest#0 rolling guest rule"/, 'the primary has both');
    // DHCP on the LAN: Kea HA between the two releases. Kea withholds an answer whose lease update the partner
    // refused, so a lease means the old node took the update (a guest client gets none: README "Upgrades").
    await waitFor('kea hot-standby across the two releases', async () => (await fw.status('primary')).dhcp?.ha_state === 'hot-standby', 20_000, 250);
    const since = Date.now();
    probes.startDhcpClient();
    const lease = await probes.waitLease(since, 15_000);
    probes.stopDhcpClient();
    t.match(lease?.ip, /^192\.168\.1\.1[5-9]\d$/, `a LAN client leases from the new primary with the old one as HA partner (${lease?.ip})`);
    const oldLeases = () => { try { return readFileSync(path.join(fw.stateDir('secondary'), 'kea', 'leases4.csv'), 'utf8'); } catch { return ''; } };
    await waitFor('the lease in the old secondary\'s Kea', async () => !!lease && oldLeases().includes(`${lease.ip},`), 5_000, 100);
    await waitFor('in sync after the two commits', async () => (await peer()).state === 'in_sync' && (await peer()).revisions_behind === 0, 15_000, 200);

    // State sync new -> old: sessions through the LAN, then a power cut of the primary.
    load = board.spawn('client', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'client', '--dst', '203.0.113.10', '--sessions', '5', '--interval-ms', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    load.stdout!.on('data', (d) => { out += d; });
    const done = new Promise<void>((r) => load!.on('exit', () => r()));
    const established = (n: 'primary' | 'secondary') => board.exec(n, 'conntrack', ['-L', '-s', '192.168.1.100', '-p', 'tcp', '--dport', '5000']).stdout.split('\n').filter((l) => l.includes('ESTABLISHED')).length;
    await waitFor('the sessions in the old secondary\'s table (state sync new -> old)', async () => established('secondary') >= 5, 10_000, 200);
    const off = Date.now();
    await board.powerOff('primary');
    t.ok(await fw.waitStates((_p, s) => allAre(s, 'MASTER', ['1', '2']), 10_000), 'power cut: the old secondary takes vhids 1 and 2');
    t.comment(`takeover by the old node: ${Date.now() - off} ms`);
    await waitFor('a new connection through the old node', async () => (await probes.whoami(1)) === '203.0.113.1', 10_000, 100);

    // Failback: the primary boots on the new build, takes the old node's table in its bulk, then preempts.
    await board.powerOn('primary');
    await fw.start('primary');
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER', ['1', '2', '3']) && allAre(s, 'BACKUP', ['1', '2']), 25_000), 'failback: the new primary holds every vhid again, the old one BACKUP');
    t.ok(established('primary') >= 5, `the sessions are in the new primary's table (state sync old -> new): ${established('primary')}`);
    await waitFor('in sync with the old secondary after the failback', async () => (await peer()).state === 'in_sync', 15_000, 200);

    // The upgrade: the secondary restarts on this build with the board's whole config.
    await board.stopNode('secondary');
    delete fw.cliOverride.secondary;
    fw.writeConfigs('upgraded', { keep: 'all', nodes: ['secondary'] });
    await fw.start('secondary');
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER', ['1', '2', '3']) && allAre(s, 'BACKUP', ['1', '2', '3']), 15_000), 'upgraded: the secondary is BACKUP on every vhid, guest included');
    await waitFor('the push carries everything', async () => { const p = await peer(); return p.release === 'current' && p.state === 'in_sync' && p.omitted.length === 0; }, 15_000, 200);
    await waitFor('the guest rule in the upgraded secondary\'s ruleset', async () => ruleset('secondary').includes('rolling guest rule'), 10_000, 200);
    t.match(ruleset('secondary'), /"guest#0 rolling guest rule"/, 'the guest rule committed while it was old is synced now');
    t.match(ruleset('secondary'), /"lan#0 rolling lan rule"/, 'and the lan rule');
    await waitFor('the sessions in the upgraded secondary\'s table (its bulk)', async () => established('secondary') >= 5, 15_000, 200);

    load.kill('SIGTERM');
    await done;
    sampling = false;
    await sampler;
    const line = out.split('\n').find((l) => l.includes('"summary"'));
    const sum = line ? JSON.parse(line) : null;
    t.equal(sum?.sessions_survived, 5, `TCP sessions survived the power cut and the failback: ${sum?.sessions_survived}/${sum?.sessions_total}`);
    t.same(dual, [], 'never two masters of one vhid');
    t.comment(`figures: mixed pair + upgrade in ${((Date.now() - t0) / 1000).toFixed(1)} s (the old build not included), longest echo gap ${sum?.max_echo_gap_ms} ms`);
  });
}
