// Named internal networks (issue #14): what load and `duogate check` refuse, field by field, and what the
// firewall, Kea and unbound configs make of a network beyond the LAN. Starts from the board's configs, which
// declare `guest`; a config with only wan/lan/sync still loads (the original three stay enough).
import t from 'tap';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigError, parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { compile } from '../../host/gateway/firewall/compile.js';
import { keaConfig } from '../../host/gateway/dhcp/kea.js';
import { scopeId } from '../../host/gateway/dhcp/scopes.js';
import { unboundConfig } from '../../host/gateway/dns/unbound.js';

const raw = (n = 'primary') => YAML.parse(readFileSync(`board/virtual/${n}.yaml`, 'utf8'));
const load = (d: unknown) => parseConfigText(YAML.stringify(d), 'node.yaml');
const errors = (d: any, peer?: any) => checkConfig(load(d), peer ? load(peer) : undefined).filter((f) => f.level === 'error').map((f) => `${f.field}: ${f.message}`);

t.test('a config with only wan, lan and sync loads and passes check', async (t) => {
  const d = raw();
  delete d.interfaces.guest;
  d.carp.vips = d.carp.vips.filter((v: any) => v.interface !== 'guest');
  delete d.firewall.rules.guest;
  delete d.dhcp.networks;
  const c = load(d);
  t.same(Object.keys(c.interfaces), ['wan', 'lan', 'sync']);
  t.same(errors(d), []);
  t.notMatch(compile(c).text, /guest/);
});

t.test('load refuses bad names, VLAN ids and VIPs on unknown networks, naming the field', async (t) => {
  const cases: [(d: any) => void, string, RegExp][] = [
    [(d) => { d.interfaces.Guest2 = { device: 'g2', address: '10.9.0.2/24' }; }, 'interfaces.Guest2', /not a valid network name/],
    [(d) => { d.interfaces.guest.vlan = 4095; }, 'interfaces.guest.vlan', /<= 4094/],
    [(d) => { d.interfaces.guest.vlan = 0; }, 'interfaces.guest.vlan', />= 1/],
    [(d) => { d.carp.vips[2].interface = 'iot'; }, 'carp.vips[2].interface', /"iot" is not a network of this node/],
    [(d) => { d.carp.vips[2].vhid = 1; }, 'carp.vips[2].interface', /same vhid 1/],
  ];
  for (const [mutate, field, reason] of cases) {
    const d = raw(); mutate(d);
    try { load(d); t.fail(`accepted a bad ${field}`); } catch (e) {
      t.type(e, ConfigError);
      t.equal((e as ConfigError).field, field, `field ${field}`);
      t.match((e as ConfigError).reason, reason);
    }
  }
});

t.test('check refuses overlaps, a missing peer, two networks on one segment, unknown rule lists and scopes', async (t) => {
  const with_ = (f: (d: any) => void) => { const d = raw(); f(d); return errors(d).join('\n'); };
  t.match(with_((d) => { d.interfaces.guest.address = '192.168.1.20/24'; }), /interfaces\.guest\.address: overlaps interfaces\.lan/);
  t.match(with_((d) => { d.interfaces.guest.address = '192.168.0.2/16'; d.interfaces.guest.peer = '192.168.0.3'; }), /overlaps interfaces\.lan/);
  t.match(with_((d) => { delete d.interfaces.guest.peer; }), /interfaces\.guest\.peer: not set: a network with a CARP VIP needs/);
  t.match(with_((d) => { d.interfaces.guest.device = 'lan0'; }), /interfaces\.guest\.device: lan0 is also the device of interfaces\.lan/);
  t.same(with_((d) => { d.interfaces.guest.device = 'lan0'; d.interfaces.guest.vlan = 20; }), '', 'the LAN NIC again, as VLAN 20: allowed');
  t.match(with_((d) => { d.interfaces.guest.device = 'enp1s0f0np0'; d.interfaces.guest.vlan = 2000; }), /interfaces\.guest\.vlan: the sub-interface name enp1s0f0np0\.2000 is longer than 15/);
  t.match(with_((d) => { d.firewall.rules.iot = []; }), /firewall\.rules\.iot: "iot" is not a network of this node/);
  t.match(with_((d) => { d.firewall.rules.guest[0].destination = 'iot net'; }), /firewall\.rules\.guest\[0\]\.destination: "iot" is not a network/);
  t.match(with_((d) => { d.dhcp.networks.iot = { range: { from: '10.0.0.10', to: '10.0.0.20' } }; }), /dhcp\.networks\.iot: "iot" is not an internal network/);
  t.match(with_((d) => { d.dhcp.networks.guest.range.from = '192.168.20.1'; }), /dhcp\.networks\.guest\.range: .* contains the guest VIP 192\.168\.20\.1/);
  t.match(with_((d) => { d.dhcp.networks.guest.range.to = '192.168.21.9'; }), /dhcp\.networks\.guest\.range\.to: 192\.168\.21\.9 is outside the guest subnet/);
  t.throws(() => load({ ...raw(), dhcp: { ...raw().dhcp, networks: { wan: { range: { from: '203.0.113.50', to: '203.0.113.60' } } } } }), /dhcp\.networks/);
  // Across the pair: a network on one node only, or tagged differently.
  const s = raw('secondary');
  const p = raw(); delete p.interfaces.guest; p.carp.vips.pop(); delete p.firewall.rules.guest; delete p.dhcp.networks;
  t.match(errors(p, s).join('\n'), /interfaces\.guest: guest is a network on the peer only/);
  const v = raw(); v.interfaces.guest.vlan = 20;
  t.match(errors(v, s).join('\n'), /interfaces\.guest\.vlan: 20 here, none on the peer/);
  t.same(errors(raw(), s), [], 'the board pair passes');
});

