// The mqtt: and peer: sections: schema defaults, unknown keys refused, and the `duogate check` findings.
import t from 'tap';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';

const base = (extra: string, peerAddrs = true) => `schema: 1
node: {name: gw-a, role: primary}
interfaces:
  wan: {device: wan0, address: 203.0.113.2/24${peerAddrs ? ', peer: 203.0.113.3' : ''}}
  lan: {device: lan0, address: 192.168.1.2/24${peerAddrs ? ', peer: 192.168.1.3' : ''}}
  sync: {device: sync0, address: 172.16.1.1/30${peerAddrs ? ', peer: 172.16.1.2' : ''}}
carp: {vips: []}
${extra}`;
const findings = (text: string, peerText?: string) => checkConfig(parseConfigText(text), peerText ? parseConfigText(peerText) : undefined)
  .filter((f) => /^(mqtt|peer)/.test(f.field) || /heartbeat/.test(f.message)).map((f) => `${f.level} ${f.field}`);

t.test('defaults fill in; a typo is an error naming the field', async (t) => {
  const c = parseConfigText(base('mqtt: {url: "mqtt://192.168.1.100:1883"}\npeer: {key: 0123456789abcdef}')) as any;
  t.same(c.mqtt, { url: 'mqtt://192.168.1.100:1883', insecure: false, prefix: 'duogate', interval_s: 15, keepalive_s: 3, backoff_min_s: 1, backoff_max_s: 30, discovery: { enabled: true, prefix: 'homeassistant' }, commands: false });
  t.same(c.peer, { key: '0123456789abcdef', port: 7201, interval_ms: 1000, dead_after: 3, lan_path: true });
  t.throws(() => parseConfigText(base('mqtt: {url: "mqtt://b:1883", keepalive: 3}')), /mqtt\.keepalive: unknown field/);
  t.throws(() => parseConfigText(base('mqtt: {url: "http://b:1883"}')), /mqtt\.url/);
  t.throws(() => parseConfigText(base('mqtt: {url: "mqtt://b", discovery: {prefix: "home assistant"}}')), /mqtt\.discovery\.prefix/);
  t.throws(() => parseConfigText(base('peer: {key: short}')), /peer\.key: must NOT have fewer than 16 characters/);
  t.throws(() => parseConfigText(base('peer: {key: 0123456789abcdef, interval_ms: 10}')), /peer\.interval_ms/);
});

t.test('duogate check: what the heartbeat and the broker connection need', async (t) => {
  t.same(findings(base('peer: {key: 0123456789abcdef}')), [], 'a complete peer section is clean');
  t.same(findings(base('peer: {key: 0123456789abcdef}', false)).filter((f) => f.startsWith('error')), ['error interfaces.sync.peer']);
  const a = base('peer: {key: 0123456789abcdef}');
  t.same(findings(a, a.replace('0123456789abcdef', 'fedcba9876543210').replace('gw-a, role: primary', 'gw-b, role: secondary')), ['error peer.key'], 'keys differ between the nodes');
  t.same(findings(a, base('').replace('gw-a, role: primary', 'gw-b, role: secondary')), ['warning peer'], 'only one node has peer:');
  t.same(findings(base('mqtt: {url: "mqtts://b:8883", ca: /nonexistent/ca.pem}')), ['error mqtt.ca']);
  t.same(findings(base('mqtt: {url: "mqtt://b:1883", username: u, password: p}')), ['warning mqtt.password'], 'clear-text password');
  t.same(findings(base('mqtt: {url: "mqtts://b:8883", insecure: true, commands: true}')), ['warning mqtt.insecure', 'warning mqtt.commands']);
  t.same(findings(base('mqtt: {url: "mqtt://b:1883", backoff_min_s: 10, backoff_max_s: 5}')), ['error mqtt.backoff_min_s']);
});
