// DHCPv6 (stateful addresses) from kea-dhcp6 in HA hot-standby on the virtual board (docs/gateway.md "DHCPv6"):
// the dual-stack LAN of test/e2e/carp6.test.ts with the RA in managed mode (M and O flags) and a dhcp6 pool. The
// LAN client (`dhclient -6`, its own lease, pid and script files in the board's runDir) leases an address from
// the pool, answered by the primary's Kea only (the BACKUP's Kea stays silent while the primary is up); the
// primary is powered off and the client's renew or rebind is answered by the secondary, with the same address.
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VirtualBoard, VIP } from '../../board/virtual/board.js';
import { Firmware, sleep, waitFor } from '../../board/virtual/firmware.js';

const VIP6 = '2001:db8:1::1';
const LL = { primary: 'fe80::2', secondary: 'fe80::3' } as const;
const POOL = { from: '2001:db8:1::1000', to: '2001:db8:1::10ff' };
// T1 10 s, T2 16 s: the client renews twice a minute, so the test sees a renew after the power cut.
const LEASE_S = 20;
const wall = () => performance.timeOrigin + performance.now();

/** tcpdump on a LAN switch port: wall times (ms) of what that node sends matching `filter`. */
function capture(board: VirtualBoard, port: string, filter: string): { times: number[]; proc: ChildProcess } {
  const times: number[] = [];
  const proc = board.spawn('lansw', 'tcpdump', ['-i', port, '-Q', 'in', '-nn', '-tt', '-l', filter], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: proc.stdout! }).on('line', (l) => { const s = Number(l.split(' ')[0]); if (s > 0) times.push(s * 1000); });
  return { times, proc };
}