t.test('firewall: rules, services and outbound NAT per network; the guest never reaches the LAN', async (t) => {
  const text = compile(load(raw())).text;
  t.match(text, /chain rules_guest \{\n\s+ip saddr 192\.168\.20\.0\/24 ip daddr 192\.168\.1\.0\/24 counter drop comment "guest#0 Guests never reach the LAN"\n\s+ip saddr 192\.168\.20\.0\/24 counter accept/);
  t.match(text, /chain guest_services \{\n\s+udp sport 68 udp dport 67 counter accept comment "DHCP server"\n\s+ip saddr 192\.168\.20\.0\/24 ip daddr \{ 192\.168\.20\.2, 192\.168\.20\.1 \} meta l4proto \{ tcp, udp \} th dport 53/);
  t.notMatch(/chain guest_services \{[^}]*\}/.exec(text)![0], /heartbeat/, 'the heartbeat\'s LAN path stays on the LAN');
  t.match(text, /iifname "guest0" jump rules_guest/);
  t.match(text, /oifname "wan0" ip saddr 192\.168\.20\.0\/24 counter snat ip to 203\.0\.113\.1 comment "automatic outbound NAT \(guest\)"/);
  t.match(text, /oifname "wan0" ip saddr 192\.168\.1\.0\/24 counter snat ip to 203\.0\.113\.1 comment "automatic outbound NAT"/);
  // No list for a network: nothing passes (pfSense's OPT default); a VLAN network's rules name the sub-interface.
  const d = raw(); delete d.firewall.rules.guest; d.interfaces.guest.device = 'lan0'; d.interfaces.guest.vlan = 20;
  const t2 = compile(load(d)).text;
  t.match(t2, /chain rules_guest \{\n\s+\}/);
  t.match(t2, /iifname "lan0\.20" jump rules_guest/);
});

t.test('Kea serves a subnet per scope; unbound listens on every network', async (t) => {
  const c = load(raw());
  const k = keaConfig(c, '/tmp/dg-nets-unit') as any;
  t.same(k.Dhcp4['interfaces-config'].interfaces, ['lan0', 'guest0']);
  const [lan, guest] = k.Dhcp4.subnet4;
  t.match(lan, { id: 1, subnet: '192.168.1.0/24', interface: 'lan0' }, 'the LAN keeps subnet id 1');
  t.match(guest, { id: scopeId('guest'), subnet: '192.168.20.0/24', interface: 'guest0', pools: [{ pool: '192.168.20.150 - 192.168.20.199' }] });
  t.same(guest['option-data'].filter((o: any) => o.name !== 'domain-name').map((o: any) => o.data), ['192.168.20.1', '192.168.20.1', '192.168.20.2'], 'router and DNS are the guest VIP, the server id the node\'s own guest address');
  t.same(lan['option-data'].find((o: any) => o.name === 'dhcp-server-identifier')?.data, '192.168.1.2', 'the LAN\'s server id is the node\'s own LAN address');
  t.equal(scopeId('guest'), scopeId('guest'), 'a stable id');
  t.not(scopeId('guest'), scopeId('iot'));
  const u = unboundConfig(c, '/tmp/dg-nets-unit');
  for (const a of ['192.168.1.1', '192.168.1.2', '192.168.20.1', '192.168.20.2', '127.0.0.1']) t.match(u, new RegExp(`interface: ${a.replace(/\./g, '\\.')}\\n`));
  t.match(u, /access-control: 192\.168\.20\.0\/24 allow/);
});
