// "Only the peer reaches the peer's services", on the virtual board (prefix dgt-scan) with the
// board's full default configs: a bounded TCP/UDP scan of both nodes' addresses (real, VIP, and the sync
// addresses routed via a node's LAN or WAN address) from the LAN client, the guest client and the WAN server
// must show exactly DNS on each internal network's own addresses and nothing on the WAN; from the guest client,
// nothing of the LAN (neither the nodes' LAN addresses nor the LAN client's open ports). Meanwhile Kea HA, config
// sync, state sync and the heartbeat keep working between the nodes over the sync link.
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { VirtualBoard, sleep, type NodeName } from '../../board/virtual/board.js';
import { waitFor } from '../../board/virtual/firmware.js';
import type { Hit, ScanResult } from '../../board/virtual/portscan.js';
import { request } from '../../host/control/client.js';

const PREFIX = 'dgt-scan';
const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/host/cli.js');
const SCAN = path.join(ROOT, 'dist/board/virtual/portscan.js');

// 1-1024 plus every port a duogate node or its children use (docs/gateway.md "Ports each node opens"), and a
// few a firmware might plausibly leave open (MQTT, alternative HTTP(S), Kea's control agent).
const TCP_PORTS = '1-1024,1883,5353,7200,7201,7443,8000,8001,8080,8443,8883,9100';
const UDP_PORTS = '53,67,68,123,161,500,514,1900,4500,5353,7200,7201,7443,8001';

