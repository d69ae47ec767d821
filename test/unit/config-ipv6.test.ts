// IPv6 VIPs in the config (docs/carp.md "CARP over IPv6"): what loads, what is refused with field and reason,
// that `duogate check` and the compiled firewall take them, and that the IPv4-only consumers leave them out.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError, parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { compile, vipsOn } from '../../host/gateway/firewall/compile.js';
import { rxPolicyOf } from '../../host/statesync/policy.js';

// The board's configs without their guest network: the cases below index the LAN and WAN VIPs (vips[2] is the
// first one they add).
const raw = (n: 'primary' | 'secondary') => {
  const d = YAML.parse(readFileSync(`board/virtual/${n}.yaml`, 'utf8'));
  delete d.interfaces.guest;
  d.carp.vips = d.carp.vips.filter((v: { interface: string }) => v.interface !== 'guest');
  delete d.firewall.rules.guest;
  delete d.dhcp.networks;
  return d;
};
function dual(n: 'primary' | 'secondary') {
  const d = raw(n);
  d.interfaces.lan.address6 = n === 'primary' ? 'fe80::2' : 'fe80::3';
  d.interfaces.lan.peer6 = n === 'primary' ? 'fe80::3' : 'fe80::2';
  const lan = d.carp.vips[0];
  d.carp.vips.push({ ...lan, address: '2001:db8:1::1/64' }, { ...lan, address: 'fe80::1/64' });
  return d;
}

t.test('a dual-stack vhid loads, passes check against its peer, and compiles', async (t) => {
  const p = parseConfigText(YAML.stringify(dual('primary')));
  const s = parseConfigText(YAML.stringify(dual('secondary')));
  t.equal(p.carp.vips.length, 4);
  t.same(checkConfig(p, s).filter((f) => f.level === 'error'), []);
  t.same(vipsOn(p, 'lan'), ['192.168.1.1'], 'the IPv4 consumers (rules, NAT, DHCP) see only the IPv4 VIP');
  t.same(rxPolicyOf(p, {} as never, () => null).vips, ['192.168.1.1', '203.0.113.1'], 'state sync policy: IPv4 VIPs only');
  const nft = compile(p).text;
  t.match(nft, /meta l4proto (112|vrrp) ip6 daddr ff02::12 ip6 hoplimit 255 counter accept/, 'IPv6 adverts pass');
  t.match(nft, /icmpv6 type \{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert \} ip6 hoplimit 255 counter accept/, 'neighbour discovery passes');
  t.match(nft, /ip6 daddr \{ 2001:db8:1::1, fe80::1 \} icmpv6 type echo-request/, 'the LAN may ping the IPv6 VIPs');
  t.match(nft, /icmpv6 type \{ destination-unreachable, packet-too-big, time-exceeded, parameter-problem \} counter accept/, 'ICMPv6 errors (PMTU) reach the node');
  t.notMatch(compile(parseConfigText(YAML.stringify(raw('primary')))).text, /ip6|icmpv6/, 'an IPv4-only config compiles as before');
  // The real nft accepts it (a dry run in a throwaway network namespace, as config-fuzz.test.ts does).
  const dir = mkdtempSync(join(tmpdir(), 'duogate-nft6-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ruleset.nft'), nft);
  const r = spawnSync('unshare', ['--net', 'nft', '-c', '-f', join(dir, 'ruleset.nft')], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, 'nft -c accepts the ruleset', { stderr: r.stderr });
});

t.test('refused with field and reason', async (t) => {
  const cases: [(d: any) => void, string, RegExp][] = [
    [(d) => { d.carp.vips[2].address = '2001:db8:1::1'; }, 'carp.vips[2].address', /IPv6 one with 0-128/],
    [(d) => { d.carp.vips[2].address = '2001:db8:1::1/129'; }, 'carp.vips[2].address', /IPv6 one with 0-128/],
    [(d) => { d.carp.vips[2].address = '2001:db8:::1/64'; }, 'carp.vips[2].address', /not an IPv6 address/],
    [(d) => { d.carp.vips[2].address = 'ff02::5/64'; }, 'carp.vips[2].address', /multicast/],
    [(d) => { delete d.interfaces.lan.address6; }, 'interfaces.lan.address6', /required by the IPv6 VIP carp.vips\[2\]/],
    [(d) => { delete d.interfaces.lan.peer6; }, 'interfaces.lan.peer6', /is required/],
    [(d) => { d.interfaces.lan.address6 = '2001:db8::2'; }, 'interfaces.lan.address6', /link-local/],
    [(d) => { d.interfaces.lan.peer6 = 'fe80::1::2'; }, 'interfaces.lan.peer6', /not an IPv6 address/],
    [(d) => { for (const v of d.carp.vips) if (v.vhid === 1) v.mac = 'virtual'; }, 'carp.vips[2].mac', /IPv4-only/],
  ];
  for (const [edit, field, reason] of cases) {
    const d = dual('primary');
    edit(d);
    try { parseConfigText(YAML.stringify(d), 'p.yaml'); t.fail(`${field} accepted`); } catch (e) {
      t.ok(e instanceof ConfigError, field);
      t.equal((e as ConfigError).field, field);
      t.match((e as ConfigError).reason, reason);
    }
  }
});

t.test('check: an IPv6 VIP that is a node\'s own link-local, or twice', async (t) => {
  const d = dual('primary');
  d.carp.vips.push({ ...d.carp.vips[0], address: 'fe80::3/64' }, { ...d.carp.vips[0], address: '2001:db8:1::1/64' });
  const f = checkConfig(parseConfigText(YAML.stringify(d))).filter((x) => x.level === 'error').map((x) => `${x.field}: ${x.message}`);
  t.match(f.join('\n'), /carp\.vips\[4\]\.address: fe80::3 is a node's own link-local/);
  t.match(f.join('\n'), /carp\.vips\[5\]\.address: 2001:db8:1::1 is also carp\.vips\[2\]/);
});
