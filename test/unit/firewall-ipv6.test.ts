// IPv6 through the firewall, DNS and routing config (docs/carp.md "IPv6 routing"): the board's config made
// dual-stack (board/virtual/ipv6.ts) compiles to rules for both families where a rule's addresses have both,
// aliases mixing IPv4 and IPv6 become one set per family, NAT stays IPv4, what cannot match is refused with the
// field, and the real nft accepts the result.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError, parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { compile, FirewallConfigError } from '../../host/gateway/firewall/compile.js';
import { unboundConfig } from '../../host/gateway/dns/unbound.js';
import { nets6Of, prefix6, inPrefix6 } from '../../host/config/ipv6.js';
import { feature as ipv6 } from '../../host/ipv6/feature.js';
import { dualStack } from '../../board/virtual/ipv6.js';

const board = (n: 'primary' | 'secondary') => YAML.parse(readFileSync(`board/virtual/${n}.yaml`, 'utf8'));
const dual = (n: 'primary' | 'secondary', edit: (d: any) => void = () => {}) => {
  const d = board(n);
  dualStack(d, n);
  edit(d);
  return parseConfigText(YAML.stringify(d));
};
function nftCheck(t: Tap.Test, text: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'duogate-fw6-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ruleset.nft'), text);
  const r = spawnSync('unshare', ['--net', 'nft', '-c', '-f', join(dir, 'ruleset.nft')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, 'nft -c accepts the ruleset', { stderr: r.stderr });
}
import type * as Tap from 'tap';

t.test('prefix arithmetic', async (t) => {
  t.equal(prefix6('2001:db8:1::1/64'), '2001:db8:1::/64');
  t.equal(prefix6('2001:db8:1:ff:8000::1/57'), '2001:db8:1:80::/57');
  t.equal(prefix6('2001:db8::1'), '2001:db8::1/128');
  t.ok(inPrefix6('2001:db8:1:0:d6:3ff:fe01:1', '2001:db8:1::/64'));
  t.notOk(inPrefix6('2001:db8:2::1', '2001:db8:1::/64'));
});

t.test('the dual-stack board config: rules for both families, DNS and ping on the IPv6 VIPs, NAT IPv4 only', async (t) => {
  const p = dual('primary');
  const s = dual('secondary');
  t.same(checkConfig(p, s).filter((f) => f.level === 'error'), [], 'the pair passes check');
  t.same(nets6Of(p, 'lan'), ['2001:db8:1::/64'], 'lan net over IPv6: the LAN VIP\'s prefix (and the RA\'s)');
  t.same(nets6Of(p, 'guest'), [], 'the guest network has no IPv6');
  const nft = compile(p).text;
  t.match(nft, /ip saddr 192\.168\.1\.0\/24 counter accept comment "lan#1 Default allow LAN to any rule"/, '"lan net to any" over IPv4');
  t.match(nft, /ip6 saddr 2001:db8:1::\/64 counter accept comment "lan#1 Default allow LAN to any rule"/, 'and over IPv6');
  t.match(nft, /ip saddr 192\.168\.1\.0\/24 ip daddr @alias_wan_server meta l4proto tcp th dport @alias_blocked_ports counter log/, 'an IPv4-only alias: the rule is IPv4 only');
  t.notMatch(nft, /ip6 saddr 2001:db8:1::\/64 ip6 daddr @alias6_wan_server/, 'no IPv6 twin for it');
  t.match(nft, /ip saddr 192\.168\.20\.0\/24 ip daddr 192\.168\.1\.0\/24 counter drop/, 'guests never reach the LAN (IPv4)');
  t.notMatch(nft, /rules_guest[^}]*ip6/, 'the guest network has no IPv6 rules');
  t.match(nft, /ip6 saddr \{ fe80::\/10, 2001:db8:1::\/64 \} ip6 daddr 2001:db8:1::1 meta l4proto \{ tcp, udp \} th dport 53 counter accept comment "DNS resolver \(IPv6\)"/, 'DNS over IPv6 on the LAN\'s global IPv6 VIP (where unbound listens)');
  t.match(nft, /ip6 daddr \{ 2001:db8:1::2, 2001:db8:1::1, fe80::1, 2001:db8:ff::2, 2001:db8:ff::1 \} icmpv6 type echo-request counter accept/, 'the LAN may ping the node\'s own global6 addresses and the IPv6 VIPs (LAN and WAN)');
  t.match(nft, /oifname "wan0" ip saddr 192\.168\.1\.0\/24 counter snat ip to 203\.0\.113\.1/, 'outbound NAT: IPv4');
  t.notMatch(nft, /snat ip6|masquerade.*ip6|ip6 saddr [^\n]* snat/, 'no NAT for IPv6');
  nftCheck(t, nft);

  const ub = unboundConfig(p, '/tmp/x');
  t.match(ub, /interface: 2001:db8:1::1\n/, 'unbound listens on the LAN\'s global IPv6 VIP');
  t.notMatch(ub, /interface: fe80::1/, 'not on the link-local one (it would need a scope)');
  t.match(ub, /do-ip6: yes/);
  t.match(ub, /access-control: ::\/0 refuse\n\s+access-control: fe80::\/10 allow\n\s+access-control: 2001:db8:1::\/64 allow/, 'asked only from the LAN prefix and link-local');
  t.match(unboundConfig(parseConfigText(YAML.stringify(board('primary'))), '/tmp/x'), /do-ip6: no/, 'an IPv4-only config: no IPv6 socket');

  t.ok(ipv6.wanted(p), 'the ipv6 feature runs (forwarding, the upstream route)');
  t.notOk(ipv6.wanted(parseConfigText(YAML.stringify(board('primary')))), 'not for an IPv4-only config');
});

