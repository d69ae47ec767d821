// A secondary configured with only its own sections (interfaces, CARP, config sync, peer heartbeat) runs the
// gateway features whose sections arrive by config sync (prefix dgh): Kea and unbound start and the firewall
// (running with the schema's defaults until then) loads the primary's rules when the primary's
// firewall/nat/dhcp/dns sections arrive, a section removed on the primary stops its feature on
// the secondary and one added back starts it again, and after the primary is powered off the secondary serves
// DHCP (renewing the client's lease), DNS on the LAN VIP and NAT to the WAN VIP, also after its own restart
// (from the sections it last received).
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { VirtualBoard, type NodeName } from '../../board/virtual/board.js';
import { GatewayProbes, TEST_ZONE } from '../../board/virtual/demo/gateway.js';
import { Firmware } from '../../board/virtual/firmware.js';
import { waitFor } from '../../board/virtual/wait.js';

const PREFIX = process.env.DG_PREFIX_CONFIGSYNC_SERVICES ?? 'dgh';
const SYNCED = ['vips', 'firewall', 'nat', 'dhcp', 'dns'];
const GATEWAY = ['firewall', 'nat', 'dhcp', 'dns'];

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (network namespaces)');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const dir = board.runDir;
  const fw = new Firmware(board);
  const probes = new GatewayProbes(board);
  const status = (n: NodeName) => fw.status(n);
  const start = (n: NodeName) => board.startNode(n, fw.argv(n));
  const master = async (n: NodeName) => (await status(n)).vips.every((v: any) => v.state === 'MASTER');
  const nftTable = (n: NodeName) => board.exec(n, 'nft', ['list', 'table', 'inet', 'duogate']);
  const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  /** The primary's config: the board's own, syncing the gateway sections too (state sync and MQTT are not
   * under test here, and this board has no broker). */
  const primaryEdit = (c: any) => {
    c.dhcp.lease_time = 120;
    c.configsync.sections = SYNCED;
    c.configsync.retry_min_ms = 200; c.configsync.retry_max_ms = 1000;
  };
  /** The primary's config as text for `config apply`, after `edit`. */
  const primaryDoc = (edit: (c: any) => void = () => {}) => {
    const c = fw.boardConfig('primary') as any;
    delete c.statesync; delete c.mqtt;
    primaryEdit(c);
    edit(c);
    return YAML.stringify(c);
  };
  let edits = 0;
  /** `duogate config apply` on the primary; resolves with the revision once the secondary acknowledged it. */
  const applyPrimary = async (text: string, what: string) => {
    const f = path.join(dir, `edit-${++edits}.yaml`);
    writeFileSync(f, text);
    const r = fw.cli('primary', ['config', 'apply', f, '-m', what, '--json']);
    if (r.status !== 0) throw new Error(`config apply (${what}) failed: ${r.stderr}${r.stdout}`);
    const seq = JSON.parse(r.stdout).seq;
    await waitFor(`secondary acknowledges #${seq}`, async () => {
      const p = (await status('primary')).configsync?.peer;
      return p?.state === 'in_sync' && p.acked_seq >= seq;
    }, 20_000, 100);
  };

  t.teardown(async () => { probes.stopDhcpClient(); await board.down(); });

  t.before(async () => {
    await board.up();
    fw.resetState();
    // The secondary keeps only its own sections: the core's, config sync and the peer heartbeat.
    fw.writeConfigs('configsync-services', {
      keep: ['configsync', 'peer', ...GATEWAY],
      edit: (c: any, n) => { if (n === 'primary') primaryEdit(c); else for (const k of GATEWAY) delete c[k]; },
    });
    await probes.startServer();
  });

  t.test('the secondary starts the features whose sections arrive by sync', async (t) => {
    const own = YAML.parse(readFileSync(fw.configFile('secondary'), 'utf8'));
    t.same(Object.keys(own).filter((k) => ['firewall', 'nat', 'dhcp', 'dns'].includes(k)), [], 'the secondary\'s file has no gateway section');
    start('primary');
    await waitFor('primary MASTER', () => master('primary'), 10_000);
    const t0 = Date.now();
    start('secondary');
    const st = await waitFor('secondary running the synced features', async () => {
      const s = await status('secondary');
      return s.firewall?.applied && s.dhcp?.kea?.running && s.dns?.unbound?.running ? s : null;
    }, 20_000, 100);
    t.comment(`secondary firewall, Kea and unbound running ${Date.now() - t0} ms after its start`);
    t.ok(st.firewall.applied, 'status shows the firewall applied');
    t.ok(st.dhcp.kea.pid > 0 && alive(st.dhcp.kea.pid), `Kea runs (pid ${st.dhcp.kea.pid})`);
    t.ok(st.dns.unbound.pid > 0 && alive(st.dns.unbound.pid), `unbound runs (pid ${st.dns.unbound.pid})`);
    const nft = nftTable('secondary');
    t.equal(nft.status, 0, 'the ruleset is loaded in the secondary');
    t.match(nft.stdout, /snat ip to 203\.0\.113\.1/, 'with the outbound NAT to the WAN VIP');
    // The firewall runs from the start with the schema's defaults (firewall: {}); the synced rules replace them.
    await waitFor('the synced rules in the secondary\'s ruleset', async () => /Block blocked_ports to the WAN server/.test(nftTable('secondary').stdout), 5000, 100);
    t.pass('the primary\'s firewall rules are in the secondary\'s ruleset');
    const log = board.logSinceStart('secondary');
    for (const f of ['dhcp', 'dns']) {
      t.match(log, new RegExp(`"msg":"feature started: its section arrived in the config".*"feature":"${f}"`), `the log says ${f} started from the synced config`);
    }
    await waitFor('secondary BACKUP hearing the primary', async () =>
      (await status('secondary')).vips.every((v: any) => v.state === 'BACKUP' && v.adverts_rx > 0) && master('primary'), 10_000);
    await waitFor('kea pair hot-standby', async () =>
      (await status('primary')).dhcp?.ha_state === 'hot-standby' && (await status('secondary')).dhcp?.ha_state === 'hot-standby', 40_000, 250);
  });

  t.test('a section removed on the primary stops its feature on the secondary; added back, it starts again', async (t) => {
    const before = (await status('secondary')).dns.unbound.pid;
    await applyPrimary(primaryDoc((c) => { delete c.dns; }), 'no dns');
    const gone = await waitFor('secondary dns stopped', async () => ((await status('secondary')).dns === undefined ? true : null), 10_000, 100);
    t.ok(gone, 'the secondary\'s status has no dns section');
    await waitFor('unbound gone', async () => !alive(before), 5000, 50);
    t.notOk(alive(before), `unbound (pid ${before}) has exited`);
    const log = board.logSinceStart('secondary');
    t.match(log, /"msg":"feature stopped: its section left the config".*"feature":"dns"/);
    t.notMatch(log, /new dns config refused/, 'a section that left is not taken for a refused config');
    t.ok((await status('secondary')).dhcp?.kea?.running, 'Kea keeps running');

    await applyPrimary(primaryDoc(), 'dns back');
    const back = await waitFor('secondary dns again', async () => (await status('secondary')).dns?.unbound?.running ? (await status('secondary')).dns : null, 10_000, 100);
    t.ok(back.unbound.pid !== before && alive(back.unbound.pid), `unbound runs again (pid ${back.unbound.pid})`);
  });

  t.test('primary powered off: the secondary serves DHCP, DNS and NAT with the synced config', async (t) => {
    const t0 = Date.now();
    probes.startDhcpClient();
    const lease = await probes.waitLease(t0, 30_000);
    t.ok(lease, `a lease from the primary (${lease?.ip})`);
    t.equal(await probes.whoami(), '203.0.113.1', 'NAT to the WAN VIP through the primary');
    await waitFor('lease synced to the secondary', async () => (await status('secondary')).dhcp?.leases >= 1, 10_000, 250);

    const off = Date.now();
    await board.powerOff('primary');
    await waitFor('secondary MASTER', () => master('secondary'), 10_000);
    t.comment(`secondary MASTER ${Date.now() - off} ms after the power-off`);
    t.equal(await waitFor('whoami', () => probes.whoami(), 5000, 200), '203.0.113.1', 'the WAN server sees the WAN VIP through the secondary');
    t.same(await waitFor('dns', async () => { const a = await probes.dns(); return a.length ? a : null; }, 5000, 200), [TEST_ZONE.address], `${TEST_ZONE.name} answered by the secondary on the LAN VIP`);
    await waitFor('secondary kea partner-down', async () => (await status('secondary')).dhcp?.ha_state === 'partner-down', 30_000, 50);
    t.comment(`secondary Kea PARTNER-DOWN ${Date.now() - off} ms after the power-off`);
    probes.renewDhcp();
    const renewed = await probes.waitLease(off, 15_000);
    t.ok(renewed, 'the client renewed its lease from the secondary');
    t.equal(renewed?.ip, lease?.ip, 'and kept its address');
    t.equal(renewed?.router, '192.168.1.1', 'router = the LAN VIP');
  });

  t.test('restarted while the primary is off, the secondary runs the features from the sections it last received', async (t) => {
    const r = await board.stopNode('secondary', 'SIGTERM', 8000);
    t.equal(r.forced, false, 'the secondary stopped on SIGTERM');
    const t0 = Date.now();
    start('secondary');
    const st = await waitFor('secondary running the stored features', async () => {
      const s = await status('secondary');
      return s.dhcp?.kea?.running && s.dns?.unbound?.running && s.vips.every((v: any) => v.state === 'MASTER') ? s : null;
    }, 20_000, 100);
    t.comment(`secondary MASTER with Kea and unbound ${Date.now() - t0} ms after its restart`);
    t.ok(st.firewall.applied, 'the firewall is applied');
    const log = board.logSinceStart('secondary');
    t.match(log, /"msg":"starting with the sections last received from the primary"/, 'the stored sections merged before the features started');
    t.notMatch(log, /"msg":"feature started: its section arrived in the config"/, 'every feature started with the daemon, none later');
    // The features' start order holds with the stored sections: the ruleset (one apply, the primary's, not the
    // file's defaults first) and Kea before the config sync server accepts a connection.
    const at = (re: RegExp) => { const i = log.search(re); t.ok(i >= 0, `logged: ${re.source}`); return i; };
    t.equal(log.match(/"msg":"ruleset applied"/g)?.length, 1, 'one ruleset applied at start');
    const listening = at(/"msg":"config sync server listening"/);
    t.ok(at(/"msg":"ruleset applied"/) < listening, 'the ruleset was loaded before the config sync server listened');
    t.ok(at(/"msg":"kea started"/) < listening, 'Kea started before the config sync server listened');
    t.notMatch(log, /config received from the primary/, 'with no push from the (powered-off) primary');
    t.same(await waitFor('dns', async () => { const a = await probes.dns(); return a.length ? a : null; }, 5000, 200), [TEST_ZONE.address], 'DNS answered on the LAN VIP');
    t.equal(await waitFor('whoami', () => probes.whoami(), 5000, 200), '203.0.113.1', 'NAT to the WAN VIP');
  });
}
