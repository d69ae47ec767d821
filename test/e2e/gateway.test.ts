// The gateway features on the virtual board (prefix dgt-gw): DHCP lease from the primary with router/DNS =
// the LAN VIP and renewed from the secondary after a power-off; outbound connections from the WAN VIP before
// and after; DNS through the VIP before and after; block vs pass; a refused ruleset leaves the old one; a
// mid-stream TCP segment without state is dropped.
import t from 'tap';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { VirtualBoard, sleep, type NodeName } from '../../board/virtual/board.js';
import { GatewayProbes, BLOCKED_PORT, ECHO_PORT, TEST_ZONE, WHOAMI_PORT } from '../../board/virtual/demo/gateway.js';
import { waitFor } from '../../board/virtual/firmware.js';
import { request } from '../../host/control/client.js';

const PREFIX = 'dgt-gw';
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/host/cli.js');
const LEASE_S = 120;

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (network namespaces)');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const dir = board.runDir;
  const probes = new GatewayProbes(board);
  const cfg = (n: NodeName) => path.join(dir, `${n}.yaml`);
  const sock = (n: NodeName) => path.join(dir, `${n}.sock`);
  const state = (n: NodeName) => path.join(dir, 'state', n);
  const status = (n: NodeName) => request(sock(n), { cmd: 'status' }, 2000);
  const cli = (n: NodeName, args: string[], config = cfg(n)) =>
    board.exec(n, process.execPath, [CLI, ...args, '--config', config, '--socket', sock(n), '--state-dir', state(n)], { timeoutMs: 15_000 });
  const nft = (n: NodeName) => board.exec(n, 'nft', ['list', 'table', 'inet', 'duogate']).stdout;
  /** Packets counted by the rule with this comment in the node's table. */
  const counter = (n: NodeName, comment: string, chain = 'rules_lan'): number => {
    const text = board.exec(n, 'nft', ['list', 'chain', 'inet', 'duogate', chain]).stdout;
    const m = new RegExp(`counter packets (\\d+) bytes \\d+ .*comment "${comment}"`).exec(text);
    return m ? Number(m[1]) : -1;
  };
  const master = async (n: NodeName) => (await status(n)).vips.every((v: any) => v.state === 'MASTER');

  t.teardown(async () => { probes.stopDhcpClient(); await board.down(); });

  t.before(async () => {
    await board.up();
    rmSync(path.join(dir, 'state'), { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const n of ['primary', 'secondary'] as NodeName[]) {
      const c = YAML.parse(readFileSync(path.join(ROOT, 'board/virtual', `${n}.yaml`), 'utf8'));
      c.dhcp.lease_time = LEASE_S;
      c.nat.port_forwards = [{ interface: 'wan', protocol: 'tcp', destination_port: 8080, target: '192.168.1.100', target_port: 8000, description: 'client web' }];
      delete c.configsync; delete c.statesync; delete c.telemetry; // other features' sections: not under test here
      writeFileSync(cfg(n), YAML.stringify(c));
    }
    await probes.startServer();
    board.startNode('primary', [CLI, 'run', '--config', cfg('primary'), '--socket', sock('primary'), '--state-dir', state('primary')]);
    await waitFor('primary MASTER', () => master('primary'), 10_000);
    board.startNode('secondary', [CLI, 'run', '--config', cfg('secondary'), '--socket', sock('secondary'), '--state-dir', state('secondary')]);
    await waitFor('secondary firewall', async () => (await status('secondary')).firewall?.applied, 10_000);
    // Kea pair in hot-standby (primary serving) and the secondary BACKUP, hearing the primary, before the client asks.
    await waitFor('kea hot-standby', async () => (await status('primary')).dhcp?.ha_state === 'hot-standby', 20_000, 250);
    await waitFor('secondary BACKUP hearing the primary', async () =>
      (await status('secondary')).vips.every((v: any) => v.state === 'BACKUP' && v.adverts_rx > 0) && master('primary'), 10_000);
  });

  let lease: any;
  t.test('DHCP: a lease from the primary with router and DNS = the LAN VIP', async (t) => {
    const t0 = Date.now();
    probes.startDhcpClient();
    lease = await probes.waitLease(t0, 30_000);
    t.ok(lease, 'udhcpc got a lease');
    t.equal(lease.router, '192.168.1.1', 'router = LAN VIP');
    t.same(lease.dns.split(' '), ['192.168.1.1'], 'DNS = LAN VIP');
    t.equal(lease.serverid, '192.168.1.2', 'server identifier = the primary\'s own LAN address (its Kea listens there, not on the VIP)');
    t.match(lease.ip, /^192\.168\.1\.(1[5-9]\d)$/, 'address from the pool 192.168.1.150-199');
    t.comment(`lease ${lease.ip} in ${lease.t - t0} ms`);
    const st = await waitFor('lease count', async () => ((await status('primary')).dhcp?.leases >= 1 ? status('primary') : null), 5000, 250);
    t.equal(st.dhcp.ha_state, 'hot-standby', 'duogate status shows the HA state');
  });

  t.test('DHCP: a renew is answered by unicast, as a client renews at T1', async (t) => {
    const mark = probes.dhcpOutput().length;
    const ask = Date.now();
    probes.renewDhcp();
    const renewed = await probes.waitLease(ask, 15_000);
    const said = probes.dhcpOutput().slice(mark);
    t.equal(renewed?.event, 'renew', 'renewed');
    t.equal(renewed?.ip, lease.ip, 'the same address');
    t.match(said, /sending renew to server 192\.168\.1\.2\b/, 'the renew went by unicast to the server identifier');
    t.notMatch(said, /broadcasting renew/, `and was answered: no rebind broadcast (udhcpc: ${JSON.stringify(said.trim())})`);
    t.comment(`renewed in ${renewed ? renewed.t - ask : -1} ms`);
  });

  t.test('NAT, filtering, state', async (t) => {
    t.equal(await probes.whoami(), '203.0.113.1', 'the WAN server sees the connection from the WAN VIP');
    t.ok(await probes.tcpOpen(WHOAMI_PORT), `pass: LAN -> server:${WHOAMI_PORT} connects`);
    const before = counter('primary', 'lan#0 Block blocked_ports to the WAN server');
    t.notOk(await probes.tcpOpen(BLOCKED_PORT), `block: LAN -> server:${BLOCKED_PORT} does not connect`);
    t.ok(counter('primary', 'lan#0 Block blocked_ports to the WAN server') > before, 'the block rule counted it');
    // The listener on BLOCKED_PORT is really there: the server reaches itself.
    t.equal(board.exec('server', 'socat', ['-T', '1', '-', `TCP:203.0.113.10:${BLOCKED_PORT}`], { input: '' }).stdout.trim(), 'open');

    const show = cli('primary', ['firewall', 'show']);
    t.equal(show.status, 0, 'duogate firewall show');
    t.match(show.stdout, /ct state invalid counter packets \d+ bytes \d+ drop/, 'shows counters per rule');
    t.match(show.stdout, /snat ip to 203\.0\.113\.1/);
    t.equal(board.exec('primary', 'sysctl', ['-n', 'net.netfilter.nf_conntrack_tcp_loose']).stdout.trim(), '0', 'tcp_loose off');
  });

  t.test('port forward on the WAN VIP; other WAN inbound blocked', async (t) => {
    board.spawn('client', 'socat', ['TCP-LISTEN:8000,fork,reuseaddr', 'SYSTEM:echo forwarded to $SOCAT_SOCKADDR from $SOCAT_PEERADDR'], { stdio: 'ignore' });
    await waitFor('client listener', async () => board.exec('client', 'ss', ['-Hlnt']).stdout.includes(':8000 '), 3000, 50);
    const get = (dst: string) => board.exec('server', 'socat', ['-T', '1', '-', `TCP:${dst},connect-timeout=1`], { input: '', timeoutMs: 5000 });
    t.equal(get('203.0.113.1:8080').stdout.trim(), 'forwarded to 192.168.1.100 from 203.0.113.10', 'server -> WAN VIP:8080 reaches the client:8000');
    t.not(get('203.0.113.1:8000').status, 0, 'WAN VIP:8000 (no forward) is blocked');
    t.not(get('203.0.113.2:22').status, 0, "the node's own WAN address is closed");
  });

  t.test('a mid-stream TCP segment the node has no state for is dropped', async (t) => {
    // A TCP session through the primary; its conntrack entry is then deleted, as after a failover without
    // state sync. The next data segment (ACK, no SYN) must not pass.
    const py = `
import socket, sys, time, subprocess
s = socket.create_connection(("203.0.113.10", ${ECHO_PORT}), timeout=2)
s.sendall(b"one\\n"); print(s.recv(100).decode().strip(), flush=True)
sys.stdin.readline()  # the test flushes the node's state here
s.sendall(b"two\\n")
try: print(s.recv(100).decode().strip() or "closed", flush=True)
except socket.timeout: print("timeout", flush=True)
`;
    const cp = board.spawn('client', 'python3', ['-c', py], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    cp.stdout!.on('data', (d) => { out += d; });
    t.ok(await master('primary'), 'the primary is MASTER (the session goes through it)');
    await waitFor('first echo', async () => out.includes('one'), 3000, 20);
    // With tcp_loose=0 conntrack marks the segment INVALID (with tcp_loose=1 it would be new-not-SYN): either drops it.
    const drops = () => counter('primary', 'invalid', 'forward') + counter('primary', 'new-not-syn', 'forward');
    const dropsBefore = drops();
    const del = board.exec('primary', 'conntrack', ['-D', '-p', 'tcp', '--orig-port-dst', String(ECHO_PORT)]);
    t.match(del.stderr, /1 flow entries have been deleted|flow entries have been deleted/, 'state deleted on the primary');
    cp.stdin!.write('\n');
    await waitFor('second answer', async () => /one\n(timeout|two|closed)/.test(out), 6000, 50);
    t.match(out, /one\ntimeout/, 'no echo for the segment without state');
    t.ok(drops() > dropsBefore, `dropped by the stateful rules (invalid/new-not-syn: ${dropsBefore} -> ${drops()})`);
    cp.kill();
  });

  t.test('a ruleset the kernel refuses leaves the old one in force, and the error names the rule', async (t) => {
    const c = YAML.parse(readFileSync(cfg('primary'), 'utf8'));
    // Overlapping networks in one alias: nft refuses the set ("conflicting intervals").
    c.firewall.aliases.wan_server = { type: 'network', entries: ['203.0.113.0/24', '203.0.113.0/28'], description: 'overlapping' };
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, YAML.stringify(c));
    const before = nft('primary');
    const r = cli('primary', ['firewall', 'apply'], bad);
    t.not(r.status, 0, 'apply fails');
    t.match(r.stderr, /firewall\.aliases\.wan_server \("overlapping"\): conflicting intervals/, `error names the alias: ${r.stderr.trim()}`);
    t.match(r.stderr, /previous ruleset stays in force/);
    t.equal(nft('primary').replace(/counter packets \d+ bytes \d+/g, ''), before.replace(/counter packets \d+ bytes \d+/g, ''), 'ruleset unchanged');
    t.equal(await probes.whoami(), '203.0.113.1', 'and traffic still flows through it');
  });

  t.test('duogate check flags a user rule that would block the sync traffic', async (t) => {
    const c = YAML.parse(readFileSync(cfg('primary'), 'utf8'));
    c.firewall.rules.sync = [{ action: 'block', protocol: 'tcp', source: 'sync net', destination: 'any', destination_port: '7000-8999', description: 'no tcp 7k-8k on sync' }];
    const f = path.join(dir, 'sync-block.yaml');
    writeFileSync(f, YAML.stringify(c));
    const r = cli('primary', ['check', '--peer', cfg('secondary')], f);
    t.match(r.stdout, /warning: .*firewall\.rules\.sync\[0\]: block rule "no tcp 7k-8k on sync" would block configsync \(tcp 7443\)/);
    t.match(r.stdout, /firewall\.rules\.sync\[0\]: .*kea_ha \(tcp 8001\)/);
    t.notMatch(r.stdout, /statesync/, 'udp state sync is not matched by a tcp rule');
    t.equal(cli('primary', ['check', '--peer', cfg('secondary')]).stdout.includes('firewall.rules'), false, 'the board config itself is clean');
  });

  t.test('DNS through the LAN VIP', async (t) => {
    t.same(await probes.dns(), [TEST_ZONE.address], `${TEST_ZONE.name} answered via 192.168.1.1`);
  });

  t.test('Kea and unbound are supervised: killed, they come back', async (t) => {
    const before = await status('primary');
    for (const [svc, key] of [['dns', 'unbound'], ['dhcp', 'kea']] as const) {
      const pid = before[svc][key].pid;
      t.ok(pid > 0, `${key} runs (pid ${pid})`);
      process.kill(pid, 'SIGKILL');
      const back = await waitFor(`${key} restarted`, async () => {
        const s = (await status('primary'))[svc][key];
        return s.running && s.pid !== pid ? s : null;
      }, 5000, 50);
      t.equal(back.restarts, before[svc][key].restarts + 1, `${key} restarted once (new pid ${back.pid})`);
    }
    t.same(await waitFor('dns again', async () => { const a = await probes.dns(); return a.length ? a : null; }, 5000, 100), [TEST_ZONE.address], 'DNS answers again');
    await waitFor('kea hot-standby again', async () => (await status('primary')).dhcp?.ha_state === 'hot-standby', 20_000, 250);
  });

  t.test('sync cable pulled with both nodes up: only the LAN MASTER\'s Kea serves; both again once replugged', async (t) => {
    const pulled = Date.now();
    board.pullCable('secondary', 'sync');
    t.teardown(() => board.plugCable('secondary', 'sync'));
    // Kea's HA heartbeats run over the sync link: without the hold both servers would go PARTNER-DOWN and
    // lease from one pool without telling each other. The peer heartbeat still hears the primary on the LAN.
    const held = await waitFor('secondary kea held', async () => { const d = (await status('secondary')).dhcp; return d?.held ? d : null; }, 15_000, 100);
    t.comment(`secondary Kea held ${Date.now() - pulled} ms after the pull: ${held.held}`);
    // `held` shows as soon as the stop begins; Kea exits tens of ms after its SIGTERM (a little later since the
    // HA peers talk TLS), so the status poll may see it still running once.
    const stopped = await waitFor('secondary kea stopped', async () => ((await status('secondary')).dhcp?.kea?.running === false ? true : null), 5_000, 50).catch(() => false);
    t.comment(`secondary Kea stopped ${Date.now() - pulled} ms after the pull`);
    t.ok(stopped, 'the secondary\'s Kea is stopped while it cannot tell its partner about leases');
    t.ok(await master('primary'), 'the primary still holds the VIPs');
    await waitFor('primary kea partner-down', async () => (await status('primary')).dhcp?.ha_state === 'partner-down', 40_000, 250);
    t.comment(`primary Kea PARTNER-DOWN (serving alone) ${Date.now() - pulled} ms after the pull`);
    t.notOk((await status('secondary')).dhcp.kea.running, 'and the secondary\'s Kea is still stopped');
    const ask = Date.now();
    probes.renewDhcp();
    const renewed = await probes.waitLease(ask, 15_000);
    t.equal(renewed?.ip, lease.ip, 'the client renews its address from the one server left');

    const plugged = Date.now();
    board.plugCable('secondary', 'sync');
    const back = await waitFor('secondary kea running again', async () => { const d = (await status('secondary')).dhcp; return !d?.held && d?.kea?.running ? d : null; }, 15_000, 100);
    t.ok(back.kea.running, `the secondary's Kea runs again (${Date.now() - plugged} ms after the replug)`);
    await waitFor('kea pair hot-standby again', async () =>
      (await status('primary')).dhcp?.ha_state === 'hot-standby' && (await status('secondary')).dhcp?.ha_state === 'hot-standby', 60_000, 250);
    t.comment(`Kea pair back in hot-standby ${Date.now() - plugged} ms after the replug`);
    const sec = await waitFor('lease synced to the secondary', async () => { const d = (await status('secondary')).dhcp; return d?.leases >= 1 ? d : null; }, 10_000, 250);
    t.ok(sec.leases >= 1, `the secondary's Kea took the leases from its partner (${sec.leases})`);
  });

  t.test('power off the primary: lease renewed from the secondary, SNAT and DNS continue', async (t) => {
    const off = Date.now();
    await board.powerOff('primary');
    await waitFor('secondary MASTER', () => master('secondary'), 10_000);
    t.comment(`secondary MASTER ${Date.now() - off} ms after the power-off`);
    t.equal(await waitFor('whoami', () => probes.whoami(), 5000, 200), '203.0.113.1', 'server sees the WAN VIP after failover');
    t.same(await waitFor('dns', async () => { const a = await probes.dns(); return a.length ? a : null; }, 5000, 200), [TEST_ZONE.address], 'DNS answered after failover');
    // duogate pushes the primary's scope to the standby as soon as CARP sees the peer vanish; Kea then
    // declares PARTNER-DOWN when its first lease update or heartbeat to the dead peer fails.
    const serving = await waitFor('secondary kea serving the primary scope', async () => {
      const d = (await status('secondary')).dhcp;
      return d?.scopes?.includes('primary') ? d : null;
    }, 15_000, 50);
    t.comment(`secondary Kea serving the primary's scope (${serving.ha_state}) ${Date.now() - off} ms after the power-off`);
    // Once it is PARTNER-DOWN, ask the client to renew now (udhcpc's SIGUSR1) rather than wait for T1.
    // Before that, each answer waits for the lease update to the dead peer to fail. One signal only: a second
    // one while a renew is pending makes udhcpc start over with a DISCOVER.
    // Kea's own detection: ~4 s when its heartbeat to the dead peer fails fast (no ARP answer: EHOSTUNREACH),
    // ~12 s when it has to time out (10 s in Kea 2.2), e.g. right after its connection was made afresh.
    await waitFor('secondary kea partner-down', async () => (await status('secondary')).dhcp?.ha_state === 'partner-down', 30_000, 50);
    t.comment(`secondary Kea PARTNER-DOWN ${Date.now() - off} ms after the power-off`);
    probes.renewDhcp();
    const renewed = await probes.waitLease(off, 15_000);
    t.equal(renewed?.event, 'renew', 'a renew (not a new DISCOVER)');
    t.ok(renewed, 'the client renewed or rebound after the power-off');
    t.equal(renewed?.ip, lease.ip, 'and kept its address');
    t.equal(renewed?.router, '192.168.1.1');
    t.equal(renewed?.serverid, '192.168.1.3', 'from the secondary, which names its own address (the rebind broadcast reached it)');
    t.comment(`renewed (${renewed?.event}) ${renewed ? renewed.t - off : -1} ms after the power-off`);
  });

  t.test('stopping the daemon stops Kea and unbound', async (t) => {
    const st = await status('secondary');
    const pids = [st.dhcp.kea.pid, st.dns.unbound.pid];
    const r = await board.stopNode('secondary', 'SIGTERM', 8000);
    t.equal(r.forced, false, 'the daemon exited on SIGTERM');
    const alive = pids.filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } });
    t.same(alive, [], `kea and unbound (${pids.join(', ')}) are gone`);
    t.same(board.exec('secondary', 'nft', ['list', 'table', 'inet', 'duogate']).status, 0, 'the ruleset stays in force (never fail open)');
  });

  t.test('a ruleset refused at start stops the daemon before it can take the VIPs', async (t) => {
    const c = YAML.parse(readFileSync(cfg('secondary'), 'utf8'));
    c.firewall.aliases.wan_server = { type: 'network', entries: ['10.0.0.0/8', '10.1.0.0/16'] };
    const bad = path.join(dir, 'bad-secondary.yaml');
    writeFileSync(bad, YAML.stringify(c));
    const cp = board.startNode('secondary', [CLI, 'run', '--config', bad, '--socket', sock('secondary'), '--state-dir', state('secondary')]);
    const code = await new Promise<number | null>((res) => { const tm = setTimeout(() => res(null), 8000); cp.once('exit', (c) => { clearTimeout(tm); res(c); }); });
    t.equal(code, 1, 'duogate run exits 1');
    t.notOk(board.addresses('secondary', 'lan0').includes('192.168.1.1'), 'without the LAN VIP');
    t.match(board.logSinceStart('secondary'), /service failed to start; stopping so the peer keeps the VIPs.*firewall\.aliases\.wan_server/);
  });
}