t.test('mixed aliases, IPv6 literals and icmpv6', async (t) => {
  const p = dual('primary', (d) => {
    d.firewall.aliases.dns_servers = { type: 'host', entries: ['203.0.113.10', '2001:db8:ff::10'] };
    d.firewall.aliases.v6nets = { type: 'network', entries: ['2001:db8:ff::/64'] };
    d.firewall.rules.wan = [
      { action: 'pass', protocol: 'icmpv6', source: 'any', destination: 'lan net', description: 'ping the LAN over IPv6' },
      { action: 'pass', protocol: 'tcp', source: 'v6nets', destination: '2001:db8:1::100', destination_port: 22, description: 'ssh to one host' },
    ];
    d.firewall.rules.lan.unshift({ action: 'block', protocol: 'udp', source: 'lan net', destination: 'dns_servers', destination_port: 53, description: 'no outside DNS' });
  });
  const nft = compile(p).text;
  t.match(nft, /set alias_dns_servers \{ type ipv4_addr; flags interval; elements = \{ 203\.0\.113\.10 \} \}/, 'the IPv4 half of a mixed alias');
  t.match(nft, /set alias6_dns_servers \{ type ipv6_addr; flags interval; elements = \{ 2001:db8:ff::10 \} \}/, 'and its IPv6 half');
  t.notMatch(nft, /set alias_v6nets /, 'an IPv6-only alias has no IPv4 set');
  t.match(nft, /ip saddr 192\.168\.1\.0\/24 ip daddr @alias_dns_servers meta l4proto udp th dport 53 counter drop/);
  t.match(nft, /ip6 saddr 2001:db8:1::\/64 ip6 daddr @alias6_dns_servers meta l4proto udp th dport 53 counter drop/);
  t.match(nft, /ip6 daddr 2001:db8:1::\/64 meta l4proto ipv6-icmp counter accept comment "wan#0/, 'icmpv6 to lan net: IPv6 only');
  t.match(nft, /ip6 saddr @alias6_v6nets ip6 daddr 2001:db8:1::100 meta l4proto tcp th dport 22 counter accept/);
  nftCheck(t, nft);
});

t.test('refused with the field and the reason', async (t) => {
  const bad = (edit: (d: any) => void) => { try { compile(dual('primary', edit)); return null; } catch (e) { return e as FirewallConfigError; } };
  let e = bad((d) => { d.firewall.rules.lan = [{ action: 'pass', protocol: 'any', source: '192.168.1.0/24', destination: '2001:db8:ff::10' }]; });
  t.equal(e?.field, 'firewall.rules.lan[0]');
  t.match(e?.message, /no address family in common/);
  e = bad((d) => { d.firewall.rules.guest = [{ action: 'pass', protocol: 'any', source: 'guest net', destination: '2001:db8:ff::/64' }]; });
  t.match(e?.message, /no address family in common/, 'a network without IPv6 against an IPv6 destination');
  e = bad((d) => { d.nat.outbound = { mode: 'hybrid', rules: [{ interface: 'wan', source: '2001:db8:1::/64', destination: 'any', translation: 'vip' }] }; });
  t.equal(e?.field, 'nat.outbound.rules[0]');
  t.match(e?.message, /NAT is IPv4-only/);
  e = bad((d) => { d.firewall.aliases.x = { type: 'host', entries: ['2001:db8::/64'] }; });
  t.match(e?.message, /not an IPv4 or IPv6 address \(host names/, 'a host alias takes no prefix');
  t.throws(() => dual('primary', (d) => { d.interfaces.wan.gateway6 = 'fe80::zz'; }), ConfigError, 'gateway6 must be IPv6 text');
  t.throws(() => dual('primary', (d) => { d.interfaces.wan.global6 = 'fe80::9/64'; }), /global6 is a global unicast address/, 'global6 is not link-local');
  t.throws(() => dual('primary', (d) => { d.interfaces.wan.global6 = '2001:db8:ff::2'; }), ConfigError, 'global6 has its prefix length');
  const clash = dual('primary', (d) => { d.interfaces.lan.global6 = '2001:db8:1::1/64'; });
  t.match(checkConfig(clash), [{ level: 'error', field: 'carp.vips[3].address', message: /own global6 address/ }], 'a VIP that is the node\'s own global6 is refused by check');
  const c = dual('primary', (d) => { d.interfaces.lan.gateway6 = 'fe80::9'; });
  t.match(ipv6.check!(c), [{ level: 'error', field: 'interfaces.lan.gateway6' }], 'only the WAN has an upstream router');
});
