// The gateway's config → nftables/Kea/unbound compilers and its `duogate check` findings, without a kernel.
// (The e2e test test/e2e/gateway.test.ts applies the same output on the virtual board.)
import t from 'tap';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { compile, FirewallConfigError } from '../../host/gateway/firewall/compile.js';
import { mapNftErrors } from '../../host/gateway/firewall/apply.js';
import { keaConfig, checkDhcp, haAuthPassword, haListenerChecksAuth, keaVersion, KEA_HA_AUTH_USER } from '../../host/gateway/dhcp/kea.js';
import { unboundConfig } from '../../host/gateway/dns/unbound.js';
import { SYNC_PORTS } from '../../host/gateway/firewall/ports.js';
import { ensureHaTls, pairKeyPem } from '../../host/gateway/dhcp/hatls.js';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate, createPrivateKey } from 'node:crypto';

const raw = (n = 'primary') => YAML.parse(readFileSync(`board/virtual/${n}.yaml`, 'utf8'));
const load = (doc: unknown) => parseConfigText(YAML.stringify(doc), 'test.yaml');

t.test('the board configs compile to a stateful ruleset with SNAT to the WAN VIP', async (t) => {
  const { text } = compile(load(raw()));
  t.match(text, /table inet duogate \{/);
  t.match(text, /^table inet duogate\ndelete table inet duogate\n/m, 'replaces only its own table, in one transaction');
  const chainBody = (chain: string) => { const b = text.slice(text.indexOf(`chain ${chain} {`)); return b.slice(0, b.indexOf('\n  }')); };
  for (const chain of ['input', 'forward']) {
    const body = chainBody(chain);
    t.match(body, /policy drop;/, `${chain}: default deny`);
    const sub = body.indexOf('iifname != "sync0" ip daddr 172.16.1.0/30 counter drop');
    const est = body.indexOf('ct state established,related');
    const inv = body.indexOf('ct state invalid counter drop');
    const syn = body.indexOf('tcp flags & (fin|syn|rst|ack) != syn ct state new counter drop');
    const next = chain === 'input' ? body.indexOf('jump sync_system') : body.indexOf('jump rules_lan');
    t.ok(sub > 0 && sub < est && est < inv && inv < syn && syn < next, `${chain}: the sync subnet only on the sync NIC, established, invalid, new-not-SYN, then the rest`);
  }
  const input = chainBody('input');
  t.notMatch(input, /rules_/, "input: the user's interface rules do not open the node's own ports");
  t.match(input, /iifname "lan0" jump lan_services\n\s+iifname "guest0" jump guest_services\n\s+counter drop comment "not a service of this node"$/, 'input: the services of each internal network, then drop the rest (nothing from the WAN)');
  t.notMatch(input, /wan0/, 'input: nothing accepted on the WAN but CARP and replies');
  t.match(chainBody('lan_services'), /udp sport 68 udp dport 67 counter accept[^\n]*\n\s+ip saddr 192\.168\.1\.0\/24 ip daddr \{ 192\.168\.1\.2, 192\.168\.1\.1 \} meta l4proto \{ tcp, udp \} th dport 53 counter accept[^\n]*\n\s+ip saddr 192\.168\.1\.3 ip daddr 192\.168\.1\.2 udp dport 7201 counter accept[^\n]*\n\s+ip daddr \{ 192\.168\.1\.2, 192\.168\.1\.1, 203\.0\.113\.2, 203\.0\.113\.1 \} icmp type echo-request counter accept/,
    'LAN: DHCP, DNS from the LAN on its gateway addresses, the heartbeat from the peer only, ping of the LAN and WAN addresses');
  const fwd = chainBody('forward');
  t.ok(fwd.indexOf('oifname "sync0" counter drop') > 0 && fwd.indexOf('oifname "sync0" counter drop') < fwd.indexOf('jump rules_lan'), 'forward: nothing routed onto the sync link, whatever the LAN rules say');
  t.match(fwd, /iifname "sync0" counter drop/, 'forward: nothing routed from the sync link');
  t.notMatch(fwd, /jump rules_sync/);
  t.match(text, /oifname "wan0" ip saddr 192\.168\.1\.0\/24 counter snat ip to 203\.0\.113\.1/, 'SNAT LAN → WAN VIP, not masquerade');
  t.notMatch(text, /masquerade/);
  t.match(text, /meta l4proto 112 ip daddr 224\.0\.0\.18 counter accept/, 'CARP before everything else');
  t.match(text, /iifname "sync0" ip saddr 172\.16\.1\.2 ip daddr 172\.16\.1\.1 jump sync_system/, 'sync rule between the two sync addresses');
  for (const p of Object.values(SYNC_PORTS)) t.match(chainBody('sync_system'), new RegExp(`${p.proto} dport ${p.port} counter accept`));
  t.match(text, /ip daddr @alias_wan_server meta l4proto tcp th dport @alias_blocked_ports counter log prefix "duogate lan#0 block: " level info drop/);
  t.match(text, /set alias_blocked_ports \{ type inet_service; flags interval; elements = \{ 8081, 9100-9199 \} \}/);
});

t.test('defaults without a firewall section: LAN to any passes, WAN blocked', async (t) => {
  const d = raw(); d.firewall = {};
  const { text } = compile(load(d));
  t.match(text, /chain rules_lan \{\n\s+ip saddr 192\.168\.1\.0\/24 counter accept comment "lan#0 Default allow LAN to any rule"\n\s+\}/);
  t.match(text, /chain rules_wan \{\n\s+\}/);
});

t.test("the node's own ports follow the config: configured ports, dns.allow, sections left out", async (t) => {
  const d = raw();
  d.statesync.port = 7300; d.peer.port = 7301; d.configsync.port = 7543;
  d.dns.allow = ['10.8.0.0/24']; d.dns.port = 5353;
  d.peer.lan_path = false;
  let { text } = compile(load(d));
  t.match(text, /udp dport 7300 counter accept comment "sync: statesync"/);
  t.match(text, /udp dport 7301 counter accept comment "sync: heartbeat"/);
  t.match(text, /tcp dport 7543 counter accept comment "sync: configsync"/);
  t.match(text, /ip saddr \{ 192\.168\.1\.0\/24, 10\.8\.0\.0\/24 \} ip daddr \{ 192\.168\.1\.2, 192\.168\.1\.1 \} meta l4proto \{ tcp, udp \} th dport 5353 counter accept/);
  t.notMatch(text, /heartbeat \(LAN path\)/, 'no LAN path: no heartbeat port on the LAN');
  const e = raw(); delete e.dns; delete e.dhcp; delete e.peer;
  ({ text } = compile(load(e)));
  const lanServices = text.slice(text.indexOf('chain lan_services {'), text.indexOf('chain input {'));
  t.notMatch(lanServices, /dport (53|67)\b|7201/, 'without dhcp/dns/peer the LAN gets only ping');
  t.match(lanServices, /icmp type echo-request/);
});

t.test('rule forms: networks, negation, interface address, port lists, reject, tcp/udp', async (t) => {
  const d = raw();
  d.firewall.rules.wan = [
    { action: 'reject', protocol: 'tcp/udp', source: '!10.1.2.3/8', destination: 'wan address', destination_port: [22, '1000-2000'], description: 'x' },
    { action: 'pass', protocol: 'icmp', source: 'any', destination: 'any', disabled: true },
  ];
  const { text, origins } = compile(load(d));
  t.match(text, /ip saddr != 10\.0\.0\.0\/8 ip daddr \{ 203\.0\.113\.2, 203\.0\.113\.1 \} meta l4proto \{ tcp, udp \} th dport \{ 22, 1000-2000 \} counter reject comment "wan#0 x"/);
  t.notMatch(text, /meta l4proto icmp/, 'a disabled rule is left out');
  const line = text.split('\n').findIndex((l) => l.includes('wan#0 x')) + 1;
  t.same(origins.get(line), { field: 'firewall.rules.wan[0]', description: 'x' });
});

t.test('bad rules are refused before nft, naming the field', async (t) => {
  const cases: [(d: any) => void, string, RegExp][] = [
    [(d) => { d.firewall.rules.lan[0].destination = 'nosuchalias'; }, 'firewall.rules.lan[0].destination', /not any, <if> net/],
    [(d) => { d.firewall.rules.lan[1].destination_port = '9000-8000'; d.firewall.rules.lan[1].protocol = 'tcp'; }, 'firewall.rules.lan[1].destination_port', /reversed: write 8000-9000/],
    [(d) => { d.firewall.rules.lan[1].destination_port = 80; }, 'firewall.rules.lan[1].protocol', /ports need protocol tcp, udp/],
    [(d) => { d.firewall.rules.lan[1].source = 'blocked_ports'; }, 'firewall.rules.lan[1].source', /port alias/],
    [(d) => { d.firewall.aliases.wan_server.entries = ['example.com']; }, 'firewall.aliases.wan_server', /not an IPv4 or IPv6 address/],
    [(d) => { d.nat.outbound = { mode: 'manual', rules: [{ interface: 'lan', translation: 'vip' }] }; d.carp.vips = d.carp.vips.filter((v: any) => v.interface !== 'lan'); }, 'nat.outbound.rules[0].translation', /has no CARP VIP/],
  ];
  for (const [mut, field, re] of cases) {
    const d = raw(); mut(d);
    const c = load(d);
    let err: unknown;
    try { compile(c); } catch (e) { err = e; }
    t.ok(err instanceof FirewallConfigError && err.field === field && re.test(err.message), `${field}: ${(err as Error)?.message}`);
    t.ok(checkConfig(c).some((f) => f.level === 'error' && f.field === field), `check reports ${field}`);
  }
});

t.test('NAT modes and port forwards', async (t) => {
  const d = raw();
  d.nat = {
    outbound: { mode: 'hybrid', rules: [{ interface: 'wan', source: '192.168.1.50', destination: 'any', no_nat: true, description: 'no nat for .50' }] },
    port_forwards: [{ interface: 'wan', protocol: 'tcp', destination_port: 8080, target: '192.168.1.100', target_port: 80, description: 'web' }],
  };
  const { text } = compile(load(d));
  const post = text.slice(text.indexOf('chain postrouting_nat'));
  t.ok(post.indexOf('no nat for .50') < post.indexOf('automatic outbound NAT'), 'hybrid: manual rules first, then automatic');
  t.match(text, /iifname "wan0" ip daddr 203\.0\.113\.1 meta l4proto tcp th dport 8080 counter dnat ip to 192\.168\.1\.100:80/, 'port forward on the WAN VIP');
  t.match(text, /ct status dnat counter accept/, 'forwarded ports pass the filter');
  d.nat.outbound.mode = 'manual';
  t.notMatch(compile(load(d)).text, /automatic outbound NAT/);
  d.nat.outbound.mode = 'disabled';
  t.notMatch(compile(load(d)).text, /snat|masquerade/);
});

t.test('check flags user rules that would block sync traffic or CARP', async (t) => {
  const d = raw();
  d.firewall.rules.sync = [{ action: 'block', protocol: 'udp', source: 'any', destination: 'sync address', destination_port: '7000-7999', description: 'no udp 7xxx' }];
  d.firewall.rules.wan = [{ action: 'block', protocol: 'any', source: 'wan net', destination: 'any', description: 'paranoid' }];
  const f = checkConfig(load(d));
  const sync = f.filter((x) => x.field === 'firewall.rules.sync[0]');
  t.equal(sync.length, 2, 'state sync (udp 7200) and heartbeat (udp 7201)');
  t.match(sync[0]!.message, /"no udp 7xxx" would block statesync \(udp 7200\) from 172\.16\.1\.2 to 172\.16\.1\.1/);
  t.ok(f.some((x) => x.field === 'firewall.rules.wan[0]' && /CARP adverts/.test(x.message)), 'a WAN rule blocking CARP');
  // A pass for the sync traffic earlier in the list: first match wins, nothing to flag.
  d.firewall.rules.sync.unshift({ action: 'pass', protocol: 'udp', source: 'sync net', destination: 'any', destination_port: [7200, 7201] });
  d.firewall.rules.wan = [];
  t.same(checkConfig(load(d)).filter((x) => x.field.startsWith('firewall.rules')), []);
  // The board's own configs are clean (as far as the gateway's sections go).
  t.same(checkConfig(load(raw())).filter((x) => /^(firewall|nat|dhcp|dns)\b/.test(x.field)), []);
});

t.test("check flags pass rules addressed to the gateway itself (they open nothing)", async (t) => {
  const d = raw();
  d.firewall.rules.wan = [
    { action: 'pass', protocol: 'tcp', source: 'any', destination: 'wan address', destination_port: 22, description: 'ssh to the box' },
    { action: 'pass', protocol: 'tcp', source: 'any', destination: '203.0.113.1', destination_port: 443 },
    { action: 'pass', protocol: 'tcp', source: 'any', destination: '192.168.1.100', destination_port: 80, description: 'to a LAN host' },
  ];
  const f = checkConfig(load(d)).filter((x) => x.field.startsWith('firewall.rules.wan'));
  t.same(f.map((x) => x.field), ['firewall.rules.wan[0]', 'firewall.rules.wan[1]'], 'the rules addressed to the node, not the one to a LAN host');
  t.match(f[0]!.message, /"ssh to the box" is addressed to the gateway itself \(wan address\)/);
});

t.test('nft error lines map back to the config field', async (t) => {
  const d = raw();
  const c = compile(load(d));
  const line = c.text.split('\n').findIndex((l) => l.includes('set alias_wan_server')) + 1;
  const errs = mapNftErrors(`/x/ruleset.nft.next:${line}:68-78: Error: conflicting intervals specified\n  set ...\n`, c);
  t.same(errs, [{ line, origin: { field: 'firewall.aliases.wan_server', description: 'the WAN test server' }, error: 'conflicting intervals specified' }]);
});

t.test('Kea config: VIP as router/DNS, the node\'s own address as server id, HA over the sync link, per-node name', async (t) => {
  const p = keaConfig(load(raw('primary')), '/s') as any;
  const s = keaConfig(load(raw('secondary')), '/s') as any;
  const opts = (x: any) => Object.fromEntries(x.Dhcp4.subnet4[0]['option-data'].map((o: any) => [o.name, o.data]));
  t.same(opts(p), { routers: '192.168.1.1', 'domain-name-servers': '192.168.1.1', 'dhcp-server-identifier': '192.168.1.2' });
  t.equal(opts(s)['dhcp-server-identifier'], '192.168.1.3', 'each node names itself: a unicast renew must reach an address its Kea listens on');
  t.equal(p.Dhcp4['multi-threading']['enable-multi-threading'], true, 'core MT on (HA+MT needs it)');
  const ha = (x: any) => x.Dhcp4['hooks-libraries'][1].parameters['high-availability'][0];
  t.equal(ha(p)['this-server-name'], 'primary');
  t.equal(ha(s)['this-server-name'], 'secondary');
  t.same(ha(p).peers, ha(s).peers, 'identical peer list on both nodes');
  t.same(ha(p).peers.map((x: any) => x.url), ['http://172.16.1.1:8001/', 'http://172.16.1.2:8001/']);
  t.equal(ha(p).mode, 'hot-standby');
  t.same(p.Dhcp4['interfaces-config'].interfaces, ['lan0', 'guest0']);
  t.same(p.Dhcp4.subnet4[0].pools, [{ pool: '192.168.1.150 - 192.168.1.199' }]);
});

t.test('Kea HA basic auth only where the HA listener checks it, same credentials on both nodes', async (t) => {
  // Kea 2.2-3.3.0 send basic-auth credentials but their HA+MT listener checks none (docs/gateway.md).
  for (const v of ['2.2.0', '2.4.1', '2.6.3', '3.0.1', '3.3.0']) t.notOk(haListenerChecksAuth(v), `${v}: not checked`);
  for (const v of ['3.3.1', '3.4.0', '4.0.0']) t.ok(haListenerChecksAuth(v), `${v}: checked`);
  t.notOk(haListenerChecksAuth(null), 'unknown version: assume not');
  t.match(String(keaVersion()), /^\d+\.\d+\.\d+$/, `installed Kea: ${keaVersion()}`);
  const ha = (x: any) => x.Dhcp4['hooks-libraries'][1].parameters['high-availability'][0];
  const plain = keaConfig(load(raw('primary')), '/s') as any;
  t.notOk(ha(plain).peers.some((x: any) => 'basic-auth-user' in x), 'no credentials unless asked for');
  const p = keaConfig(load(raw('primary')), '/s', { basicAuth: true }) as any;
  const s = keaConfig(load(raw('secondary')), '/s', { basicAuth: true }) as any;
  t.same(ha(p).peers, ha(s).peers, 'identical peers (and credentials) on both nodes');
  for (const peer of ha(p).peers) {
    t.equal(peer['basic-auth-user'], KEA_HA_AUTH_USER);
    t.equal(peer['basic-auth-password-file'], '/s/kea/ha-auth.password', 'the password by file');
    t.notOk('basic-auth-password' in peer, 'never the password itself in the config');
  }
  const pw = haAuthPassword(load(raw('primary')));
  t.equal(pw, haAuthPassword(load(raw('secondary'))), 'both nodes derive the same password');
  t.match(String(pw), /^[0-9a-f]{64}$/);
  t.notMatch(JSON.stringify(p), pw!, 'the password is nowhere in the generated config');
  const d = raw(); delete d.statesync; delete d.peer; delete d.configsync;
  t.throws(() => keaConfig(load(d), '/s', { basicAuth: true }), /needs a secret the pair shares/);
  t.throws(() => keaConfig(load(d), '/s', { tls: true }), /needs a secret the pair shares/);
});

t.test('Kea HA mutual TLS: one pair identity, byte-identical on both nodes, fixed validity', async (t) => {
  const ha = (x: any) => x.Dhcp4['hooks-libraries'][1].parameters['high-availability'][0];
  const p = ha(keaConfig(load(raw('primary')), '/s', { tls: true }));
  t.same(p.peers.map((x: any) => x.url), ['https://172.16.1.1:8001/', 'https://172.16.1.2:8001/']);
  t.same([p['trust-anchor'], p['cert-file'], p['key-file'], p['require-client-certs']], ['/s/kea/tls/ha.crt', '/s/kea/tls/ha.crt', '/s/kea/tls/ha.key', true],
    'the pair certificate is the identity and the only trust anchor; client certificates required');
  t.equal(pairKeyPem('a-secret-of-the-pair'), pairKeyPem('a-secret-of-the-pair'), 'the key is derived, not random');
  t.not(pairKeyPem('a-secret-of-the-pair'), pairKeyPem('another-secret'));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dg-hatls-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const made = (['primary', 'secondary'] as const).map((n) => {
    const dir = path.join(tmp, n); mkdirSync(dir, { recursive: true });
    const r = ensureHaTls(load(raw(n)), dir);
    return { ...r, crt: readFileSync(r.cert, 'utf8'), mode: statSync(r.key).mode & 0o777 };
  });
  t.equal(made[0]!.source, 'statesync.key');
  t.equal(made[0]!.crt, made[1]!.crt, 'both nodes make the same certificate bytes (OpenSSL trusts a self-signed peer only if identical)');
  t.equal(made[0]!.mode, 0o600, 'the key is private');
  const x = new X509Certificate(made[0]!.crt);
  t.equal(x.validFrom, 'Jan  1 00:00:00 2000 GMT', 'valid from 2000: no clock skew makes it "not yet valid"');
  t.match(x.subjectAltName ?? '', /IP Address:172\.16\.1\.1, IP Address:172\.16\.1\.2/);
  t.ok(x.checkPrivateKey(createPrivateKey(readFileSync(made[0]!.key))), 'certificate and key belong together');
  const again = ensureHaTls(load(raw('primary')), path.join(tmp, 'primary'));
  t.equal(readFileSync(again.cert, 'utf8'), made[0]!.crt, 'kept while the secret is unchanged');
});

t.test('DHCP validation catches what kea-dhcp4 -t accepts', async (t) => {
  const cases: [(d: any) => void, RegExp][] = [
    [(d) => { d.dhcp.range = { from: '192.168.1.1', to: '192.168.1.50' }; }, /contains the LAN VIP 192\.168\.1\.1/],
    [(d) => { d.dhcp.range = { from: '192.168.1.200', to: '192.168.1.150' }; }, /is after/],
    [(d) => { d.dhcp.range = { from: '10.0.0.1', to: '10.0.0.9' }; }, /outside the LAN subnet/],
    [(d) => { d.dhcp.static_mappings = [{ mac: '02:00:00:00:00:01', address: '192.168.1.3' }]; }, /gateway address/],
    [(d) => { d.dhcp.static_mappings = [{ mac: '02:00:00:00:00:01', address: '192.168.1.20' }, { mac: '02:00:00:00:00:01', address: '192.168.1.21' }]; }, /mapped twice/],
    [(d) => { delete d.interfaces.sync.peer; }, /Kea HA peers talk over the sync link/],
    [(d) => { d.dhcp.ha = { heartbeat_delay_ms: 5000, max_response_delay_ms: 3000 }; }, /longer than heartbeat_delay_ms/],
  ];
  for (const [mut, re] of cases) {
    const d = raw(); mut(d);
    const c = load(d);
    t.ok(checkDhcp(c).some((f) => f.level === 'error' && re.test(f.message)), String(re));
    t.throws(() => keaConfig(c, '/s'), re, 'and keaConfig refuses it');
  }
});

t.test('unbound config: freebind on the VIP, LAN allowed, forwarders', async (t) => {
  const u = unboundConfig(load(raw()), '/s');
  t.match(u, /interface: 192\.168\.1\.1\n/);
  t.match(u, /ip-freebind: yes/);
  t.match(u, /access-control: 192\.168\.1\.0\/24 allow/);
  t.match(u, /access-control: 0\.0\.0\.0\/0 refuse/);
  t.match(u, /forward-zone:\n {2}name: "\."\n {2}forward-addr: 203\.0\.113\.10/);
});
