// DHCPv6 (host/gateway/dhcp6) and the RA's managed mode (host/ra): `duogate check` findings with field and
// reason, the kea-dhcp6 config each node gets (accepted by the installed `kea-dhcp6 -t`), the firewall's
// DHCPv6 rule only where the section is, and the RA's M/O/A flags as tshark decodes them.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { compile } from '../../host/gateway/firewall/compile.js';
import { kea6Config, lifetimes, serverDuid } from '../../host/gateway/dhcp6/kea6.js';
import { buildRa } from '../../host/ra/codec.js';

const tmp = mkdtempSync(join(tmpdir(), 'dg-dhcp6-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** The board's node config made dual-stack (as test/e2e/carp6.test.ts) with the RA in managed mode and a pool. */
function board(node: 'primary' | 'secondary' = 'primary'): any {
  const d = YAML.parse(readFileSync(`board/virtual/${node}.yaml`, 'utf8'));
  d.interfaces.lan.address6 = node === 'primary' ? 'fe80::2' : 'fe80::3';
  d.interfaces.lan.peer6 = node === 'primary' ? 'fe80::3' : 'fe80::2';
  d.carp.vips.push({ ...d.carp.vips[0], address: '2001:db8:1::1/64' }, { ...d.carp.vips[0], address: 'fe80::1/64' });
  d.ra = { vhid: 1, prefixes: ['2001:db8:1::/64'], mode: 'managed' };
  d.dhcp6 = { range: { from: '2001:db8:1::1000', to: '2001:db8:1::1fff' }, lease_time: 600 };
  return d;
}
const load = (d: any) => parseConfigText(YAML.stringify(d));
const errors = (d: any) => checkConfig(load(d)).filter((f) => f.level === 'error' && /^(dhcp6|ra)/.test(f.field)).map((f) => `${f.field}: ${f.message}`);

t.test('check: a pool in the advertised /64 with the RA in managed mode passes', async (t) => {
  t.same(errors(board()), []);
  const d = board(); d.ra.mode = 'assisted';
  t.same(errors(d), [], 'assisted (DHCPv6 and SLAAC) too');
});

t.test('check: each bad setting is refused with its field and reason', async (t) => {
  const cases: [string, (d: any) => void, RegExp][] = [
    ['range outside the prefixes', (d) => { d.dhcp6.range.from = '2001:db8:2::10'; }, /^dhcp6\.range\.from: 2001:db8:2::10 is in none of ra\.prefixes/],
    ['from after to', (d) => { d.dhcp6.range = { from: '2001:db8:1::2000', to: '2001:db8:1::1000' }; }, /^dhcp6\.range: from 2001:db8:1::2000 is after to 2001:db8:1::1000: swap them/],
    ['from and to in two prefixes', (d) => { d.ra.prefixes.push('2001:db8:9::/64'); d.dhcp6.range.to = '2001:db8:9::10'; }, /^dhcp6\.range: from and to are in different prefixes/],
    ['not IPv6', (d) => { d.dhcp6.range.to = '2001:db8:1::1:2:3:4:5:6'; }, /^dhcp6\.range\.to: .* is not an IPv6 address/],
    ['link-local pool', (d) => { d.dhcp6.range.from = 'fe80::100'; }, /^dhcp6\.range\.from: fe80::100 is link-local or multicast/],
    ['pool holding the VIP', (d) => { d.dhcp6.range.from = '2001:db8:1::1'; }, /^dhcp6\.range: .* contains the VIP 2001:db8:1::1/],
    ['subnet-router anycast', (d) => { d.dhcp6.range.from = '2001:db8:1::'; }, /^dhcp6\.range\.from: 2001:db8:1:: is the subnet-router anycast address/],
    ['RA in slaac mode', (d) => { d.ra.mode = 'slaac'; }, /^dhcp6\.\(ra\.mode\): ra\.mode is slaac: hosts are not told to ask DHCPv6/],
    ['RA mode left at its default', (d) => { delete d.ra.mode; }, /^dhcp6\.\(ra\.mode\): ra\.mode is slaac/],
    ['no ra section', (d) => { delete d.ra; }, /^dhcp6\.\(ra\): DHCPv6 serves the network the router advertisements are for/],
    ['managed RA without dhcp6', (d) => { delete d.dhcp6; }, /^ra\.mode: managed tells hosts to ask a DHCPv6 server: add the dhcp6 section/],
    ['mapping outside the prefix', (d) => { d.dhcp6.static_mappings = [{ duid: '00:01:00:01:aa:bb', address: '2001:db8:5::5' }]; }, /^dhcp6\.static_mappings\[0\]\.address: 2001:db8:5::5 is outside 2001:db8:1::\/64/],
    ['a DUID mapped twice', (d) => { d.dhcp6.static_mappings = [{ duid: '00:01:00:01:aa:bb', address: '2001:db8:1::5' }, { duid: '00:01:00:01:AA:BB', address: '2001:db8:1::6' }]; }, /^dhcp6\.static_mappings\[1\]\.duid: 00:01:00:01:AA:BB is mapped twice/],
    ['HA response delay not above the heartbeat', (d) => { d.dhcp6.ha = { heartbeat_delay_ms: 5000, max_response_delay_ms: 5000 }; }, /^dhcp6\.ha\.max_response_delay_ms: must be longer than heartbeat_delay_ms/],
  ];
  for (const [what, edit, want] of cases) {
    const d = board(); edit(d);
    const e = errors(d);
    t.ok(e.some((x) => want.test(x)), `${what}: ${JSON.stringify(e)}`);
  }
  const d = board(); d.dhcp6.static_mappings = [{ duid: 'not-a-duid', address: '2001:db8:1::5' }];
  t.throws(() => load(d), /dhcp6/, 'a malformed DUID is refused by the schema');
});

t.test('kea-dhcp6 config: the LAN NIC only, the advertised /64, DNS = the RDNSS VIP, HA peers on the sync link', async (t) => {
  const c = load(board());
  c.state_dir = join(tmp, 'p');
  const k = (kea6Config(c, c.state_dir, {}) as any).Dhcp6;
  t.same(k['interfaces-config'].interfaces, ['lan0'], 'listens on the LAN NIC only');
  t.same(k['server-id'], { type: 'LL', htype: 1, identifier: '00005e000101', persist: false }, 'DUID-LL over vhid 1\'s virtual MAC, the same on both nodes');
  t.equal(k.subnet6.length, 1);
  t.equal(k.subnet6[0].subnet, '2001:db8:1::/64');
  t.equal(k.subnet6[0].interface, 'lan0');
  t.same(k.subnet6[0].pools, [{ pool: '2001:db8:1::1000 - 2001:db8:1::1fff' }]);
  t.same(k.subnet6[0]['option-data'], [{ name: 'dns-servers', data: '2001:db8:1::1' }], 'DNS = the RA\'s RDNSS address (the vhid\'s global VIP)');
  t.same([k['valid-lifetime'], k['preferred-lifetime'], k['renew-timer'], k['rebind-timer']], [600, 525, 300, 480]);
  const ha = k['hooks-libraries'][1].parameters['high-availability'][0];
  t.equal(ha.mode, 'hot-standby');
  t.equal(ha['this-server-name'], 'primary');
  t.same(ha.peers.map((p: any) => [p.name, p.role, p.url]), [['primary', 'primary', 'http://172.16.1.1:8002/'], ['secondary', 'standby', 'http://172.16.1.2:8002/']], 'its own HA port beside kea-dhcp4\'s 8001');
  const s = load(board('secondary')); s.state_dir = join(tmp, 's');
  const ks = (kea6Config(s, s.state_dir, {}) as any).Dhcp6;
  t.equal(ks['hooks-libraries'][1].parameters['high-availability'][0]['this-server-name'], 'secondary');
  t.same(ks['server-id'], k['server-id'], 'both nodes answer with the same server DUID');
  const d = board(); d.dhcp6.dns_servers = ['2001:db8:1::53']; d.dhcp6.domain_search = ['home.arpa'];
  d.dhcp6.static_mappings = [{ duid: '00:01:00:01:AA:BB:CC:DD', address: '2001:db8:1::42', hostname: 'nas' }];
  const c2 = load(d); c2.state_dir = join(tmp, 'p2');
  const k2 = (kea6Config(c2, c2.state_dir, {}) as any).Dhcp6;
  t.same(k2.subnet6[0]['option-data'], [{ name: 'dns-servers', data: '2001:db8:1::53' }, { name: 'domain-search', data: 'home.arpa' }]);
  t.same(k2.subnet6[0].reservations, [{ duid: '00:01:00:01:aa:bb:cc:dd', 'ip-addresses': ['2001:db8:1::42'], hostname: 'nas' }]);
  const bad = board(); bad.dhcp6.range.from = '2001:db8:7::1';
  t.throws(() => kea6Config(load(bad)), /dhcp6\.range\.from/, 'refuses to write a config check refuses');
  t.equal(serverDuid(0x2a), '00005e00012a');
  const l = lifetimes(20);
  t.ok(l.renew < l.rebind && l.rebind <= l.preferred && l.preferred < l.valid, `T1 < T2 <= preferred < valid (${JSON.stringify(l)})`);
});

t.test('kea-dhcp6 -t accepts the generated config (TLS and plain)', async (t) => {
  for (const tls of [false, true]) {
    const c = load(board());
    c.state_dir = join(tmp, `t${tls}`);
    mkdirSync(c.state_dir, { recursive: true });
    const file = join(tmp, `kea6-${tls}.json`);
    if (tls) {
      const { ensureHaTls } = await import('../../host/gateway/dhcp/hatls.js');
      ensureHaTls(c);
    }
    writeFileSync(file, JSON.stringify(kea6Config(c, c.state_dir, { tls })));
    // -t opens the named interface: a throwaway namespace with the LAN device, as on a node.
    let out = '';
    try {
      execFileSync('unshare', ['--net', 'sh', '-c', 'ip link add name lan0 type veth peer name dgk6peer && exec kea-dhcp6 -t "$1"', 'sh', file], { encoding: 'utf8', stdio: 'pipe', timeout: 20_000 });
    } catch (e: any) { out = String(e.stdout).split('\n').filter((l) => /ERROR|rror encountered|FATAL/.test(l)).join('\n') || String(e.message); }
    t.equal(out, '', `kea-dhcp6 -t (tls ${tls})`);
  }
});

t.test('firewall: DHCPv6 from link-local clients on the LAN only with a dhcp6 section; its HA port from the peer on sync', async (t) => {
  const chain = (text: string, name: string) => new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(text)?.[1] ?? '';
  const on = compile(load(board())).text;
  t.match(chain(on, 'lan_services'), 'ip6 saddr fe80::/10 ip6 daddr { ff02::1:2, fe80::2 } udp sport 546 udp dport 547 counter accept comment "DHCPv6 server"');
  t.notMatch(chain(on, 'guest_services'), /dport 547/, 'not on a network without the scope');
  t.match(chain(on, 'sync_system'), 'tcp dport 8002 counter accept comment "sync: kea6_ha"');
  const d = board(); delete d.dhcp6; d.ra.mode = 'slaac';
  t.notMatch(compile(load(d)).text, /dport 547/, 'no DHCPv6 rule without the section');
});

t.test('RA flags as tshark decodes them: slaac (M, O clear, A set), managed (M, O set, A clear), assisted (M, O, A set)', async (t) => {
  const mac = Buffer.from('02d601010001', 'hex');
  const decode = (managed: boolean | undefined, autonomous: boolean | undefined): string => {
    const pkt = Buffer.from(buildRa({
      mac, router: 'fe80::1', routerLifetimeS: 1800, managed, autonomous,
      prefixes: [{ prefix: '2001:db8:1::/64', validS: 86_400, preferredS: 14_400 }], dns: ['2001:db8:1::1'], dnsLifetimeS: 1800,
    }));
    const frame = Buffer.concat([Buffer.from('333300000001', 'hex'), mac, Buffer.from('86dd', 'hex'), pkt]);
    const pcap = Buffer.alloc(40);
    pcap.writeUInt32LE(0xa1b2c3d4, 0); pcap.writeUInt16LE(2, 4); pcap.writeUInt16LE(4, 6); pcap.writeUInt32LE(65535, 16); pcap.writeUInt32LE(1, 20);
    pcap.writeUInt32LE(frame.length, 32); pcap.writeUInt32LE(frame.length, 36);
    const f = join(tmp, 'ra.pcap');
    writeFileSync(f, Buffer.concat([pcap, frame]));
    return execFileSync('tshark', ['-r', f, '-T', 'fields', '-E', 'separator=;', '-e', 'icmpv6.nd.ra.flag.m', '-e', 'icmpv6.nd.ra.flag.o',
      '-e', 'icmpv6.opt.prefix.flag.l', '-e', 'icmpv6.opt.prefix.flag.a', '-e', 'icmpv6.checksum.status', '-e', '_ws.expert'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  };
  t.equal(decode(undefined, undefined), '0;0;1;1;1;', 'slaac');
  t.equal(decode(true, false), '1;1;1;0;1;', 'managed');
  t.equal(decode(true, true), '1;1;1;1;1;', 'assisted');
});