const inPool = (a: string) => {
  const n = (x: string) => parseInt(x.split(':').pop()!, 16);
  return a.startsWith('2001:db8:1::') && n(a) >= n(POOL.from) && n(a) <= n(POOL.to);
};

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (network namespaces)');
} else {
  t.test('DHCPv6 lease from the primary\'s Kea, renewed from the secondary after a power cut', async (t) => {
    const t0 = Date.now();
    const board = new VirtualBoard({ prefix: 'h6a' });
    const fw = new Firmware(board);
    let client: ChildProcess | null = null;
    const pidFile = path.join(board.runDir, 'dhclient6.pid');
    t.teardown(async () => {
      // `-d` keeps dhclient in the foreground: the spawned process (`ip netns exec` execs it) is dhclient.
      if (client && client.exitCode === null && client.signalCode === null) client.kill('SIGKILL');
      await board.down();
    });
    await board.up();
    fw.resetState();
    fw.writeConfigs('dhcp6', {
      keep: ['peer', 'firewall'],
      edit: (c, n) => {
        const other = n === 'primary' ? 'secondary' : 'primary';
        c.interfaces.lan.address6 = LL[n];
        c.interfaces.lan.peer6 = LL[other];
        const lan = c.carp.vips.find((v: { vhid: number }) => v.vhid === VIP.lanVhid);
        c.carp.vips.push({ ...lan, address: `${VIP6}/64`, description: 'LAN gateway (IPv6)' }, { ...lan, address: 'fe80::1/64', description: 'LAN router (link-local)' });
        c.ra = { vhid: VIP.lanVhid, prefixes: ['2001:db8:1::/64'], interval_max: 4, mode: 'managed' };
        c.dhcp6 = { range: POOL, lease_time: LEASE_S };
      },
    });
    // The client: a link-local address at once (EUI-64, no DAD wait), no SLAAC (the RA's prefix is not autonomous).
    board.sysctl('client', { 'net.ipv6.conf.eth0.accept_dad': '0', 'net.ipv6.conf.eth0.accept_ra': '1', 'net.ipv6.conf.eth0.autoconf': '1' });
    board.exec('client', 'ip', ['link', 'set', 'eth0', 'addrgenmode', 'eui64'], { check: true });
    board.exec('client', 'ip', ['link', 'set', 'eth0', 'down'], { check: true });
    board.exec('client', 'ip', ['link', 'set', 'eth0', 'up'], { check: true });
    const replies = { primary: capture(board, 'p-primary', 'udp src port 547'), secondary: capture(board, 'p-secondary', 'udp src port 547') };
    const managedRa = capture(board, 'p-primary', 'icmp6 and ip6[40] == 134 and ip6[45] & 0xc0 == 0xc0');
    t.teardown(() => { for (const c of [replies.primary, replies.secondary, managedRa]) c.proc.kill('SIGTERM'); });

    await fw.startPair();
    t.comment(`pair MASTER/BACKUP ${Date.now() - t0} ms after the start`);
    await waitFor('kea-dhcp6 pair in hot-standby', async () => (await fw.status('primary')).dhcp6?.ha_state === 'hot-standby'
      && (await fw.status('secondary')).dhcp6?.ha_state === 'hot-standby', 30_000, 250);
    t.comment(`pair up, kea-dhcp6 hot-standby ${Date.now() - t0} ms after the start`);

    // dhclient's own files in the board's runDir; its script records each event and puts the address on eth0
    // (never dhclient-script: it would rewrite the host's /etc/resolv.conf from inside the namespace).
    const events = path.join(board.runDir, 'dhclient6.events');
    const script = path.join(board.runDir, 'dhclient6.sh');
    writeFileSync(events, '');
    writeFileSync(script, [
      '#!/bin/sh',
      `echo "$(date +%s.%N) $reason $new_ip6_address $new_dhcp6_name_servers $new_dhcp6_server_id" >> ${events}`,
      'case "$reason" in BOUND6|RENEW6|REBIND6) [ -n "$new_ip6_address" ] && ip -6 addr replace "$new_ip6_address/128" dev "$interface" nodad ;; esac',
      'exit 0', '',
    ].join('\n'), { mode: 0o755 });
    const conf = path.join(board.runDir, 'dhclient6.conf');
    writeFileSync(conf, 'request dhcp6.name-servers;\n');
    client = board.spawn('client', 'dhclient', ['-6', '-d', '-v', '-cf', conf, '-sf', script, '-lf', path.join(board.runDir, 'dhclient6.leases'), '-pf', pidFile, 'eth0'],
      { stdio: ['ignore', 'ignore', 'ignore'] });
    type Ev = { t: number; reason: string; ip: string; dns: string; sid: string };
    const read = (): Ev[] => readFileSync(events, 'utf8').split('\n').filter(Boolean).map((l) => {
      const [ts, reason, ip, dns, sid] = l.split(' ');
      return { t: Number(ts) * 1000, reason: reason!, ip: ip ?? '', dns: dns ?? '', sid: sid ?? '' };
    });
    const askAt = wall();
    const bound = await waitFor('a DHCPv6 lease', async () => read().find((e) => e.reason === 'BOUND6' && e.ip) ?? null, 15_000, 100);
    t.comment(`bound ${bound.ip} ${Math.round(bound.t - askAt)} ms after dhclient started`);
    t.ok(inPool(bound.ip), `the address ${bound.ip} is from the pool ${POOL.from}-${POOL.to}`);
    t.equal(bound.dns, VIP6, 'DNS server = the RA\'s RDNSS address (the LAN\'s IPv6 VIP)');
    t.match(board.exec('client', 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']).stdout, `${bound.ip}/128`, 'the client holds it');
    t.ok(managedRa.times.length > 0, `the MASTER's RAs carry the M and O flags (${managedRa.times.length} seen)`);
    const held = await waitFor('the lease in the primary\'s Kea', async () => ((await fw.status('primary')).dhcp6?.leases >= 1 ? (await fw.status('primary')).dhcp6 : null), 5000, 200);
    t.equal(held.leases, 1, 'the primary\'s Kea holds the lease');
    t.ok(replies.primary.times.length > 0, `the primary's Kea answered (${replies.primary.times.length} replies)`);
    const chain = board.exec('primary', 'nft', ['list', 'chain', 'inet', 'duogate', 'lan_services']).stdout;
    const rule = /counter packets (\d+) bytes \d+ .*comment "DHCPv6 server"/.exec(chain);
    t.ok(Number(rule?.[1]) > 0, `the client's messages came in through the ruleset's DHCPv6 rule (${rule ? `${rule[1]} packets` : chain})`);
    t.ok(board.ping('client', VIP6, 2), 'the client reaches the IPv6 VIP from its leased address');

    t.equal(replies.secondary.times.length, 0, 'the BACKUP\'s Kea sent no DHCPv6 answer while the primary was up');
    const secLeases = await waitFor('the lease copied to the secondary', async () => ((await fw.status('secondary')).dhcp6?.leases >= 1 ? (await fw.status('secondary')).dhcp6.leases : null), 5000, 200);
    t.ok(secLeases >= 1, `the lease was copied to the secondary's Kea (${secLeases})`);

    // The client renews at T1 (10 s after its lease); Kea drops what it cannot tell its dead partner until its
    // heartbeat times out (PARTNER-DOWN, ~10 s in Kea 2.2), so the answer may come to the rebind at T2 (16 s).
    const offAt = wall();
    await board.powerOff('primary');
    const renewed = await waitFor('an answer from the secondary', async () => read().find((e) => e.t > offAt && (e.reason === 'RENEW6' || e.reason === 'REBIND6' || e.reason === 'BOUND6')) ?? null, 30_000, 100);
    // tcpdump's line may come a moment after dhclient's script wrote the event.
    await waitFor('the secondary\'s reply on its switch port', async () => replies.secondary.times.some((x) => x > offAt) || null, 3000, 50).catch(() => null);
    const sec = await fw.status('secondary');
    t.comment(JSON.stringify({ renewed: renewed.reason, after_power_off_ms: Math.round(renewed.t - offAt), secondary_kea: sec.dhcp6?.ha_state, scopes: sec.dhcp6?.scopes, secondary_replies: replies.secondary.times.length, test_ms: Date.now() - t0 }));
    t.ok(replies.secondary.times.some((x) => x > offAt), 'the secondary\'s Kea answered after the power cut');
    t.equal(renewed.ip, bound.ip, `the client kept ${bound.ip} (${renewed.reason})`);
    t.ok(sec.dhcp6?.scopes?.includes('primary'), 'the secondary serves the primary\'s scope');
  });
}