const LAN = { vip: '192.168.1.1', primary: '192.168.1.2', secondary: '192.168.1.3' };
const WAN = { vip: '203.0.113.1', primary: '203.0.113.2', secondary: '203.0.113.3' };
const SYNC = { primary: '172.16.1.1', secondary: '172.16.1.2' };
const GUEST = { vip: '192.168.20.1', primary: '192.168.20.2', secondary: '192.168.20.3' };
const LAN_CLIENT = '192.168.1.100';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (network namespaces)');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const dir = board.runDir;
  const cfg = (n: NodeName) => path.join(dir, `${n}.yaml`);
  const sock = (n: NodeName) => path.join(dir, `${n}.sock`);
  const status = (n: NodeName) => request(sock(n), { cmd: 'status' }, 3000);
  const nodeCfg = (n: NodeName) => {
    const c = YAML.parse(readFileSync(path.join(ROOT, 'board/virtual', `${n}.yaml`), 'utf8'));
    c.control.socket = sock(n);
    c.state_dir = path.join(dir, 'state', n);
    return c;
  };
  /** Replace the host routes of a board host (the test's attacker steering packets at a node). */
  const routeVia = (host: 'client' | 'server' | 'guest', routes: Record<string, string>) => {
    for (const [dst, via] of Object.entries(routes)) {
      const r = board.exec(host, 'ip', ['route', 'replace', `${dst}/32`, 'via', via]);
      if (r.status !== 0) throw new Error(`ip route replace ${dst} via ${via} in ${host}: ${r.stderr}`);
    }
  };
  const scan = async (host: 'client' | 'server' | 'guest', targets: string[]): Promise<ScanResult> => {
    const r = await board.execAsync(host, process.execPath, [SCAN, '--targets', targets.join(','), '--tcp', TCP_PORTS, '--udp', UDP_PORTS, '--timeout-ms', '800', '--concurrency', '400'], { timeoutMs: 120_000 });
    if (r.status !== 0) throw new Error(`portscan in ${host}: exit ${r.status}: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const fmt = (hits: Hit[]) => hits.map((h) => `${h.addr}:${h.port} ${h.result}`);
  /** An HTTP(S) POST to Kea's HA listener; the answer body, or null when the request fails or nothing answers. */
  const keaPost = (from: NodeName | 'client' | 'guest', url: string, command: string, tls: string[] = []) => {
    const r = board.exec(from, 'curl', ['-sS', '--max-time', '3', ...tls, '-H', 'Content-Type: application/json', '-d', JSON.stringify({ command, service: ['dhcp4'] }), url], { timeoutMs: 10_000 });
    return r.status === 0 && r.stdout.trim() ? r.stdout : null;
  };
  const pairTls = (n: NodeName) => { const d = path.join(dir, 'state', n, 'kea', 'tls'); return { ca: path.join(d, 'ha.crt'), cert: path.join(d, 'ha.crt'), key: path.join(d, 'ha.key') }; };
  /** Packets counted by the rule with this comment in a chain of the node's table. */
  const counter = (n: NodeName, chain: string, comment: string): number => {
    const text = board.exec(n, 'nft', ['list', 'chain', 'inet', 'duogate', chain]).stdout;
    const m = new RegExp(`counter packets (\\d+) bytes \\d+ .*comment "${comment}"`).exec(text);
    return m ? Number(m[1]) : -1;
  };
  const dhcpOffer = (host: 'client' | 'server' | 'guest') =>
    // -s /bin/true: take an offer but configure nothing; -n: give up after the tries.
    board.exec(host, 'busybox', ['udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-s', '/bin/true', '-t', '3', '-T', '1'], { timeoutMs: 15_000 }).status === 0;

  t.teardown(async () => { await board.down(); });

  t.before(async () => {
    await board.up();
    mkdirSync(dir, { recursive: true });
    for (const n of ['primary', 'secondary'] as NodeName[]) writeFileSync(cfg(n), YAML.stringify(nodeCfg(n)));
    board.startNode('primary', [CLI, 'run', '--config', cfg('primary')]);
    await waitFor('primary MASTER', async () => (await status('primary')).vips.every((v: any) => v.state === 'MASTER'), 30_000, 200);
    board.startNode('secondary', [CLI, 'run', '--config', cfg('secondary')]);
    await waitFor('secondary BACKUP hearing the primary', async () =>
      (await status('secondary')).vips.every((v: any) => v.state === 'BACKUP' && v.adverts_rx > 0), 30_000, 200);
    await waitFor('Kea pair in hot-standby', async () => {
      const [p, s] = [await status('primary'), await status('secondary')];
      return p.dhcp?.ha_state === 'hot-standby' && s.dhcp?.ha_state === 'hot-standby';
    }, 30_000, 250);
  });

  t.test('between the nodes, over the sync link, everything still works', async (t) => {
    const p = await status('primary');
    const s = await status('secondary');
    t.equal(p.dhcp.ha_state, 'hot-standby', 'primary Kea hot-standby (its HA listener is reached by the peer)');
    t.equal(s.dhcp.ha_state, 'hot-standby', 'secondary Kea hot-standby');
    const hb = await waitFor('heartbeat on both paths', async () => {
      const x = (await status('secondary')).peer;
      return x?.sync_link === 'ok' && x?.lan_path === 'ok' ? x : null;
    }, 10_000);
    t.equal(hb.counters.unknown_source, 0, 'the heartbeat heard nothing from an unexpected source');
    const ss = await waitFor('state sync hears its peer', async () => {
      const x = (await status('secondary')).statesync;
      return x?.peer?.last_heard_ms_ago !== null && x?.peer?.last_heard_ms_ago < 5000 ? x : null;
    }, 20_000);
    t.ok(ss, `state sync: the secondary heard the primary ${ss.peer.last_heard_ms_ago} ms ago`);
    // Kea's HA listener speaks mutual TLS with the pair's identity (derived from a secret both nodes share): the
    // peer gets in with it, and nothing gets in without it, not even from the peer's own sync address.
    for (const [n, x] of [['primary', p], ['secondary', s]] as const) t.match(x.dhcp.ha_auth, /^mutual TLS \(pair identity from statesync\.key\)/, `${n}: ${x.dhcp.ha_auth}`);
    const url = `https://${SYNC.primary}:8001/`;
    const own = pairTls('secondary');
    const beat = keaPost('secondary', url, 'ha-heartbeat', ['--cacert', own.ca, '--cert', own.cert, '--key', own.key]);
    // Where Kea also checks basic auth (3.3.1+), a request with the certificate but without the password is refused.
    if (/\+ basic/.test(p.dhcp.ha_auth)) t.match(beat ?? '', /401|[Uu]nauthorized/, 'with the pair certificate but no password: refused');
    else t.match(beat ?? '', /"result": ?0/, `the peer's ha-heartbeat to ${url} with the pair certificate is answered`);
    t.equal(keaPost('secondary', url, 'ha-heartbeat', ['--cacert', own.ca]), null, 'without a client certificate: refused');
    t.equal(keaPost('secondary', `http://${SYNC.primary}:8001/`, 'ha-heartbeat'), null, 'plain HTTP: refused');
    const forged = path.join(dir, 'forged');
    mkdirSync(forged, { recursive: true });
    const mk = board.exec('secondary', 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(forged, 'k'), '-out', path.join(forged, 'c'),
      '-days', '2', '-subj', '/CN=duogate-kea-ha', '-addext', `subjectAltName=IP:${SYNC.primary},IP:${SYNC.secondary}`]);
    t.equal(mk.status, 0, 'a forged certificate with the same name');
    t.equal(keaPost('secondary', url, 'ha-heartbeat', ['-k', '--cert', path.join(forged, 'c'), '--key', path.join(forged, 'k')]), null, 'with a certificate of the same name but another key: refused');
    // Config sync (XML-RPC on the secondary's 7443) still pushes: a new alias reaches the secondary's nftables.
    const next = nodeCfg('primary');
    next.firewall.aliases.scan_probe = { type: 'host', entries: ['203.0.113.77'], description: 'pushed by the scan test' };
    const f = path.join(dir, 'primary-next.yaml');
    writeFileSync(f, YAML.stringify(next));
    const r = board.exec('primary', process.execPath, [CLI, 'config', 'apply', f, '-m', 'scan test', '--config', cfg('primary'), '--socket', sock('primary')], { timeoutMs: 20_000 });
    t.equal(r.status, 0, `config apply on the primary: ${r.stderr.trim()}`);
    const pushed = await waitFor('alias live on the secondary', async () =>
      /alias_scan_probe[^}]*203\.0\.113\.77/.test(board.exec('secondary', 'nft', ['list', 'table', 'inet', 'duogate']).stdout), 15_000, 200);
    t.ok(pushed, 'config sync pushed the revision; the alias is in the secondary\'s ruleset');
  });

  t.test('every listening socket of each node, and what it is bound to', async (t) => {
    // The ruleset is the guarantee; the binds are the second line. The heartbeat alone binds the wildcard (its
    // LAN path); the firewall admits it only from the peer's sync and LAN addresses, and it checks the source.
    const listeners = (n: NodeName) => board.exec(n, 'ss', ['-H', '-lntup']).stdout.trim().split('\n').filter(Boolean).map((l) => {
      const f = l.split(/\s+/);
      const proc = /users:\(\("([^"]+)"/.exec(l)?.[1] ?? '?';
      return `${f[0]} ${f[4]} ${proc === 'MainThread' || proc.startsWith('node') ? 'duogate' : proc}`;
    }).sort();
    const expected = (own: { lan: string; guest: string; sync: string }, secondary: boolean) => [
      'tcp 127.0.0.1:53 unbound', `tcp ${LAN.vip}:53 unbound`, `tcp ${own.lan}:53 unbound`,
      `tcp ${GUEST.vip}:53 unbound`, `tcp ${own.guest}:53 unbound`,
      `tcp ${own.sync}:8001 kea-dhcp4`,
      ...(secondary ? [`tcp ${own.sync}:7443 duogate`] : []),
      'udp 127.0.0.1:53 unbound', `udp ${LAN.vip}:53 unbound`, `udp ${own.lan}:53 unbound`,
      `udp ${GUEST.vip}:53 unbound`, `udp ${own.guest}:53 unbound`,
      `udp ${own.lan}:67 kea-dhcp4`, `udp ${own.guest}:67 kea-dhcp4`,
      `udp ${own.sync}:7200 duogate`,
      `udp ${own.sync}:7201 duogate`, `udp ${own.lan}:7201 duogate`,
    ].sort();
    // Kea binds a UDP socket to each address its interfaces have when it opens them: a VIP too if the node held
    // it then (at start the secondary briefly preempts a primary still demoted for its bulk sync). DHCP on a
    // network's VIP is the service that network gets anyway, so such a socket is left out of the comparison.
    const vip67 = new Set([`udp ${LAN.vip}:67 kea-dhcp4`, `udp ${GUEST.vip}:67 kea-dhcp4`]);
    const bound = (n: NodeName) => listeners(n).filter((l) => !vip67.has(l));
    t.same(bound('primary'), expected({ lan: LAN.primary, guest: GUEST.primary, sync: SYNC.primary }, false), 'primary: only these listen');
    t.same(bound('secondary'), expected({ lan: LAN.secondary, guest: GUEST.secondary, sync: SYNC.secondary }, true), 'secondary: only these listen (it alone serves config sync)');
    // Packet sockets (no port, README "Ports each node opens"): the gratuitous-ARP one per CARP NIC. A static WAN
    // has no DHCP client; with wan.mode dhcp the MASTER adds one raw IPv4 socket on the WAN NIC (wan-dhcp.test.ts).
    const packets = (n: NodeName) => board.exec(n, 'ss', ['-H', '-0', '-p']).stdout.trim().split('\n').filter(Boolean)
      .map((l) => { const f = l.split(/\s+/); const proc = /users:\(\("([^"]+)"/.exec(l)?.[1] ?? '?'; return `${f[0]} ${f[3]} ${proc === 'MainThread' || proc.startsWith('node') ? 'duogate' : proc}`; })
      .filter((l) => !l.endsWith('kea-dhcp4')).sort();
    for (const n of ['primary', 'secondary'] as NodeName[]) t.same(packets(n), ['p_dgr arp:guest0 duogate', 'p_dgr arp:lan0 duogate', 'p_dgr arp:wan0 duogate'], `${n}: packet sockets, ARP only`);
    // A router advertisement from any host on a segment changes nothing on a node (the board's boot leaves the
    // kernel's default, 1: the daemon sets 0).
    const ra = (n: NodeName) => ['lan0', 'wan0', 'sync0', 'guest0'].map((d) => `${d}=${board.exec(n, 'cat', [`/proc/sys/net/ipv6/conf/${d}/accept_ra`]).stdout.trim()}`);
    for (const n of ['primary', 'secondary'] as NodeName[]) t.same(ra(n), ['lan0=0', 'wan0=0', 'sync0=0', 'guest0=0'], `${n}: accept_ra off on every NIC it manages`);
  });

  t.test('from the LAN client: DNS and DHCP answer, nothing else, not even with routes to the sync link', async (t) => {
    // The attacker's routes: each sync address via the node that owns it (delivered locally there) ...
    routeVia('client', { [SYNC.primary]: LAN.primary, [SYNC.secondary]: LAN.secondary });
    const targets = [LAN.vip, LAN.primary, LAN.secondary, WAN.vip, WAN.primary, WAN.secondary, SYNC.primary, SYNC.secondary, GUEST.vip, GUEST.primary, GUEST.secondary];
    const a = await scan('client', targets);
    t.comment(`LAN scan: ${a.probes} probes of ${targets.length} addresses in ${a.ms} ms`);
    const dns = [LAN.vip, LAN.primary, LAN.secondary];
    t.same(fmt(a.tcp), fmt(dns.map((addr) => ({ addr, port: 53, result: 'open' }))), 'TCP: only DNS on the LAN VIP and the nodes\' LAN addresses answer (no RST from anything else)');
    t.same(fmt(a.udp), fmt(dns.map((addr) => ({ addr, port: 53, result: 'answer' }))), 'UDP: only DNS answers (no ICMP port unreachable from anything else)');
    t.equal(keaPost('client', `http://${SYNC.primary}:8001/`, 'list-commands'), null, 'Kea HA control channel 172.16.1.1:8001 does not answer the LAN');
    t.equal(keaPost('client', `https://${SYNC.primary}:8001/`, 'list-commands', ['-k']), null, 'not over HTTPS either');
    t.equal(keaPost('client', `http://${SYNC.secondary}:8001/`, 'list-commands'), null, 'nor 172.16.1.2:8001');
    t.ok(counter('primary', 'input', 'sync subnet from outside the sync link') > 0, 'the primary counted the drops of its sync address seen on the LAN');
    // ... and each via the other node, which would forward it onto the sync link.
    routeVia('client', { [SYNC.primary]: LAN.secondary, [SYNC.secondary]: LAN.primary });
    const before = counter('primary', 'forward', 'sync subnet from outside the sync link');
    const b = await scan('client', [SYNC.primary, SYNC.secondary]);
    t.same([...fmt(b.tcp), ...fmt(b.udp)], [], 'nothing answers on the sync addresses when routed through the other node');
    t.ok(counter('primary', 'forward', 'sync subnet from outside the sync link') > before, 'the primary refused to forward LAN traffic onto the sync link');
    t.equal(keaPost('client', `http://${SYNC.secondary}:8001/`, 'list-commands'), null, 'Kea HA of the secondary is not reachable through the primary');
    // Ping: the gateway's LAN and WAN addresses answer a LAN host; the sync addresses do not.
    for (const a of [LAN.vip, LAN.primary, LAN.secondary, WAN.vip, WAN.primary]) t.ok(board.ping('client', a), `ping ${a} from the LAN answers`);
    for (const a of [SYNC.primary, SYNC.secondary]) t.notOk(board.ping('client', a), `ping ${a} from the LAN gets no answer`);
    for (const a of [GUEST.vip, GUEST.primary]) t.notOk(board.ping('client', a), `ping ${a} (the guest network's) from the LAN gets no answer`);
    t.ok(dhcpOffer('client'), 'DHCP answers on the LAN');
  });

  t.test('from the guest client: DNS and DHCP on the guest addresses, nothing on the LAN or sync addresses', async (t) => {
    board.exec('guest', 'ip', ['addr', 'replace', '192.168.20.100/24', 'dev', 'eth0'], { check: true });
    board.exec('guest', 'ip', ['route', 'replace', 'default', 'via', GUEST.vip], { check: true });
    routeVia('guest', { [SYNC.primary]: GUEST.primary, [SYNC.secondary]: GUEST.secondary, [LAN.secondary]: GUEST.secondary });
    // The LAN client serves TCP 8000 and UDP 161 (both scanned): the node reaches them, the guest must not.
    const lanTcp = board.spawn('client', 'socat', ['TCP-LISTEN:8000,fork,reuseaddr', 'SYSTEM:echo lan'], { stdio: 'ignore' });
    const lanUdp = board.spawn('client', 'socat', ['UDP-RECVFROM:161,fork', 'SYSTEM:echo lan'], { stdio: 'ignore' });
    t.teardown(() => { lanTcp.kill('SIGKILL'); lanUdp.kill('SIGKILL'); });
    const fromNode = async () => (await board.execAsync('primary', 'socat', ['-T', '2', '-', `TCP:${LAN_CLIENT}:8000,connect-timeout=2`], { timeoutMs: 6000, input: '' })).stdout.trim();
    t.equal(await waitFor('the LAN client listens', async () => ((await fromNode()) === 'lan' ? 'lan' : null), 5000, 200), 'lan', 'the primary reaches the LAN client\'s TCP 8000');
    const targets = [GUEST.vip, GUEST.primary, GUEST.secondary, LAN.vip, LAN.primary, LAN.secondary, WAN.vip, WAN.primary, WAN.secondary, SYNC.primary, SYNC.secondary, LAN_CLIENT];
    const a = await scan('guest', targets);
    t.comment(`guest scan: ${a.probes} probes of ${targets.length} addresses in ${a.ms} ms`);
    const dns = [GUEST.vip, GUEST.primary, GUEST.secondary];
    t.same(fmt(a.tcp), fmt(dns.map((addr) => ({ addr, port: 53, result: 'open' }))), 'TCP: only DNS on the guest VIP and the nodes\' guest addresses');
    t.same(fmt(a.udp), fmt(dns.map((addr) => ({ addr, port: 53, result: 'answer' }))), 'UDP: only DNS answers (not the LAN client\'s 8000/tcp or 161/udp)');
    t.ok(counter('primary', 'rules_guest', 'guest#0 Guests never reach the LAN') > 0, 'the guest rule dropped the probes of the LAN');
    for (const a of [GUEST.vip, GUEST.primary, GUEST.secondary, WAN.vip, WAN.primary]) t.ok(board.ping('guest', a), `ping ${a} from guest answers`);
    for (const a of [LAN.vip, LAN.primary, LAN.secondary, SYNC.primary, LAN_CLIENT]) t.notOk(board.ping('guest', a), `ping ${a} from guest gets no answer`);
    t.ok(dhcpOffer('guest'), 'DHCP answers on guest');
  });

  t.test('from the WAN server: nothing answers at all', async (t) => {
    routeVia('server', {
      [LAN.vip]: WAN.primary, [LAN.primary]: WAN.primary, [LAN.secondary]: WAN.secondary,
      [SYNC.primary]: WAN.primary, [SYNC.secondary]: WAN.secondary,
    });
    const targets = [WAN.vip, WAN.primary, WAN.secondary, LAN.vip, LAN.primary, LAN.secondary, SYNC.primary, SYNC.secondary];
    const a = await scan('server', targets);
    t.comment(`WAN scan: ${a.probes} probes of ${targets.length} addresses in ${a.ms} ms`);
    t.same(fmt(a.tcp), [], 'TCP: no answer of any kind');
    t.same(fmt(a.udp), [], 'UDP: no answer of any kind');
    routeVia('server', { [SYNC.primary]: WAN.secondary, [SYNC.secondary]: WAN.primary, [LAN.secondary]: WAN.primary });
    const b = await scan('server', [SYNC.primary, SYNC.secondary, LAN.secondary]);
    t.same([...fmt(b.tcp), ...fmt(b.udp)], [], 'nothing answers when routed through the other node either');
    for (const a of [WAN.vip, WAN.primary, WAN.secondary]) t.notOk(board.ping('server', a), `ping ${a} from the WAN gets no answer`);
    t.notOk(dhcpOffer('server'), 'no DHCP on the WAN');
  });

  t.test('the pair is unaffected by the scans', async (t) => {
    t.ok((await status('primary')).vips.every((v: any) => v.state === 'MASTER'), 'primary still MASTER');
    const p = await waitFor('Kea hot-standby', async () => ((await status('primary')).dhcp?.ha_state === 'hot-standby' ? true : null), 10_000, 200);
    t.ok(p, 'Kea pair still in hot-standby');
  });
}
