// A third internal network on the virtual board (prefix dn1; issue #14): the board's configs declare `guest`
// (guest0, 192.168.20.0/24, VIP 192.168.20.1 vhid 3, a DHCP scope, rules "guests reach the internet, never the
// LAN"; probes in board/virtual/networks.ts). From the guest client namespace: a lease with router and DNS = the guest
// VIP and the node's own guest address as server id, a renew answered by unicast (as at T1), DNS through that VIP,
// the WAN server reached with the WAN VIP as source (outbound NAT for every internal network), the LAN client and
// the LAN gateway address not reached, every network listed in `duogate status`, and 5 TCP echo sessions from the
// guest kept across a power cut of the master (state sync carries them).
// VLAN sub-interfaces (interfaces.<net>.vlan) cannot be tested here: this kernel has no 802.1Q.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, allAre, poll, sleep, waitFor } from '../../board/virtual/firmware.js';
import { GatewayProbes, TEST_ZONE, WHOAMI_PORT } from '../../board/virtual/demo/gateway.js';
import { GUEST, GuestProbes } from '../../board/virtual/networks.js';
import { ipNum } from '../../host/config/net.js';

const PREFIX = 'dn1';

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (network namespaces)');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const fw = new Firmware(board);
  const probes = new GatewayProbes(board);
  const guest = new GuestProbes(board);
  let load: ChildProcess | null = null;

  t.teardown(async () => { guest.stopDhcpClient(); load?.kill('SIGKILL'); await board.down(); });

  t.test('guest network: lease, DNS, internet through the WAN VIP, no LAN, sessions across a power cut', async (t) => {
    await board.up();
    fw.resetState();
    fw.writeConfigs('nets', { keep: ['firewall', 'nat', 'dhcp', 'dns', 'statesync', 'peer'] });
    await probes.startServer();
    board.spawn('server', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'server'], { stdio: 'ignore' });
    await fw.startPair();
    await waitFor('guest vhid 3: primary MASTER, secondary BACKUP', async () =>
      allAre(await fw.states('primary'), 'MASTER', ['1', '2', '3']) && allAre(await fw.states('secondary'), 'BACKUP', ['1', '2', '3']), 10_000);
    await waitFor('kea hot-standby', async () => (await fw.status('primary')).dhcp?.ha_state === 'hot-standby', 20_000, 250);

    const st = await fw.status('primary');
    t.same(Object.keys(st.networks), ['wan', 'lan', 'guest', 'sync'], 'status lists every network');
    t.match(st.networks.guest, { kind: 'internal', device: 'guest0', address: '192.168.20.2/24', carrier: true, vips: [{ vhid: 3, state: 'MASTER' }] });

    guest.startDhcpClient();
    const lease = await guest.waitLease(15_000);
    t.ok(lease, 'the guest client got a lease');
    t.equal(lease?.router, GUEST.vip, 'router = the guest VIP');
    t.equal(lease?.dns, GUEST.vip, 'DNS server = the guest VIP');
    t.ok(lease && ipNum(lease.ip) >= ipNum(GUEST.range.from) && ipNum(lease.ip) <= ipNum(GUEST.range.to), `address ${lease?.ip} from the guest scope`);
    t.equal(lease?.serverid, '192.168.20.2', "server id = the primary's own guest address (Kea hears no unicast to a VIP)");
    // A renew as at T1: unicast to the server id, answered without falling back to a broadcast.
    const mark = guest.dhcpOutput().length;
    const ask = Date.now();
    guest.renewDhcp();
    const renewed = await guest.waitLease(15_000, ask);
    const said = guest.dhcpOutput().slice(mark);
    t.equal(renewed?.event, 'renew', 'the guest renewed');
    t.equal(renewed?.ip, lease?.ip, 'the same address');
    t.match(said, /sending renew to server 192\.168\.20\.2\b/, 'the renew went by unicast to the server identifier');
    t.notMatch(said, /broadcasting renew/, `and was answered: no rebind broadcast (udhcpc: ${JSON.stringify(said.trim())})`);
    await waitFor('kea counts the guest lease', async () => (await fw.status('primary')).dhcp?.networks?.guest === 1, 10_000, 250);

    t.same(await guest.dns(TEST_ZONE.name), [TEST_ZONE.address], 'DNS through the guest VIP');
    t.equal(await guest.tcp('203.0.113.10', WHOAMI_PORT), '203.0.113.1', 'the WAN server sees the WAN VIP (outbound NAT for guest)');
    t.notOk(await guest.ping('192.168.1.100'), 'the LAN client is not reachable from guest');
    t.notOk(await guest.ping('192.168.1.1'), 'nor the LAN gateway address');
    t.ok(await guest.ping(GUEST.vip), 'the guest VIP answers ping');
    const blocked = board.exec('primary', 'nft', ['list', 'chain', 'inet', 'duogate', 'rules_guest']).stdout;
    t.match(blocked, /counter packets [1-9]\d* bytes \d+ drop comment "guest#0 Guests never reach the LAN"/, 'the guest block rule counted the attempt');
    // The LAN is untouched: its client still reaches the server through the same pair.
    t.equal(await probes.whoami(), '203.0.113.1', 'the LAN client still reaches the WAN server');

    // A cable pulled on guest moves every VIP, not only the guest's (the pair moves as one); plugged back, the
    // primary takes them all back.
    board.pullCable('primary', 'guest');
    const pulled = Date.now();
    t.ok(await fw.waitStates((p, s) => allAre(s, 'MASTER', ['1', '2', '3']) && !['1', '2', '3'].some((v) => p[v] === 'MASTER'), 10_000),
      'guest cable pulled on the primary: the secondary holds every VIP');
    t.comment(`guest cable pull: all VIPs on the secondary after ${Date.now() - pulled} ms`);
    board.plugCable('primary', 'guest');
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER', ['1', '2', '3']) && allAre(s, 'BACKUP', ['1', '2', '3']), 15_000), 'plugged back: the primary holds every VIP again');
    await waitFor('guest reaches the internet again', async () => (await guest.tcp('203.0.113.10', WHOAMI_PORT, 1)) === '203.0.113.1', 10_000, 100);

    // 5 echo sessions from the guest, then a power cut of the master.
    load = board.spawn('guest', process.execPath, ['--import', 'tsx', 'board/virtual/tcpload.ts', 'client', '--dst', '203.0.113.10', '--sessions', '5', '--interval-ms', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    load.stdout!.on('data', (d) => { out += d; });
    const done = new Promise<void>((r) => load!.on('exit', () => r()));
    await waitFor('guest sessions synced to the secondary', async () =>
      board.exec('secondary', 'conntrack', ['-L', '-s', lease!.ip, '-p', 'tcp', '--dport', '5000']).stdout.split('\n').filter((l) => l.includes('ESTABLISHED')).length >= 5, 10_000, 200);
    const off = Date.now();
    await board.powerOff('primary');
    const back = await poll(async () => (await guest.tcp('203.0.113.10', WHOAMI_PORT, 1)) === '203.0.113.1', 10_000, 50);
    const takeover = Date.now() - off;
    t.ok(back, `the guest reaches the internet again after the power cut (${takeover} ms)`);
    t.ok(allAre(await fw.states('secondary'), 'MASTER', ['1', '2', '3']), 'the secondary holds every VIP, guest included');
    await sleep(2000);
    load.kill('SIGTERM');
    await done;
    const line = out.split('\n').find((l) => l.includes('"summary"'));
    const sum = line ? JSON.parse(line) : null;
    t.ok(sum, `tcpload summary: ${line ?? out.slice(-300)}`);
    t.equal(sum?.sessions_survived, 5, `guest TCP sessions survived the power cut: ${sum?.sessions_survived}/${sum?.sessions_total}`);
    t.ok(sum && sum.max_echo_gap_ms < 3500, `longest echo gap across the power cut ${sum?.max_echo_gap_ms} ms (target <= 3.5 s)`);
    t.comment(`figures: takeover_ms (longest echo gap)=${sum?.max_echo_gap_ms} first new connection after ${takeover} ms sessions=${sum?.sessions_survived}/${sum?.sessions_total}`);
  });
}
